"""The reader pane: headers, remote-content bar, attachment bar, and a locked-down web view.

Why it is shaped this way (mail is hostile input, and must still look like it was sent):

* **What is shown** is built by ``app.mailbox.Mailbox.reader`` on a pool thread: the
  HTML sanitised with nh3 (no scripts, handlers, forms, frames), ``cid:`` rewritten to
  ``tidings://message/ID/cid/X``, plain text turned into HTML with links and quote
  levels. The document itself is served by the ``tidings:`` scheme handler (no 2 MB
  ``setHtml`` limit), and so are ``cid:`` images, read from the local store.
* **Nothing leaves the machine unasked.** A private, off-the-record
  ``QWebEngineProfile`` carries a ``QWebEngineUrlRequestInterceptor`` that blocks and
  records every request whose scheme is not ``tidings:`` or ``data:`` (images, CSS,
  fonts, prefetches), unless the user chose "Load remote content" for this message or
  "Always for <sender>" (kept in the profile's settings). JavaScript is off, and the
  document carries a CSP without scripts as a second lock.
* **Links never navigate the view.** ``acceptNavigationRequest`` refuses every
  navigation except loading our own document; a clicked link is handed to the window
  (``link_requested``), which shows the real target before opening it in the system
  browser (``mailto:`` opens compose instead). New windows are refused.
* **Attachments** are shown by ``ui.attachmentbar.AttachmentBar`` (safe names, real
  extension, thumbnails, PDF preview, risky files warned); ``export_attachment`` and
  ``save_attachment`` remain for callers that hold an ``AttachmentInfo``.
* **Rich messages** (issue 8): an invitation card (``ui.invitecard``), an unsubscribe
  bar (``ui.unsubscribebar``), and ``ui.safety``'s analysis of the document (tracking
  pixels counted in the remote-content bar; ``link_warning`` for links whose text
  shows another address than their target).
* **Mark as read** happens after the message has been shown for a short delay
  (``MARK_READ_DELAY_MS``), so skimming with j/k does not mark everything read.

Signals (ReaderPane):
    message_shown(int): the document of a message finished loading.
    link_requested(QUrl): the user clicked a link.
    mark_read_requested(int): the message was shown long enough to count as read.
    remote_blocked(int): the number of blocked requests for the current message changed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QIODevice,
    QObject,
    QSettings,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QDesktopServices
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineProfile,
    QWebEngineSettings,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
    QWebEngineUrlRequestJob,
    QWebEngineUrlSchemeHandler,
)
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.mailbox import SCHEME, Mailbox, ReaderDocument, body_url, parse_tidings_url
from storage.dto import AttachmentInfo
from ui.bridge import TaskHandle, run_task
from ui.senderlist import KEY as SENDERS_KEY
from ui.senderlist import allowed_senders

__all__ = ["ReaderPane"]

MARK_READ_DELAY_MS = 1500
_LOCAL_SCHEMES = {SCHEME, "data", "about", "blob"}


class RemoteBlocker(QWebEngineUrlRequestInterceptor):
    """Blocks and records every network request not explicitly allowed.

    ``allowed`` is the set of message ids whose remote content the user let in.
    Signals: request_blocked(int message_id, str url).
    """

    request_blocked = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.allowed: set[int] = set()
        self.blocked: list[tuple[int, str]] = []
        self.passed: list[tuple[int, str]] = []

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:
        url = info.requestUrl()
        if url.scheme() in _LOCAL_SCHEMES:
            return
        first = parse_tidings_url(info.firstPartyUrl().toString())
        mid = first[0] if first else 0
        if mid and mid in self.allowed:
            self.passed.append((mid, url.toString()))
            return
        info.block(True)
        self.blocked.append((mid, url.toString()))
        self.request_blocked.emit(mid, url.toString())

    def blocked_for(self, message_id: int) -> list[str]:
        return [u for m, u in self.blocked if m == message_id]


class LocalSchemeHandler(QWebEngineUrlSchemeHandler):
    """Serves ``tidings://message/ID/body`` (the prepared document) and ``.../cid/X``."""

    def __init__(self, mailbox: Mailbox, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mailbox = mailbox
        self.documents: dict[int, bytes] = {}

    def requestStarted(self, job: QWebEngineUrlRequestJob) -> None:
        parsed = parse_tidings_url(job.requestUrl().toString())
        if parsed is None:
            job.fail(QWebEngineUrlRequestJob.Error.UrlInvalid)
            return
        mid, kind, arg = parsed
        if kind == "body":
            doc = self.documents.get(mid)
            if doc is None:
                job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
                return
            self._reply(job, b"text/html;charset=utf-8", doc)
            return
        try:
            found = self.mailbox.cid_part(mid, arg)
        except Exception:  # a vanished message: the image is simply missing
            found = None
        if found is None:
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        ctype, data = found
        if not ctype.startswith("image/"):
            job.fail(QWebEngineUrlRequestJob.Error.RequestDenied)
            return
        self._reply(job, ctype.encode("ascii", "replace"), data)

    @staticmethod
    def _reply(job: QWebEngineUrlRequestJob, ctype: bytes, data: bytes) -> None:
        buf = QBuffer(job)
        buf.setData(QByteArray(data))
        buf.open(QIODevice.OpenModeFlag.ReadOnly)
        job.reply(QByteArray(ctype), buf)


class ReaderPage(QWebEnginePage):
    """A page that never navigates away from our document.

    Signals: link_requested(QUrl).
    """

    link_requested = Signal(QUrl)

    def acceptNavigationRequest(
        self, url: QUrl | str, nav_type: QWebEnginePage.NavigationType, is_main_frame: bool
    ) -> bool:
        url = QUrl(url)
        if nav_type == QWebEnginePage.NavigationType.NavigationTypeLinkClicked:
            self.link_requested.emit(url)
            return False
        if url.scheme() == SCHEME and is_main_frame:
            parsed = parse_tidings_url(url.toString())
            return parsed is not None and parsed[1] == "body"
        return False

    def createWindow(self, _type: QWebEnginePage.WebWindowType) -> QWebEnginePage | None:
        return None

    def javaScriptConsoleMessage(self, *args: Any) -> None:
        return


ProfileParts = tuple[QWebEngineProfile, RemoteBlocker, LocalSchemeHandler]


def make_profile(mailbox: Mailbox, parent: QObject | None = None) -> ProfileParts:
    # No storage name: off the record. A profile must outlive its pages: the reader
    # creates a holder for its page before the profile, and Qt deletes children in
    # creation order, so the page goes first. The first profile of the process also
    # starts Chromium (tens of ms on the GUI thread): the main window makes the
    # reader's in a warm-up step of its own and hands it to ``ReaderPane``.
    profile = QWebEngineProfile(parent)
    profile.setHttpCacheType(QWebEngineProfile.HttpCacheType.MemoryHttpCache)
    profile.setPersistentCookiesPolicy(
        QWebEngineProfile.PersistentCookiesPolicy.NoPersistentCookies
    )
    profile.setSpellCheckEnabled(False)
    blocker = RemoteBlocker(profile)
    profile.setUrlRequestInterceptor(blocker)
    handler = LocalSchemeHandler(mailbox, profile)
    profile.installUrlSchemeHandler(SCHEME.encode(), handler)
    s = profile.settings()
    attr = QWebEngineSettings.WebAttribute
    for name, value in (
        (attr.JavascriptEnabled, False),
        (attr.JavascriptCanOpenWindows, False),
        (attr.JavascriptCanAccessClipboard, False),
        (attr.PluginsEnabled, False),
        (attr.LocalStorageEnabled, False),
        (attr.LocalContentCanAccessRemoteUrls, True),  # gated by the interceptor instead
        (attr.LocalContentCanAccessFileUrls, False),
        (attr.ErrorPageEnabled, False),
        (attr.HyperlinkAuditingEnabled, False),
        (attr.DnsPrefetchEnabled, False),
        (attr.NavigateOnDropEnabled, False),
        (attr.PdfViewerEnabled, False),
        (attr.AutoLoadImages, True),
        (attr.AutoLoadIconsForPage, False),
        (attr.WebRTCPublicInterfacesOnly, True),
    ):
        s.setAttribute(name, value)
    return profile, blocker, handler


class ReaderPane(QWidget):
    message_shown = Signal(int)
    link_requested = Signal(QUrl)
    mark_read_requested = Signal(int)
    remote_blocked = Signal(int)

    def __init__(
        self,
        mailbox: Mailbox,
        settings: QSettings,
        parent: QWidget | None = None,
        *,
        profile: ProfileParts | None = None,
    ) -> None:
        super().__init__(parent)
        self.mailbox = mailbox
        self.settings = settings
        self.message_id: int | None = None
        self.document: ReaderDocument | None = None
        self._pending: TaskHandle | None = None
        self._tmpdir: Path | None = None
        self._mark_timer = QTimer(self)
        self._mark_timer.setSingleShot(True)
        self._mark_timer.timeout.connect(self._mark_read)
        self._mark_candidate: int | None = None

        self._page_holder = QObject(self)  # deleted before the profile (see make_profile)
        if profile is not None:
            profile[0].setParent(self)  # after the page's holder: deleted after it
        self.profile, self.blocker, self.handler = profile or make_profile(mailbox, self)
        self.blocker.request_blocked.connect(self._on_blocked)
        self.page = ReaderPage(self.profile, self._page_holder)
        self.page.link_requested.connect(self.link_requested)
        self.page.loadFinished.connect(self._on_loaded)
        self.view = QWebEngineView(self)
        self.view.setPage(self.page)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.view.setAcceptDrops(False)

        self.subject = QLabel(self)
        self.subject.setObjectName("readerSubject")
        self.subject.setWordWrap(True)
        self.subject.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.subject.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.subject.setFont(font)
        self.headers = QLabel(self)
        self.headers.setObjectName("readerHeaders")
        self.headers.setWordWrap(True)
        self.headers.setTextFormat(Qt.TextFormat.PlainText)
        self.headers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.remote_bar = QFrame(self)
        self.remote_bar.setObjectName("remoteBar")
        self.remote_bar.setStyleSheet("#remoteBar { background: #fff4ce; border-radius: 4px; }")
        self.remote_label = QLabel(self.remote_bar)
        self.load_remote = QPushButton("Load remote content", self.remote_bar)
        self.load_remote.clicked.connect(self.allow_remote)
        self.always_remote = QPushButton("Always for this sender", self.remote_bar)
        self.always_remote.clicked.connect(self.allow_sender)
        rb = QHBoxLayout(self.remote_bar)
        rb.setContentsMargins(8, 4, 8, 4)
        rb.addWidget(self.remote_label, 1)
        rb.addWidget(self.load_remote)
        rb.addWidget(self.always_remote)
        self.remote_bar.hide()

        # Issue 8: invitation card, unsubscribe bar, attachment previews (their own modules).
        from ui.attachmentbar import AttachmentBar
        from ui.invitecard import InviteCard
        from ui.safety import Analysis
        from ui.unsubscribebar import UnsubscribeBar

        self.invite_card = InviteCard(mailbox.services, settings, self)
        self.unsubscribe_bar = UnsubscribeBar(mailbox.services, self)
        self.attach_bar = AttachmentBar(mailbox.services, self)
        self.analysis = Analysis()

        self.placeholder = QLabel("No message selected", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.subject)
        layout.addWidget(self.headers)
        layout.addWidget(self.remote_bar)
        layout.addWidget(self.unsubscribe_bar)
        layout.addWidget(self.invite_card)
        layout.addWidget(self.attach_bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.placeholder, 1)
        self.clear()

    # -- showing ---------------------------------------------------------------------

    def clear(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self.message_id = None
        self.document = None
        self._mark_timer.stop()
        self.subject.hide()
        self.headers.hide()
        self.remote_bar.hide()
        self.attach_bar.clear()
        self.invite_card.clear()
        self.unsubscribe_bar.clear()
        self.view.hide()
        self.placeholder.show()

    def show_message(self, message_id: int) -> None:
        """Parse off the GUI thread, then load the document (stale results are dropped)."""
        if self._pending is not None:
            self._pending.cancel()
        self._mark_timer.stop()
        self.message_id = message_id
        mailbox = self.mailbox
        self._pending = run_task(
            lambda: mailbox.reader(message_id),
            lambda doc: self._show_document(message_id, doc),
            self._on_failed,
            owner=self,
        )

    def _on_failed(self, exc: BaseException) -> None:
        from ui.bridge import known_error

        text = known_error(exc)
        if text is None:
            from ui.bridge import report_error

            report_error(exc)
            return
        self.clear()
        self.placeholder.setText(text)

    def _show_document(self, message_id: int, doc: ReaderDocument) -> None:
        if message_id != self.message_id:
            return
        self.document = doc
        d = doc.detail
        s = d.summary
        self.subject.setText(s.subject or "(no subject)")
        lines = [f"From: {s.sender.display()}"]
        if s.to:
            lines.append("To: " + ", ".join(a.display() for a in s.to))
        if d.cc:
            lines.append("Cc: " + ", ".join(a.display() for a in d.cc))
        if d.reply_to and [a.email for a in d.reply_to] != [s.sender.email]:
            lines.append("Reply-To: " + ", ".join(a.display() for a in d.reply_to))
        if s.date is not None:
            lines.append("Date: " + s.date.astimezone().strftime("%a %d %b %Y %H:%M"))
        self.headers.setText("\n".join(lines))
        self._build_attachments(doc.attachments)
        self.placeholder.hide()
        for w in (self.subject, self.headers, self.view):
            w.show()
        if self.sender_allowed(s.sender.email):
            self.blocker.allowed.add(message_id)
        from ui.safety import Analysis

        self.analysis = Analysis()  # analysed once loaded (see _on_loaded)
        self.invite_card.show_message(message_id)
        self.unsubscribe_bar.show_message(message_id, d)
        self._update_remote_bar()
        self.handler.documents = {message_id: doc.document.encode("utf-8")}
        self.view.load(QUrl(body_url(message_id)))
        if "seen" not in s.flags:
            self._mark_candidate = message_id
            self._mark_timer.start(MARK_READ_DELAY_MS)

    def prime(self) -> None:
        """Show an empty document now, in idle time, so that Chromium starts the
        renderer of our pages, and the view its compositor, before the first message
        instead of with it (the view is hidden again once it has painted)."""
        if self.message_id is None:
            self.handler.documents = {0: b"<!doctype html><title></title>"}
            self.placeholder.hide()
            self.view.show()
            self.view.load(QUrl(body_url(0)))

    def _on_loaded(self, ok: bool) -> None:
        if self.message_id is None and self.document is None:
            QTimer.singleShot(0, self, self._end_prime)
            return
        if self.message_id is not None and self.document is not None:
            self.message_shown.emit(self.message_id)
            # After the load, not during it: the analysis is Python work on the pool,
            # and Chromium's request interceptor (Python too) waits for the GIL, which
            # made an HTML newsletter take 110-310 ms to show instead of 80-120.
            self._analyse(self.message_id, self.document)

    def _end_prime(self) -> None:
        if self.message_id is None:
            self.clear()

    def _mark_read(self) -> None:
        if self._mark_candidate is not None and self._mark_candidate == self.message_id:
            self.mark_read_requested.emit(self._mark_candidate)
        self._mark_candidate = None

    # -- remote content ----------------------------------------------------------------

    def _on_blocked(self, mid: int, url: str) -> None:
        if mid == self.message_id:
            self._update_remote_bar()
            self.remote_blocked.emit(len(self.blocker.blocked_for(mid)))

    def _update_remote_bar(self) -> None:
        mid = self.message_id
        doc = self.document
        if mid is None or doc is None or mid in self.blocker.allowed:
            self.remote_bar.hide()
            return
        blocked = len(self.blocker.blocked_for(mid))
        if not blocked and not doc.remote_refs:
            self.remote_bar.hide()
            return
        from ui.safety import remote_bar_text

        self.remote_label.setText(
            remote_bar_text(self.blocker.blocked_for(mid), doc.remote_refs, self.analysis)
        )
        self.always_remote.setText(f"Always for {doc.detail.summary.sender.email or 'this sender'}")
        self.always_remote.setEnabled(bool(doc.detail.summary.sender.email))
        self.remote_bar.show()

    def _analyse(self, message_id: int, doc: ReaderDocument) -> None:
        """Tracking pixels and deceptive links of the document (ui/safety.py), off the GUI."""
        from ui.safety import Analysis, analyse

        self.analysis = Analysis()
        if not doc.is_html:
            return

        def done(found: Analysis) -> None:
            if message_id == self.message_id:
                self.analysis = found
                self._update_remote_bar()

        run_task(lambda: analyse(doc.document), done, owner=self)

    def link_warning(self, url: QUrl) -> str | None:
        """A warning when the clicked link's text shows another address than its target."""
        from ui.safety import analyse, mismatch_for

        doc = self.document
        if doc is None or not doc.is_html:
            return None
        if not self.analysis.mismatches and not self.analysis.remote_images:
            self.analysis = analyse(doc.document)  # clicked before the analysis came back
        return mismatch_for(self.analysis, url)

    def allow_remote(self) -> None:
        """Load remote content of the current message (this time only)."""
        if self.message_id is None:
            return
        self.blocker.allowed.add(self.message_id)
        self.remote_bar.hide()
        self.page.triggerAction(QWebEnginePage.WebAction.ReloadAndBypassCache)

    def allow_sender(self) -> None:
        doc = self.document
        if doc is None or not doc.detail.summary.sender.email:
            return
        senders = {*allowed_senders(self.settings), doc.detail.summary.sender.email.casefold()}
        self.settings.setValue(SENDERS_KEY, sorted(senders))
        self.allow_remote()

    def sender_allowed(self, email: str) -> bool:
        return bool(email) and email.casefold() in allowed_senders(self.settings)

    # -- attachments -------------------------------------------------------------------

    def _build_attachments(self, attachments: tuple[AttachmentInfo, ...]) -> None:
        assert self.message_id is not None
        self.attach_bar.set_attachments(self.message_id, attachments)

    def _attachment_bytes(self, a: AttachmentInfo) -> bytes:
        assert self.message_id is not None
        return self.mailbox.attachment(self.message_id, a.part_id)

    def temp_dir(self) -> Path:
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="tidings-open-"))
            os.chmod(self._tmpdir, 0o700)
        return self._tmpdir

    def export_attachment(self, a: AttachmentInfo) -> Path:
        """Write an attachment into the private temp folder; returns its path."""
        from storage.mime import sanitize_filename

        folder = Path(tempfile.mkdtemp(dir=self.temp_dir()))
        name = sanitize_filename(a.filename) or f"attachment-{a.part_id}"
        path = folder / name
        path.write_bytes(self._attachment_bytes(a))
        os.chmod(path, 0o400)
        return path

    def open_attachment(self, a: AttachmentInfo) -> None:
        path = self.export_attachment(a)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def save_attachment(self, a: AttachmentInfo, target: str | None = None) -> Path | None:
        from storage.mime import sanitize_filename

        name = sanitize_filename(a.filename) or f"attachment-{a.part_id}"
        if target is None:
            start = str(Path.home() / name)
            target, _ = QFileDialog.getSaveFileName(self, "Save attachment", start)
            if not target:
                return None
        path = Path(target)
        if path.is_dir():
            path = path / name
        path.write_bytes(self._attachment_bytes(a))
        return path

    def cleanup(self) -> None:
        if self._tmpdir is not None:
            with contextlib.suppress(OSError):
                for p in self._tmpdir.rglob("*"):
                    with contextlib.suppress(OSError):
                        os.chmod(p, 0o700)
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"
