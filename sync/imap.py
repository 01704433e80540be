"""The IMAP connection: the one module of Tidings that talks to imapclient.

A thin, typed wrapper. It opens a session (TLS, login, ENABLE QRESYNC/CONDSTORE),
issues the handful of commands the sync engine needs, and hands back plain frozen
dataclasses -- never imapclient or imaplib objects. It holds no sync logic: what to
fetch is decided in ``sync/planner.py``, what to do with it in ``sync/engine.py``.

Errors: every third-party exception (imapclient, imaplib, ssl, socket, OSError) is
translated here, once, into the tree of ``sync/errors.py`` with ``raise ... from
exc``; the message is one line for users and names the server. After a
``ConnectionLost`` the connection is dead: its socket is closed and every later
command raises ``ConnectionLost`` at once. A socket timeout in the middle of a
command is a ``ConnectionLost`` too -- the reply stream is out of step from then on.

Decisions worth knowing:

* imapclient does connect, TLS (implicit or STARTTLS), login and LIST. Everything in
  bulk (FETCH, SEARCH, SELECT with QRESYNC, IDLE) goes through the stdlib ``imaplib``
  object imapclient wraps (``client._imap``): imapclient's generic parser costs ~8x
  the network read on a full-body FETCH, and it cannot send ``SELECT ... (QRESYNC
  ...)``. Raw replies are parsed by the pure ``sync/fetchparse.py``. imaplib's debug
  logging is switched off (imapclient sets level 5, which formats a repr of every
  literal -- a whole message body -- for a logger that usually drops it).
* Certificates are always verified (system CAs plus ``ca_file``); the host name is
  always checked. ``starttls`` refuses to log in when the server does not offer
  STARTTLS. Passwords go out with LOGIN, or AUTHENTICATE PLAIN when the server says
  LOGINDISABLED or the credentials are not ASCII (LOGIN cannot carry them).
* ``has_qresync`` means the server advertised QRESYNC *and* ENABLE took it; a server
  that only advertises CONDSTORE gets ``ENABLE CONDSTORE`` (or ``SELECT ...
  (CONDSTORE)`` without ENABLE). MODSEQ is only asked for when ``has_condstore``.
* UID lists are sent as compact sets and split into several commands when a set would
  make the command line longer than servers accept.
* ``UID SEARCH UID n:*`` always matches the highest UID even when it is below n
  (RFC 3501 6.4.8): ``uids_from`` filters those out. Searches use ESEARCH (``RETURN
  (ALL)``, compact ranges) where the server has it.
* A UID FETCH answered NO [EXPUNGEISSUED] still returns what the server sent: those
  messages were expunged by another client meanwhile. A BODY[] that comes back NIL is
  treated like an absent message (the next sync asks again) rather than stored empty.
* ``idle()`` returns as soon as the server reports a change (EXISTS, EXPUNGE, FETCH,
  VANISHED); Dovecot reports changes about 0.5 s after they happen. Without the IDLE
  capability it waits the timeout and asks with NOOP instead.
* ``interrupt()`` may be called from another thread: it shuts the socket down, so a
  blocked read (IDLE, a big FETCH) ends at once with ``ConnectionLost``.
* Writes (``store_flags``, ``copy``, ``move``, ``expunge_uids``) work on the folder
  selected with ``readonly=False`` and go out one command per compact UID set. Only
  ``UID EXPUNGE`` of the exact UIDs is ever sent, never a bare EXPUNGE (it would also
  remove messages another client marked \\Deleted): without MOVE, a move is UID COPY +
  UID STORE + UID EXPUNGE, and without UIDPLUS moves and expunges are refused.
  COPYUID/APPENDUID are read only when the server advertises UIDPLUS. A missing target
  folder (NO [TRYCREATE]) is ``FolderGone``.
* Special-use roles come from plain LIST: Dovecot, Gmail, Fastmail and Cyrus include
  the SPECIAL-USE attributes there.
"""

from __future__ import annotations

import ast
import contextlib
import imaplib
import re
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final, NoReturn

import imapclient
from imapclient import imap_utf7

from sync.errors import (
    AuthFailed,
    ConnectionLost,
    FolderGone,
    ProtocolError,
    ServerUnreachable,
    SyncError,
    TlsError,
)
from sync.fetchparse import (
    FetchParseError,
    FetchResponse,
    flag_names,
    format_uid_sets,
    message_id_from_header,
    parse_esearch,
    parse_fetch_responses,
    parse_vanished,
)
from sync.netfail import lower as _lower
from sync.netfail import os_reason as _os_reason
from sync.netfail import tls_context

__all__ = [
    "FetchedMessage",
    "FlagUpdate",
    "FolderEntry",
    "ImapConnection",
    "SelectInfo",
    "ServerConfig",
    "flag_names",
    "role_of",
]

SECURITY_MODES: Final = ("ssl", "starttls", "none")
AUTH_MODES: Final = ("password", "oauth2")
# imaplib refuses lines over 1 MB; an untagged SEARCH of ~125,000 UIDs is longer.
_MAX_LINE: Final = 64 * 1024 * 1024
# LOGOUT when closing must not hang on a dying server.
_CLOSE_TIMEOUT: Final = 5.0
_X509_V_ERR_HOSTNAME_MISMATCH: Final = 62
_CHANGE_RESPONSES: Final = ("EXISTS", "EXPUNGE", "FETCH", "VANISHED")
_RESPONSE_CODE = re.compile(r"^\s*\[([A-Za-z0-9.-]+)[^\]]*\]\s*")

_ROLES: Final = (
    ("\\sent", "sent"),
    ("\\drafts", "drafts"),
    ("\\trash", "trash"),
    ("\\junk", "junk"),
    ("\\archive", "archive"),
    ("\\all", "all"),
    ("\\flagged", "flagged"),
    # Gmail's deprecated XLIST names, still seen on old servers and proxies.
    ("\\spam", "junk"),
    ("\\allmail", "all"),
    ("\\starred", "flagged"),
)


