"""The lazy message list and the folder tree: model contracts, paging, in-place updates."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication, QTableView

from app.mailbox import Mailbox
from app.services import Services
from storage import accounts as acc
from storage.ingest import Incoming, ingest_batch
from tests.mailmaker import mail
from tests.ui.conftest import fill_folder
from ui.models import COL_FROM, MESSAGE_ID_ROLE, ROW_ROLE, FolderTreeModel, MessageListModel


def _inbox(services: Services) -> int:
    return next(f.id for f in services.folders() if f.role == "inbox")


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


@pytest.mark.parametrize("threads", [False, True])
def test_message_list_passes_qtmodeltester(qtmodeltester, demo_services, threads) -> None:
    model = MessageListModel()
    source = Mailbox(demo_services).folder_source([_inbox(demo_services)], threads=threads)
    model.set_source(source)
    assert model.rowCount() > 0
    qtmodeltester.check(model, force_py=True)


def test_folder_tree_passes_qtmodeltester_and_lists_roles_first(qtmodeltester, demo_services):
    model = FolderTreeModel()
    model.update(Mailbox(demo_services).tree())
    qtmodeltester.check(model, force_py=True)
    account = model.index(0, 0)
    labels = [model.index(r, 0, account).data() for r in range(model.rowCount(account))]
    assert labels[:4] == ["Inbox (10)", "Drafts", "Sent", "Archive"]
    assert labels[-2:] == ["Junk (3)", "Trash"]
    assert "Projekte" in labels


def test_first_page_only_then_fetch_more(demo_services) -> None:
    model = MessageListModel()
    model.FIRST_PAGE = model.PAGE = 20
    model.set_source(Mailbox(demo_services).folder_source([_inbox(demo_services)], threads=False))
    assert model.rowCount() == 20
    assert model.canFetchMore(QModelIndex())
    while model.canFetchMore(QModelIndex()):
        model.fetch_more_now()
    assert model.rowCount() == 75
    dates = [model.index(r, 0).data(ROW_ROLE).date for r in range(model.rowCount())]
    assert dates == sorted(dates, reverse=True)
    assert len({model.index(r, 0).data(MESSAGE_ID_ROLE) for r in range(75)}) == 75


@pytest.mark.slow
def test_100k_folder_opens_fast_and_scrolls_to_the_end_with_bounded_memory(
    qtbot, services: Services, home: Path
) -> None:
    t0 = time.perf_counter()
    _account, folder = fill_folder(home / "tidings.db", 100_000)
    print(f"filled 100,000 messages in {time.perf_counter() - t0:.1f} s")
    model = MessageListModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.setModel(model)
    view.show()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    model.set_source(Mailbox(services).folder_source([folder], threads=False))
    first = time.perf_counter() - t0
    assert model.rowCount() == model.FIRST_PAGE  # the first page, not the folder
    assert first < 1.0
    assert model.index(0, 2).data().startswith("Message number 99999")
    loads = 0
    deadline = time.monotonic() + 120
    while model.canFetchMore(QModelIndex()) and time.monotonic() < deadline:
        view.scrollToBottom()
        QApplication.processEvents()
        loads += 1
    assert model.rowCount() == 100_000
    assert not model.canFetchMore(QModelIndex())
    assert model.index(99_999, 2).data().startswith("Message number 0 ")
    assert model.cached_rows() <= model.CACHE_ROWS
    # Rows that left the cache are read back by id (in the background) when painted again.
    view.scrollToTop()
    qtbot.waitUntil(lambda: (model.index(0, 2).data() or "").startswith("Message number 99999"))
    grown = _rss_mb() - rss0
    print(f"first page {first * 1000:.1f} ms, {loads} scroll steps, RSS +{grown:.0f} MB")
    assert grown < 120  # ~10 MB of row keys; full records would be several hundred MB


def test_conversation_mode_one_row_per_thread(services: Services, home: Path) -> None:
    _account, folder = fill_folder(home / "tidings.db", 500, threads_every=5)
    model = MessageListModel()
    model.set_source(Mailbox(services).folder_source([folder], threads=True))
    while model.canFetchMore(QModelIndex()):
        model.fetch_more_now()
    assert model.rowCount() == 100
    row = model.index(0, 0).data(ROW_ROLE)
    assert row.thread_count == 5
    assert row.summary.subject == "Message number 499"  # the newest of its thread
    assert model.index(0, COL_FROM).data().endswith("(5)")


class _Recorder:
    def __init__(self, model: MessageListModel) -> None:
        self.resets = 0
        self.inserted: list[tuple[int, int]] = []
        self.removed: list[tuple[int, int]] = []
        self.moved = 0
        model.modelReset.connect(self._reset)
        model.rowsInserted.connect(lambda _p, a, b: self.inserted.append((a, b)))
        model.rowsRemoved.connect(lambda _p, a, b: self.removed.append((a, b)))
        model.rowsMoved.connect(lambda *_a: self._moved())

    def _reset(self) -> None:
        self.resets += 1

    def _moved(self) -> None:
        self.moved += 1


def test_updates_in_place_keep_the_selection(qtbot, demo_services: Services) -> None:
    inbox = _inbox(demo_services)
    model = MessageListModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    model.set_source(Mailbox(demo_services).folder_source([inbox], threads=False))
    rec = _Recorder(model)
    view.selectRow(3)
    selected = model.message_id(3)
    rows_before = model.rowCount()

    # A flag change: same row, new data, no reset.
    demo_services.mark([selected], "flagged", True)
    model.refresh([selected])
    assert "flagged" in model.index(3, 0).data(ROW_ROLE).summary.flags
    assert view.selectionModel().selectedRows()[0].row() == 3

    # New mail at the top: inserted at row 0, the selection follows its message.
    with demo_services.session() as s:
        account = acc.get_account(s, "demo").id
        [res] = ingest_batch(
            s,
            account,
            inbox,
            [Incoming(mail("new@x", "Brand new", date="Mon, 1 Jan 2035 10:00:00 +0000"))],
        )
    model.refresh([res.message_id])
    assert rec.inserted[-1] == (0, 0)
    assert model.message_id(0) == res.message_id
    assert model.index(0, 0).data(Qt.ItemDataRole.FontRole).bold()  # unread
    [sel] = view.selectionModel().selectedRows()
    assert model.message_id(sel.row()) == selected

    # Archived elsewhere (or by the user): the row goes, the others stay.
    other = model.message_id(5)
    demo_services.archive([other])
    model.refresh([other])
    assert model.row_of_message(other) is None
    assert model.rowCount() == rows_before  # +1 new, -1 archived
    assert rec.resets == 0
    assert model.message_id(sel.row()) == selected


def test_reply_moves_its_conversation_to_the_top(qtbot, services: Services, home: Path) -> None:
    _account, folder = fill_folder(home / "tidings.db", 50, threads_every=5)
    model = MessageListModel()
    model.set_source(Mailbox(services).folder_source([folder], threads=True))
    rec = _Recorder(model)
    last = model.rowCount() - 1
    head = model.index(last, 0).data(ROW_ROLE)
    # Make the oldest conversation's head the newest message of the folder.
    import sqlite3

    conn = sqlite3.connect(home / "tidings.db")
    conn.execute(
        "UPDATE message_uids SET date = date + 10000000 WHERE message_id = ?", (head.summary.id,)
    )
    conn.commit()
    conn.close()
    model.refresh([head.summary.id])
    assert rec.moved == 1
    assert rec.resets == 0
    assert model.index(0, 0).data(ROW_ROLE).summary.thread_id == head.summary.thread_id
    assert model.rowCount() == 10


def test_a_flood_of_new_mail_is_inserted_in_runs(qtbot, demo_services: Services) -> None:
    """A first sync reports thousands of messages: they go in as a few runs of rows
    (not one insertion each), and those older than everything loaded come in pages."""
    inbox = _inbox(demo_services)
    model = MessageListModel()
    model.set_source(Mailbox(demo_services).folder_source([inbox], threads=False))
    loaded = model.rowCount()
    assert not model.canFetchMore(QModelIndex())  # the demo inbox fits in one page
    rec = _Recorder(model)
    with demo_services.session() as s:
        account = acc.get_account(s, "demo").id
        newer = [
            Incoming(
                mail(
                    f"n{i}@x",
                    f"Newer {i}",
                    date=f"Mon, 1 Jan 2035 10:{i // 60:02d}:{i % 60:02d} +0000",
                )
            )
            for i in range(250)
        ]
        older = [
            Incoming(mail(f"o{i}@x", f"Older {i}", date=f"Mon, 1 Jan 1990 10:00:{i:02d} +0000"))
            for i in range(40)
        ]
        ids = [r.message_id for r in ingest_batch(s, account, inbox, newer + older)]
    model.refresh_later(ids)
    # The older ones are below everything loaded: once their slice is read, the list
    # has more to fetch (rather than rows inserted out of order).
    qtbot.waitUntil(
        lambda: model.rowCount() == loaded + 250 and model.canFetchMore(QModelIndex()),
        timeout=10_000,
    )
    slices = -(-250 // model.LATER_SLICE)
    assert len(rec.inserted) <= slices  # a run per slice read, not 250 insertions
    while model.canFetchMore(QModelIndex()):
        model.fetch_more_now()
    assert model.rowCount() == loaded + 290
    assert len(rec.inserted) <= slices + 1  # and one page of the older ones
    assert rec.resets == 0
    rows = [model.index(r, 0).data(ROW_ROLE) for r in range(model.rowCount())]
    assert rows[0].summary.subject == "Newer 249"
    assert rows[-1].summary.subject == "Older 0"
    dates = [r.date for r in rows]
    assert dates == sorted(dates, reverse=True)
