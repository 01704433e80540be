"""Item models: the lazy message list and the folder tree.

Why the message list is shaped this way (a folder of a million messages must open as
fast as one of ten, scroll to its end without a stall, and never load whole):

* Rows come from an ``app.mailbox.ListSource`` in keyset pages of 100 (newest first,
  "before (date, key)": each page walks the (folder, date, id) index from its key, so
  page 1,000 costs what page 1 costs, 2-4 ms). The first page is read at once when a
  folder opens, so the view has rows to paint immediately; every later page is read
  **one page ahead** of the view, in a slice of idle time: when Qt asks for more
  (``fetchMore``) the page already there is appended (``beginInsertRows``, about a
  millisecond) and the next one is read after the view has painted.
  ``fetch_more_now`` reads at once for code that needs the rows (the keyboard).
* Where reads run (``READ_IN_POOL``): measured with ``bench/ui.py`` on 100,000 rows,
  reading on the thread pool made scrolling *worse* (stalls of 45-60 ms against 25):
  the reading thread holds the GIL, and every call of a painting view into Python
  (and every return from Qt into Python) waits for it. A read of 100 rows is cheaper
  than that contention, so reads run in idle slices of the GUI thread, bounded to a
  page or a block of 100 rows each, and what was read is applied in the turn after
  (the view paints and timers run in between); the pool path stays for a store that
  is slow for other reasons (set ``READ_IN_POOL``). Either way results arrive later
  through the event loop, so the ordering rules below hold for both.
* Rows are **formatted once**, where they are read: each record holds its ListRow DTO,
  the four cell texts and the unread state, so ``data()`` is a dictionary lookup and
  a tuple index, no formatting and no SQL (tooltips are made when hovering asks);
  ``multiData`` answers all seven roles a painting delegate asks for in one call per
  cell. Fonts and brushes are created once per model. Dates go stale at midnight
  ("14:02" becomes "30 Nov"), so the records are dropped and read again then.
* Per row the model keeps three ints (head message id, identity, sort key); the
  formatted records live in a bounded LRU cache. A row scrolled out of the cache is
  read back, a block at a time, in the next idle slice when the view paints it again
  (the cell is blank until then); ``data()`` never reads the store for a view. Only
  ``ROW_ROLE`` (asked by code, never by a view) reads a missing row at once.
* One read at a time (blocks to repaint first, then in-place updates from the worker
  in slices of ``LATER_SLICE`` messages, then the next page), so results arrive in order. A
  synchronous change (a key press: ``refresh``) that lands while a read is out wins:
  the read's rows for those messages are older and are not applied (pages are
  re-checked).
* In-place updates: ``refresh(ids)`` (user actions: at once) and ``refresh_later(ids)``
  (worker events, which may name thousands of messages during a first sync) ask the
  source for the current rows of those messages and, per affected row, insert,
  remove, move (``beginMoveRows``) or update it. No reset ever happens, so the
  selection and the scroll position survive new mail, flag changes, archiving and
  deletion. A new row below the loaded part is left for the pages.
* Conversation mode: a row is a thread's newest message; its identity is the thread id,
  so a reply arriving moves the conversation to the top instead of adding a row.
* No ORM objects: only DTOs from ``app/``.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleDataSpan,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QStandardItem, QStandardItemModel

from app.mailbox import FolderTree, ListSource
from storage.dto import FolderInfo, ListRow
from ui.bridge import known_error, report_error, run_task

__all__ = ["FolderTreeModel", "MessageListModel"]

AnyIndex = QModelIndex | QPersistentModelIndex

MESSAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole + 2
NODE_ROLE = Qt.ItemDataRole.UserRole + 3

COL_FLAGS, COL_FROM, COL_SUBJECT, COL_DATE = range(4)
HEADERS = ("", "From", "Subject", "Date")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# data() dispatch on plain ints: what a role asks for.
_K_DISPLAY, _K_TIP, _K_FONT, _K_FG, _K_ID, _K_ROW = range(6)
_ROLE_KIND = {
    int(Qt.ItemDataRole.DisplayRole.value): _K_DISPLAY,
    int(Qt.ItemDataRole.ToolTipRole.value): _K_TIP,
    int(Qt.ItemDataRole.FontRole.value): _K_FONT,
    int(Qt.ItemDataRole.ForegroundRole.value): _K_FG,
    int(MESSAGE_ID_ROLE): _K_ID,
    int(ROW_ROLE): _K_ROW,
}


def _sort_key(row: ListRow) -> int:
    """Ascending list position: newest first, then the higher key first."""
    ts = int(row.date.timestamp()) if row.date is not None else -(1 << 40)
    return -((ts << 40) + row.key)


def short_date(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return ""
    local = when.astimezone()
    now = (now or datetime.now(UTC)).astimezone()
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return local.strftime("%d %b")
    return local.strftime("%d %b %Y")


class _Rec(NamedTuple):
    """A row as the view shows it, formatted once (on whatever thread read it)."""

    row: ListRow
    ident: int  # message id, or thread id in conversation mode (-id without a thread)
    sk: int  # sort key (see _sort_key)
    texts: tuple[str, str, str, str]
    unread: bool
    who_to: bool  # the second column names the recipients (Sent, Drafts)


def tooltip(rec: _Rec, col: int) -> str | None:
    """A cell's tooltip, made when the view asks (hovering): not while formatting pages."""
    s = rec.row.summary
    if col == COL_FLAGS:
        tips = [t for f, t in (("flagged", "starred"), ("answered", "answered")) if f in s.flags]
        if s.has_attachments:
            tips.append("has attachments")
        if rec.unread:
            tips.append("unread")
        return ", ".join(tips) or None
    if col == COL_FROM:
        people = s.to if rec.who_to else (s.sender,)
        return ", ".join(a.display() for a in people) or None
    if col == COL_SUBJECT:
        return s.subject or None
    return s.date.astimezone().strftime("%A %d %B %Y, %H:%M") if s.date else None


