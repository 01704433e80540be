"""The desktop app against real components: the real sync worker (``tidings sync --watch
--events`` started by ``ui.worker.SyncWorker`` as a QProcess), a private Dovecot and an
aiosmtpd server. Nothing here is mocked: mail leaves through SMTP, arrives through IMAP
IDLE, and the worker is killed with SIGKILL like a crash would.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from app.services import Services
from tests.mailmaker import mail
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.test_sync import PASSWORD_ENV

pytestmark = pytest.mark.usefixtures("dovecot_available")

WORKER_UP_MS = 15_000  # a fresh worker process: imports, login, first full pass


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(auth={"alice": "secret"})
    with server:
        yield server


@pytest.fixture
def work(cli, dovecot: Dovecot, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> Dovecot:
    """An account 'work' on the private Dovecot and aiosmtpd, synced once."""
    monkeypatch.setenv(PASSWORD_ENV, "secret")  # the worker process inherits it
    r = cli(
        "account", "add", "work", "--email", "alice@example.com", "--display-name", "Alice",
        "--imap-host", dovecot.host, "--imap-port", str(dovecot.port), "--imap-security", "none",
        "--smtp-host", smtp.host, "--smtp-port", str(smtp.port), "--smtp-security", "none",
        "--username", "alice", "--password-env", PASSWORD_ENV,
    )  # fmt: skip
    assert r.code == 0, r.err
    for n in range(3):
        dovecot.deliver(
            mail(f"old{n}@x", f"Earlier {n}", date=f"Mon, 02 Nov 2026 0{n}:00:00 +0000")
        )
    assert cli("sync").code == 0
    return dovecot


@pytest.fixture
def live_window(qtbot, services: Services, home: Path, work: Dovecot):
    """The main window with its real sync worker, up and idling on the inbox."""
    from ui.app import open_settings
    from ui.mainwindow import MainWindow

    window = MainWindow(services, open_settings(home))
    qtbot.addWidget(window)
    window.show()
    assert window.worker is not None
    qtbot.waitUntil(lambda: window.list_model.rowCount() == 3, timeout=10_000)
    _wait_idle(qtbot, window)
    yield window
    window.shutdown()
    assert window.worker.pid is None


def _wait_idle(qtbot, window) -> None:
    """Until the worker says it is IDLE on the inbox (so a delivery is noticed at once)."""
    qtbot.waitUntil(
        lambda: window._account_state.get("work", {}).get("state") == "idle",
        timeout=WORKER_UP_MS,
    )


def _subjects(window) -> list[str]:
    model = window.list_model
    return [model.row_at(r).summary.subject for r in range(model.rowCount())]


def _compose_and_send(qtbot, window, subject: str) -> int:
    compose = window.compose(to="Dan <dan@example.org>")
    qtbot.addWidget(compose)
    compose.subject_edit.setText(subject)
    compose.body.setPlainText(f"Body of {subject}\n")
    with qtbot.waitSignal(compose.queued, timeout=2000):
        compose.send_button.click()
    assert compose.sent_item is not None
    return compose.sent_item


def test_compose_send_arrives_and_undo_inside_the_window_never_does(
    qtbot, live_window, services: Services, smtp: SmtpServer
) -> None:
    w = live_window
    w.settings.setValue("compose/undo_seconds", 1.0)
    item = _compose_and_send(qtbot, w, "Sent for real")
    assert w.undo_bar.isVisible()
    assert [o.state for o in services.outbox() if o.id == item] == ["scheduled"]
    # The worker sends it when the undo window closes, through the real SMTP server.
    qtbot.waitUntil(lambda: len(smtp.received) == 1, timeout=10_000)
    [got] = smtp.received
    assert list(got.rcpt_tos) == ["dan@example.org"]
    assert b"Subject: Sent for real" in got.data
    qtbot.waitUntil(
        lambda: [o.state for o in services.outbox() if o.id == item] in (["sent"], ["delivered"]),
        timeout=5000,
    )
    qtbot.waitUntil(lambda: not w.undo_bar.isVisible(), timeout=5000)

    # Undo inside the window: cancelled, never sent.
    w.settings.setValue("compose/undo_seconds", 2.0)
    undone = _compose_and_send(qtbot, w, "Oops, undo this")
    assert w.undo_bar.isVisible()
    w.undo_button.click()
    assert [o.state for o in services.outbox() if o.id == undone] == ["cancelled"]
    assert "undone" in w.statusBar().currentMessage().lower()
    # Proof that it is not merely late: a later message, due after the undone one's
    # time, is delivered; the undone one still is not.
    w.settings.setValue("compose/undo_seconds", 2.5)
    _compose_and_send(qtbot, w, "After the undo")
    qtbot.waitUntil(lambda: len(smtp.received) == 2, timeout=10_000)
    subjects = [r.data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for r in smtp.received]
    assert subjects == [b"Sent for real", b"After the undo"]
    for reopened in list(w.compose_windows):
        reopened.discard()


def test_new_mail_appears_in_the_open_list_without_a_refresh(
    qtbot, live_window, work: Dovecot
) -> None:
    w = live_window
    view = w.list_view
    view.selectRow(1)
    selected = w.current_id()
    assert _subjects(w) == ["Earlier 2", "Earlier 1", "Earlier 0"]
    resets: list[int] = []
    w.list_model.modelReset.connect(lambda: resets.append(1))
    work.deliver(mail("fresh@x", "Fresh news", date="Tue, 03 Nov 2026 09:00:00 +0000"))
    qtbot.waitUntil(lambda: w.list_model.rowCount() == 4, timeout=10_000)
    assert _subjects(w)[0] == "Fresh news"
    # In place: no reset, the selection stays on the same message.
    assert resets == []
    assert w.current_id() == selected
    assert w.list_view.currentIndex().row() == 2
    # The folder count follows: the inbox's unread count in the tree is the list's
    # (the reader marks the message shown as read after a moment, so count the rows).
    assert "seen" not in w.list_model.row_at(0).summary.flags

    def counts_agree() -> bool:
        model = w.list_model
        unread = sum("seen" not in model.row_at(r).summary.flags for r in range(4))
        return f"Inbox ({unread})" in _tree_labels(w)

    qtbot.waitUntil(counts_agree, timeout=5000)


def test_a_change_waits_for_the_worker_then_is_replayed_and_the_count_follows(
    qtbot, services: Services, home: Path, work: Dovecot
) -> None:
    """Without the worker a key's change is local and counted as pending; the real
    worker replays it on Dovecot and the status bar says so."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from ui.app import open_settings
    from ui.mainwindow import MainWindow

    window = MainWindow(services, open_settings(home), start_worker=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.list_model.rowCount() == 3, timeout=10_000)
    window.list_view.setFocus()
    QTest.keyClick(window.list_view, Qt.Key.Key_S)  # star the newest
    qtbot.waitUntil(lambda: window.pending_label.text() == "1 pending", timeout=10_000)
    window.start_worker()
    qtbot.waitUntil(lambda: window.pending_label.text() == "all changes saved", timeout=30_000)
    on_server = work.doveadm(
        "fetch", "-u", "alice", "flags", "mailbox", "INBOX", "subject", "Earlier 2"
    )
    assert "\\Flagged" in on_server
    window.shutdown()