# ------------------------------------------------------------------ data out


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    security: str  # 'ssl' (implicit TLS) | 'starttls' (refused if not offered) | 'none'
    username: str
    secret: str
    auth: str = "password"  # 'password' | 'oauth2' (AUTHENTICATE XOAUTH2, secret = token)
    ca_file: str | None = None  # extra CA to trust; verification is always on
    timeout: float = 30.0

    def __repr__(self) -> str:  # never show the secret in a log or traceback
        return (
            f"ServerConfig(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, auth={self.auth!r}, ca_file={self.ca_file!r}, "
            f"timeout={self.timeout})"
        )


@dataclass(frozen=True)
class FolderEntry:
    """One LIST entry. ``name`` is decoded (modified UTF-7 undone) and keeps the
    server's delimiter; ``attributes`` are lower-case (``\\hasnochildren``)."""

    name: str
    delimiter: str | None
    attributes: frozenset[str]
    role: str | None
    selectable: bool


@dataclass(frozen=True)
class FlagUpdate:
    uid: int
    flags: frozenset[str]  # subset of {'seen', 'flagged', 'answered', 'draft', 'deleted'}
    keywords: tuple[str, ...]  # other flags as the server spells them, minus \Recent
    modseq: int | None


@dataclass(frozen=True)
class SelectInfo:
    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None  # None without CONDSTORE, or NOMODSEQ
    vanished: tuple[int, ...]  # VANISHED (EARLIER) UIDs of a QRESYNC select, ascending
    changed: tuple[FlagUpdate, ...]  # FETCH responses that came with a QRESYNC select


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int | None
    messages: int
    highestmodseq: int | None  # only when the server has CONDSTORE


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes
    flags: frozenset[str]
    keywords: tuple[str, ...]
    internal_date: datetime | None  # aware, UTC
    modseq: int | None


def role_of(name: str, attributes: Iterable[str]) -> str | None:
    """Folder role: 'inbox' for INBOX (any case), else from SPECIAL-USE attributes."""
    if name.upper() == "INBOX":
        return "inbox"
    attrs = {a.lower() for a in attributes}
    if "\\inbox" in attrs:
        return "inbox"
    for attribute, role in _ROLES:
        if attribute in attrs:
            return role
    return None


# ------------------------------------------------------------------- helpers


def _unwrap(value: object) -> str:
    """The text of a server reply or an imaplib error, without imaplib's wrapping.

    imaplib errors read ``command: LOGIN => b'[AUTHENTICATIONFAILED] Authentication
    failed.'``; tagged replies come as ``[b'...']``.
    """
    if isinstance(value, list | tuple):
        value = value[-1] if value else ""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = re.sub(r"^(?:command: \w+ => )?(?:\w+ command error: \w+ )?", "", text.strip())
    m = re.fullmatch(r"\[?(b(['\"]).*\2)\]?", text, re.DOTALL)
    if m:  # the repr of a bytes object
        with contextlib.suppress(ValueError, SyntaxError):
            raw = ast.literal_eval(m.group(1))
            if isinstance(raw, bytes):
                text = raw.decode("utf-8", "replace")
    return text.strip()


def _words(value: object) -> str:
    """The human part of a server reply, on one line: ``authentication failed``."""
    text = _RESPONSE_CODE.sub("", _unwrap(value))
    text = " ".join(text.split()).rstrip(".")
    # Dovecot appends timings: "Mailbox doesn't exist: X (0.001 + 0.000 secs)"
    text = re.sub(r"\s*\([\d.+ ]+secs?\)$", "", text).rstrip(".")
    return _lower(text) or "no reason given"


def _response_code(value: object) -> str | None:
    """``[NONEXISTENT] ...`` -> ``"NONEXISTENT"``."""
    m = _RESPONSE_CODE.match(_unwrap(value))
    return m.group(1).upper() if m else None


def _quote(text: str | bytes) -> bytes:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _mailbox(name: str) -> bytes:
    return _quote(imap_utf7.encode(name))


def _is_ascii_atomish(text: str) -> bool:
    return text.isascii() and not any(c in text for c in "\r\n\0")


def _tls_context(cfg: ServerConfig) -> ssl.SSLContext:
    return tls_context(cfg.ca_file)


def _cert_error(host: str, exc: ssl.SSLCertVerificationError, account: str | None) -> TlsError:
    reason = _lower(exc.verify_message or exc.reason or str(exc))
    if exc.verify_code == _X509_V_ERR_HOSTNAME_MISMATCH or "hostname mismatch" in reason.lower():
        return TlsError(
            f"TLS certificate of {host} is not valid for that name ({reason})", account=account
        )
    return TlsError(
        f"TLS certificate of {host} is not trusted ({reason}); use --ca-file for a private CA",
        account=account,
    )


def _tls_failure(host: str, where: str, exc: ssl.SSLError, account: str | None) -> TlsError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _cert_error(host, exc, account)
    reason = _os_reason(exc)
    hint = ""
    if exc.reason in ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"):
        hint = " -- the server does not speak TLS on this port (try security 'starttls')"
    return TlsError(f"TLS handshake with {where} failed ({reason}){hint}", account=account)


def _flag_update(resp: FetchResponse) -> FlagUpdate | None:
    if resp.uid is None or resp.flags is None:
        return None
    flags, keywords = flag_names(resp.flags)
    return FlagUpdate(resp.uid, flags, keywords, resp.modseq)


_FLAG_ATOMS: Final = {
    "seen": b"\\Seen",
    "flagged": b"\\Flagged",
    "answered": b"\\Answered",
    "draft": b"\\Draft",
    "deleted": b"\\Deleted",
}
# A keyword is an IMAP atom: printable ASCII without atom-specials ( ) { % * " \ ].
_KEYWORD = re.compile(r'[^\x00-\x20\x7f(){%*"\\\]]+')
_COPYUID = re.compile(rb"\s*(\d+)\s+([0-9:,]+)\s+([0-9:,]+)")
_APPENDUID = re.compile(rb"\s*(\d+)\s+(\d+)(?![0-9:,])")
_BARE_LF = re.compile(rb"(?<!\r)\n")