def _identity(row: ListRow, threads: bool) -> int:
    if threads and row.summary.thread_id is not None:
        return row.summary.thread_id
    return -row.summary.id if threads else row.summary.id


def format_rows(
    rows: Sequence[ListRow], *, threads: bool, show_recipient: bool, now: datetime | None = None
) -> list[_Rec]:
    """The view's records of these rows (pure Python: safe on a pool thread)."""
    now = (now or datetime.now(UTC)).astimezone()
    out = []
    for row in rows:
        s = row.summary
        flags = s.flags
        unread = row.thread_unread > 0 if threads else "seen" not in flags
        starred = "flagged" in flags
        marks = ("●" if unread else "") + ("★" if starred else "")
        marks += "📎" if s.has_attachments else ""
        who_to = bool(show_recipient and s.to)
        if who_to:
            who = ", ".join(a.name or a.email for a in s.to)
        else:
            who = s.sender.name or s.sender.email or "(unknown sender)"
        if threads and row.thread_count > 1:
            who = f"{who} ({row.thread_count})"
        subject = s.subject or "(no subject)"
        out.append(
            _Rec(
                row,
                _identity(row, threads),
                _sort_key(row),
                (
                    marks,
                    who,
                    f"{subject} — {s.snippet}" if s.snippet else subject,
                    short_date(s.date, now),
                ),
                unread,
                who_to,
            )
        )
    return out


class _Page(NamedTuple):
    token: int
    before: tuple[datetime | None, int] | None  # where it starts
    recs: list[_Rec]
    next_before: tuple[datetime | None, int] | None
    more: bool
    epoch: int  # the model's change count when it was read


