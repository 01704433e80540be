"""Account setup: address, servers, security, password; "Test connection" in the background.

Why it is shaped this way:

* Servers are guessed from the address (``imap.<domain>``/``smtp.<domain>``, implicit
  TLS on 993/465) and ports follow the security choice until the user edits them, so
  the common case is three fields: address, password, OK.
* "Test connection" runs ``app.mailbox.check_connection`` on the thread pool (it logs
  in to IMAP and SMTP over the network, each step bounded by ``connection_timeout``)
  and shows one line: "✔ IMAP: logged in ... (7 folders); SMTP: logged in ..." or
  what failed, in the server's own words, and what works; one line per server is in
  the tooltip. The dialog stays responsive while it runs.
* The password goes to the system keyring (``app.secrets``), never the database; the
  account row records only where it lives. Without a keyring backend the dialog says
  so and offers a password command or an environment variable instead, the same
  choices as ``tidings account add``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.mailbox import ConnectionReport, check_connection
from app.services import Services
from storage.dto import AccountInfo
from ui.bridge import known_error, run_task

__all__ = ["AccountDialog"]

_IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
_SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
_SECRET_SOURCES = (
    ("keyring", "Password (kept in the system keyring)"),
    ("command", "Password command (e.g. pass show mail/work)"),
    ("env", "Environment variable"),
)


class AccountDialog(QDialog):
    """Signals: tested(object ConnectionReport)."""

    from PySide6.QtCore import Signal

    tested = Signal(object)

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.created: AccountInfo | None = None
        self.report: ConnectionReport | None = None
        self.connection_timeout = 20.0  # seconds per step of "Test connection"
        self.setWindowTitle("Add account")
        self.setMinimumWidth(520)

        self.email = QLineEdit(self)
        self.email.setPlaceholderText("you@example.com")
        self.display_name = QLineEdit(self)
        self.account_name = QLineEdit(self)
        self.account_name.setPlaceholderText("work, personal, …")
        self.username = QLineEdit(self)
        self.username.setPlaceholderText("(the address)")
        self.secret_source = QComboBox(self)
        for key, label in _SECRET_SOURCES:
            self.secret_source.addItem(label, key)
        self.secret = QLineEdit(self)
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.imap_host = QLineEdit(self)
        self.imap_security = QComboBox(self)
        self.smtp_host = QLineEdit(self)
        self.smtp_security = QComboBox(self)
        for box in (self.imap_security, self.smtp_security):
            box.addItem("SSL/TLS", "ssl")
            box.addItem("STARTTLS", "starttls")
            box.addItem("None (unencrypted)", "none")
        self.imap_port = QSpinBox(self)
        self.smtp_port = QSpinBox(self)
        for spin in (self.imap_port, self.smtp_port):
            spin.setRange(1, 65535)
        self.imap_port.setValue(993)
        self.smtp_port.setValue(465)
        self.result = QLabel(self)
        self.result.setObjectName("testResult")
        self.result.setWordWrap(True)
        self.test_button = QPushButton("Test connection", self)
        self.test_button.clicked.connect(self.test_connection)

        def row(*widgets: QWidget) -> QWidget:
            w = QWidget(self)
            lay = QHBoxLayout(w)
            lay.setContentsMargins(0, 0, 0, 0)
            for x in widgets:
                lay.addWidget(x)
            return w

        form = QFormLayout()
        form.addRow("Email address", self.email)
        form.addRow("Your name", self.display_name)
        form.addRow("Account name", self.account_name)
        form.addRow("IMAP server", row(self.imap_host, self.imap_security, self.imap_port))
        form.addRow("SMTP server", row(self.smtp_host, self.smtp_security, self.smtp_port))
        form.addRow("User name", self.username)
        form.addRow("Sign in with", self.secret_source)
        self.secret_label = QLabel("Password", self)
        form.addRow(self.secret_label, self.secret)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.test_button)
        layout.addWidget(self.result)
        layout.addWidget(self.buttons)

        self._ports_touched = {"imap": False, "smtp": False}
        self.email.textEdited.connect(self._guess)
        self.imap_security.currentIndexChanged.connect(lambda _i: self._port("imap"))
        self.smtp_security.currentIndexChanged.connect(lambda _i: self._port("smtp"))
        self.imap_port.valueChanged.connect(lambda _v: self._touch("imap"))
        self.smtp_port.valueChanged.connect(lambda _v: self._touch("smtp"))
        self.secret_source.currentIndexChanged.connect(self._source_changed)
        self._setting_port = False

    # ------------------------------------------------------------------ guessing

    def _guess(self, text: str) -> None:
        domain = text.rpartition("@")[2].strip()
        if not domain:
            return
        if not self.imap_host.isModified():
            self.imap_host.setText(f"imap.{domain}")
        if not self.smtp_host.isModified():
            self.smtp_host.setText(f"smtp.{domain}")
        if not self.account_name.isModified():
            self.account_name.setText(domain.split(".")[0])

    def _touch(self, which: str) -> None:
        if not self._setting_port:
            self._ports_touched[which] = True

    def _port(self, which: str) -> None:
        if self._ports_touched[which]:
            return
        self._setting_port = True
        if which == "imap":
            self.imap_port.setValue(_IMAP_PORTS[str(self.imap_security.currentData())])
        else:
            self.smtp_port.setValue(_SMTP_PORTS[str(self.smtp_security.currentData())])
        self._setting_port = False

    def _source_changed(self, _index: int) -> None:
        source = self.secret_source.currentData()
        self.secret_label.setText(
            {"keyring": "Password", "command": "Command", "env": "Variable"}[str(source)]
        )
        self.secret.setEchoMode(
            QLineEdit.EchoMode.Password if source == "keyring" else QLineEdit.EchoMode.Normal
        )

    # ------------------------------------------------------------------ values

    def values(self) -> dict[str, Any]:
        email = self.email.text().strip()
        return {
            "name": self.account_name.text().strip() or email.rpartition("@")[2].split(".")[0],
            "email": email,
            "display_name": self.display_name.text().strip(),
            "imap_host": self.imap_host.text().strip(),
            "imap_port": self.imap_port.value(),
            "imap_security": str(self.imap_security.currentData()),
            "smtp_host": self.smtp_host.text().strip() or None,
            "smtp_port": self.smtp_port.value(),
            "smtp_security": str(self.smtp_security.currentData()),
            "username": self.username.text().strip() or email,
            "source": str(self.secret_source.currentData()),
            "secret": self.secret.text(),
        }

    def _problem(self, v: dict[str, Any]) -> str | None:
        email = v["email"]
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            return "Enter an email address."
        if not v["imap_host"]:
            return "Enter the IMAP server."
        if not v["secret"]:
            return (
                "Enter the password."
                if v["source"] == "keyring"
                else "Enter where the password comes from."
            )
        return None

    def _resolve_secret(self, v: dict[str, Any]) -> str:
        """The secret to test with (a command is run, a variable is read)."""
        from app import secrets

        probe = AccountInfo(
            id=0, name=v["name"], email=v["email"], display_name="", kind="imap",
            imap_host=None, imap_port=None, imap_security=None, smtp_host=None, smtp_port=None,
            smtp_security=None, username=None, auth="password", secret_source=v["source"],
            secret_ref=v["secret"], ca_file=None, server_files_sent=False,
        )  # fmt: skip
        if v["source"] == "keyring":
            return str(v["secret"])
        return secrets.get_secret(probe)

    # ------------------------------------------------------------------ test & save

    def test_connection(self) -> None:
        v = self.values()
        problem = self._problem(v)
        if problem:
            self._show(problem, ok=False)
            return
        timeout = self.connection_timeout
        self.test_button.setEnabled(False)
        self._show("Testing…", ok=None)

        def work() -> ConnectionReport:
            secret = self._resolve_secret(v)
            return check_connection(
                email=v["email"],
                username=v["username"],
                secret=secret,
                imap_host=v["imap_host"],
                imap_port=v["imap_port"],
                imap_security=v["imap_security"],
                smtp_host=v["smtp_host"],
                smtp_port=v["smtp_port"],
                smtp_security=v["smtp_security"],
                timeout=timeout,
            )

        def done(report: ConnectionReport) -> None:
            self.report = report
            self.test_button.setEnabled(True)
            self._show(report.summary, ok=report.ok, details="\n".join(report.lines))
            self.tested.emit(report)

        def failed(exc: BaseException) -> None:
            self.test_button.setEnabled(True)
            text = known_error(exc) or f"{type(exc).__name__}: {exc}"
            self.report = ConnectionReport(False, (text,), (text,))
            self._show(text, ok=False)
            self.tested.emit(self.report)

        run_task(work, done, failed, owner=self)

    def _show(self, text: str, *, ok: bool | None, details: str = "") -> None:
        color = {True: "#1e8e3e", False: "#b3261e", None: "#5f6368"}[ok]
        self.result.setStyleSheet(f"color: {color};")
        self.result.setText(("✔ " if ok else "✖ " if ok is False else "") + text)
        self.result.setToolTip(details)

    def save(self) -> AccountInfo | None:
        from app import secrets
        from storage.accounts import NewAccount

        v = self.values()
        problem = self._problem(v)
        if problem:
            self._show(problem, ok=False)
            return None
        source, ref = v["source"], v["secret"]
        try:
            if any(a.name == v["name"] for a in self.services.accounts()):
                self._show(f"An account named {v['name']!r} exists already.", ok=False)
                return None
            if source == "keyring":
                ref = f"{v['name']}:{v['username']}"
                secrets.store_in_keyring(ref, v["secret"])
            info = self.services.add_account(
                NewAccount(
                    name=v["name"],
                    email=v["email"],
                    display_name=v["display_name"],
                    imap_host=v["imap_host"],
                    imap_port=v["imap_port"],
                    imap_security=v["imap_security"],
                    smtp_host=v["smtp_host"],
                    smtp_port=v["smtp_port"] if v["smtp_host"] else None,
                    smtp_security=v["smtp_security"] if v["smtp_host"] else None,
                    username=v["username"],
                    secret_source=source,
                    secret_ref=ref,
                )
            )
        except Exception as exc:
            text = known_error(exc)
            if text is None:
                raise
            self._show(text, ok=False)
            return None
        self.created = info
        return info

    def accept(self) -> None:
        if self.save() is not None:
            super().accept()