def test_search_indexing_and_a_rebuilt_index_show_in_the_status_bar(
    qtbot, cli, services: Services, home: Path, work: Dovecot
) -> None:
    """The worker's index events reach the status bar: the notice of a damaged index
    being rebuilt, what is left to index while it works, hidden when done."""
    from app.samples import synthetic_messages
    from ui.app import open_settings
    from ui.mainwindow import MainWindow

    work.deliver_many(synthetic_messages(600, 3))
    assert cli("sync").code == 0  # stored and indexed
    (services.profile.index_dir / "tidings-index.json").write_text('{"version": 0}')
    window = MainWindow(services, open_settings(home))
    qtbot.addWidget(window)
    assert window.worker is not None
    seen: list[tuple[str, str, bool, str]] = []  # after the window handled each event
    window.worker.event_received.connect(
        lambda e: seen.append(
            (
                e["event"],
                window.index_label.text(),
                window.index_label.isVisible(),
                window.statusBar().currentMessage(),
            )
        )
    )
    window.show()

    # The worker finds the index damaged and rebuilds it: 603 messages in one run,
    # in batches of 250, 1,000, ... (storage/search.py), each one reported.
    def rebuilt() -> bool:
        return any(kind == "indexed" and text.endswith(": 0 left") for kind, text, *_ in seen)

    qtbot.waitUntil(rebuilt, timeout=60_000)
    progress = [(text, shown) for kind, text, shown, _m in seen if kind == "indexed"]
    assert progress[0] == ("Indexing for search: 353 left", True), progress
    assert not window.index_label.isVisible()
    notices = [m for kind, _t, _s, m in seen if kind == "notice"]
    assert notices
    assert notices[0].startswith("the search index was missing or damaged")
    assert len(services.search("subject:" + _a_subject_word(services))) > 0
    window.shutdown()


def _a_subject_word(services: Services) -> str:
    newest = services.list_messages(limit=1)[0]
    return max((w for w in (newest.subject or "").split() if w.isalpha()), key=len)


def _tree_labels(window) -> list[str]:
    model = window.folder_model
    out: list[str] = []

    def walk(parent) -> None:
        for r in range(model.rowCount(parent)):
            index = model.index(r, 0, parent)
            out.append(str(index.data()))
            walk(index)

    from PySide6.QtCore import QModelIndex

    walk(QModelIndex())
    return out