class MessageListModel(QAbstractTableModel):
    """A lazy, in-place-updated list of messages or conversations.

    Signals:
        rows_loaded(int): a page of this many rows was appended.
        load_failed(str): a background read failed with this (one-line) error.
    """

    rows_loaded = Signal(int)
    load_failed = Signal(str)

    FIRST_PAGE = 100
    PAGE = 100
    CACHE_ROWS = 3000
    BLOCK = 100
    LATER_SLICE = 50  # messages the worker reported, read and inserted per turn
    # Where the reads run. Measured (bench/ui.py, 100,000 rows, 2 busy cores): on the
    # pool, a read competes with painting for the GIL -- every call from the view into
    # Python, and back from Qt, waits for the reading thread -- and scrolling stalled
    # 45-60 ms; in slices of idle time on the GUI thread (a page of 100 rows from the
    # keyset index is 2-4 ms) the longest stall was 25 ms. So: idle time by default.
    READ_IN_POOL = False

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._source: ListSource | None = None
        self._ids: list[int] = []  # head message id per row
        self._ident: list[int] = []  # message id, or thread id (conversation mode)
        self._sk: list[int] = []  # ascending sort keys (see _sort_key)
        self._idents: set[int] = set()
        self._before: tuple[datetime | None, int] | None = None
        self._more = False
        self._cache: OrderedDict[int, _Rec] = OrderedDict()
        self.show_recipient = False  # Sent/Drafts: show To instead of From
        self._bold = QFont()
        self._bold.setBold(True)
        self._grey = QBrush(QColor(60, 60, 60))
        # background jobs (one at a time) and what they race with
        self._gen = 0  # bumped by set_source: results of an older list are dropped
        self._busy = False
        self._page_token = 0  # bumped when a page is read synchronously
        self._prefetched: _Page | None = None
        self._want_page = False  # the view asked for rows that were not there yet
        self._pages_paused = False  # a read failed: the next fetchMore tries again
        self._blocks: OrderedDict[int, None] = OrderedDict()  # first rows of blocks to read
        self._later: dict[int, None] = {}  # message ids to refresh in the background
        self._epoch = 0
        self._touched: dict[int, int] = {}  # message id -> epoch of its last sync refresh
        self._day = QTimer(self)
        self._day.setSingleShot(True)
        self._day.timeout.connect(self._new_day)
        self._arm_day_timer()

    # -- source ------------------------------------------------------------------------

    @property
    def source(self) -> ListSource | None:
        return self._source

    @property
    def threads(self) -> bool:
        return bool(self._source is not None and self._source.threads)

    def set_source(self, source: ListSource | None, *, show_recipient: bool = False) -> None:
        """Show another folder (this one does reset: it is a different list)."""
        self.beginResetModel()
        self._source = source
        self.show_recipient = show_recipient
        self._ids, self._ident, self._sk = [], [], []
        self._idents = set()
        self._before = None
        self._more = source is not None
        self._cache.clear()
        self._gen += 1
        self._busy = False
        self._prefetched = None
        self._want_page = False
        self._pages_paused = False
        self._blocks.clear()
        self._later.clear()
        self._touched.clear()
        self.endResetModel()
        if source is not None:
            self._read_page_now(self.FIRST_PAGE)
            self._pump()

    def _format(self, rows: Sequence[ListRow]) -> list[_Rec]:
        return format_rows(rows, threads=self.threads, show_recipient=self.show_recipient)

    # -- Qt model API --------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def canFetchMore(self, parent: AnyIndex) -> bool:
        return not parent.isValid() and self._more

    def fetchMore(self, parent: AnyIndex) -> None:
        """Append the page read ahead; read the next one in the background."""
        if parent.isValid() or not self._more or self._source is None:
            return
        self._pages_paused = False
        page = self._prefetched
        if page is not None and page.before == self._before:
            self._prefetched = None
            self._insert_page(page)
        else:
            self._want_page = True
        self._pump()

    def fetch_more_now(self) -> int:
        """Append the next page at once (reading it here if it is not there yet)."""
        if not self._more or self._source is None:
            return 0
        self._pages_paused = False
        page = self._prefetched
        self._prefetched = None
        if page is not None and page.before == self._before:
            added = self._insert_page(page)
        else:
            added = self._read_page_now(self.PAGE)
        self._pump()
        return added

    def _read_page_now(self, limit: int) -> int:
        assert self._source is not None
        self._page_token += 1  # a page read in the background meanwhile is dropped
        rows = self._source.page(self._before, limit)
        last = (rows[-1].date, rows[-1].key) if rows else self._before
        page = _Page(
            self._page_token, self._before, self._format(rows), last, len(rows) >= limit,
            self._epoch,
        )  # fmt: skip
        return self._insert_page(page)

    def _insert_page(self, page: _Page) -> int:
        self._more = page.more
        self._before = page.next_before
        fresh = [r for r in page.recs if r.ident not in self._idents]
        if fresh:
            first = len(self._ids)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for rec in fresh:
                self._ids.append(rec.row.summary.id)
                self._ident.append(rec.ident)
                self._sk.append(rec.sk)
                self._idents.add(rec.ident)
                self._remember(rec)
            self.endInsertRows()
        stale = [
            r.row.summary.id for r in fresh if self._touched.get(r.row.summary.id, -1) > page.epoch
        ]
        if stale:
            self.refresh(stale)  # changed while the page was being read
        self.rows_loaded.emit(len(fresh))
        return len(fresh)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            if section == COL_FROM and self.show_recipient:
                return "To"
            return HEADERS[section]
        return None

    # flags(): QAbstractTableModel's own (enabled, selectable, no children) is what the
    # list needs, and not overriding it saves a Python call per cell per paint.

    def multiData(self, index: AnyIndex, span: QModelRoleDataSpan) -> None:
        """Every role a painting delegate asks for, in one Python call per cell
        (QStyledItemDelegate asks for seven roles per cell; through ``data()`` that is
        seven crossings into Python per cell per paint)."""
        r = index.row()
        ids = self._ids
        rec = self._cache.get(ids[r]) if 0 <= r < len(ids) else None
        if rec is None:
            if 0 <= r < len(ids):
                self._want_block(r)
            for item in span:
                item.clearData()
            return
        col = index.column()
        for item in span:
            kind = _ROLE_KIND.get(item.role())
            if kind == _K_DISPLAY:
                item.setData(rec.texts[col])
            elif kind == _K_FONT and rec.unread:
                item.setData(self._bold)
            elif kind == _K_FG and not rec.unread and col not in (COL_FLAGS, COL_DATE):
                item.setData(self._grey)
            elif kind == _K_TIP:
                item.setData(tooltip(rec, col))
            elif kind == _K_ID:
                item.setData(rec.row.summary.id)
            else:
                item.clearData()

    def data(self, index: AnyIndex, role: int = 0) -> Any:
        """A lookup in the formatted records: no formatting, no SQL (see the docstring)."""
        kind = _ROLE_KIND.get(role)
        if kind is None:
            return None
        r = index.row()
        ids = self._ids
        if r < 0 or r >= len(ids):
            return None
        mid = ids[r]
        if kind == _K_ID:
            return mid
        rec = self._cache.get(mid)
        if rec is None:
            if kind == _K_ROW:
                return self.row_at(r)  # asked by code, not by a painting view
            self._want_block(r)
            return None
        if kind == _K_DISPLAY:
            self._cache.move_to_end(mid)
            return rec.texts[index.column()]
        if kind == _K_FONT:
            return self._bold if rec.unread else None
        if kind == _K_FG:
            return None if rec.unread or index.column() in (COL_FLAGS, COL_DATE) else self._grey
        if kind == _K_TIP:
            return tooltip(rec, index.column())
        return rec.row

    # -- rows ------------------------------------------------------------------------------

    def message_id(self, row: int) -> int:
        return self._ids[row]

    def row_of_message(self, message_id: int) -> int | None:
        try:
            return self._ids.index(message_id)
        except ValueError:
            return None

    def row_at(self, row: int) -> ListRow | None:
        """The record of a row, read at once (a block at a time) if it left the cache."""
        mid = self._ids[row]
        cached = self._cache.get(mid)
        if cached is not None:
            self._cache.move_to_end(mid)
            return cached.row
        if self._source is None:
            return None
        start = row - row % self.BLOCK
        block = [i for i in self._ids[start : start + self.BLOCK] if i not in self._cache]
        for rec in self._format(self._source.rows_for(block)):
            self._remember(rec)
        found = self._cache.get(mid)
        return found.row if found is not None else None

    def cached_rows(self) -> int:
        return len(self._cache)

    def _remember(self, rec: _Rec) -> None:
        mid = rec.row.summary.id
        self._cache[mid] = rec
        self._cache.move_to_end(mid)
        while len(self._cache) > self.CACHE_ROWS:
            self._cache.popitem(last=False)

    def _want_block(self, row: int) -> None:
        start = row - row % self.BLOCK
        if start not in self._blocks:
            self._blocks[start] = None
            QTimer.singleShot(0, self._pump)  # not from inside a paint

    def _arm_day_timer(self) -> None:
        now = datetime.now().astimezone()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=1, microsecond=0)
        self._day.start(max(1000, int((midnight - now).total_seconds() * 1000)))

    def _new_day(self) -> None:
        """ "14:02" of yesterday must now read "29 Nov": format the rows again."""
        self._cache.clear()
        if self._ids:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._ids) - 1, len(HEADERS) - 1)
            )
        self._arm_day_timer()

    # -- background jobs ---------------------------------------------------------------------

    def _pump(self) -> None:
        """Start the next background job, if none is out: blocks, updates, then a page."""
        source = self._source
        if self._busy or source is None:
            return
        gen, epoch = self._gen, self._epoch
        threads, recipient = self.threads, self.show_recipient

        def fmt(rows: Sequence[ListRow]) -> list[_Rec]:
            return format_rows(rows, threads=threads, show_recipient=recipient)

        job: Callable[[], Any]
        done: Callable[[Any], None]
        while self._blocks:
            start, _ = self._blocks.popitem(last=False)
            ids = [i for i in self._ids[start : start + self.BLOCK] if i not in self._cache]
            if ids:
                job = lambda ids=ids: fmt(source.rows_for(ids))  # noqa: E731
                done = lambda recs: self._blocks_read(recs, epoch)  # noqa: E731
                self._start(gen, job, done)
                return
        if self._later:
            ids = list(self._later)[: self.LATER_SLICE]  # a sync sends thousands
            for mid in ids:
                del self._later[mid]

            def read() -> tuple[list[_Rec], dict[int, int | None]]:
                rows = fmt(source.rows_for(ids))
                return rows, source.thread_ids(ids) if threads else {}

            self._start(gen, read, lambda res: self._refreshed(ids, res[0], res[1], epoch))
            return
        if self._more and self._prefetched is None and not self._pages_paused:
            token, before, limit = self._page_token, self._before, self.PAGE

            def page() -> _Page:
                rows = source.page(before, limit)
                last = (rows[-1].date, rows[-1].key) if rows else before
                return _Page(token, before, fmt(rows), last, len(rows) >= limit, epoch)

            self._start(gen, page, self._page_read)

    def _start(self, gen: int, job: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run ``job`` in a slice of the GUI's idle time (or on the pool: ``READ_IN_POOL``)
        and hand its result to ``done`` later, on the GUI thread, either way."""
        self._busy = True

        def finished(result: Any) -> None:
            if gen != self._gen:
                return  # another list is shown now
            self._busy = False
            done(result)
            if not self._busy and not self._blocks and not self._later:
                self._touched.clear()  # later jobs start after every change seen so far
            self._pump()

        def failed(exc: BaseException) -> None:
            if gen != self._gen:
                return
            self._busy = False
            self._want_page = False
            self._pages_paused = True
            text = known_error(exc)
            if text is None:
                report_error(exc)
            else:
                self.load_failed.emit(text)
            self._pump()  # what else is queued (a failed read is not retried by itself)

        if self.READ_IN_POOL:
            run_task(job, finished, failed, owner=self)
            return

        def run_now() -> None:
            if gen != self._gen:
                return
            try:
                result = job()
            except Exception as exc:
                failed(exc)
            else:
                # Applied in the next turn: the view paints and timers run in between,
                # instead of one long turn that reads, inserts rows and relays them out.
                QTimer.singleShot(0, self, lambda: finished(result))

        QTimer.singleShot(0, self, run_now)

    def _page_read(self, page: _Page) -> None:
        if page.token != self._page_token or page.before != self._before:
            return  # a page was read synchronously meanwhile
        if self._want_page:
            self._want_page = False
            self._insert_page(page)
        else:
            self._prefetched = page

    def _blocks_read(self, recs: list[_Rec], epoch: int) -> None:
        for rec in recs:
            mid = rec.row.summary.id
            if self._touched.get(mid, -1) <= epoch and mid not in self._cache:
                self._remember(rec)
        if recs and self._ids:
            # Repaint what is on screen: a view ignores the rows it does not show.
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._ids) - 1, len(HEADERS) - 1)
            )

    # -- in-place updates --------------------------------------------------------------------

    def refresh(self, message_ids: Sequence[int]) -> None:
        """Bring the rows of these messages up to date at once (new, changed, moved, gone)."""
        if self._source is None or not message_ids:
            return
        ids = list(dict.fromkeys(message_ids))
        fresh = self._format(self._source.rows_for(ids))
        tids = self._source.thread_ids(ids) if self.threads else {}
        self._epoch += 1
        for mid in ids:
            self._touched[mid] = self._epoch
        for rec in fresh:
            self._touched[rec.row.summary.id] = self._epoch
        self._apply_rows(ids, fresh, tids)

    def refresh_later(self, message_ids: Sequence[int]) -> None:
        """Like ``refresh``, read later in bounded slices (for the worker's events)."""
        if self._source is None or not message_ids:
            return
        self._later.update(dict.fromkeys(message_ids))
        self._pump()

    def _refreshed(
        self, ids: list[int], fresh: list[_Rec], tids: dict[int, int | None], epoch: int
    ) -> None:
        newer = {mid for mid, e in self._touched.items() if e > epoch}
        if newer:  # changed here since they were read: what we have is newer
            ids = [i for i in ids if i not in newer]
            fresh = [r for r in fresh if r.row.summary.id not in newer]
        self._apply_rows(ids, fresh, tids)

    def _apply_rows(self, ids: list[int], fresh: list[_Rec], tids: dict[int, int | None]) -> None:
        affected: set[int] = set()
        if self.threads:
            for mid in ids:
                tid = tids.get(mid)
                affected.add(tid if tid is not None else -mid)
            wanted = set(ids)
            affected.update(self._ident[n] for n, mid in enumerate(self._ids) if mid in wanted)
        else:
            affected.update(ids)
        new_by_ident = {r.ident: r for r in fresh}
        affected.update(new_by_ident)
        for mid in ids:
            self._cache.pop(mid, None)
        arriving = []
        for ident in affected:
            new = new_by_ident.get(ident)
            if new is not None and ident not in self._idents:
                arriving.append(new)
            else:
                self._apply(ident, new)
        if arriving:
            self._insert_arriving(arriving)

    def _insert_arriving(self, recs: list[_Rec]) -> None:
        """New rows, inserted in runs: a first sync brings thousands at a time, and one
        insertion per row made the view relayout thousands of times (a 250 ms stall).
        Rows that fall below the loaded part are left for the pages, even when the
        list was complete: the list then has more to fetch, and a short one (fewer
        rows than a page) fetches it at once."""
        runs: dict[int, list[_Rec]] = {}
        below = False
        for rec in sorted(recs, key=lambda r: r.sk):
            at = bisect.bisect_left(self._sk, rec.sk)
            if at == len(self._ids):
                below = True
            else:
                runs.setdefault(at, []).append(rec)
        for at in sorted(runs, reverse=True):  # bottom up: the other positions hold
            run = runs[at]
            self.beginInsertRows(QModelIndex(), at, at + len(run) - 1)
            self._ids[at:at] = [r.row.summary.id for r in run]
            self._ident[at:at] = [r.ident for r in run]
            self._sk[at:at] = [r.sk for r in run]
            self._idents.update(r.ident for r in run)
            for r in run:
                self._remember(r)
            self.endInsertRows()
        if below and not self._more:
            self._more = True
            if len(self._ids) < self.FIRST_PAGE:
                self._want_page = True
            self._pump()

    def _apply(self, ident: int, new: _Rec | None) -> None:
        """Update, move or remove the loaded row of ``ident`` (new rows: see above)."""
        old = self._ident.index(ident) if ident in self._idents else None
        if old is None:
            return
        if new is None:
            self.beginRemoveRows(QModelIndex(), old, old)
            self._cache.pop(self._ids[old], None)
            del self._ids[old], self._ident[old], self._sk[old]
            self._idents.discard(ident)
            self.endRemoveRows()
            return
        key = new.sk
        new_id = new.row.summary.id
        old_id = self._ids[old]
        old_key = self._sk.pop(old)
        at = bisect.bisect_left(self._sk, key)  # where it goes among the other rows
        self._sk.insert(old, old_key)
        if at != old:
            dest = at if at < old else at + 1
            self.beginMoveRows(QModelIndex(), old, old, QModelIndex(), dest)
            for lst, value in ((self._ids, new_id), (self._ident, ident), (self._sk, key)):
                del lst[old]
                lst.insert(at, value)
            self.endMoveRows()
        else:
            self._sk[old] = key
            self._ids[old] = new_id
        self._cache.pop(old_id, None)
        self._remember(new)
        self.dataChanged.emit(self.index(at, 0), self.index(at, len(HEADERS) - 1))


# --------------------------------------------------------------------------- folder tree


class FolderTreeModel(QStandardItemModel):
    """Accounts and folders with unread counts: the unified inbox first, then per
    account its role folders (Inbox, Drafts, Sent, Archive, ...), then the others
    (nested by '/'), then saved searches. Counts are updated in place; the tree is
    rebuilt only when the set of folders changes.

    Node data (``NODE_ROLE``): ``("unified", folder_ids)``, ``("folder", folder_id)``,
    ``("account", account_id)``, ``("search", query)``.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Folders"])
        self._shape: tuple[Any, ...] = ()
        self._items: dict[Any, QStandardItem] = {}
        self.tree: FolderTree | None = None

    def update(self, tree: FolderTree, searches: Sequence[tuple[str, str]] = ()) -> None:
        self.tree = tree
        shape = (
            tuple((a.id, a.name) for a in tree.accounts),
            tuple((f.id, f.name, f.role) for f in tree.folders),
            tuple(searches),
        )
        if shape != self._shape:
            self._rebuild(tree, searches)
            self._shape = shape
        self._set_count(("unified",), "All inboxes", tree.unified_unread)
        for f in tree.folders:
            self._set_count(("folder", f.id), _folder_label(f), f.unread)
        self._set_ids_of_unified(tree)

    def _set_ids_of_unified(self, tree: FolderTree) -> None:
        item = self._items.get(("unified",))
        if item is not None:
            item.setData(("unified", tree.inbox_ids), NODE_ROLE)

    def _set_count(self, key: Any, label: str, unread: int) -> None:
        item = self._items.get(key)
        if item is None:
            return
        text = f"{label} ({unread})" if unread else label
        if item.text() != text:
            item.setText(text)
            font = item.font()
            font.setBold(unread > 0)
            item.setFont(font)

    def _rebuild(self, tree: FolderTree, searches: Sequence[tuple[str, str]]) -> None:
        self.removeRows(0, self.rowCount())
        self._items = {}
        root = self.invisibleRootItem()
        if len(tree.accounts) != 1 or len(tree.inbox_ids) > 1:
            unified = _item("All inboxes", ("unified", tree.inbox_ids))
            root.appendRow(unified)
            self._items[("unified",)] = unified
        for account in tree.accounts:
            acc_item = _item(account.name, ("account", account.id))
            acc_item.setToolTip(account.email)
            root.appendRow(acc_item)
            parents: dict[str, QStandardItem] = {}
            for f in tree.of_account(account.id):
                parent = acc_item
                label = _folder_label(f)
                if f.role is None and "/" in f.name:
                    path = f.name.split("/")
                    for depth in range(1, len(path)):
                        key = "/".join(path[:depth])
                        if key not in parents:
                            holder = _item(path[depth - 1], ("account", account.id))
                            holder.setFlags(Qt.ItemFlag.ItemIsEnabled)
                            parent.appendRow(holder)
                            parents[key] = holder
                        parent = parents[key]
                item = _item(label, ("folder", f.id))
                item.setToolTip(f"{f.name}: {f.total} messages, {f.unread} unread")
                parent.appendRow(item)
                parents[f.name] = item
                self._items[("folder", f.id)] = item
        if searches:
            holder = _item("Saved searches", ("account", 0))
            holder.setFlags(Qt.ItemFlag.ItemIsEnabled)
            root.appendRow(holder)
            for name, query in searches:
                item = _item(name, ("search", query))
                item.setToolTip(query)
                holder.appendRow(item)

    def index_of(self, key: Any) -> QModelIndex:
        item = self._items.get(key)
        return item.index() if item is not None else QModelIndex()


_ROLE_LABELS = {
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sent": "Sent",
    "archive": "Archive",
    "all": "All Mail",
    "flagged": "Starred",
    "junk": "Junk",
    "trash": "Trash",
}


def _folder_label(f: FolderInfo) -> str:
    if f.role in _ROLE_LABELS:
        return _ROLE_LABELS[f.role]
    return f.name.rsplit("/", 1)[-1]


def _item(text: str, node: Any) -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    item.setData(node, NODE_ROLE)
    return item