def _flag_atoms(flags: Iterable[str]) -> list[bytes]:
    """Our flag names (``seen`` ...) and keywords (``$Forwarded``) as IMAP flag atoms,
    in order and without case-insensitive duplicates. ``\\Seen`` etc. are accepted as
    spelled; ``\\Recent`` and other backslash names cannot be set and are refused."""
    if isinstance(flags, str | bytes):
        raise TypeError("flags must be a collection of flag names, not one string")
    out: list[bytes] = []
    seen: set[bytes] = set()
    for flag in flags:
        atom = _FLAG_ATOMS.get(flag)
        if atom is None and flag.startswith("\\"):
            atom = _FLAG_ATOMS.get(flag[1:].lower())
            if atom is None:
                raise ValueError(f"{flag!r} is not a flag a client can set")
        if atom is None:
            if not (flag.isascii() and _KEYWORD.fullmatch(flag)):
                raise ValueError(f"{flag!r} is not a valid IMAP keyword")
            atom = flag.encode("ascii")
        if atom.lower() not in seen:
            seen.add(atom.lower())
            out.append(atom)
    return out


def _uid_sequence(text: bytes, limit: int) -> list[int] | None:
    """A UID set in the order written (``5,1:3`` -> 5 1 2 3), as COPYUID pairs its two
    sets element by element. None when it is malformed or longer than ``limit``."""
    out: list[int] = []
    for part in text.split(b","):
        lo, sep, hi = part.partition(b":")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            return None
        a, b = int(lo), int(hi) if sep else int(lo)
        a, b = min(a, b), max(a, b)
        if a < 1 or len(out) + b - a + 1 > limit:
            return None
        out.extend(range(a, b + 1))
    return out


def _set_size(uid_set: str) -> int:
    """How many UIDs a concrete set (``1:3,7``) names."""
    size = 0
    for part in uid_set.split(","):
        lo, _, hi = part.partition(":")
        size += abs(int(hi or lo) - int(lo)) + 1
    return size


def _copyuid(data: Iterable[object], limit: int) -> dict[int, int]:
    """Old UID -> new UID from ``[COPYUID uidvalidity source-set dest-set]`` data.

    A code whose two sets differ in length is a server bug: it is skipped rather than
    guessed at (the messages *were* copied, so this must not raise)."""
    mapping: dict[int, int] = {}
    for item in data:
        m = _COPYUID.match(item) if isinstance(item, bytes) else None
        if not m:
            continue
        source = _uid_sequence(m.group(2), limit)
        target = _uid_sequence(m.group(3), limit)
        if source is not None and target is not None and len(source) == len(target):
            mapping.update(zip(source, target, strict=True))
    return mapping


def _appenduid(data: Iterable[object]) -> int | None:
    """The new UID from ``[APPENDUID uidvalidity uid]``."""
    for item in data:
        m = _APPENDUID.match(item) if isinstance(item, bytes) else None
        if m:
            return int(m.group(2))
    return None


# -------------------------------------------------------------- the session