def test_killed_worker_is_shown_restarted_with_backoff_and_the_app_keeps_working(
    qtbot, live_window, work: Dovecot
) -> None:
    w = live_window
    worker = w.worker
    first = worker.pid
    assert first is not None
    states: list[str] = []
    worker.state_changed.connect(states.append)

    os.kill(first, signal.SIGKILL)
    qtbot.waitUntil(lambda: worker.state == "restarting", timeout=5000)
    text = w.sync_label.text()
    assert "sync worker stopped" in text
    assert "restarting in 1 s" in text
    assert w.offline_label.text() == "● Offline"
    qtbot.waitUntil(lambda: worker.state == "running", timeout=5000)
    second = worker.pid
    assert second is not None
    assert second != first
    _wait_idle(qtbot, w)
    assert "sync worker stopped" not in w.sync_label.text()

    # Killed again soon after: the next restart waits longer (backoff doubles).
    os.kill(second, signal.SIGKILL)
    qtbot.waitUntil(lambda: worker.state == "restarting", timeout=5000)
    assert "restarting in 2 s" in w.sync_label.text()
    assert worker.restarts == 2
    t0 = time.monotonic()
    qtbot.waitUntil(lambda: worker.state == "running", timeout=6000)
    assert time.monotonic() - t0 > 1.5
    assert states[:3] == ["restarting", "starting", "running"]

    # And the app keeps working: a later delivery still shows up in the open list.
    _wait_idle(qtbot, w)
    work.deliver(mail("later@x", "After the crash", date="Tue, 03 Nov 2026 10:00:00 +0000"))
    qtbot.waitUntil(lambda: "After the crash" in _subjects(w), timeout=10_000)
    assert w.offline_label.text() == "● Online"


# --------------------------------------------------------------------------- account dialog


def _dialog(qtbot, services: Services, *, imap_port: int, smtp_port: int, password: str):
    from ui.accountdialog import AccountDialog

    d = AccountDialog(services)
    qtbot.addWidget(d)
    d.email.setText("alice@example.com")
    d.imap_host.setText("127.0.0.1")
    d.smtp_host.setText("127.0.0.1")
    d.imap_security.setCurrentIndex(d.imap_security.findData("none"))
    d.smtp_security.setCurrentIndex(d.smtp_security.findData("none"))
    d.imap_port.setValue(imap_port)
    d.smtp_port.setValue(smtp_port)
    d.username.setText("alice")
    d.secret.setText(password)
    return d


def _run_test(qtbot, dialog, timeout: int = 10_000):
    """Click "Test connection"; the GUI must keep ticking while it runs."""
    ticks: list[float] = []
    timer = QTimer(dialog)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    t0 = time.perf_counter()
    with qtbot.waitSignal(dialog.tested, timeout=timeout) as blocker:
        dialog.test_button.click()
        assert time.perf_counter() - t0 < 0.5  # returned at once: it runs in the background
        assert not dialog.test_button.isEnabled()
        assert "Testing" in dialog.result.text()
    timer.stop()
    assert dialog.test_button.isEnabled()
    return blocker.args[0], ticks


def test_account_dialog_test_connection_good_password(
    qtbot, services: Services, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    d = _dialog(qtbot, services, imap_port=dovecot.port, smtp_port=smtp.port, password="secret")
    report, _ticks = _run_test(qtbot, d)
    assert report.ok
    text = d.result.text()
    assert text.startswith("✔")
    assert "IMAP: logged in to 127.0.0.1" in text
    assert "as alice" in text
    assert "folders)" in text
    assert f"SMTP: logged in to 127.0.0.1:{smtp.port} as alice" in text


def test_account_dialog_test_connection_wrong_password(
    qtbot, services: Services, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    d = _dialog(qtbot, services, imap_port=dovecot.port, smtp_port=smtp.port, password="nope")
    report, _ticks = _run_test(qtbot, d)
    assert not report.ok
    text = d.result.text()
    assert text.startswith("✖")
    assert len(text.splitlines()) == 1, text
    assert "password" in text.lower() or "login failed" in text.lower()
    assert "Traceback" not in text


def test_account_dialog_test_connection_unreachable_and_stalled_servers(
    qtbot, services: Services, smtp: SmtpServer
) -> None:
    closed = _closed_port()
    d = _dialog(qtbot, services, imap_port=closed, smtp_port=smtp.port, password="secret")
    report, _ticks = _run_test(qtbot, d)
    assert not report.ok
    text = d.result.text()
    assert len(text.splitlines()) == 1, text
    assert text.startswith("✖")
    assert f"127.0.0.1:{closed}" in text
    assert "reach" in text.lower() or "refused" in text.lower()

    # A server that accepts the connection and then says nothing: the dialog stays
    # responsive while the test waits, and gives up with one line.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        d.imap_port.setValue(port)
        d.connection_timeout = 1.5
        report, ticks = _run_test(qtbot, d, timeout=10_000)
    assert not report.ok
    assert len(d.result.text().splitlines()) == 1, d.result.text()
    assert len(ticks) > 40  # the event loop kept running (10 ms timer) for the 1.5 s
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.25


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
