"""The compose window: addresses with autocomplete, subject, plain or rich text,
attachments (button or drag and drop), replies and forwards prefilled, drafts saved as
you type, and Send into the outbox with an undo window.

Why it is shaped this way:

* All message building is ``app.compose`` (the same bytes the CLI's ``tidings send``
  makes): ``reply``/``forward`` prefill the fields, ``build`` validates and builds on
  Send. A bad address or a missing recipient is shown in one line in the window.
* Drafts are saved locally (``Services.save_draft``: into the account's Drafts folder
  and queued for the server) every few seconds while the text changes and when the
  window closes, so a crash loses at most a few seconds. A draft must be savable while
  half typed ("bob@"), which the strict builder refuses, so drafts are written with
  the standard library from the fields as typed, with a private header holding the
  compose session's key: reopening a draft (Enter on it in Drafts) keeps replacing the
  same draft instead of piling up versions.
* Send queues the built message with ``send_at = now + undo window`` (10 s, a setting)
  and discards the draft; the main window shows "Undo" for that long, and undoing
  cancels the outgoing message and reopens the window with what was written.
* Contacts come from ``Mailbox.contacts`` (people written to rank first); completion
  works on the address being typed after the last comma.

Signals:
    queued(int item_id, float seconds, object reopen): the message went to the outbox.
    draft_saved(int message_id): a draft version was stored.
    closed(): the window closed (after saving the draft if needed).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QFont, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app import compose as mail
from app.mailbox import Mailbox
from app.services import Services

__all__ = ["ComposeFields", "ComposeWindow"]

DRAFT_HEADER = "X-Tidings-Draft"
AUTOSAVE_MS = 4000
DEFAULT_UNDO_SECONDS = 10.0


@dataclass
class ComposeFields:
    account: str = ""
    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    text: str = ""
    html: str | None = None
    attachments: list[mail.AttachmentSpec] = field(default_factory=list)
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to_message: int | None = None
    draft_key: str = ""


def _one_line(text: str) -> str:
    return re.sub(r"[\r\n]+", " ", text).strip()


def draft_bytes(identity: mail.Identity, f: ComposeFields) -> bytes:
    """A draft as typed (no validation: half-written addresses are kept as text)."""
    msg = EmailMessage(policy=SMTP)
    sender = f"{identity.name} <{identity.address}>" if identity.name else identity.address
    msg["From"] = _one_line(sender)
    for name, value in (("To", f.to), ("Cc", f.cc), ("Bcc", f.bcc)):
        if value.strip():  # kept as typed ("bob@" is a draft, not an error)
            text = _one_line(value)
            msg.set_raw(name, text if text.isascii() else Header(text, "utf-8").encode())
    msg["Subject"] = _one_line(f.subject)
    msg["Date"] = format_datetime(datetime.now(UTC))
    domain = identity.address.rpartition("@")[2] or "tidings.invalid"
    msg["Message-ID"] = make_msgid(domain=domain)
    if f.in_reply_to:
        msg["In-Reply-To"] = f"<{f.in_reply_to}>"
    if f.references:
        msg["References"] = " ".join(f"<{r}>" for r in f.references)
    msg[DRAFT_HEADER] = f.draft_key
    msg.set_content(f.text or "")
    if f.html is not None:
        msg.add_alternative(f.html, subtype="html")
    for spec in f.attachments:
        ctype = spec.content_type or "application/octet-stream"
        maintype, _, subtype = ctype.split(";")[0].strip().partition("/")
        msg.add_attachment(
            spec.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=spec.filename,
        )
    return msg.as_bytes()


class AddressEdit(QLineEdit):
    """A line of addresses; completes the one after the last comma from contacts."""

    def __init__(self, mailbox: Mailbox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mailbox = mailbox
        self._model = QStringListModel(self)
        self.completer_ = QCompleter(self._model, self)
        self.completer_.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer_.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.completer_.setWidget(self)
        self.completer_.activated.connect(self._insert)
        self.textEdited.connect(self._suggest)

    def _split(self) -> tuple[str, str]:
        text = self.text()
        cut = max(text.rfind(","), text.rfind(";"))
        return text[: cut + 1], text[cut + 1 :].strip()

    def suggestions(self) -> list[str]:
        return self._model.stringList()

    def _suggest(self, _text: str) -> None:
        _head, token = self._split()
        if len(token) < 1:
            self.completer_.popup().hide()
            return
        found = [c.display() for c in self.mailbox.contacts(token, 10)]
        self._model.setStringList(found)
        if found:
            self.completer_.complete()
        else:
            self.completer_.popup().hide()

    def _insert(self, choice: str) -> None:
        head, _token = self._split()
        self.setText(f"{head} {choice}, ".lstrip() if head else f"{choice}, ")


class ComposeWindow(QWidget):
    queued = Signal(int, float, object)
    draft_saved = Signal(int)
    closed = Signal()

    def __init__(
        self,
        services: Services,
        mailbox: Mailbox,
        settings: Any,
        *,
        mode: str | None = None,
        original_id: int | None = None,
        draft_of: int | None = None,
        to: str = "",
        fields: ComposeFields | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.services = services
        self.mailbox = mailbox
        self.settings = settings
        self.sent_item: int | None = None
        self.draft_message: int | None = None
        self._dirty = False
        self._done = False
        self.resize(760, 620)
        self.setAcceptDrops(True)

        accounts = services.accounts()
        self.account_box = QComboBox(self)
        for a in accounts:
            label = f"{a.display_name} <{a.email}>" if a.display_name else a.email
            self.account_box.addItem(f"{label}  ({a.name})", a.name)
        self.to_edit = AddressEdit(mailbox, self)
        self.cc_edit = AddressEdit(mailbox, self)
        self.bcc_edit = AddressEdit(mailbox, self)
        self.subject_edit = QLineEdit(self)
        self.rich_box = QCheckBox("Rich text", self)
        self.body = QTextEdit(self)
        self.body.setAcceptRichText(False)
        self.body.setAcceptDrops(False)
        self.attach_list = QListWidget(self)
        self.attach_list.setMaximumHeight(80)
        self.attach_list.hide()
        self.error_label = QLabel(self)
        self.error_label.setObjectName("composeError")
        self.error_label.setStyleSheet("color: #b3261e;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        self.status_label = QLabel(self)
        self.status_label.setStyleSheet("color: #5f6368;")

        self.send_button = QPushButton("Send", self)
        self.send_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.send_button.clicked.connect(self.send)
        self.attach_button = QPushButton("Attach…", self)
        self.attach_button.clicked.connect(self.choose_attachments)
        self.save_button = QPushButton("Save draft", self)
        self.save_button.setShortcut(QKeySequence("Ctrl+S"))
        self.save_button.clicked.connect(lambda _checked=False: self.save_draft())
        self.discard_button = QPushButton("Discard", self)
        self.discard_button.clicked.connect(self.discard)
        self.bold_button = QPushButton("B", self)
        self.bold_button.setShortcut(QKeySequence("Ctrl+B"))
        self.bold_button.setCheckable(True)
        self.bold_button.clicked.connect(self._bold)
        self.italic_button = QPushButton("I", self)
        self.italic_button.setShortcut(QKeySequence("Ctrl+I"))
        self.italic_button.setCheckable(True)
        self.italic_button.clicked.connect(
            lambda on: self.body.setFontItalic(bool(on)) if self.rich_box.isChecked() else None
        )
        self.rich_box.toggled.connect(self._rich_toggled)
        self._rich_toggled(False)

        form = QFormLayout()
        form.addRow("From", self.account_box)
        form.addRow("To", self.to_edit)
        form.addRow("Cc", self.cc_edit)
        form.addRow("Bcc", self.bcc_edit)
        form.addRow("Subject", self.subject_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.attach_button)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.discard_button)
        buttons.addStretch(1)
        buttons.addWidget(self.rich_box)
        buttons.addWidget(self.bold_button)
        buttons.addWidget(self.italic_button)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.attach_list)
        layout.addWidget(self.status_label)

        self.fields = fields or self._prefill(mode, original_id, draft_of, to)
        if not self.fields.draft_key:
            self.fields.draft_key = uuid.uuid4().hex
        self._show_fields(self.fields)
        for w in (self.to_edit, self.cc_edit, self.bcc_edit, self.subject_edit):
            w.textChanged.connect(self._touched)
        self.body.textChanged.connect(self._touched)
        self.account_box.currentIndexChanged.connect(self._touched)
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.timeout.connect(lambda: self.save_draft(quiet=True))
        (self.body if self.fields.to else self.to_edit).setFocus()
        self._dirty = False  # prefilled, not typed: nothing to save yet

    # ------------------------------------------------------------------ prefill

    def _identity(self, account: str) -> mail.Identity:
        info = self.services.account(account)
        return mail.Identity(info.email, info.display_name)

    def _default_account(self) -> str:
        accounts = self.services.accounts()
        for a in accounts:
            if a.kind == "imap" and a.smtp_host:
                return a.name
        return accounts[0].name if accounts else ""

    def _prefill(
        self, mode: str | None, original_id: int | None, draft_of: int | None, to: str
    ) -> ComposeFields:
        if draft_of is not None:
            return self._from_draft(draft_of)
        if mode is None or original_id is None:
            return ComposeFields(account=self._default_account(), to=to)
        detail = self.services.message(original_id)
        account = detail.summary.account
        identity = self._identity(account)
        raw = self.services.raw(original_id)
        if mode in ("reply", "reply_all"):
            d = mail.reply(identity, raw, reply_all=mode == "reply_all")
            reply_to: int | None = original_id
        else:
            d = mail.forward(identity, raw)
            reply_to = None
        return ComposeFields(
            account=account,
            to=", ".join(d.to),
            cc=", ".join(d.cc),
            subject=d.subject,
            text=d.text or "",
            attachments=list(d.attachments),
            in_reply_to=d.in_reply_to,
            references=d.references,
            reply_to_message=reply_to,
        )

    def _from_draft(self, message_id: int) -> ComposeFields:
        from storage.mime import extract_content, parse_envelope, part_bytes

        raw = self.services.raw(message_id)
        env = parse_envelope(raw)
        content = extract_content(raw)
        detail = self.services.message(message_id)

        def addrs(items: Any) -> str:
            return ", ".join(f"{a.name} <{a.email}>" if a.name else a.email for a in items)

        key = ""
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        m = re.search(rb"(?im)^" + DRAFT_HEADER.encode() + rb":\s*([0-9a-f]+)", head)
        if m:
            key = m.group(1).decode()
        attachments = []
        for a in content.attachments:
            data = part_bytes(raw, a.part_id)
            if data is not None:
                attachments.append(
                    mail.AttachmentSpec(a.filename or "attachment", data, a.content_type)
                )
        self.draft_message = message_id
        return ComposeFields(
            account=detail.summary.account,
            to=addrs(env.to),
            cc=addrs(env.cc),
            bcc=addrs(env.bcc),
            subject=env.subject,
            text=content.text,
            attachments=attachments,
            in_reply_to=env.in_reply_to[0] if env.in_reply_to else None,
            references=env.references,
            draft_key=key,
        )

    def _show_fields(self, f: ComposeFields) -> None:
        index = self.account_box.findData(f.account)
        if index >= 0:
            self.account_box.setCurrentIndex(index)
        self.to_edit.setText(f.to)
        self.cc_edit.setText(f.cc)
        self.bcc_edit.setText(f.bcc)
        self.subject_edit.setText(f.subject)
        if f.html is not None:
            self.rich_box.setChecked(True)
            self.body.setHtml(f.html)
        else:
            self.body.setPlainText(f.text)
        self._refresh_attachments()
        self.setWindowTitle(f.subject or "New message")

    # ------------------------------------------------------------------ editing

    def _touched(self, *_args: Any) -> None:
        self._dirty = True
        self.setWindowTitle(self.subject_edit.text() or "New message")
        self._autosave.start(AUTOSAVE_MS)

    def _rich_toggled(self, on: bool) -> None:
        self.body.setAcceptRichText(on)
        self.bold_button.setVisible(on)
        self.italic_button.setVisible(on)
        if not on and self.body.toHtml() != self.body.toPlainText():
            self.body.setPlainText(self.body.toPlainText())

    def _bold(self, on: bool) -> None:
        if self.rich_box.isChecked():
            self.body.setFontWeight(QFont.Weight.Bold if on else QFont.Weight.Normal)

    def current_fields(self) -> ComposeFields:
        rich = self.rich_box.isChecked()
        return replace(
            self.fields,
            account=str(self.account_box.currentData() or self.fields.account),
            to=self.to_edit.text().strip().rstrip(","),
            cc=self.cc_edit.text().strip().rstrip(","),
            bcc=self.bcc_edit.text().strip().rstrip(","),
            subject=self.subject_edit.text(),
            text=self.body.toPlainText(),
            html=self.body.toHtml() if rich else None,
            attachments=list(self.fields.attachments),
        )

    def add_attachment(self, path: str | Path) -> None:
        try:
            spec = mail.load_attachment(path)
        except mail.ComposeError as exc:
            self._error(str(exc))
            return
        self.fields.attachments.append(spec)
        self._refresh_attachments()
        self._touched()

    def choose_attachments(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach files")
        for p in paths:
            self.add_attachment(p)

    def _refresh_attachments(self) -> None:
        self.attach_list.clear()
        for spec in self.fields.attachments:
            item = QListWidgetItem(f"📎 {spec.filename} ({len(spec.data):,} bytes)")
            self.attach_list.addItem(item)
        self.attach_list.setVisible(bool(self.fields.attachments))

    def remove_attachment(self, row: int) -> None:
        if 0 <= row < len(self.fields.attachments):
            del self.fields.attachments[row]
            self._refresh_attachments()
            self._touched()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile() and Path(url.toLocalFile()).is_file():
                self.add_attachment(url.toLocalFile())
        event.acceptProposedAction()

    def _error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    # ------------------------------------------------------------------ drafts & sending

    def save_draft(self, *, quiet: bool = False) -> int | None:
        f = self.current_fields()
        if not f.account:
            return None
        try:
            raw = draft_bytes(self._identity(f.account), f)
            mid = self.services.save_draft(f.account, raw, f.draft_key)
        except Exception as exc:
            from ui.bridge import known_error

            text = known_error(exc)
            if text is None:
                raise
            self.status_label.setText(f"Draft not saved: {text}")
            return None
        self.draft_message = mid
        self._dirty = False
        self.status_label.setText(f"Draft saved at {datetime.now().strftime('%H:%M:%S')}")
        self.draft_saved.emit(mid)
        return mid

    def send(self) -> int | None:
        f = self.current_fields()
        self._error("")
        try:
            identity = self._identity(f.account)
            draft = mail.Draft(
                to=mail.parse_recipients([f.to]) if f.to else (),
                cc=mail.parse_recipients([f.cc]) if f.cc else (),
                bcc=mail.parse_recipients([f.bcc]) if f.bcc else (),
                subject=f.subject,
                text=f.text,
                html=f.html,
                attachments=tuple(f.attachments),
                in_reply_to=f.in_reply_to,
                references=f.references,
            )
            built = mail.build(identity, draft)
            seconds = float(self.settings.value("compose/undo_seconds", DEFAULT_UNDO_SECONDS))
            item = self.services.queue_mail(
                f.account,
                raw=built.raw,
                message_id=built.message_id,
                sender=built.sender,
                recipients=built.recipients,
                subject=f.subject,
                send_at=datetime.now(UTC) + timedelta(seconds=seconds),
                reply_to_message=f.reply_to_message,
            )
        except Exception as exc:
            from ui.bridge import known_error

            text = known_error(exc)
            if text is None:
                raise
            self._error(text)
            return None
        if self.draft_message is not None:
            with contextlib.suppress(Exception):
                self.services.discard_draft(f.account, f.draft_key)
        self.sent_item = item
        self._done = True
        self._autosave.stop()
        self.queued.emit(item, seconds, self._reopener(f))
        self.close()
        return item

    def _reopener(self, f: ComposeFields) -> Callable[[], None]:
        services, mailbox, settings = self.services, self.mailbox, self.settings
        keep: list[ComposeWindow] = []

        def reopen() -> None:
            w = ComposeWindow(services, mailbox, settings, fields=replace(f, draft_key=""))
            keep.append(w)
            w.show()

        reopen.windows = keep  # type: ignore[attr-defined]
        return reopen

    def discard(self) -> None:
        f = self.current_fields()
        if self.draft_message is not None:
            with contextlib.suppress(Exception):
                self.services.discard_draft(f.account, f.draft_key)
        self._done = True
        self._autosave.stop()
        self.close()

    def _has_content(self) -> bool:
        f = self.current_fields()
        return bool(f.to or f.cc or f.bcc or f.subject or f.text.strip() or f.attachments)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._autosave.stop()
        if not self._done and self._dirty and self._has_content():
            self.save_draft(quiet=True)
        self._done = True
        self.closed.emit()
        super().closeEvent(event)