class ImapConnection:
    """One logged-in IMAP session. Make it with :meth:`connect`; use as a context
    manager or call :meth:`close`. Not thread-safe, except :meth:`interrupt`."""

    capabilities: frozenset[str]

    def __init__(self, client: Any, cfg: ServerConfig, account: str | None) -> None:
        # Use connect(); this only wires up an already-open imapclient.IMAPClient.
        self._client = client
        self._imap: Any = client._imap
        self._cfg = cfg
        self._account = account
        self._where = f"{cfg.host}:{cfg.port}"
        self.capabilities = frozenset()
        self._qresync_enabled = False
        self._condstore_select = False  # CONDSTORE without ENABLE: SELECT ... (CONDSTORE)
        self._selected: str | None = None
        self._dead: str | None = None  # why the connection is unusable
        self._closed = False
        self._interrupted = threading.Event()
        self._quiet(self._imap)

    # ----------------------------------------------------------- connecting

    @classmethod
    def connect(cls, cfg: ServerConfig, *, account: str | None = None) -> ImapConnection:
        """Connect, set up TLS, log in, ENABLE QRESYNC (or CONDSTORE) when advertised."""
        if cfg.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {SECURITY_MODES}, not {cfg.security!r}")
        if cfg.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}, not {cfg.auth!r}")
        where = f"{cfg.host}:{cfg.port}"
        try:
            ctx = _tls_context(cfg) if cfg.security != "none" else None
        except TlsError as exc:
            exc.account = account
            raise
        try:
            client = imapclient.IMAPClient(
                cfg.host,
                port=cfg.port,
                ssl=cfg.security == "ssl",
                ssl_context=ctx,
                timeout=cfg.timeout,
            )
        except ssl.SSLError as exc:
            raise _tls_failure(cfg.host, where, exc, account) from exc
        except imaplib.IMAP4.error as exc:
            raise _greeting_error(cfg, exc, account) from exc
        except (OSError, EOFError) as exc:
            raise ServerUnreachable(
                f"cannot reach {where}: {_os_reason(exc)}", account=account
            ) from exc
        conn = cls(client, cfg, account)
        try:
            conn._open_session(ctx)
        except BaseException:
            conn._drop_socket()
            raise
        return conn

    def _open_session(self, ctx: ssl.SSLContext | None) -> None:
        cfg = self._cfg
        imap = self._imap
        # imaplib caps lines at 1 MB; big untagged SEARCH replies are longer.
        imap.readline = _long_readline(imap)
        pre = {str(c).upper() for c in imap.capabilities}
        if cfg.security == "starttls":
            if "STARTTLS" not in pre:
                raise TlsError(
                    f"server {self._where} does not offer STARTTLS; "
                    "not sending the password unencrypted",
                    account=self._account,
                )
            with self._guard("STARTTLS", tls=True):
                self._client.starttls(ctx)
            pre = {str(c).upper() for c in imap.capabilities}
        if imap.state == "NONAUTH":  # not PREAUTH
            self._login(pre)
        with self._guard("CAPABILITY"):
            caps = frozenset(_text(c).upper() for c in self._client.capabilities())
        self.capabilities = caps
        # ENABLE failing is odd but not fatal: the session works without it.
        if "ENABLE" in caps and "QRESYNC" in caps:
            with contextlib.suppress(ProtocolError), self._guard("ENABLE"):
                enabled = {_text(c).upper() for c in self._client.enable("QRESYNC")}
                self._qresync_enabled = "QRESYNC" in enabled
        if not self._qresync_enabled and "CONDSTORE" in caps:
            self._condstore_select = True  # SELECT ... (CONDSTORE) unless ENABLE works
            if "ENABLE" in caps:
                with contextlib.suppress(ProtocolError), self._guard("ENABLE"):
                    self._client.enable("CONDSTORE")
                    self._condstore_select = False
        imap.untagged_responses.clear()

    def _login(self, caps: set[str]) -> None:
        cfg = self._cfg
        who = f"{cfg.username} at {cfg.host}"
        try:
            with self._guard("LOGIN", login=True):
                if cfg.auth == "oauth2":
                    if "AUTH=XOAUTH2" not in caps:
                        raise AuthFailed(
                            f"login failed for {who}: the server does not offer OAuth2 "
                            "(AUTH=XOAUTH2)",
                            account=self._account,
                        )
                    self._client.sasl_login("XOAUTH2", _xoauth2(cfg.username, cfg.secret))
                    return
                plain_ok = "AUTH=PLAIN" in caps
                needs_plain = "LOGINDISABLED" in caps or not (
                    _is_ascii_atomish(cfg.username) and _is_ascii_atomish(cfg.secret)
                )
                if needs_plain and not plain_ok:
                    if "LOGINDISABLED" not in caps:
                        why = "a non-ASCII user name or password needs AUTHENTICATE PLAIN"
                    elif cfg.security == "none":
                        why = "the server allows password login only over TLS"
                    else:
                        why = "the server disables password login"
                    raise AuthFailed(f"login failed for {who}: {why}", account=self._account)
                if needs_plain:
                    self._client.plain_login(cfg.username, cfg.secret)
                else:
                    # imaplib quotes the password but sends the user name as it is.
                    self._client.login(_quote(cfg.username).decode("ascii"), cfg.secret)
        except AuthFailed:
            raise
        except ProtocolError as exc:
            cause = exc.__cause__
            if cause is not None and _response_code(cause) == "UNAVAILABLE":
                raise ServerUnreachable(
                    f"server {cfg.host} cannot log anyone in right now: {_words(cause)}",
                    account=self._account,
                ) from cause
            raise AuthFailed(
                f"login failed for {who}: {_words(cause) if cause else exc}",
                account=self._account,
            ) from cause

    # ------------------------------------------------------------ properties

    @property
    def has_condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities or self.has_qresync

    @property
    def has_qresync(self) -> bool:
        return self._qresync_enabled

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    @property
    def has_move(self) -> bool:
        return "MOVE" in self.capabilities

    @property
    def has_uidplus(self) -> bool:
        return "UIDPLUS" in self.capabilities

    @property
    def host(self) -> str:
        return self._cfg.host

    @property
    def selected(self) -> str | None:
        """The folder last selected successfully, or None."""
        return self._selected

    # -------------------------------------------------------------- folders

    def list_folders(self) -> list[FolderEntry]:
        with self._guard("LIST"):
            listing = self._client.list_folders()
            self._imap.untagged_responses.clear()
        out = []
        for raw_flags, raw_delim, raw_name in listing:
            attributes = frozenset(_text(f).lower() for f in raw_flags)
            name = _text(raw_name)
            delimiter = _text(raw_delim) if raw_delim is not None else None
            out.append(
                FolderEntry(
                    name=name,
                    delimiter=delimiter,
                    attributes=attributes,
                    role=role_of(name, attributes),
                    selectable=not attributes & {"\\noselect", "\\nonexistent"},
                )
            )
        return out

    def status(self, name: str) -> FolderStatus:
        """STATUS of a folder without selecting it (the no-change fast path)."""
        what = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
        if self.has_condstore:
            what.append("HIGHESTMODSEQ")
        with self._guard("STATUS"):
            data = self._client.folder_status(name, what)
            self._imap.untagged_responses.clear()

        def num(key: str) -> int | None:
            value = data.get(key.encode())
            return None if value is None else int(value)

        uidvalidity = num("UIDVALIDITY")
        if uidvalidity is None:
            raise ProtocolError(f"server {self._where} sent a STATUS without UIDVALIDITY")
        return FolderStatus(uidvalidity, num("UIDNEXT"), num("MESSAGES") or 0, num("HIGHESTMODSEQ"))

    def select(
        self, name: str, *, readonly: bool = True, qresync: tuple[int, int] | None = None
    ) -> SelectInfo:
        """SELECT (EXAMINE when ``readonly``) a folder.

        ``qresync=(uidvalidity, modseq)``: ``SELECT name (QRESYNC (uidvalidity modseq))``,
        which fills ``vanished`` and ``changed``. Raises FolderGone for a folder the
        server does not have.
        """
        if qresync is not None and not self.has_qresync:
            raise ValueError("select(qresync=...) needs a server with QRESYNC enabled")
        arg = _mailbox(name)
        if qresync is not None:
            uidvalidity, modseq = qresync
            arg += b" (QRESYNC (%d %d))" % (uidvalidity, max(modseq, 1))
        elif self._condstore_select:
            arg += b" (CONDSTORE)"
        what = "EXAMINE" if readonly else "SELECT"
        with self._guard(what) as imap:
            self._selected = None
            try:
                typ, data = imap.select(arg, readonly)
            except imaplib.IMAP4.readonly:
                typ, data = "OK", []  # selected; the server just will not let us write
            ur = imap.untagged_responses
            try:
                if typ != "OK":
                    code = _response_code(data)
                    if code in (None, "NONEXISTENT", "TRYCREATE"):
                        raise FolderGone(
                            f"folder {name} does not exist on {self._cfg.host}",
                            account=self._account,
                        )
                    raise ProtocolError(
                        f"server {self._cfg.host} refused to open folder {name}: {_words(data)}",
                        account=self._account,
                    )
                uidvalidity_v = _last_int(ur, "UIDVALIDITY")
                if uidvalidity_v is None:
                    raise ProtocolError(
                        f"server {self._cfg.host} opened folder {name} without a UIDVALIDITY",
                        account=self._account,
                    )
                changed = tuple(
                    u
                    for u in map(_flag_update, parse_fetch_responses(ur.get("FETCH", ())))
                    if u is not None
                )
                info = SelectInfo(
                    uidvalidity=uidvalidity_v,
                    uidnext=_last_int(ur, "UIDNEXT"),
                    exists=_last_int(ur, "EXISTS") or 0,
                    highestmodseq=None if "NOMODSEQ" in ur else _last_int(ur, "HIGHESTMODSEQ"),
                    vanished=tuple(parse_vanished(ur.get("VANISHED", ()))),
                    changed=changed,
                )
            finally:
                ur.clear()
        self._selected = name
        return info

    # ------------------------------------------------------------- searching

    def search_all_uids(self) -> list[int]:
        """UID SEARCH ALL on the selected folder, ascending."""
        return self._search(b"ALL")

    def uids_from(self, first_uid: int) -> list[int]:
        """UIDs >= ``first_uid`` (``UID SEARCH UID n:*`` without its highest-UID quirk)."""
        first = max(int(first_uid), 1)
        return [u for u in self._search(b"UID %d:*" % first) if u >= first]

    def _search(self, criteria: bytes) -> list[int]:
        esearch = "ESEARCH" in self.capabilities
        with self._guard("SEARCH") as imap:
            ur = imap.untagged_responses
            ur.clear()
            try:
                args = (b"RETURN (ALL)", criteria) if esearch else (criteria,)
                typ, data = imap._simple_command("UID", "SEARCH", *args)
                self._check(typ, data, "SEARCH")
                if esearch:
                    return parse_esearch(ur.get("ESEARCH", ()))
                uids: set[int] = set()
                for line in ur.get("SEARCH", ()):
                    for word in (line or b"").split():
                        if not word.isdigit():
                            raise FetchParseError(f"bad SEARCH result {word!r}")
                        uids.add(int(word))
                return sorted(uids)
            finally:
                ur.clear()

    # -------------------------------------------------------------- fetching

    def fetch_sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID the server still has."""
        return {
            r.uid: r.size
            for r in self._fetch(uids, b"(UID RFC822.SIZE)")[0]
            if r.uid is not None and r.size is not None
        }

    def fetch_flags(
        self,
        uids: Sequence[int] | str,
        *,
        changedsince: int | None = None,
        vanished: bool = False,
    ) -> tuple[list[FlagUpdate], list[int]]:
        """Flags (and MODSEQ with CONDSTORE) of ``uids`` -- a list, or a set such as "1:*".

        ``changedsince``: only messages whose MODSEQ is higher (CONDSTORE).
        ``vanished=True`` (QRESYNC, with ``changedsince``): the second element lists
        UIDs expunged since then; otherwise it is empty.
        """
        if changedsince is not None and not self.has_condstore:
            raise ValueError("fetch_flags(changedsince=...) needs CONDSTORE")
        if vanished and (changedsince is None or not self.has_qresync):
            raise ValueError("fetch_flags(vanished=True) needs QRESYNC and changedsince")
        items = b"(UID FLAGS MODSEQ)" if self.has_condstore else b"(UID FLAGS)"
        modifiers = None
        if changedsince is not None:
            modifiers = b"(CHANGEDSINCE %d%s)" % (changedsince, b" VANISHED" if vanished else b"")
        responses, gone = self._fetch(uids, items, modifiers)
        updates = [u for u in map(_flag_update, responses) if u is not None]
        return updates, gone if vanished else []

    def fetch_messages(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """Whole messages, in the order the server sent them; UIDs it no longer has
        (or whose body it returns as NIL) are absent."""
        items = b"(UID FLAGS INTERNALDATE BODY.PEEK[]%s)" % (
            b" MODSEQ" if self.has_condstore else b""
        )
        out = []
        for r in self._fetch(uids, items)[0]:
            raw = r.sections.get("")
            if r.uid is None or raw is None:
                continue  # unsolicited FETCH (flags of another message) or a NIL body
            flags, keywords = flag_names(r.flags or ())
            out.append(FetchedMessage(r.uid, raw, flags, keywords, r.internal_date, r.modseq))
        return out

    def fetch_headers(self, uids: Sequence[int]) -> dict[int, tuple[str | None, int]]:
        """Message-ID (without <>) and RFC822.SIZE per UID, without the bodies."""
        out: dict[int, tuple[str | None, int]] = {}
        items = b"(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
        for r in self._fetch(uids, items)[0]:
            if r.uid is None or r.size is None:
                continue
            block = next((v for k, v in r.sections.items() if k.startswith("HEADER.FIELDS")), None)
            out[r.uid] = (message_id_from_header(block), r.size)
        return out

    def _fetch(
        self, uids: Sequence[int] | str, items: bytes, modifiers: bytes | None = None
    ) -> tuple[list[FetchResponse], list[int]]:
        if isinstance(uids, str):
            if not re.fullmatch(r"[0-9*:,]+", uids):
                raise ValueError(f"not a UID set: {uids!r}")
            sets = [uids]
        else:
            sets = format_uid_sets(uids)
        responses: list[FetchResponse] = []
        vanished: list[int] = []
        with self._guard("FETCH") as imap:
            ur = imap.untagged_responses
            for uid_set in sets:
                ur.clear()
                try:
                    args = [uid_set.encode("ascii"), items]
                    if modifiers is not None:
                        args.append(modifiers)
                    typ, data = imap._simple_command("UID", "FETCH", *args)
                    if typ != "OK" and _response_code(data) != "EXPUNGEISSUED":
                        self._check(typ, data, "FETCH")
                    responses.extend(parse_fetch_responses(ur.get("FETCH", ())))
                    vanished.extend(parse_vanished(ur.get("VANISHED", ())))
                finally:
                    ur.clear()
        return responses, sorted(set(vanished))

    # -------------------------------------------------------------- writing

    def store_flags(
        self, uids: Sequence[int], flags: Iterable[str], *, add: bool, silent: bool = True
    ) -> None:
        """``UID STORE uids +FLAGS.SILENT (...)`` (``add=False``: ``-FLAGS``) on the
        folder selected with ``readonly=False``.

        ``flags``: ``seen flagged answered draft deleted`` (mapped to ``\\Seen`` etc.)
        or keywords as spelled (``$Forwarded``). One command per compact UID set (split
        when long). Idempotent; UIDs the server no longer has are ignored.
        """
        atoms = _flag_atoms(flags)
        uid_sets = format_uid_sets(uids)
        if not atoms or not uid_sets:
            return
        self._require_selected("STORE", writable=True)
        item = b"%sFLAGS%s" % (b"+" if add else b"-", b".SILENT" if silent else b"")
        with self._guard("STORE") as imap:
            for uid_set in uid_sets:
                self._store(imap, uid_set, item, atoms)

    def copy(self, uids: Sequence[int], target: str) -> dict[int, int]:
        """``UID COPY`` from the selected folder (EXAMINE is enough) to ``target``
        (decoded name, as the server spells it).

        Returns old UID -> new UID from COPYUID when the server has UIDPLUS (else an
        empty dict). Raises FolderGone when ``target`` does not exist.
        """
        uid_sets = format_uid_sets(uids)
        if not uid_sets:
            return {}
        self._require_selected("COPY", writable=False)
        mapping: dict[int, int] = {}
        with self._guard("COPY") as imap:
            for uid_set in uid_sets:
                mapping.update(self._transfer(imap, "COPY", uid_set, target))
        return mapping

    def move(self, uids: Sequence[int], target: str) -> dict[int, int]:
        """Move to ``target``: ``UID MOVE`` when the server has MOVE, else ``UID COPY``,
        ``UID STORE +FLAGS.SILENT (\\Deleted)`` and ``UID EXPUNGE`` of exactly those
        UIDs (never a bare EXPUNGE, which would also remove what others marked deleted).

        Returns old UID -> new UID where the server says (COPYUID, with UIDPLUS).
        Raises FolderGone when ``target`` does not exist, and ProtocolError -- before
        anything is copied -- on a server with neither MOVE nor UIDPLUS.
        """
        uid_sets = format_uid_sets(uids)
        if not uid_sets:
            return {}
        self._require_selected("MOVE", writable=True)
        if not self.has_move:
            self._require_uidplus("it has neither MOVE nor UIDPLUS")
        mapping: dict[int, int] = {}
        with self._guard("MOVE") as imap:
            for uid_set in uid_sets:
                if self.has_move:
                    mapping.update(self._transfer(imap, "MOVE", uid_set, target))
                    continue
                # Set by set, so that a failure leaves at most one set copied but not
                # yet removed here.
                mapping.update(self._transfer(imap, "COPY", uid_set, target))
                self._store(imap, uid_set, b"+FLAGS.SILENT", [b"\\Deleted"])
                self._uid_expunge(imap, uid_set)
        return mapping

    def expunge_uids(self, uids: Sequence[int]) -> None:
        """``UID STORE +FLAGS.SILENT (\\Deleted)`` then ``UID EXPUNGE`` of exactly
        ``uids``: messages others marked deleted stay. Needs UIDPLUS (ProtocolError
        without it); never sends a bare EXPUNGE."""
        uid_sets = format_uid_sets(uids)
        if not uid_sets:
            return
        self._require_selected("EXPUNGE", writable=True)
        self._require_uidplus("it lacks UIDPLUS")
        with self._guard("EXPUNGE") as imap:
            for uid_set in uid_sets:
                self._store(imap, uid_set, b"+FLAGS.SILENT", [b"\\Deleted"])
                self._uid_expunge(imap, uid_set)

    def append(
        self,
        folder: str,
        raw: bytes,
        *,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> int | None:
        """APPEND ``raw`` to ``folder`` (need not be selected); the new UID from
        APPENDUID when the server has UIDPLUS, else None.

        ``flags`` as for :meth:`store_flags`; ``internal_date`` must be aware. Bare LF
        line ends are sent as CRLF (IMAP requires CRLF; Dovecot converts them anyway).
        Raises FolderGone when ``folder`` does not exist.
        """
        if not raw:
            raise ValueError("cannot append an empty message")
        atoms = _flag_atoms(flags)
        args: list[bytes] = [_mailbox(folder)]
        if atoms:
            args.append(b"(" + b" ".join(atoms) + b")")
        if internal_date is not None:
            if internal_date.utcoffset() is None:
                raise ValueError("append(internal_date=...) must be an aware datetime")
            args.append(imaplib.Time2Internaldate(internal_date).encode("ascii"))
        literal = _BARE_LF.sub(b"\r\n", raw)
        with self._guard("APPEND") as imap:
            ur = imap.untagged_responses
            ur.clear()
            try:
                imap.literal = literal  # imaplib sends it as {n} after the arguments
                typ, data = imap._simple_command("APPEND", *args)
                self._check_target(typ, data, "APPEND", folder)
                return _appenduid(ur.get("APPENDUID", ())) if self.has_uidplus else None
            finally:
                imap.literal = None
                ur.clear()

    def find_by_message_id(self, message_id: str) -> list[int]:
        """UIDs in the selected folder whose Message-ID is ``message_id`` (given
        without ``<>``), ascending.

        ``UID SEARCH HEADER Message-ID <id>``; the hits are checked against the
        Message-ID header itself, since HEADER search matches substrings (and, on
        servers with full-text search, tokens).
        """
        wanted = message_id.strip()
        if wanted.startswith("<") and wanted.endswith(">"):
            wanted = wanted[1:-1].strip()
        if not wanted or any(c in wanted for c in "<>\r\n\0"):
            raise ValueError(f"not a Message-ID: {message_id!r}")
        self._require_selected("SEARCH", writable=False)
        key = f"<{wanted}>".encode()
        if key.isascii():
            hits = self._search(b"HEADER Message-ID " + _quote(key))
        else:
            # 8-bit text must go as a literal; imaplib appends it as the last argument.
            self._imap.literal = key
            try:
                hits = self._search(b"CHARSET UTF-8 HEADER Message-ID")
            finally:
                self._imap.literal = None
        if not hits:
            return []
        headers = self.fetch_headers(hits)
        return [uid for uid in hits if uid in headers and headers[uid][0] == wanted]

    def _store(self, imap: Any, uid_set: str, item: bytes, atoms: Sequence[bytes]) -> None:
        ur = imap.untagged_responses
        ur.clear()
        try:
            typ, data = imap._simple_command(
                "UID", "STORE", uid_set.encode("ascii"), item, b"(" + b" ".join(atoms) + b")"
            )
            # EXPUNGEISSUED: some were expunged meanwhile -- nothing left to flag there.
            if typ != "OK" and _response_code(data) != "EXPUNGEISSUED":
                self._check(typ, data, "STORE")
        finally:
            ur.clear()

    def _transfer(self, imap: Any, verb: str, uid_set: str, target: str) -> dict[int, int]:
        """One ``UID COPY``/``UID MOVE``; COPYUID comes tagged (COPY) or in an untagged
        OK (MOVE) -- imaplib files both under "COPYUID"."""
        ur = imap.untagged_responses
        ur.clear()
        try:
            typ, data = imap._simple_command("UID", verb, uid_set.encode("ascii"), _mailbox(target))
            self._check_target(typ, data, verb, target)
            if not self.has_uidplus:
                return {}
            return _copyuid(ur.get("COPYUID", ()), _set_size(uid_set))
        finally:
            ur.clear()

    def _uid_expunge(self, imap: Any, uid_set: str) -> None:
        ur = imap.untagged_responses
        ur.clear()
        try:
            typ, data = imap._simple_command("UID", "EXPUNGE", uid_set.encode("ascii"))
            self._check(typ, data, "UID EXPUNGE")
        finally:
            ur.clear()

    def _check_target(self, typ: str, data: object, command: str, folder: str) -> None:
        if typ != "OK" and _response_code(data) in ("TRYCREATE", "NONEXISTENT"):
            raise FolderGone(
                f"folder {folder} does not exist on {self._cfg.host}", account=self._account
            )
        self._check(typ, data, command)

    def _require_selected(self, command: str, *, writable: bool) -> None:
        """A programming error unless a folder is selected (writable when asked).
        On a closed or dead connection the command's guard raises ConnectionLost."""
        if self._closed or self._dead is not None:
            return
        if self._selected is None:
            raise ValueError(f"{command} needs a selected folder; call select() first")
        if writable and self._imap.is_readonly:
            raise ValueError(
                f"{command} needs folder {self._selected} selected with readonly=False"
            )

    def _require_uidplus(self, why: str) -> None:
        if not self.has_uidplus:
            raise ProtocolError(
                f"server {self._cfg.host} cannot expunge single messages safely ({why})",
                account=self._account,
            )

    # ------------------------------------------------------------ waiting

    def idle(self, timeout: float, wake: threading.Event | None = None) -> bool:
        """IDLE until the server reports a change or ``timeout`` seconds pass, or
        ``wake`` is set (another thread has local work to send).

        Always ends IDLE (DONE) before returning. True when the server reported
        EXISTS, EXPUNGE, FETCH or VANISHED.
        """
        if not self.has_idle:
            deadline = time.monotonic() + max(timeout, 0.0)
            while not self._interrupted.is_set() and time.monotonic() < deadline:
                self._interrupted.wait(min(1.0, deadline - time.monotonic()))
            return self._noop()
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._guard("IDLE") as imap:
            ur = imap.untagged_responses
            ur.clear()
            try:
                tag = imap._command("IDLE")
                while imap._get_response() is not None:  # None: the "+ idling" continuation
                    if imap.tagged_commands.get(tag):
                        typ, data = imap.tagged_commands.pop(tag)
                        self._check(typ, data, "IDLE")
                        raise ProtocolError(  # an OK without idling at all
                            f"server {self._cfg.host} ended IDLE at once", account=self._account
                        )
                    self._check_bye(ur)
                while not any(k in ur for k in _CHANGE_RESPONSES):
                    self._check_bye(ur)
                    left = deadline - time.monotonic()
                    if left <= 0 or (wake is not None and wake.is_set()):
                        break
                    if not self._readable(left if wake is None else min(left, 0.25)):
                        if wake is None:
                            break
                        continue
                    imap._get_response()
                    if imap.tagged_commands.get(tag):
                        break  # the server ended IDLE on its own
                if not imap.tagged_commands.get(tag):
                    imap.send(b"DONE\r\n")
                typ, data = imap._get_tagged_response(tag)
                self._check(typ, data, "IDLE")
                return any(k in ur for k in _CHANGE_RESPONSES)
            finally:
                ur.clear()

    def _readable(self, timeout: float) -> bool:
        """Wait until the server sent something (already buffered data counts)."""
        imap = self._imap
        sock = imap.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            # Data may already sit in imaplib's buffered reader, where poll cannot see it.
            if self._buffered():
                return True
            return bool(sel.select(timeout))

    def _buffered(self) -> bool:
        sock = self._imap.sock
        sock.setblocking(False)
        try:
            return bool(self._imap.file.peek(1))
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        finally:
            sock.settimeout(self._cfg.timeout)

    def noop(self) -> None:
        """NOOP: keeps the session alive and lets the server report changes."""
        self._noop()

    def _noop(self) -> bool:
        with self._guard("NOOP") as imap:
            ur = imap.untagged_responses
            ur.clear()
            try:
                typ, data = imap._simple_command("NOOP")
                self._check(typ, data, "NOOP")
                return any(k in ur for k in _CHANGE_RESPONSES)
            finally:
                ur.clear()

    # ---------------------------------------------------------- lifecycle

    def interrupt(self) -> None:
        """Make a blocked or later command end with ConnectionLost at once.

        Safe to call from another thread: it only shuts the socket down.
        """
        self._interrupted.set()
        sock = getattr(self._imap, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError, ValueError):
                # The plain socket's shutdown, also for an SSLSocket: it must not touch
                # the TLS state another thread is reading with.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """LOGOUT and close, best effort; never raises. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._dead is None and not self._interrupted.is_set():
            with contextlib.suppress(Exception):
                self._imap.sock.settimeout(min(self._cfg.timeout, _CLOSE_TIMEOUT))
                self._imap.logout()
        self._drop_socket()

    def __enter__(self) -> ImapConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "dead" if self._dead else "open"
        return f"<ImapConnection {self._cfg.username}@{self._where} {state}>"

    # ------------------------------------------------------------ internals

    @staticmethod
    def _quiet(imap: Any) -> None:
        # imapclient sets imaplib's debug level to 5, which formats every literal
        # (whole messages) into a log line; the cost dominates a big FETCH.
        imap.debug = 0

    def _drop_socket(self) -> None:
        imap = self._imap
        with contextlib.suppress(Exception):
            imap.file.close()
        sock = getattr(imap, "sock", None)
        if sock is not None:
            with contextlib.suppress(Exception):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                sock.close()

    def _check(self, typ: str, data: object, command: str) -> None:
        if typ != "OK":
            raise ProtocolError(
                f"server {self._cfg.host} refused {command}: {_words(data)}",
                account=self._account,
            )

    def _check_bye(self, ur: dict[str, list[Any]]) -> None:
        bye = ur.get("BYE")
        if bye:
            raise imaplib.IMAP4.abort(bye[-1].decode("utf-8", "replace"))

    @contextlib.contextmanager
    def _guard(self, command: str, *, tls: bool = False, login: bool = False) -> Iterator[Any]:
        """Run one command; translate what goes wrong into sync.errors, once."""
        if self._closed:
            raise ConnectionLost(f"connection to {self._where} is closed", account=self._account)
        if self._dead is not None:
            raise ConnectionLost(self._dead, account=self._account)
        if self._interrupted.is_set():
            self._kill(f"connection to {self._where} was interrupted")
        try:
            yield self._imap
        except SyncError as exc:
            if exc.account is None:
                exc.account = self._account
            raise
        except ssl.SSLError as exc:
            if tls:
                raise _tls_failure(self._cfg.host, self._where, exc, self._account) from exc
            self._kill(self._lost_message(command, exc), exc)
        except imaplib.IMAP4.abort as exc:
            self._kill(self._lost_message(command, exc), exc)
        except imaplib.IMAP4.error as exc:
            if self._interrupted.is_set():
                self._kill(f"connection to {self._where} was interrupted", exc)
            if tls:
                raise TlsError(
                    f"server {self._where} refused STARTTLS: {_words(exc)}", account=self._account
                ) from exc
            if login:
                raise ProtocolError(_words(exc), account=self._account) from exc
            raise ProtocolError(
                f"server {self._cfg.host} refused {command}: {_words(exc)}",
                account=self._account,
            ) from exc
        except (OSError, EOFError) as exc:
            self._kill(self._lost_message(command, exc), exc)
        except FetchParseError as exc:
            raise ProtocolError(
                f"server {self._cfg.host} sent a {command} reply we cannot read: {exc}",
                account=self._account,
            ) from exc

    def _lost_message(self, command: str, exc: BaseException) -> str:
        if self._interrupted.is_set():
            return f"connection to {self._where} was interrupted"
        if isinstance(exc, imaplib.IMAP4.abort):
            text = re.sub(r"^command: \w+ => ", "", str(exc))
            if text.startswith("socket error: "):
                detail = text.removeprefix("socket error: ")
                reason = (
                    "the server closed the connection"
                    if detail == "EOF"
                    else _lower(re.sub(r"^\[Errno \d+\] ", "", detail))
                )
            elif text.startswith("unexpected response"):
                reason = f"the server sent something that is not IMAP ({text[:80]})"
            else:
                reason = f"the server ended the session: {_words(text)}"
        else:
            reason = _os_reason(exc)
        return f"connection to {self._where} lost during {command}: {reason}"

    def _kill(self, message: str, cause: BaseException | None = None) -> NoReturn:
        """Mark the connection dead, close its socket, raise ConnectionLost."""
        self._dead = message
        self._selected = None
        self._drop_socket()
        raise ConnectionLost(message, account=self._account) from cause


