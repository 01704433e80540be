"""The main window: keys act through the services and update the list at once; layout
persists; screenshots of the main and compose windows for review."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtTest import QTest

from app.services import Services
from ui.models import ROW_ROLE

SHOTS = Path(__file__).resolve().parents[2] / "bench" / "out"


def _key(qtbot, window, key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    window.activateWindow()
    window.list_view.setFocus()
    QTest.keyClick(window.list_view, key, modifier)


def _current(window):
    return window.list_view.currentIndex().data(ROW_ROLE)


def test_keys_act_at_once_and_queue_actions(qtbot, main_window, demo_services: Services) -> None:
    w = main_window
    assert w.list_model.rowCount() == 75
    assert w.list_view.currentIndex().row() == 0
    _key(qtbot, w, Qt.Key.Key_J)
    _key(qtbot, w, Qt.Key.Key_J)
    assert w.list_view.currentIndex().row() == 2
    _key(qtbot, w, Qt.Key.Key_K)
    assert w.list_view.currentIndex().row() == 1
    row = _current(w)

    # Each change is written by the writer thread; the window waits for it a moment
    # (ui.bridge.run_write), so the list normally shows it when the key returns.
    _key(qtbot, w, Qt.Key.Key_S)  # star
    qtbot.waitUntil(lambda: "flagged" in _current(w).summary.flags, timeout=5000)
    _key(qtbot, w, Qt.Key.Key_U)  # unread
    qtbot.waitUntil(lambda: "seen" not in _current(w).summary.flags, timeout=5000)
    assert _current(w).summary.id == row.summary.id
    _key(qtbot, w, Qt.Key.Key_I, Qt.KeyboardModifier.ShiftModifier)  # read
    qtbot.waitUntil(lambda: "seen" in _current(w).summary.flags, timeout=5000)

    _key(qtbot, w, Qt.Key.Key_E)  # archive: gone from the inbox, cursor on the next one
    qtbot.waitUntil(lambda: w.list_model.row_of_message(row.summary.id) is None, timeout=5000)
    assert w.list_model.rowCount() == 74
    assert w.list_view.currentIndex().row() == 1
    following = _current(w)
    _key(qtbot, w, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: w.list_model.row_of_message(following.summary.id) is None, timeout=5000)
    assert w.list_model.rowCount() == 73
    trash = next(f for f in demo_services.folders() if f.role == "trash")
    assert following.summary.id in [
        m.id for m in demo_services.list_messages(folder=trash.name, limit=500)
    ]
    # Ctrl+Z brings the deleted message back into the list.
    _key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.last_undo is not None, timeout=5000)
    assert w.list_model.row_of_message(following.summary.id) is not None
    # The changes are in the store (the demo account is local: nothing to replay).
    [stored] = [m for m in demo_services.list_messages(limit=500) if m.id == row.summary.id]
    assert "flagged" in stored.flags
    assert stored.folders == ("Archive",)
    qtbot.waitUntil(lambda: w.pending_label.text() == "all changes saved", timeout=10_000)


def test_a_key_never_waits_for_the_database(qtbot, main_window, demo_services: Services) -> None:
    """While another process (the sync worker, storing a batch) holds SQLite's write
    lock, a key's change waits on the writer thread, not on the GUI thread; the list
    shows it once it is written."""
    w = main_window
    held, releasing = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        con = sqlite3.connect(demo_services.profile.db_path, timeout=10, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(1.5)
        releasing.set()  # before COMMIT: a GUI blocked on the lock returns after this
        con.execute("COMMIT")
        con.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    assert held.wait(10)
    row = _current(w)
    starred = "flagged" in row.summary.flags
    _key(qtbot, w, Qt.Key.Key_S)
    assert not releasing.is_set()  # the key returned while the database was locked
    assert ("flagged" in _current(w).summary.flags) == starred  # not written yet
    _key(qtbot, w, Qt.Key.Key_J)  # the window still takes keys
    assert w.current_id() != row.summary.id
    qtbot.waitUntil(releasing.is_set, timeout=10_000)
    holder.join()

    def written() -> bool:
        now = w.list_model.row_at(w.list_model.row_of_message(row.summary.id) or 0)
        return now is not None and ("flagged" in now.summary.flags) != starred

    qtbot.waitUntil(written, timeout=10_000)
    # The cursor stays where the user moved it while the write waited.
    assert w.list_view.currentIndex().row() == 1


def test_reader_follows_the_cursor_and_enter_opens(qtbot, main_window) -> None:
    w = main_window
    qtbot.waitUntil(lambda: w.reader.message_id == w.current_id(), timeout=10_000)
    _key(qtbot, w, Qt.Key.Key_J)
    qtbot.waitUntil(lambda: w.reader.message_id == w.current_id(), timeout=10_000)
    with qtbot.waitSignal(w.reader.message_shown, timeout=20_000):
        pass
    assert w.reader.subject.text() == _current(w).summary.subject


class _Order(QObject):
    """Records, in order, the list's paints and the reader's starts."""

    def __init__(self, window) -> None:
        super().__init__()
        self.seen: list[str] = []
        window.list_view.viewport().installEventFilter(self)
        show = window.reader.show_message
        window.reader.show_message = lambda mid: (self.seen.append(f"show {mid}"), show(mid))

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.seen.append("paint")
        return False


def test_a_folder_opens_on_its_first_row_after_the_list_painted(
    qtbot, main_window, demo_services: Services
) -> None:
    """The first row's parse starts once the folder's rows are painted, so the two do not
    compete; a list that cannot paint (hidden window) shows its row anyway."""
    w = main_window
    qtbot.waitUntil(lambda: w.reader.message_id == w.current_id(), timeout=10_000)
    order = _Order(w)
    archive = next(f for f in demo_services.folders() if f.role == "archive")
    w.folder_view.setCurrentIndex(w.folder_model.index_of(("folder", archive.id)))
    assert w.node == ("folder", archive.id)
    first = w.list_model.message_id(0)
    assert w.current_id() == first
    assert w.reader.message_id != first  # not yet: the list paints first
    qtbot.waitUntil(lambda: w.reader.message_id == first, timeout=10_000)
    assert order.seen[0] == "paint"
    assert order.seen.count(f"show {first}") == 1
    with qtbot.waitSignal(w.reader.message_shown, timeout=20_000):
        pass
    assert w.reader.subject.text() == _current(w).summary.subject

    w.hide()  # nothing paints: the row is shown after SHOW_AFTER_PAINT_MAX_MS
    order.seen.clear()
    inbox = next(f for f in demo_services.folders() if f.role == "inbox")
    w.folder_view.setCurrentIndex(w.folder_model.index_of(("folder", inbox.id)))
    first = w.list_model.message_id(0)
    qtbot.waitUntil(lambda: w.reader.message_id == first, timeout=10_000)
    assert order.seen == [f"show {first}"]


def test_compose_reply_and_help_keys(qtbot, main_window) -> None:
    w = main_window
    _key(qtbot, w, Qt.Key.Key_R)
    assert len(w.compose_windows) == 1
    window = w.compose_windows[0]
    qtbot.addWidget(window)
    assert window.subject_edit.text().startswith("Re:")
    assert window.fields.reply_to_message == w.current_id()
    window.discard()
    _key(qtbot, w, Qt.Key.Key_C)
    assert w.compose_windows[-1].to_edit.text() == ""
    qtbot.addWidget(w.compose_windows[-1])
    w.compose_windows[-1].discard()
    _key(qtbot, w, Qt.Key.Key_Slash)
    assert w.search_box.hasFocus()


def test_layout_persists_in_the_profile(qtbot, demo_services: Services, settings, demo_home):
    from ui.mainwindow import MainWindow

    w = MainWindow(demo_services, settings, start_worker=False)
    qtbot.addWidget(w)
    w.show()
    w.resize(761, 557)
    w.splitter.setSizes([150, 280, 331])
    w.actions_by_name["threads"].setChecked(True)
    sent = next(f for f in demo_services.folders() if f.role == "sent")
    qtbot.waitUntil(lambda: w.node is not None, timeout=10_000)  # the tree is read on the pool
    w.folder_view.setCurrentIndex(w.folder_model.index_of(("folder", sent.id)))
    assert w.node == ("folder", sent.id)
    qtbot.wait(50)  # QSettings would write a changed value in a later turn
    # Nothing is written while the window works (each write fsyncs on the GUI thread).
    assert not (demo_home / "ui.ini").exists()
    sizes = w.splitter.sizes()
    w.close()
    assert (demo_home / "ui.ini").exists()
    from ui.app import open_settings

    again = MainWindow(demo_services, open_settings(demo_home), start_worker=False)
    qtbot.addWidget(again)
    again.show()
    assert again.size().width() == 761
    assert again.splitter.sizes() == sizes
    assert again.actions_by_name["threads"].isChecked()
    qtbot.waitUntil(lambda: again.node == ("folder", sent.id), timeout=10_000)  # reopened
    again.close()


def test_screenshots_of_main_and_compose_windows(qtbot, main_window) -> None:
    w = main_window
    w.resize(1280, 800)
    with qtbot.waitSignal(w.reader.message_shown, timeout=20_000):
        w.move_cursor(1)
    qtbot.wait(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert w.grab().save(str(SHOTS / "main-window.png"))
    compose = w.compose_reply("reply_all")
    qtbot.addWidget(compose)
    compose.resize(760, 620)
    qtbot.wait(100)
    assert compose.grab().save(str(SHOTS / "compose-window.png"))
    compose.discard()
    assert (SHOTS / "main-window.png").stat().st_size > 10_000
