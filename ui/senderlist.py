"""Settings: the senders whose remote content always loads.

The reader's "Always for <sender>" button adds to this list; this dialog is where the
user sees it and takes senders off it again (or adds one by hand). The list lives in
the profile's ``ui.ini`` under ``reader/remote_senders`` (lower-case addresses, sorted),
which is where ``ui.reader.ReaderPane`` and ``ui.conversation.ConversationView`` read
it, so a change applies to the next message opened. A whole domain is not accepted:
"always load" is a promise about one sender, and a domain would include every
address a spammer can make up there.

Signals:
    senders_changed(list): the list was saved (the new list).
"""

from __future__ import annotations

import re

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["KEY", "RemoteSendersDialog", "allowed_senders"]

KEY = "reader/remote_senders"
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def allowed_senders(settings: QSettings) -> list[str]:
    value = settings.value(KEY, [])
    if isinstance(value, str):
        value = [value]
    return sorted({str(v).casefold() for v in (value or []) if str(v).strip()})


class RemoteSendersDialog(QDialog):
    senders_changed = Signal(list)

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setObjectName("remoteSenders")
        self.setWindowTitle("Remote content")
        intro = QLabel(
            "Remote images and styles load automatically in mail from these senders. "
            "Everyone else's stay blocked until you load them.",
            self,
        )
        intro.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.addItems(allowed_senders(settings))
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self.remove_selected)
        self.entry = QLineEdit(self)
        self.entry.setPlaceholderText("name@example.org")
        self.add_button = QPushButton("Add", self)
        self.add_button.clicked.connect(self.add_entry)
        self.entry.returnPressed.connect(self.add_entry)
        self.error = QLabel(self)
        self.error.setStyleSheet("color: #b3261e;")
        self.error.hide()
        add_row = QHBoxLayout()
        add_row.addWidget(self.entry, 1)
        add_row.addWidget(self.add_button)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.remove_button)
        layout.addLayout(add_row)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(420, 360)

    def senders(self) -> list[str]:
        return [self.list.item(n).text() for n in range(self.list.count())]

    def remove_selected(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))

    def add_entry(self) -> None:
        text = self.entry.text().strip().casefold()
        if text.startswith("mailto:"):
            text = text[7:]
        if not _ADDRESS.match(text):
            self.error.setText(f"Not an email address: {self.entry.text().strip()!r}")
            self.error.show()
            return
        self.error.hide()
        if text not in self.senders():
            self.list.addItem(text)
            self.list.sortItems()
        self.entry.clear()

    def accept(self) -> None:
        senders = sorted(set(self.senders()))
        self.settings.setValue(KEY, senders)
        self.settings.sync()
        self.senders_changed.emit(senders)
        super().accept()
