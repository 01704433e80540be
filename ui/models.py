"""Item models: the lazy message list and the folder tree.

Why the message list is shaped this way (a folder of a million messages must open as
fast as one of ten, and scrolling to its end must not load it into memory):

* Rows come from an ``app.mailbox.ListSource`` in keyset pages (newest first, "before
  (date, key)"); Qt asks for more through ``canFetchMore``/``fetchMore`` as the view
  scrolls. A page is two indexed queries (a few milliseconds), so it is read on the
  GUI thread when the view asks: the rows are there when the view paints, and there is
  no "loading" flicker.
* Per row the model keeps three ints (head message id, identity, sort key); the
  displayed records (``ListRow`` DTOs) live in a bounded LRU cache. A row scrolled out
  of the cache is read back by id, a block at a time, when it is painted again. So
  memory grows by a few dozen bytes per row seen, not by a record per row.
* In-place updates: ``refresh(message_ids)`` asks the source for the current rows of
  those messages and, per affected row, inserts, removes, moves (``beginMoveRows``) or
  updates it. No reset ever happens, so the selection and the scroll position survive
  new mail, flag changes, archiving and deletion, whether they come from the user or
  the sync worker. A new row below the loaded part is left for ``fetchMore``.
* Conversation mode: a row is a thread's newest message; its identity is the thread id,
  so a reply arriving moves the conversation to the top instead of adding a row.
* No ORM objects: only DTOs from ``app/``.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QStandardItem, QStandardItemModel

from app.mailbox import FolderTree, ListSource
from storage.dto import FolderInfo, ListRow

__all__ = ["FolderTreeModel", "MessageListModel"]

AnyIndex = QModelIndex | QPersistentModelIndex

MESSAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole + 2
NODE_ROLE = Qt.ItemDataRole.UserRole + 3

COL_FLAGS, COL_FROM, COL_SUBJECT, COL_DATE = range(4)
HEADERS = ("", "From", "Subject", "Date")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


class MessageListModel(QAbstractTableModel):
    """A lazy, in-place-updated list of messages or conversations.

    Signals:
        rows_loaded(int): a page of this many rows was appended.
    """

    rows_loaded = Signal(int)

    PAGE = 200
    CACHE_ROWS = 2000
    BLOCK = 100

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._source: ListSource | None = None
        self._ids: list[int] = []  # head message id per row
        self._ident: list[int] = []  # message id, or thread id (conversation mode)
        self._sk: list[int] = []  # ascending sort keys (see _sort_key)
        self._idents: set[int] = set()
        self._before: tuple[datetime | None, int] | None = None
        self._more = False
        self._cache: OrderedDict[int, ListRow] = OrderedDict()
        self.show_recipient = False  # Sent/Drafts: show To instead of From
        self._bold = QFont()
        self._bold.setBold(True)

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
        self.endResetModel()
        if source is not None:
            self.fetchMore(QModelIndex())

    def _identity(self, row: ListRow) -> int:
        if self.threads and row.summary.thread_id is not None:
            return row.summary.thread_id
        return -row.summary.id if self.threads else row.summary.id

    # -- Qt model API --------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def canFetchMore(self, parent: AnyIndex) -> bool:
        return not parent.isValid() and self._more

    def fetchMore(self, parent: AnyIndex) -> None:
        if parent.isValid() or not self._more or self._source is None:
            return
        rows = self._source.page(self._before, self.PAGE)
        self._more = len(rows) >= self.PAGE
        if rows:
            self._before = (rows[-1].date, rows[-1].key)
        fresh = [r for r in rows if self._identity(r) not in self._idents]
        if fresh:
            first = len(self._ids)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for r in fresh:
                ident = self._identity(r)
                self._ids.append(r.summary.id)
                self._ident.append(ident)
                self._sk.append(_sort_key(r))
                self._idents.add(ident)
                self._remember(r)
            self.endInsertRows()
        self.rows_loaded.emit(len(fresh))

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

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._ids):
            return None
        if role == MESSAGE_ID_ROLE:
            return self._ids[index.row()]
        if role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.FontRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.ForegroundRole,
            ROW_ROLE,
        ):
            return None
        row = self.row_at(index.row())
        if row is None:
            return None
        if role == ROW_ROLE:
            return row
        s = row.summary
        unread = row.thread_unread > 0 if self.threads else "seen" not in s.flags
        col = index.column()
        if role == Qt.ItemDataRole.FontRole:
            return self._bold if unread else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col in (COL_DATE, COL_FLAGS) or unread:
                return None
            return QBrush(QColor(60, 60, 60))
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_FLAGS:
                tips = [
                    t for f, t in (("flagged", "starred"), ("answered", "answered")) if f in s.flags
                ]
                if s.has_attachments:
                    tips.append("has attachments")
                if unread:
                    tips.append("unread")
                return ", ".join(tips) or None
            if col == COL_FROM:
                return s.sender.display()
            if col == COL_DATE and s.date is not None:
                return s.date.astimezone().strftime("%A %d %B %Y, %H:%M")
            return s.subject
        # DisplayRole
        if col == COL_FLAGS:
            marks = ("●" if unread else "") + ("★" if "flagged" in s.flags else "")
            return marks + ("📎" if s.has_attachments else "")
        if col == COL_FROM:
            if self.show_recipient and s.to:
                who = ", ".join(a.name or a.email for a in s.to)
            else:
                who = s.sender.name or s.sender.email or "(unknown sender)"
            return f"{who} ({row.thread_count})" if self.threads and row.thread_count > 1 else who
        if col == COL_SUBJECT:
            subject = s.subject or "(no subject)"
            return f"{subject} — {s.snippet}" if s.snippet else subject
        if col == COL_DATE:
            return short_date(s.date)
        return None

    # -- rows ------------------------------------------------------------------------------

    def message_id(self, row: int) -> int:
        return self._ids[row]

    def row_of_message(self, message_id: int) -> int | None:
        try:
            return self._ids.index(message_id)
        except ValueError:
            return None

    def row_at(self, row: int) -> ListRow | None:
        """The record of a row, read back (a block at a time) if it left the cache."""
        mid = self._ids[row]
        cached = self._cache.get(mid)
        if cached is not None:
            self._cache.move_to_end(mid)
            return cached
        if self._source is None:
            return None
        start = row - row % self.BLOCK
        block = [i for i in self._ids[start : start + self.BLOCK] if i not in self._cache]
        for r in self._source.rows_for(block):
            self._remember(r)
        return self._cache.get(mid)

    def cached_rows(self) -> int:
        return len(self._cache)

    def _remember(self, row: ListRow) -> None:
        self._cache[row.summary.id] = row
        self._cache.move_to_end(row.summary.id)
        while len(self._cache) > self.CACHE_ROWS:
            self._cache.popitem(last=False)

    # -- in-place updates --------------------------------------------------------------------

    def refresh(self, message_ids: Sequence[int]) -> None:
        """Bring the rows of these messages up to date (new, changed, moved or gone)."""
        if self._source is None or not message_ids:
            return
        ids = list(dict.fromkeys(message_ids))
        fresh = self._source.rows_for(ids)
        affected: set[int] = set()
        if self.threads:
            tids = self._source.thread_ids(ids)
            for mid in ids:
                tid = tids.get(mid)
                affected.add(tid if tid is not None else -mid)
            wanted = set(ids)
            affected.update(self._ident[n] for n, mid in enumerate(self._ids) if mid in wanted)
        else:
            affected.update(ids)
        new_by_ident = {self._identity(r): r for r in fresh}
        affected.update(new_by_ident)
        for mid in ids:
            self._cache.pop(mid, None)
        for ident in affected:
            self._apply(ident, new_by_ident.get(ident))

    def _apply(self, ident: int, new: ListRow | None) -> None:
        old = self._ident.index(ident) if ident in self._idents else None
        if new is None:
            if old is not None:
                self.beginRemoveRows(QModelIndex(), old, old)
                self._cache.pop(self._ids[old], None)
                del self._ids[old], self._ident[old], self._sk[old]
                self._idents.discard(ident)
                self.endRemoveRows()
            return
        key = _sort_key(new)
        if old is None:
            at = bisect.bisect_left(self._sk, key)
            if at == len(self._ids) and self._more:
                return  # below what is loaded: fetchMore brings it
            self.beginInsertRows(QModelIndex(), at, at)
            self._ids.insert(at, new.summary.id)
            self._ident.insert(at, ident)
            self._sk.insert(at, key)
            self._idents.add(ident)
            self._remember(new)
            self.endInsertRows()
            return
        old_id = self._ids[old]
        old_key = self._sk.pop(old)
        at = bisect.bisect_left(self._sk, key)  # where it goes among the other rows
        self._sk.insert(old, old_key)
        if at != old:
            dest = at if at < old else at + 1
            self.beginMoveRows(QModelIndex(), old, old, QModelIndex(), dest)
            for lst, value in ((self._ids, new.summary.id), (self._ident, ident), (self._sk, key)):
                del lst[old]
                lst.insert(at, value)
            self.endMoveRows()
        else:
            self._sk[old] = key
            self._ids[old] = new.summary.id
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
