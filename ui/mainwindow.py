"""The main window: folders | messages | reader, a status bar, and every action one key away.

Why it is shaped this way:

* Three panes in one splitter (folder tree, lazy message list, reader). Window
  geometry, splitter sizes, list column widths, the conversation toggle and the open
  folder persist in the profile's ``ui.ini`` (``QSettings``), so a profile carries its
  own layout. They are written when the window closes, never while it works: QSettings
  writes its file in the GUI thread's next turn after any change, under a lock file,
  with three fsyncs, and measured during a first sync (the worker and the server
  writing to the same disk) that held the GUI thread for 120-250 ms.
* Every user action goes through ``app.services.Services`` (local-first: the local
  store changes at once and the change is queued for the server in the same
  transaction) and then updates the list in place with ``MessageListModel.refresh``,
  so the row changes before the worker has even heard of it. The keys' writes run on
  one writer thread, in order (``ui.bridge.run_write``): the GUI waits for one at
  most ``WRITE_WAIT_MS``, so the sync worker's batches never freeze the window.
  Archive and delete keep the cursor on the same row, which is now the next message
  (as mail clients do).
* The sync worker's events (``ui.worker.SyncWorker``) update the list in place (new
  mail, flag changes, removals: batched over 150 ms), the folder counts (debounced,
  read on the thread pool because counting a big mailbox takes tens of ms) and the
  status bar (per-account state, last error and next retry, pending changes, outbox,
  offline, first-sync progress, what the search index has left to take, and its
  notices such as a damaged index being rebuilt).
* Search (``Services.search``) is debounced by 300 ms, runs on the thread pool and
  shows its results (newest first, up to 1,000) as a list like a folder; a bad query
  is shown inline under the box, never as a dialog; clearing the box goes back to the
  folder. Saved searches (``Services.saved_searches``, read on the pool after the
  first rows) are smart folders at the end of the tree; "Save search" keeps the
  current query, and a saved search's context menu deletes it.
* The reading pane warms up in idle time (``_warm_up_step``), ``WARM_UP_DELAY_MS``
  after the window is built, one piece per turn of the event loop: QtWebEngine's
  widgets, the reader's and the rich widgets' modules, the modules the reader's pool
  tasks need, the reader's profile (Chromium's one-time start), the reader, an empty
  document in it (Chromium starts the renderer process), then the conversation view.
  Measured in a first sync, building all of it at once when the first message
  arrived, while that message's pool tasks imported their modules, stalled the GUI
  thread for 250-420 ms; in steps, no step takes more than ~60 ms here.
* Keyboard: j/k next/previous, Enter open, r reply, a reply all, f forward, e archive,
  # or Delete delete, s star, u unread, Shift+I read, c compose, / search, Ctrl+Z undo,
  ? shortcuts help.

Signals:
    folder_opened(object): a folder (or search) is shown in the list; the node data.
    status_changed(): the status bar was updated.
    searched(str, int): a search finished with this many results (-1: the query failed).
    message_shown(int): the reader finished showing this message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QSettings,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QCloseEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.mailbox import Mailbox, StaticSource
from app.services import Services
from ui.bridge import known_error, report_error, run_task, run_write
from ui.models import (
    COL_DATE,
    COL_FLAGS,
    COL_FROM,
    COL_SUBJECT,
    NODE_ROLE,
    FolderTreeModel,
    MessageListModel,
)
from ui.worker import SyncWorker

if TYPE_CHECKING:
    from ui.reader import ReaderPane

__all__ = ["SHORTCUTS", "MainWindow"]

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("J", "Next message"),
    ("K", "Previous message"),
    ("Enter", "Open the message (focus the reader)"),
    ("R", "Reply"),
    ("A", "Reply to all"),
    ("F", "Forward"),
    ("E", "Archive"),
    ("# / Delete", "Delete (move to Trash)"),
    ("S", "Star / unstar"),
    ("U", "Mark unread"),
    ("Shift+I", "Mark read"),
    ("C", "Compose"),
    ("/", "Search"),
    ("Ctrl+Z", "Undo the last change"),
    ("?", "This help"),
)

EVENT_BATCH_MS = 150
COUNTS_DEBOUNCE_MS = 300
SEARCH_DEBOUNCE_MS = 300
SEARCH_LIMIT = 1000
WRITE_WAIT_MS = 30  # a key's write that takes longer updates the list when it is done
SHOW_AFTER_PAINT_MAX_MS = 150  # the list did not paint (a hidden window): show anyway
WARM_UP_DELAY_MS = 250  # after the window is built: its first rows paint first
WARM_UP_GAP_MS = 30  # between warm-up steps: paints and worker events run in between
# Modules imported by the warm-up, one group per turn of the event loop (~20-90 ms
# each): what the reading pane and its first message's pool tasks import.
WARM_UP_IMPORTS: tuple[tuple[str, ...], ...] = (
    ("PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets"),
    ("ui.attachmentbar",),
    ("ui.reader", "ui.invitecard", "ui.unsubscribebar", "ui.safety"),
    ("ui.conversation",),
    ("storage.mime", "nh3"),
    ("app.unsubscribe",),
)


class MainWindow(QMainWindow):
    folder_opened = Signal(object)
    status_changed = Signal()
    searched = Signal(str, int)
    message_shown = Signal(int)

    def __init__(
        self,
        services: Services,
        settings: QSettings,
        *,
        start_worker: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.mailbox = Mailbox(services)
        self.settings = settings
        self.setWindowTitle("Tidings")
        self.compose_windows: list[Any] = []
        self.node: Any = None
        self._account_state: dict[str, dict[str, Any]] = {}
        self._pending_ids: set[int] = set()
        self._search_task: Any = None
        self._node_before_search: Any = None
        self._searches: list[tuple[str, str]] = []  # saved searches: (name, query)
        self.last_undo: str | None = None
        self._changed: list[list[int]] = []  # ids of recent changes, for undo

        # -- panes
        self.folder_model = FolderTreeModel(self)
        self.folder_view = QTreeView(self)
        self.folder_view.setObjectName("folders")
        self.folder_view.setModel(self.folder_model)
        self.folder_view.setHeaderHidden(True)
        self.folder_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.folder_view.selectionModel().currentChanged.connect(self._on_folder_changed)
        self.folder_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.folder_view.customContextMenuRequested.connect(self._folder_menu)

        self.list_model = MessageListModel(self)
        self.list_model.load_failed.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.list_view = QTableView(self)
        self.list_view.setObjectName("messages")
        self.list_view.setModel(self.list_model)
        self.list_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list_view.setShowGrid(False)
        self.list_view.setWordWrap(False)
        self.list_view.setAlternatingRowColors(True)
        self.list_view.verticalHeader().hide()
        vh = self.list_view.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 8)
        hh = self.list_view.horizontalHeader()
        hh.setHighlightSections(False)
        hh.setSectionResizeMode(COL_SUBJECT, QHeaderView.ResizeMode.Stretch)
        hh.resizeSection(COL_FLAGS, 46)
        hh.resizeSection(COL_FROM, 200)
        hh.resizeSection(COL_DATE, 90)
        self.list_view.selectionModel().currentRowChanged.connect(self._on_row_changed)
        # The row a folder opens on is shown once the list has painted (see
        # ``_on_row_changed``), or after SHOW_AFTER_PAINT_MAX_MS if it does not paint.
        self._show_after_paint = False
        self._paint_watch = _PaintWatch(self.list_view.viewport(), self._list_painted)
        self._show_fallback = QTimer(self)
        self._show_fallback.setSingleShot(True)
        self._show_fallback.setInterval(SHOW_AFTER_PAINT_MAX_MS)
        self._show_fallback.timeout.connect(self._show_current)
        self.list_view.doubleClicked.connect(lambda _i: self.reply_to_draft_or_open())

        # The reading pane -- the reader, and (issue 8) the conversation view -- is built
        # after the first rows are painted, by the idle-time warm-up (``_warm_up_step``)
        # or the first selection, whichever comes first: QtWebEngine and the rich
        # message widgets cost a few hundred milliseconds that start-up need not wait for.
        self._reader: ReaderPane | None = None
        self._conversation: Any = None
        self._reader_profile: Any = None  # made by the warm-up, taken by the reader
        self.reading = QStackedWidget(self)
        self.reading.setObjectName("readingPane")

        self.search_box = QLineEdit(self)
        self.search_box.setObjectName("search")
        self.search_box.setPlaceholderText("Search mail  ( / )")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.textChanged.connect(self._on_search_text)
        self.search_error = QLabel(self)
        self.search_error.setObjectName("searchError")
        self.search_error.setStyleSheet("color: #b3261e;")
        self.search_error.setWordWrap(True)
        self.search_error.hide()
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.timeout.connect(self._run_search)

        middle = QWidget(self)
        mid_layout = QVBoxLayout(middle)
        mid_layout.setContentsMargins(0, 0, 0, 0)
        mid_layout.setSpacing(2)
        self.save_search_button = QPushButton("Save search", self)
        self.save_search_button.setObjectName("saveSearch")
        self.save_search_button.setToolTip("Keep this search as a folder in the tree")
        self.save_search_button.clicked.connect(lambda _checked=False: self.save_current_search())
        search_row = QHBoxLayout()
        search_row.setContentsMargins(0, 0, 0, 0)
        search_row.addWidget(self.search_box, 1)
        search_row.addWidget(self.save_search_button)
        mid_layout.addLayout(search_row)
        mid_layout.addWidget(self.search_error)
        mid_layout.addWidget(self.list_view, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("panes")
        self.splitter.addWidget(self.folder_view)
        self.splitter.addWidget(middle)
        self.splitter.addWidget(self.reading)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([220, 480, 600])
        self.setCentralWidget(self.splitter)

        # -- status bar
        sb = self.statusBar()
        self.sync_label = QLabel(self)
        self.sync_label.setObjectName("syncState")
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.index_label = QLabel(self)  # "Indexing for search: N left" while it indexes
        self.index_label.setObjectName("indexState")
        self.index_label.hide()
        self.pending_label = QLabel(self)
        self.outbox_label = QLabel(self)
        self.offline_label = QLabel(self)
        self.offline_label.setObjectName("offline")
        self.undo_bar = QWidget(self)
        ub = QHBoxLayout(self.undo_bar)
        ub.setContentsMargins(0, 0, 0, 0)
        self.undo_label = QLabel(self.undo_bar)
        self.undo_button = QPushButton("Undo", self.undo_bar)
        ub.addWidget(self.undo_label)
        ub.addWidget(self.undo_button)
        self.undo_bar.hide()
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.timeout.connect(self.undo_bar.hide)
        self._undo_send: Callable[[], None] | None = None
        self.undo_button.clicked.connect(self._undo_clicked)
        sb.addWidget(self.sync_label, 1)
        sb.addPermanentWidget(self.undo_bar)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.index_label)
        sb.addPermanentWidget(self.pending_label)
        sb.addPermanentWidget(self.outbox_label)
        sb.addPermanentWidget(self.offline_label)

        # -- timers
        self._event_timer = QTimer(self)
        self._event_timer.setSingleShot(True)
        self._event_timer.timeout.connect(self._apply_events)
        self._counts_timer = QTimer(self)
        self._counts_timer.setSingleShot(True)
        self._counts_timer.timeout.connect(self.reload_counts)
        self._status_timer = QTimer(self)
        self._status_timer.timeout.connect(self.refresh_queues)
        self._status_timer.start(10_000)

        self._build_actions()
        self._restore_layout()

        # -- worker
        self.worker: SyncWorker | None = None
        if start_worker and any(a.kind == "imap" for a in services.accounts()):
            self.start_worker()
        self._update_status()
        self.reload_tree(select_first=True)
        self.refresh_queues()
        self._warm_up: list[Callable[[], None]] = [
            lambda names=names: _import_all(names) for names in WARM_UP_IMPORTS
        ]
        self._warm_up += [
            self._make_reader_profile,
            self._build_reader_if_needed,
            self._prime_reader,
            lambda: self.conversation,
        ]
        QTimer.singleShot(WARM_UP_DELAY_MS, self, self._warm_up_step)

    # ------------------------------------------------------------------ actions

    def _build_actions(self) -> None:
        self.actions_by_name: dict[str, QAction] = {}

        def add(name: str, text: str, keys: Sequence[str], slot: Callable[[], Any]) -> QAction:
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(k) for k in keys])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _checked=False: slot())
            self.addAction(action)
            self.actions_by_name[name] = action
            return action

        add("next", "Next message", ["J"], lambda: self.move_cursor(1))
        add("previous", "Previous message", ["K"], lambda: self.move_cursor(-1))
        add("open", "Open message", ["Return", "Enter"], self.reply_to_draft_or_open)
        add("reply", "Reply", ["R"], lambda: self.compose_reply("reply"))
        add("reply_all", "Reply all", ["A"], lambda: self.compose_reply("reply_all"))
        add("forward", "Forward", ["F"], lambda: self.compose_reply("forward"))
        add("archive", "Archive", ["E"], self.archive)
        add("delete", "Delete", ["#", "Delete", "Shift+3"], self.delete)
        add("star", "Star", ["S"], self.toggle_star)
        add("unread", "Mark unread", ["U"], lambda: self.mark_read(False))
        add("read", "Mark read", ["Shift+I"], lambda: self.mark_read(True))
        add("compose", "Compose", ["C"], self.compose)
        add("search", "Search", ["/"], self.focus_search)
        add("undo", "Undo", ["Ctrl+Z"], self.undo)
        add("help", "Keyboard shortcuts", ["?", "Shift+/", "F1"], self.show_shortcuts)
        threads = add("threads", "Conversations", ["Ctrl+T"], self.toggle_threads)
        threads.setCheckable(True)
        threads.setChecked(bool(self.settings.value("list/threads", False, type=bool)))
        add("add_account", "Add account…", [], self.add_account)
        add("print", "Print…", ["Ctrl+P"], self.print_current)
        add("save_pdf", "Save as PDF…", ["Ctrl+Shift+S"], self.save_pdf)
        add("remote_senders", "Remote content senders…", [], self.edit_remote_senders)

        tb = self.addToolBar("Main")
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        for name in ("compose", "reply", "reply_all", "forward", "archive", "delete", "star"):
            tb.addAction(self.actions_by_name[name])
        tb.addSeparator()
        tb.addAction(threads)
        tb.addAction(self.actions_by_name["help"])
        tb.addAction(self.actions_by_name["add_account"])
        tb.addAction(self.actions_by_name["print"])
        tb.addAction(self.actions_by_name["remote_senders"])

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{t}</td></tr>" for k, t in SHORTCUTS)
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(f"<table cellpadding=3>{rows}</table>")
        box.setObjectName("shortcutsHelp")
        box.open()

    # ------------------------------------------------------------------ layout

    def _restore_layout(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = s.value("window/state")
        if state is not None:
            self.restoreState(state)
        panes = s.value("window/panes")
        if panes is not None:
            self.splitter.restoreState(panes)
        columns = s.value("list/columns")
        if columns is not None:
            self.list_view.horizontalHeader().restoreState(columns)

    def save_layout(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/panes", self.splitter.saveState())
        s.setValue("list/columns", self.list_view.horizontalHeader().saveState())
        s.setValue("list/threads", self.actions_by_name["threads"].isChecked())
        node = self.node
        if node is not None and node[0] in ("folder", "unified"):
            s.setValue("list/folder", "unified" if node[0] == "unified" else f"folder:{node[1]}")
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        for w in list(self.compose_windows):
            w.close()
        self.save_layout()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._status_timer.stop()
        if self._reader is not None:
            self._reader.cleanup()

    # ------------------------------------------------------------------ folders

    def reload_tree(self, *, select_first: bool = False) -> None:
        mailbox = self.mailbox

        def done(tree: Any) -> None:
            self.folder_model.update(tree, self._searches)
            if select_first or not self.folder_view.currentIndex().isValid():
                self._select_default_folder()
            if select_first:
                self.reload_searches()  # after the first rows: it loads the search code

        run_task(mailbox.tree, done, owner=self)

    def reload_counts(self) -> None:
        self.reload_tree()

    def reload_searches(self) -> None:
        """Saved searches (smart folders) into the tree, read on the pool."""
        services = self.services

        def read() -> list[tuple[str, str]]:
            return [(found.name, found.query) for found in services.saved_searches()]

        def done(searches: list[tuple[str, str]]) -> None:
            self._searches = searches
            if self.folder_model.tree is not None:
                self.folder_model.update(self.folder_model.tree, searches)

        def failed(exc: BaseException) -> None:
            text = known_error(exc)
            if text is None:
                report_error(exc)
                return
            self.statusBar().showMessage(f"Saved searches not shown: {text}", 8000)

        run_task(read, done, failed, owner=self)

    def _folder_menu(self, pos: Any) -> None:
        index = self.folder_view.indexAt(pos)
        node = index.data(NODE_ROLE) if index.isValid() else None
        if node is None or node[0] != "search":
            return
        from PySide6.QtWidgets import QMenu

        name = str(index.data())
        menu = QMenu(self)
        menu.addAction(f"Delete saved search “{name}”", lambda: self.delete_saved_search(name))
        menu.popup(self.folder_view.viewport().mapToGlobal(pos))

    def save_current_search(self, name: str | None = None) -> None:
        """Keep the query in the search box as a smart folder in the tree."""
        query = self.search_box.text().strip()
        if not query:
            self.statusBar().showMessage("Type a search first, then save it.", 5000)
            return
        if name is None:
            from PySide6.QtWidgets import QInputDialog

            name, ok = QInputDialog.getText(self, "Save search", "Name:", text=query)
            if not ok:
                return
        try:
            saved = self.services.save_search(name, query)
        except Exception as exc:
            text = known_error(exc)
            if text is None:
                raise
            self.search_error.setText(text)
            self.search_error.show()
            return
        self.statusBar().showMessage(f"Saved search “{saved.name}”.", 5000)
        self.reload_searches()

    def delete_saved_search(self, name: str) -> None:
        try:
            self.services.delete_saved_search(name)
        except Exception as exc:
            text = known_error(exc)
            if text is None:
                raise
            self.statusBar().showMessage(text, 8000)
            return
        self.reload_searches()

    def _select_default_folder(self) -> None:
        model = self.folder_model
        tree = model.tree
        if tree is None:
            return
        want = self.settings.value("list/folder")
        index = QModelIndex()
        if isinstance(want, str) and want.startswith("folder:"):
            with contextlib.suppress(ValueError):
                index = model.index_of(("folder", int(want.split(":", 1)[1])))
        if not index.isValid():
            index = model.index_of(("unified",))
        if not index.isValid() and tree.inbox_ids:
            index = model.index_of(("folder", tree.inbox_ids[0]))
        if not index.isValid() and tree.folders:
            index = model.index_of(("folder", tree.folders[0].id))
        if index.isValid():
            self.folder_view.setCurrentIndex(index)
            self.folder_view.expandAll()

    def _on_folder_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        node = current.data(NODE_ROLE) if current.isValid() else None
        if node is None or node[0] == "account":
            return
        self.open_node(node)

    def open_node(self, node: Any) -> None:
        kind = node[0]
        if kind == "search":  # a saved search: the box shows it, and it runs at once
            self.search_box.setText(node[1])
            self._search_timer.start(0)
            return
        self.node = node
        threads = self.actions_by_name["threads"].isChecked()
        if kind == "unified":
            folder_ids = list(node[1])
            recipient = False
        else:
            folder_ids = [node[1]]
            info = self._folder_info(node[1])
            recipient = info is not None and info.role in ("sent", "drafts")
        if self._reader is not None:
            self._reader.clear()
        self.list_model.set_source(
            self.mailbox.folder_source(folder_ids, threads=threads), show_recipient=recipient
        )
        self.folder_opened.emit(node)
        if self.list_model.rowCount():
            self._show_after_paint = True  # for _on_row_changed, called from in here
            self.list_view.selectionModel().setCurrentIndex(
                self.list_model.index(0, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
            self._show_after_paint = False

    def _folder_info(self, folder_id: int) -> Any:
        tree = self.folder_model.tree
        if tree is None:
            return None
        return next((f for f in tree.folders if f.id == folder_id), None)

    def toggle_threads(self) -> None:
        if self.node is not None and self.node[0] != "search":
            self.open_node(self.node)

    # ------------------------------------------------------------------ list & reader

    def selected_ids(self) -> list[int]:
        rows = sorted({i.row() for i in self.list_view.selectionModel().selectedRows()})
        if not rows:
            current = self.list_view.currentIndex()
            rows = [current.row()] if current.isValid() else []
        ids = [self.list_model.message_id(r) for r in rows if r < self.list_model.rowCount()]
        if self.list_model.threads:
            return self._expand_threads(rows, ids)
        return ids

    def _expand_threads(self, rows: list[int], ids: list[int]) -> list[int]:
        """In conversation mode an action applies to the whole conversation in view."""
        out: list[int] = []
        for r, mid in zip(rows, ids, strict=True):
            row = self.list_model.row_at(r)
            if row is None or row.summary.thread_id is None or row.thread_count <= 1:
                out.append(mid)
                continue
            members = self.mailbox.thread(row.summary.thread_id)
            out.extend(m.id for m in members if m.account == row.summary.account)
        return list(dict.fromkeys(out))

    def current_id(self) -> int | None:
        index = self.list_view.currentIndex()
        if not index.isValid():
            return None
        return self.list_model.message_id(index.row())

    # ------------------------------------------------------------------ reading pane

    @property
    def reader(self) -> ReaderPane:
        if self._reader is None:
            self._build_reader()
        assert self._reader is not None
        return self._reader

    @property
    def conversation(self) -> Any:
        if self._conversation is None:
            self._build_conversation()
        return self._conversation

    def _warm_up_step(self) -> None:
        """One step of getting the reading pane ready before the first message is
        shown (see the module docstring); the next one runs in a later turn."""
        if not self._warm_up:
            return
        self._warm_up.pop(0)()
        if self._warm_up:
            QTimer.singleShot(WARM_UP_GAP_MS, self, self._warm_up_step)

    def _make_reader_profile(self) -> None:
        """Chromium's start (the first profile of the process), a warm-up step alone."""
        if self._reader is None and self._reader_profile is None:
            from ui.reader import make_profile

            self._reader_profile = make_profile(self.mailbox)

    def _build_reader_if_needed(self) -> None:
        if self._reader is None:
            self._build_reader()

    def _prime_reader(self) -> None:
        self.reader.prime()

    def _build_reader(self) -> None:
        """The reader, built on first use (or by the warm-up)."""
        from ui.reader import ReaderPane

        profile, self._reader_profile = self._reader_profile, None
        reader = ReaderPane(self.mailbox, self.settings, self, profile=profile)
        reader.link_requested.connect(self.open_link)
        reader.mark_read_requested.connect(self._auto_mark_read)
        reader.message_shown.connect(self.message_shown)
        self._reader = reader
        self.reading.addWidget(reader)
        self.reading.setCurrentWidget(reader)

    def _build_conversation(self) -> None:
        """Conversations (Ctrl+T) show as one stacked page with a quick reply (issue 8)."""
        from ui.conversation import ConversationView

        conversation = ConversationView(self.mailbox, self.settings, self)
        conversation.link_requested.connect(self.open_link)
        conversation.mark_read_requested.connect(self._auto_mark_read)
        conversation.reply_queued.connect(lambda _item: self.refresh_queues())
        self._conversation = conversation
        self.reading.addWidget(conversation)

    def _show_current(self) -> None:
        self._show_fallback.stop()
        if self._reader is None:
            self._build_reader()
        self._on_row_changed(self.list_view.currentIndex(), QModelIndex())

    def _list_painted(self) -> None:
        if self._show_fallback.isActive():  # a row waits for this paint: show it after
            self._show_fallback.stop()
            QTimer.singleShot(0, self, self._show_current)

    def _on_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        after_paint, self._show_after_paint = self._show_after_paint, False
        if self._reader is None or after_paint:
            # The row a folder opens on (and the first selection at start-up, before the
            # reader is built): the list paints first, then the reader starts. Qt paints
            # in a low-priority event, after anything posted meanwhile, so the message's
            # parse on the pool would otherwise run during the list's first paint and
            # compete with it for the GIL and the CPU (measured in a first sync: the
            # folder's first paint 70-100 ms, against 40-60 ms when it paints alone).
            self._show_fallback.start()
            return
        if not current.isValid():
            self.reader.clear()
            if self._conversation is not None:
                self._conversation.clear()
            self.reading.setCurrentWidget(self.reader)
            return
        mid = self.list_model.message_id(current.row())
        row = self.list_model.row_at(current.row())
        if self.list_model.threads and row is not None and row.thread_count > 1:
            thread = row.summary.thread_id
            if thread is not None:
                shown = self.reading.currentWidget() is self.conversation
                self.reading.setCurrentWidget(self.conversation)
                if not shown or self.conversation.thread_id != thread:
                    self.conversation.show_thread(thread, row.summary.account)
                return
        self.reading.setCurrentWidget(self.reader)
        if mid != self.reader.message_id:
            self.reader.show_message(mid)

    def move_cursor(self, step: int) -> None:
        view = self.list_view
        count = self.list_model.rowCount()
        if not count:
            return
        current = view.currentIndex()
        row = 0 if not current.isValid() else current.row() + step
        if row >= count and self.list_model.canFetchMore(QModelIndex()):
            self.list_model.fetch_more_now()
            count = self.list_model.rowCount()
        row = max(0, min(count - 1, row))
        index = self.list_model.index(row, 0)
        view.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        view.scrollTo(index)

    def reply_to_draft_or_open(self) -> None:
        """Enter: a draft opens in compose; any other message gets the reader's focus."""
        mid = self.current_id()
        if mid is None:
            return
        row = self.list_model.row_at(self.list_view.currentIndex().row())
        if row is not None and "draft" in row.summary.flags:
            self.compose(draft_of=mid)
            return
        self.reader.view.setFocus()

    # ------------------------------------------------------------------ changes

    def _change(self, fn: Callable[[list[int]], Any], ids: list[int] | None = None) -> None:
        """A user's change to these messages (default: the selected ones): written by
        the writer thread, the list updated when it is written -- at once, unless the
        sync worker holds the database meanwhile (see ``ui.bridge.run_write``)."""
        ids = self.selected_ids() if ids is None else ids
        if not ids:
            return
        current = self.list_view.currentIndex()
        row = current.row() if current.isValid() else -1
        before = self.list_model.message_id(row) if row >= 0 else None

        def done(_result: object) -> None:
            self._changed = [*self._changed[-49:], list(ids)]
            unmoved = self.current_id() == before  # the user has not moved on since
            self.list_model.refresh(ids)
            gone = before is not None and self.list_model.row_of_message(before) is None
            lost = gone or not self.list_view.currentIndex().isValid()
            if unmoved and lost and self.list_model.rowCount():
                # Archived or deleted: the cursor stays on its row, now the next message.
                at = max(0, min(row, self.list_model.rowCount() - 1))
                self.list_view.selectionModel().setCurrentIndex(
                    self.list_model.index(at, 0),
                    QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows,
                )
            self._after_write()

        # ``fn`` must not hold the window: the writer thread lets go of its task, and a
        # widget whose last reference goes there would be destroyed off the GUI thread.
        run_write(lambda: fn(ids), done, self._write_failed, owner=self, wait_ms=WRITE_WAIT_MS)

    def _write_failed(self, exc: BaseException) -> None:
        text = known_error(exc)
        if text is None:
            report_error(exc)
            return
        self.statusBar().showMessage(text, 8000)

    def _after_write(self) -> None:
        self._counts_timer.start(COUNTS_DEBOUNCE_MS)
        self.refresh_queues()

    def mark_read(self, value: bool, ids: list[int] | None = None) -> None:
        services = self.services  # the writer thread's task holds no widget
        self._change(lambda i: services.mark(i, "seen", value), ids)

    def _auto_mark_read(self, message_id: int) -> None:
        """Read after a moment in the reader: a write like the keys' (nobody waits)."""
        services = self.services

        def done(_count: object) -> None:
            self._changed = [*self._changed[-49:], [message_id]]
            self.list_model.refresh_later([message_id])
            self._after_write()

        run_write(
            lambda: services.mark([message_id], "seen", True), done, self._write_failed, owner=self
        )

    def toggle_star(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        row = self.list_model.row_at(self.list_view.currentIndex().row())
        value = not (row is not None and "flagged" in row.summary.flags)
        services = self.services
        self._change(lambda i: services.mark(i, "flagged", value), ids)

    def archive(self) -> None:
        self._change(self.services.archive)

    def delete(self) -> None:
        self._change(self.services.delete)

    def undo(self) -> None:
        def done(what: str) -> None:
            self.last_undo = what
            self.statusBar().showMessage(f"Undone: {what}", 5000)
            self._reload_list_in_place()
            self._after_write()

        run_write(self.services.undo, done, self._write_failed, owner=self, wait_ms=WRITE_WAIT_MS)

    def _reload_list_in_place(self) -> None:
        """After an undo, the messages of the change undone may come back (or go)."""
        ids = self._changed.pop() if self._changed else []
        loaded = [
            self.list_model.message_id(r) for r in range(min(self.list_model.rowCount(), 500))
        ]
        self.list_model.refresh(list(dict.fromkeys(ids + loaded)))

    # ------------------------------------------------------------------ compose & links

    def compose(
        self,
        *,
        mode: str | None = None,
        original_id: int | None = None,
        draft_of: int | None = None,
        to: str = "",
    ) -> Any:
        from ui.compose import ComposeWindow

        window = ComposeWindow(
            self.services,
            self.mailbox,
            self.settings,
            mode=mode,
            original_id=original_id,
            draft_of=draft_of,
            to=to,
        )
        window.queued.connect(self._on_queued)
        window.closed.connect(lambda w=window: self._forget_compose(w))
        self.compose_windows.append(window)
        window.show()
        return window

    def _forget_compose(self, window: Any) -> None:
        with contextlib.suppress(ValueError):
            self.compose_windows.remove(window)
        self._counts_timer.start(COUNTS_DEBOUNCE_MS)

    def compose_reply(self, mode: str) -> Any:
        mid = self.current_id()
        if mid is None:
            return None
        return self.compose(mode=mode, original_id=mid)

    def _on_queued(self, item_id: int, seconds: float, reopen: Callable[[], None]) -> None:
        self.undo_label.setText("Message queued.")
        self.undo_bar.show()

        def undo_send() -> None:
            try:
                self.services.cancel_outgoing(item_id)
            except Exception as exc:
                text = known_error(exc)
                if text is None:
                    raise
                self.statusBar().showMessage(f"Too late to undo: {text}", 8000)
                return
            self.statusBar().showMessage("Sending undone.", 5000)
            reopen()
            self.refresh_queues()

        self._undo_send = undo_send
        self._undo_timer.start(int(seconds * 1000))
        self.refresh_queues()

    def _undo_clicked(self) -> None:
        self.undo_bar.hide()
        self._undo_timer.stop()
        if self._undo_send is not None:
            fn, self._undo_send = self._undo_send, None
            fn()

    def open_link(self, url: QUrl) -> None:
        if url.scheme() == "mailto":
            self.compose(to=url.path())
            return
        if url.scheme() not in ("http", "https"):
            self.statusBar().showMessage(f"Not opening a {url.scheme()}: link", 5000)
            return
        shown = self.reading.currentWidget()
        warning = shown.link_warning(url) if hasattr(shown, "link_warning") else None
        if warning is not None:
            box = QMessageBox(QMessageBox.Icon.Warning, "Suspicious link", "", parent=self)
            box.setObjectName("linkWarning")
            box.setText(f"{warning}\n\nIt really opens:\n{url.toString()}")
            box.setStandardButtons(
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel
            )
            box.button(QMessageBox.StandardButton.Open).setText("Open anyway")
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            if box.exec() == QMessageBox.StandardButton.Open:
                QDesktopServices.openUrl(url)
            return
        answer = QMessageBox.question(
            self,
            "Open link",
            f"Open this address in your browser?\n\n{url.toString()}",
        )
        if answer == QMessageBox.StandardButton.Yes:
            QDesktopServices.openUrl(url)

    def print_current(self) -> Any:
        from ui.printing import print_widget

        return print_widget(self.reading.currentWidget())

    def save_pdf(self, path: str | None = None) -> Any:
        from ui.printing import save_pdf

        job = save_pdf(self.reading.currentWidget(), path)
        if job is not None:
            job.finished.connect(
                lambda ok, text: self.statusBar().showMessage(
                    f"Saved {text}" if ok else f"Not saved: {text}", 8000
                )
            )
        return job

    def edit_remote_senders(self) -> Any:
        from ui.senderlist import RemoteSendersDialog

        dialog = RemoteSendersDialog(self.settings, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def add_account(self) -> None:
        from ui.accountdialog import AccountDialog

        dialog = AccountDialog(self.services, self)
        if dialog.exec():
            self.reload_tree(select_first=True)
            if self.worker is None:
                self.start_worker()
            else:
                self.worker.stop()
                self.worker.start()

    # ------------------------------------------------------------------ search

    def focus_search(self) -> None:
        self.search_box.setFocus()
        self.search_box.selectAll()

    def _on_search_text(self, text: str) -> None:
        self._search_timer.start(SEARCH_DEBOUNCE_MS)

    def _run_search(self) -> None:
        query = self.search_box.text().strip()
        if self._search_task is not None:
            self._search_task.cancel()
        if not query:
            self.search_error.hide()
            if self._node_before_search is not None:
                node, self._node_before_search = self._node_before_search, None
                self.open_node(node)
            return
        if self._node_before_search is None and self.node is not None:
            self._node_before_search = self.node
        services = self.services

        def done(found: list[Any]) -> None:
            self.search_error.hide()
            if self._reader is not None:
                self._reader.clear()
            self.list_model.set_source(StaticSource(services, found))
            self.searched.emit(query, len(found))
            self.folder_opened.emit(("search", query))

        def failed(exc: BaseException) -> None:
            text = known_error(exc)
            if text is None:
                report_error(exc)
                return
            self.search_error.setText(text)
            self.search_error.show()
            self.searched.emit(query, -1)

        self._search_task = run_task(
            lambda: services.search(query, account=None, limit=SEARCH_LIMIT, sort="date"),
            done,
            failed,
            owner=self,
        )

    # ------------------------------------------------------------------ worker & status

    def start_worker(self) -> None:
        self.worker = SyncWorker(self.services.profile.home, self)
        self.worker.event_received.connect(self.on_worker_event)
        self.worker.state_changed.connect(lambda _s: self._update_status())
        self.worker.start()

    def on_worker_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        account = str(event.get("account", ""))
        if kind in ("messages_added", "flags_changed", "messages_removed"):
            ids = event.get("ids") or []
            self._pending_ids.update(int(i) for i in ids)
            if not self._event_timer.isActive():
                self._event_timer.start(EVENT_BATCH_MS)
            self._counts_timer.start(COUNTS_DEBOUNCE_MS)
        elif kind in ("folder_synced", "folders_removed", "listable", "content_extracted"):
            self._counts_timer.start(COUNTS_DEBOUNCE_MS)
        if kind == "state":
            st = self._account_state.setdefault(account, {})
            st["state"] = event.get("state")
            if event.get("state") in ("synced", "idle"):
                st.pop("error", None)
                st.pop("retry_at", None)
                self.progress.hide()
            if "retry_in" in event:
                st["retry_at"] = datetime.now(UTC).timestamp() + float(event["retry_in"])
        elif kind == "error":
            st = self._account_state.setdefault(account, {})
            where = f"{event['folder']}: " if event.get("folder") else ""
            st["error"] = f"{where}{event.get('message', '')}"
        elif kind == "progress":
            total = int(event.get("total") or 0)
            done = int(event.get("done") or 0)
            if total > 0 and done < total:
                self.progress.setRange(0, total)
                self.progress.setValue(done)
                self.progress.setFormat(f"{account}/{event.get('folder', '')}: %v of %m")
                self.progress.show()
            else:
                self.progress.hide()
        elif kind == "indexed":  # the search index takes new (or, rebuilt, all) mail
            left = int(event.get("remaining") or 0)
            self.index_label.setText(f"Indexing for search: {left:,} left")
            self.index_label.setVisible(left > 0)
        elif kind == "notice":  # e.g. the search index was damaged and is being rebuilt
            self.statusBar().showMessage(str(event.get("message", "")), 15000)
        elif kind in ("sent", "send_failed", "outbox", "actions_replayed"):
            self.refresh_queues()
            if kind == "send_failed":
                self.statusBar().showMessage(f"Not sent: {event.get('message', '')}", 15000)
        self._update_status()

    def _apply_events(self) -> None:
        ids, self._pending_ids = sorted(self._pending_ids), set()
        if ids:
            self.list_model.refresh_later(ids)  # read on the pool: sync may send thousands

    def _update_status(self) -> None:
        parts = []
        now = datetime.now(UTC).timestamp()
        offline = self.worker is None or self.worker.state != "running"
        for name in sorted(self._account_state):
            st = self._account_state[name]
            text = f"{name}: {st.get('state') or 'starting'}"
            if st.get("error"):
                text += f" — {st['error']}"
            if st.get("retry_at"):
                text += f" (retry in {max(0, round(st['retry_at'] - now))} s)"
            parts.append(text)
        if self.worker is not None and self.worker.state == "restarting":
            secs = round(self.worker.next_retry_ms / 1000)
            parts.append(f"sync worker stopped: {self.worker.last_error}; restarting in {secs} s")
        if self.worker is None:
            has_imap = self.folder_model.tree is not None and any(
                a.kind == "imap" for a in self.folder_model.tree.accounts
            )
            parts.append("sync is off" if has_imap else "local mail only")
        self.sync_label.setText("   ".join(parts))
        states = [st.get("state") for st in self._account_state.values()]
        if states and all(s in ("offline", "error", "connecting") for s in states):
            offline = True
        if self.worker is None:
            self.offline_label.setText("")
        else:
            self.offline_label.setText("● Offline" if offline else "● Online")
            color = "#b3261e" if offline else "#1e8e3e"
            self.offline_label.setStyleSheet(f"color: {color};")
        self.status_changed.emit()

    def refresh_queues(self) -> None:
        services = self.services

        def read() -> tuple[int, int, int]:
            # Changes wait for a server only in accounts that have one: a local
            # account's changes are complete once stored (kept for undo, never sent).
            synced = {a.name for a in services.accounts() if a.kind == "imap"}
            pending = [a for a in services.actions() if a.account in synced]
            failed = sum(1 for a in pending if getattr(a, "state", "") == "failed")
            out = [o for o in services.outbox(include_sent=False) if o.state != "cancelled"]
            return len(pending), failed, len(out)

        def done(counts: tuple[int, int, int]) -> None:
            pending, failed, outbox = counts
            text = f"{pending} pending" if pending else "all changes saved"
            if failed:
                text += f" ({failed} failed)"
            self.pending_label.setText(text)
            self.outbox_label.setText(f"outbox: {outbox}" if outbox else "")
            self.status_changed.emit()

        run_task(read, done, lambda exc: None, owner=self)


class _PaintWatch(QObject):
    """Calls back when one widget is about to paint (an event filter on it alone); the
    callback defers its work to a later turn, which comes after that paint."""

    def __init__(self, widget: QWidget, painted: Callable[[], None]) -> None:
        super().__init__(widget)
        self._painted = painted
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self._painted()
        return False


def _import_all(names: Sequence[str]) -> None:
    """Import modules now, on the GUI thread in an idle turn (the warm-up), rather than
    later, in the middle of showing a message or on a pool thread."""
    import importlib

    for name in names:
        importlib.import_module(name)
