"""Qt test setup: offscreen platform, the reader's URL scheme, the demo profile, big folders.

The environment is set at import, before pytest-qt creates the QApplication (the
``tidings:`` scheme must also be registered before it exists). The demo profile is
built once per session into a template folder and copied per test.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")

import pytest

from app.profile import Profile
from app.services import Services
from ui.scheme import prepare_web_engine

prepare_web_engine()  # as the app does: the scheme and Chromium's flags

# Chromium without a GPU says so through Qt's logging; that is not a test failure.
_QT_NOISE = (
    r"QRhiGles2: Failed to create",
    r"Failed to create RHI",
    r"This plugin does not support",
    r"GPUInfo not initialized",
    r"Release of profile requested but WebEnginePage still not deleted",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_ignore(*_QT_NOISE))


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.demo import build_demo

    home = tmp_path_factory.mktemp("demo-template")
    svc = Services(Profile.open(home))
    build_demo(svc)
    svc.close()
    return home


@pytest.fixture
def demo_home(tmp_path: Path, demo_template: Path) -> Path:
    home = tmp_path / "demo"
    shutil.copytree(demo_template, home)
    return home


@pytest.fixture
def demo_services(demo_home: Path) -> Iterator[Services]:
    svc = Services(Profile.open(demo_home))
    yield svc
    _close(svc)


@pytest.fixture
def services(home: Path) -> Iterator[Services]:
    """As in tests/conftest.py, but closed only after the thread pool's reads finished."""
    svc = Services(Profile.open(home))
    yield svc
    _close(svc)


def _close(svc: Services) -> None:
    from ui.bridge import wait_for_tasks

    wait_for_tasks()  # the list model reads pages and rows on the pool
    svc.close()


@pytest.fixture
def settings(demo_home: Path):
    from ui.app import open_settings

    return open_settings(demo_home)


@pytest.fixture
def main_window(qtbot, demo_services: Services, settings):
    from ui.mainwindow import MainWindow

    window = MainWindow(demo_services, settings, start_worker=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.list_model.rowCount() > 0, timeout=10_000)
    yield window
    window.shutdown()
    from ui.bridge import wait_for_tasks

    wait_for_tasks()


def fill_folder(db_path: Path, count: int, *, threads_every: int = 0) -> tuple[int, int]:
    """Add an account with one folder of ``count`` messages, straight through SQLite.

    Rows are what ingest would write for a listable message (headers only), inserted
    with executemany in one transaction: 100,000 take about a second. Returns
    (account id, folder id).
    """
    import hashlib
    import time

    conn = sqlite3.connect(db_path)
    try:
        now = int(time.time())
        cur = conn.cursor()
        cur.execute(
            "INSERT INTO accounts (name, email, display_name, kind, auth, secret_source,"
            " server_files_sent, created_at) VALUES ('big', 'big@example.com', '', 'local',"
            " 'password', 'none', 0, ?)",
            (now,),
        )
        account_id = int(cur.lastrowid or 0)
        cur.execute(
            "INSERT INTO folders (account_id, name, role, uidnext, sync_state)"
            " VALUES (?, 'Big', NULL, ?, 'synced')",
            (account_id, count + 1),
        )
        folder_id = int(cur.lastrowid or 0)
        thread_ids: list[int | None] = [None] * count
        if threads_every:
            for t in range(0, count, threads_every):
                cur.execute(
                    "INSERT INTO threads (account_id, subject, message_count) VALUES (?, ?, ?)",
                    (account_id, f"thread {t}", threads_every),
                )
                for n in range(t, min(count, t + threads_every)):
                    thread_ids[n] = int(cur.lastrowid or 0)
        base = now - count * 60
        cur.executemany(
            "INSERT INTO messages (account_id, content_hash, message_id, date, received_at,"
            " size, subject, from_name, from_email, to_addrs, cc_addrs, reply_to, content_type,"
            " thread_id, snippet, has_attachments, content_state, index_state, malformed)"
            " VALUES (?, ?, ?, ?, ?, 1000, ?, ?, ?, '[]', '[]', '[]', 'text/plain', ?, ?, 0, 1,"
            " 1, 0)",
            (
                (
                    account_id,
                    hashlib.sha256(str(n).encode()).digest()[:16],
                    f"m{n}@big.example",
                    base + n * 60,
                    now,
                    f"Message number {n}",
                    f"Sender {n % 97}",
                    f"sender{n % 97}@example.org",
                    thread_ids[n],
                    f"snippet of message {n}",
                )
                for n in range(count)
            ),
        )
        first = int(
            cur.execute(
                "SELECT min(id) FROM messages WHERE account_id = ?", (account_id,)
            ).fetchone()[0]
        )
        cur.executemany(
            "INSERT INTO message_uids (folder_id, message_id, uid, date, seen, flagged,"
            " answered, draft, deleted, keywords) VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, '')",
            ((folder_id, first + n, n + 1, base + n * 60, int(n % 3 != 0)) for n in range(count)),
        )
        conn.commit()
    finally:
        conn.close()
    return account_id, folder_id


@pytest.fixture(autouse=True)
def _delete_windows(qapp) -> Iterator[None]:
    """Delete every window a test left, while QtWebEngine is still up: a web page or
    profile destroyed at interpreter exit (after Chromium shut down) crashes."""
    yield
    import shiboken6
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QApplication

    from ui.bridge import wait_for_tasks

    wait_for_tasks()
    for w in QApplication.topLevelWidgets():
        w.close()
    QCoreApplication.sendPostedEvents(None, 0)
    from ui.compose import ComposeWindow
    from ui.mainwindow import MainWindow
    from ui.reader import ReaderPane

    for w in QApplication.topLevelWidgets():
        if isinstance(w, MainWindow | ReaderPane | ComposeWindow) and shiboken6.isValid(w):
            shiboken6.delete(w)
    QCoreApplication.sendPostedEvents(None, int(QEvent.Type.DeferredDelete.value))
    QCoreApplication.processEvents()