def _greeting_error(cfg: ServerConfig, exc: imaplib.IMAP4.error, account: str | None) -> SyncError:
    where = f"{cfg.host}:{cfg.port}"
    text = _unwrap(exc)
    if text.endswith("socket error: EOF"):
        return ServerUnreachable(
            f"cannot reach {where}: the server closed the connection before greeting",
            account=account,
        )
    if text.startswith("* BYE"):
        return ServerUnreachable(
            f"server {where} refused the connection: {_words(text[5:])}",
            account=account,
        )
    return ProtocolError(f"server {where} greeted with something that is not IMAP", account=account)


def _long_readline(imap: Any) -> Callable[[], bytes]:
    def readline() -> bytes:
        line: bytes = imap.file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise imap.error(f"got a line of more than {_MAX_LINE} bytes")
        return line

    return readline


def _xoauth2(user: str, token: str) -> Callable[[bytes], bytes]:
    """XOAUTH2: the token first; an empty reply to the server's error challenge."""
    sent = False

    def mech(challenge: bytes) -> bytes:
        nonlocal sent
        if sent:
            return b""
        sent = True
        return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()

    return mech


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _last_int(ur: dict[str, list[Any]], name: str) -> int | None:
    values = ur.get(name)
    if not values:
        return None
    raw = values[-1]
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
    word = text.split()[0] if text.split() else ""
    return int(word) if word.isdigit() else None
