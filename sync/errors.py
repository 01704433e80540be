"""The errors the sync engine raises: one tree, each class something a caller can act on.

::

    SyncError(Exception)               one-line user message in str(exc); .account: str | None
    ├── AuthFailed                     wrong user/password, or the server refused the mechanism
    ├── ServerUnreachable(SyncError, ConnectionError)
    │                                  DNS, refused, timeout while connecting
    ├── TlsError                       certificate not trusted, handshake failed, STARTTLS not
    │                                  offered when it was asked for
    ├── ProtocolError                  the server said something we cannot understand, or
    │                                  BAD/NO to a command we need
    ├── ConnectionLost(SyncError, ConnectionError)
    │                                  the connection dropped mid-session (reset, EOF, BYE,
    │                                  timeout mid-command); reconnect and carry on
    ├── FolderGone                     a folder to SELECT, COPY, MOVE or APPEND to is gone
    └── SmtpError                      sending failed; .code (int | None) and .reply (the
        │                              server's whole reply, "554 5.7.1 ...", or None)
        ├── SmtpTemporary              4xx, timeout, refused or dropped connection: the
        │                              same message may go through later; retry
        └── SmtpPermanent              5xx, too big for the server, an address it cannot
            │                          take: sending it again will fail again
            └── SmtpAuthFailed         535 and friends, or no login method we can use

TLS problems of SMTP (untrusted certificate, no STARTTLS) are ``TlsError`` too.

Why a tree of our own: callers (the sync runner, the CLI, the GUI via the worker's
events) decide by class -- retry later (``ServerUnreachable``, ``ConnectionLost``), ask
the user (``AuthFailed``, ``TlsError``), forget a folder (``FolderGone``) -- and show
``str(exc)`` to the user as it is. So the message is one line, names the server, and
says what went wrong in words a user knows; it never carries a secret. The
third-party exception (imapclient, imaplib, ssl, socket) stays reachable as
``__cause__`` for logs: ``sync/imap.py`` translates once, at the boundary, with
``raise Ours(message) from exc``.

Everything here is a *known* error (STYLE.md point 6): anything else that escapes the
sync engine is a bug.
"""

from __future__ import annotations

__all__ = [
    "AuthFailed",
    "ConnectionLost",
    "FolderGone",
    "ProtocolError",
    "ServerUnreachable",
    "SmtpAuthFailed",
    "SmtpError",
    "SmtpPermanent",
    "SmtpTemporary",
    "SyncError",
    "TlsError",
]


class SyncError(Exception):
    """Base of every error the sync engine raises on purpose.

    ``str(exc)`` is a one-line message meant for users; ``account`` names the account
    (as the user calls it) when the raiser knows it.
    """

    def __init__(self, message: str, *, account: str | None = None) -> None:
        super().__init__(message)
        self.account = account

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        # One line, whatever a server put into the text we quote.
        return " ".join(self.message.split())


class AuthFailed(SyncError):
    """The server refused the credentials, or the authentication mechanism."""


class ServerUnreachable(SyncError, ConnectionError):
    """No IMAP session could be opened: DNS, connection refused, timeout while connecting."""


class TlsError(SyncError):
    """TLS could not be set up: untrusted certificate, failed handshake, no STARTTLS."""


class ProtocolError(SyncError):
    """The server answered something we cannot use: not IMAP, or BAD/NO to a needed command."""


class ConnectionLost(SyncError, ConnectionError):
    """The session died mid-way (reset, EOF, BYE, timeout); the connection is unusable."""


class FolderGone(SyncError):
    """SELECT of a folder the server does not have (any more)."""


class SmtpError(SyncError):
    """Sending over SMTP failed.

    ``code`` is the server's reply code and ``reply`` its whole reply on one line
    (``"554 5.7.1 Message rejected as spam"``); both are None when the server said
    nothing (connection refused, dropped, timed out) or we refused before asking it.
    ``refused`` maps each recipient the server refused to ``(code, text)`` when the
    error is that it refused them all.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reply: str | None = None,
        refused: dict[str, tuple[int, str]] | None = None,
        account: str | None = None,
    ) -> None:
        super().__init__(message, account=account)
        self.code = code
        self.reply = reply
        self.refused: dict[str, tuple[int, str]] = dict(refused or {})


class SmtpTemporary(SmtpError):
    """Worth retrying later: a 4xx reply, a timeout, a refused or dropped connection."""


class SmtpPermanent(SmtpError):
    """Retrying the same message will fail the same way: a 5xx reply, too big, bad address."""


class SmtpAuthFailed(SmtpPermanent):
    """The server refused the login (535 ...), or offers no login method we can use."""
