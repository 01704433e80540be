"""The reader's attachment bar: safe names, thumbnails, PDF preview, open and save.

Why it is shaped this way:

* Every name shown is the *safe name* from ``app.attachments.describe`` (the one a
  save writes, so what the user sees is what lands on disk), followed by its real
  extension in capitals (``invoice.pdf.exe`` shows ``EXE``): the last extension is
  what the file manager and the system handler go by. A risky file (it can run code)
  gets a warning sign, a red chip, the warning as tooltip, and opening it asks first.
* Thumbnails: images are decoded with ``QImage`` on the thread pool (QImage, unlike
  QPixmap, may be used off the GUI thread) and scaled there, so a 20 MB photo does not
  stall the window; PDFs get their first page rendered by QtPdf, also off the GUI
  thread. Images that the HTML body already shows (``cid:``) are not repeated here
  (the reader filters them out before handing the list over).
* Opening: images and PDFs open in a preview window inside Tidings (QtPdf's
  ``QPdfView`` for PDFs), where nothing can run; everything else is handed to the
  system's handler from a private read-only copy (``Services.open_attachment``).
  The preview window still offers "Open with system viewer".
* Saving goes through ``Services.save_attachments``: into a chosen folder, never
  overwriting, never outside that folder whatever the name says.

Signals:
    opened(str): an attachment was handed to the system handler (its path).
    previewed(object): a preview window was shown (the dialog).
    saved(object): files were saved (a list of ``Path``).
    failed(str): a one-line error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.attachments import AttachmentView, describe
from storage.dto import AttachmentInfo
from ui.bridge import known_error, report_error, run_task

if TYPE_CHECKING:
    from app.services import Services

__all__ = ["AttachmentBar", "PreviewDialog", "render_thumbnail"]

THUMB = QSize(96, 96)
MAX_THUMB_BYTES = 25 * 1024 * 1024  # bigger parts get a plain chip
_PREVIEWABLE_IMAGES = {
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/gif",
    "image/bmp",
    "image/webp",
    "image/x-icon",
}


def is_image(view: AttachmentView) -> bool:
    return view.content_type in _PREVIEWABLE_IMAGES or view.extension in (
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".webp",
    )


def is_pdf(view: AttachmentView) -> bool:
    return view.content_type == "application/pdf" or view.extension == ".pdf"


def _pdf_document(data: bytes) -> tuple[object, QBuffer]:
    from PySide6.QtPdf import QPdfDocument

    doc = QPdfDocument()
    buf = QBuffer()
    buf.setData(QByteArray(data))
    buf.open(QIODevice.OpenModeFlag.ReadOnly)
    doc.load(buf)
    return doc, buf


def render_thumbnail(view: AttachmentView, data: bytes, size: QSize = THUMB) -> QImage | None:
    """A thumbnail of an image or of a PDF's first page; None if it cannot be drawn.
    Safe to call on a pool thread."""
    if len(data) > MAX_THUMB_BYTES:
        return None
    if is_image(view) and not view.risky:
        img = QImage.fromData(data)
        if img.isNull():
            return None
        return img.scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    if is_pdf(view) and not view.risky:
        from PySide6.QtPdf import QPdfDocument

        doc, _buf = _pdf_document(data)
        assert isinstance(doc, QPdfDocument)
        if doc.status() != QPdfDocument.Status.Ready or doc.pageCount() < 1:
            return None
        page = doc.pagePointSize(0)
        if page.width() <= 0 or page.height() <= 0:
            return None
        scale = min(size.width() / page.width(), size.height() / page.height())
        target = QSize(max(1, int(page.width() * scale)), max(1, int(page.height() * scale)))
        img = doc.render(0, target)
        doc.close()
        return None if img.isNull() else img
    return None


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


class PreviewDialog(QDialog):
    """An image or a PDF shown inside Tidings (nothing in it can run)."""

    def __init__(self, view: AttachmentView, data: bytes, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachmentPreview")
        self.setWindowTitle(view.filename)
        self.view = view
        self.pdf: object | None = None
        self._buf: QBuffer | None = None
        self.system_button = QPushButton("Open with system viewer", self)
        self.save_button = QPushButton("Save…", self)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.system_button)
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        if is_pdf(view):
            from PySide6.QtPdfWidgets import QPdfView

            self.pdf, self._buf = _pdf_document(data)
            self.pdf_view = QPdfView(self)
            self.pdf_view.setDocument(self.pdf)  # type: ignore[arg-type]
            self.pdf_view.setPageMode(QPdfView.PageMode.MultiPage)
            self.pdf_view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
            layout.addWidget(self.pdf_view, 1)
        else:
            self.image = QImage.fromData(data)
            label = QLabel(self)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setPixmap(QPixmap.fromImage(self.image))
            area = QScrollArea(self)
            area.setWidget(label)
            area.setWidgetResizable(True)
            layout.addWidget(area, 1)
        layout.addLayout(buttons)
        self.resize(800, 900 if is_pdf(view) else 700)

    def page_count(self) -> int:
        from PySide6.QtPdf import QPdfDocument

        return self.pdf.pageCount() if isinstance(self.pdf, QPdfDocument) else 0


class AttachmentBar(QFrame):
    opened = Signal(str)
    previewed = Signal(object)
    saved = Signal(object)
    failed = Signal(str)

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.message_id: int | None = None
        self.views: list[AttachmentView] = []
        self.chips: dict[str, QToolButton] = {}
        self.previews: list[PreviewDialog] = []
        self.setObjectName("attachBar")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self.save_all_button = QPushButton("Save all…", self)
        self.save_all_button.clicked.connect(lambda _checked=False: self.save_all())
        self.hide()

    # -- showing ---------------------------------------------------------------------

    def clear(self) -> None:
        self.message_id = None
        self.views = []
        self.chips = {}
        while self._layout.count():
            item = self._layout.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None and w is not self.save_all_button:
                w.deleteLater()
        self.hide()

    def set_attachments(self, message_id: int, attachments: Sequence[AttachmentInfo]) -> None:
        self.clear()
        if not attachments:
            return
        self.message_id = message_id
        self.views = [describe(a, n) for n, a in enumerate(attachments, start=1)]
        for view in self.views:
            chip = self._chip(view)
            self.chips[view.part_id] = chip
            self._layout.addWidget(chip)
        self._layout.addStretch(1)
        if len(self.views) > 1:
            self._layout.addWidget(self.save_all_button)
        self.show()
        wanted = [v for v in self.views if (is_image(v) or is_pdf(v)) and not v.risky]
        if wanted:
            self._load_thumbnails(message_id, wanted)

    def _chip(self, view: AttachmentView) -> QToolButton:
        chip = QToolButton(self)
        chip.setObjectName("attachmentChip")
        ext = view.extension.lstrip(".").upper() or "FILE"
        mark = "⚠ " if view.risky else ""
        chip.setText(f"{mark}{view.filename}\n{ext} · {_size(view.size)}")
        chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tip = [view.filename, f"{view.content_type}, {_size(view.size)}"]
        if view.warning:
            tip.append(view.warning)
            chip.setStyleSheet("QToolButton { color: #b3261e; font-weight: bold; }")
        chip.setToolTip("\n".join(tip))
        chip.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        menu = QMenu(chip)
        if (is_image(view) or is_pdf(view)) and not view.risky:
            menu.addAction("Preview", lambda v=view: self.preview(v))
        menu.addAction("Open with system viewer", lambda v=view: self.open_external(v))
        menu.addAction("Save…", lambda v=view: self.save(v))
        chip.setMenu(menu)
        chip.clicked.connect(lambda _=False, v=view: self.open(v))
        return chip

    def _load_thumbnails(self, message_id: int, views: list[AttachmentView]) -> None:
        services = self.services

        def work() -> list[tuple[str, QImage]]:
            from storage.mime import part_bytes

            raw = services.raw(message_id)
            out = []
            for v in views:
                data = part_bytes(raw, v.part_id)
                img = render_thumbnail(v, data) if data is not None else None
                if img is not None:
                    out.append((v.part_id, img))
            return out

        def done(images: list[tuple[str, QImage]]) -> None:
            if message_id != self.message_id:
                return
            for part_id, img in images:
                chip = self.chips.get(part_id)
                if chip is not None:
                    chip.setIcon(QIcon(QPixmap.fromImage(img)))
                    chip.setIconSize(img.size())

        run_task(work, done, lambda exc: None, owner=self)

    def thumbnail_parts(self) -> list[str]:
        """Parts whose chip shows a thumbnail (for tests and accessibility)."""
        return [p for p, chip in self.chips.items() if not chip.icon().isNull()]

    # -- acting ----------------------------------------------------------------------

    def _data(self, view: AttachmentView) -> bytes:
        from storage.mime import part_bytes

        assert self.message_id is not None
        data = part_bytes(self.services.raw(self.message_id), view.part_id)
        if data is None:
            from app.errors import AttachmentError

            raise AttachmentError(f"message {self.message_id} has no part {view.part_id}")
        return data

    def _fail(self, exc: BaseException) -> None:
        text = known_error(exc)
        if text is None:
            report_error(exc)
            return
        self.failed.emit(text)
        QMessageBox.warning(self.window(), "Attachment", text)

    def open(self, view: AttachmentView) -> None:
        """Click: preview what Tidings can show itself, else the system handler."""
        if (is_image(view) or is_pdf(view)) and not view.risky:
            self.preview(view)
        else:
            self.open_external(view)

    def preview(self, view: AttachmentView) -> PreviewDialog | None:
        try:
            data = self._data(view)
        except Exception as exc:
            self._fail(exc)
            return None
        dialog = PreviewDialog(view, data, self.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.system_button.clicked.connect(lambda: self.open_external(view))
        dialog.save_button.clicked.connect(lambda: self.save(view))
        dialog.destroyed.connect(lambda _=None, d=dialog: self._forget(d))
        self.previews.append(dialog)
        dialog.show()
        self.previewed.emit(dialog)
        return dialog

    def _forget(self, dialog: PreviewDialog) -> None:
        if dialog in self.previews:
            self.previews.remove(dialog)

    def confirm_risky(self, view: AttachmentView) -> bool:
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Open attachment?",
            f"{view.warning}.\n\nOpen it only if you expected this file from this sender.",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
            self.window(),
        )
        box.setObjectName("riskyAttachment")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Open

    def open_external(self, view: AttachmentView, *, confirmed: bool = False) -> Path | None:
        """A private read-only copy, handed to the system's handler."""
        if self.message_id is None:
            return None
        if view.risky and not confirmed and not self.confirm_risky(view):
            return None
        try:
            path = self.services.open_attachment(self.message_id, view.part_id)
        except Exception as exc:
            self._fail(exc)
            return None
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
        self.opened.emit(str(path))
        return path

    def _ask_folder(self) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self, "Save attachments to", str(Path.home()))
        return Path(folder) if folder else None

    def save(self, view: AttachmentView, folder: Path | str | None = None) -> list[Path]:
        return self._save([view.part_id], folder)

    def save_all(self, folder: Path | str | None = None) -> list[Path]:
        return self._save(None, folder)

    def _save(self, parts: list[str] | None, folder: Path | str | None) -> list[Path]:
        if self.message_id is None:
            return []
        target = Path(folder) if folder is not None else self._ask_folder()
        if target is None:
            return []
        try:
            saved = self.services.save_attachments(self.message_id, target, parts)
        except Exception as exc:
            self._fail(exc)
            return []
        paths = [s.path for s in saved]
        self.saved.emit(paths)
        return paths
