"""Print and "Save as PDF" for a message or a whole conversation.

Why it is shaped this way:

* What is printed is a *print document*, not the page on screen: the single-message
  reader shows subject and headers in Qt labels above the web view, so a PDF of the
  page alone would lose who wrote it and when; and a conversation on screen has read
  messages collapsed. The print document of a message is the reader's own sanitised
  document with a header block (subject, From, To, Cc, Date) put in front; that of a
  conversation is the conversation page with every message open (quoted text stays
  folded, as on screen).
* It is rendered by Chromium itself (``QWebEnginePage.printToPdf``) in a hidden page
  of the *same* locked-down profile as the view it came from, so ``cid:`` images are
  served from the store, JavaScript stays off, and remote content is in the PDF only
  if the user let it in for that message. The document is handed to the profile's
  scheme handler under a private id (no ``setHtml``, which stops at 2 MB).
* Printing goes through PDF too: Chromium makes the PDF, QtPdf draws its pages on the
  ``QPrinter`` the print dialog set up. One rendering path for paper and file, and
  it works on every platform Qt prints on (Qt 6's web view can print directly only
  with its own widget on screen).

Signals (PrintJob):
    finished(bool, str): done; ok, and the PDF path (or the error in one line).
"""

from __future__ import annotations

import html as _html
from itertools import count
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QMarginsF, QObject, QUrl, Signal
from PySide6.QtGui import QPageLayout, QPageSize, QPainter
from PySide6.QtWebEngineCore import QWebEnginePage

from app.mailbox import SCHEME

if TYPE_CHECKING:
    from PySide6.QtPrintSupport import QPrinter

    from app.mailbox import ReaderDocument

__all__ = [
    "PrintJob",
    "message_print_document",
    "print_document",
    "print_pdf",
    "print_widget",
    "save_pdf",
]

_PRIVATE_IDS = count(9_000_000_000_000)  # never a real message id
_jobs: set[PrintJob] = set()


def message_print_document(doc: ReaderDocument) -> str:
    """The reader's document with the message's headers in front."""
    esc = _html.escape
    d = doc.detail
    s = d.summary
    rows = [("From", s.sender.display())]
    if s.to:
        rows.append(("To", ", ".join(a.display() for a in s.to)))
    if d.cc:
        rows.append(("Cc", ", ".join(a.display() for a in d.cc)))
    if s.date is not None:
        rows.append(("Date", s.date.astimezone().strftime("%a %d %b %Y %H:%M")))
    if s.has_attachments and doc.attachments:
        names = ", ".join(a.filename or f"part {a.part_id}" for a in doc.attachments)
        rows.append(("Attachments", names))
    table = "".join(
        f'<tr><td style="color:#5f6368;padding-right:10px;vertical-align:top">{esc(k)}</td>'
        f"<td>{esc(v)}</td></tr>"
        for k, v in rows
    )
    header = (
        '<div style="border-bottom:1px solid #ccc;margin:0 0 12px;padding-bottom:8px">'
        f'<div style="font-size:18px;font-weight:bold;margin-bottom:6px">'
        f"{esc(s.subject or '(no subject)')}</div>"
        f'<table style="font-size:12px;border-collapse:collapse">{table}</table></div>'
    )
    text = doc.document
    at = text.find("<body>")
    if at < 0:
        return header + text
    at += len("<body>")
    return text[:at] + header + text[at:]


class _PrintPage(QWebEnginePage):
    """Loads our print document and nothing else."""

    def acceptNavigationRequest(
        self, url: QUrl | str, nav_type: QWebEnginePage.NavigationType, is_main_frame: bool
    ) -> bool:
        return (
            is_main_frame
            and nav_type != QWebEnginePage.NavigationType.NavigationTypeLinkClicked
            and QUrl(url).scheme() == SCHEME
        )

    def createWindow(self, _type: QWebEnginePage.WebWindowType) -> QWebEnginePage | None:
        return None

    def javaScriptConsoleMessage(self, *args: Any) -> None:
        return


class PrintJob(QObject):
    """Renders a print document to a PDF file (``path``) or to bytes (``path=None``).

    ``source`` is the reader or the conversation view whose profile serves the page;
    ``remote_allowed`` lets remote content in when the user allowed it on screen.
    """

    finished = Signal(bool, str)

    def __init__(
        self,
        source: Any,
        document: str,
        *,
        path: str | None = None,
        remote_allowed: bool = False,
    ) -> None:
        super().__init__(source)
        self.path = path
        self.pdf: bytes | None = None
        self._key = next(_PRIVATE_IDS)
        self._handler = source.handler
        self._blocker = source.blocker
        self._handler.documents[self._key] = document.encode("utf-8")
        if remote_allowed:
            self._blocker.allowed.add(self._key)
        self.page = _PrintPage(source.profile, self)
        self.page.loadFinished.connect(self._loaded)
        self.page.pdfPrintingFinished.connect(self._written)
        _jobs.add(self)

    def start(self) -> PrintJob:
        self.page.load(QUrl(f"{SCHEME}://message/{self._key}/body"))
        return self

    def _layout(self) -> QPageLayout:
        return QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(12, 12, 12, 12),
            QPageLayout.Unit.Millimeter,
        )

    def _loaded(self, ok: bool) -> None:
        if not ok:
            self._finish(False, "the page could not be prepared for printing")
            return
        if self.path is not None:
            self.page.printToPdf(self.path, self._layout())
        else:
            self.page.printToPdf(self._bytes, self._layout())

    def _bytes(self, data: Any) -> None:
        self.pdf = bytes(data.data()) if hasattr(data, "data") else bytes(data)
        self._finish(bool(self.pdf), "" if self.pdf else "printing produced no pages")

    def _written(self, path: str, ok: bool) -> None:
        self._finish(ok, path if ok else f"could not write {path}")

    def _finish(self, ok: bool, text: str) -> None:
        self._handler.documents.pop(self._key, None)
        self._blocker.allowed.discard(self._key)
        _jobs.discard(self)
        self.finished.emit(ok, text)
        self.page.deleteLater()
        self.deleteLater()


def print_pdf(data: bytes, printer: QPrinter) -> int:
    """Draw a PDF's pages on a printer (set up by QPrintDialog); returns pages printed."""
    from PySide6.QtCore import QRect, QSize
    from PySide6.QtPdf import QPdfDocument

    from ui.attachmentbar import _pdf_document

    doc, _buf = _pdf_document(data)
    assert isinstance(doc, QPdfDocument)
    pages = doc.pageCount()
    if doc.status() != QPdfDocument.Status.Ready or pages < 1:
        return 0
    first, last = printer.fromPage(), printer.toPage()
    wanted = range(max(1, first) - 1, min(pages, last) if last else pages)
    painter = QPainter()
    if not painter.begin(printer):
        return 0
    printed = 0
    try:
        for n, page in enumerate(wanted):
            if n:
                printer.newPage()
            area = painter.viewport()
            size = doc.pagePointSize(page)
            scale = min(area.width() / size.width(), area.height() / size.height())
            target = QSize(int(size.width() * scale), int(size.height() * scale))
            image = doc.render(page, target)
            painter.drawImage(QRect(area.topLeft(), target), image)
            printed += 1
    finally:
        painter.end()
        doc.close()
    return printed


def print_document(widget: Any) -> tuple[str, bool] | None:
    """(print document, remote content allowed) for a ReaderPane or ConversationView
    showing something; None when it shows nothing."""
    from ui.conversation import ConversationView, build_document

    if isinstance(widget, ConversationView):
        conv = widget.conversation
        if conv is None:
            return None
        document, _ = build_document(conv.summaries, conv.prepared, expand_all=True)
        return document, conv.newest.id in widget.blocker.allowed
    doc = getattr(widget, "document", None)
    if doc is None or widget.message_id is None:
        return None
    return message_print_document(doc), widget.message_id in widget.blocker.allowed


def _title(widget: Any) -> str:
    from ui.conversation import ConversationView

    if isinstance(widget, ConversationView) and widget.conversation is not None:
        return widget.conversation.summaries[0].subject
    doc = getattr(widget, "document", None)
    return doc.detail.summary.subject if doc is not None else ""


def save_pdf(widget: Any, path: str | None = None) -> PrintJob | None:
    """Save what the widget shows as a PDF; without ``path`` the user picks the file."""
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    from storage.mime import sanitize_filename

    found = print_document(widget)
    if found is None:
        return None
    if path is None:
        name = (sanitize_filename(_title(widget).replace("/", "-"))[:80] or "message") + ".pdf"
        path, _ = QFileDialog.getSaveFileName(
            widget, "Save as PDF", str(Path.home() / name), "PDF files (*.pdf)"
        )
        if not path:
            return None
        if not path.lower().endswith(".pdf"):
            path += ".pdf"
    document, allowed = found
    return PrintJob(widget, document, path=path, remote_allowed=allowed).start()


def print_widget(widget: Any, printer: QPrinter | None = None) -> PrintJob | None:
    """Print what the widget shows; without ``printer`` the print dialog asks first."""
    from PySide6.QtPrintSupport import QPrintDialog, QPrinter

    found = print_document(widget)
    if found is None:
        return None
    if printer is None:
        printer = QPrinter(QPrinter.PrinterMode.HighResolution)
        printer.setDocName(_title(widget) or "Tidings")
        dialog = QPrintDialog(printer, widget)
        if dialog.exec() != QPrintDialog.DialogCode.Accepted:
            return None
    document, allowed = found
    job = PrintJob(widget, document, remote_allowed=allowed)
    chosen = printer

    def done(ok: bool, _text: str) -> None:
        if ok and job.pdf is not None:
            print_pdf(job.pdf, chosen)

    job.finished.connect(done)
    return job.start()
