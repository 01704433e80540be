"""The search box and saved searches, over the real search service and index of the
demo profile: debounced, run on the thread pool, results shown like a folder, a bad
query shown inline, saved searches as smart folders in the tree."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex
from PySide6.QtTest import QTest

from app.services import Services
from ui.models import NODE_ROLE


def _ids(window) -> list[int]:
    model = window.list_model
    while model.canFetchMore(QModelIndex()):
        model.fetch_more_now()
    return [model.message_id(r) for r in range(model.rowCount())]


def _tree_nodes(window) -> dict[str, object]:
    model = window.folder_model
    out: dict[str, object] = {}

    def walk(parent: QModelIndex) -> None:
        for r in range(model.rowCount(parent)):
            index = model.index(r, 0, parent)
            out[str(index.data())] = index.data(NODE_ROLE)
            walk(index)

    walk(QModelIndex())
    return out


def test_typing_searches_once_after_a_pause_and_shows_results_like_a_folder(
    qtbot, main_window, demo_services: Services
) -> None:
    w = main_window
    inbox_rows = w.list_model.rowCount()
    expected = [m.id for m in demo_services.search("invoice", limit=1000)]
    assert expected  # the demo has invoices
    runs: list[tuple[str, int]] = []
    w.searched.connect(lambda q, n: runs.append((q, n)))
    w.focus_search()
    with qtbot.waitSignal(w.searched, timeout=10_000):
        QTest.keyClicks(w.search_box, "invoice")  # seven edits, one search
    assert runs == [("invoice", len(expected))]
    assert _ids(w) == expected  # newest first, as the service answers
    assert not w.search_error.isVisible()
    subjects = [w.list_model.row_at(r).summary.subject for r in range(w.list_model.rowCount())]
    assert any("invoice" in s.lower() for s in subjects)

    # Clearing the box goes back to the folder that was open.
    with qtbot.waitSignal(w.folder_opened, timeout=5000):
        w.search_box.clear()
    assert w.list_model.rowCount() == inbox_rows


def test_a_bad_query_is_shown_inline_and_keeps_the_list(qtbot, main_window) -> None:
    w = main_window
    before = _ids(w)
    with qtbot.waitSignal(w.searched, timeout=10_000) as blocker:
        w.search_box.setText("before:2026-13-45")
    assert blocker.args == ["before:2026-13-45", -1]
    assert w.search_error.isVisible()
    text = w.search_error.text()
    assert "not a date" in text
    assert "YYYY-MM-DD" in text
    assert "\n" not in text
    assert "Traceback" not in text
    assert _ids(w) == before
    # Fixing the query clears the error.
    with qtbot.waitSignal(w.searched, timeout=10_000):
        w.search_box.setText("has:attachment")
    assert not w.search_error.isVisible()
    assert w.list_model.rowCount() > 0


def test_saved_searches_are_smart_folders_in_the_tree(
    qtbot, main_window, demo_services: Services
) -> None:
    w = main_window
    # Saved from the search box ...
    with qtbot.waitSignal(w.searched, timeout=10_000):
        w.search_box.setText("is:starred")
    w.save_current_search("Starred mail")
    # ... and from elsewhere (the command line): both show up after a reload.
    demo_services.save_search("With files", "has:attachment")
    w.reload_searches()
    qtbot.waitUntil(lambda: "With files" in _tree_nodes(w), timeout=10_000)
    nodes = _tree_nodes(w)
    assert nodes["Starred mail"] == ("search", "is:starred")
    assert nodes["With files"] == ("search", "has:attachment")
    labels = list(nodes)
    assert labels.index("Saved searches") > labels.index("Inbox (10)")  # after the folders

    # Opening one runs it.
    w.search_box.clear()
    qtbot.waitUntil(lambda: not w.search_box.text(), timeout=2000)
    expected = [m.id for m in demo_services.search("has:attachment", limit=1000)]
    item = _find(w, "With files")
    with qtbot.waitSignal(w.searched, timeout=10_000):
        w.folder_view.setCurrentIndex(item)
    assert w.search_box.text() == "has:attachment"
    assert _ids(w) == expected

    # Deleting it takes it out of the tree.
    w.delete_saved_search("With files")
    qtbot.waitUntil(lambda: "With files" not in _tree_nodes(w), timeout=10_000)
    assert [s.name for s in demo_services.saved_searches()] == ["Starred mail"]


def _find(window, label: str) -> QModelIndex:
    model = window.folder_model
    found = model.match(model.index(0, 0), 0, label, 1, _flags())
    assert found, label
    return found[0]


def _flags():
    from PySide6.QtCore import Qt

    return Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive
