"""The SMTP connection: the one module of Tidings that talks to aiosmtplib.

A small synchronous facade over aiosmtplib for the outbox worker, which runs in a
plain thread. :meth:`SmtpSession.open` connects, sets up TLS and logs in;
:meth:`SmtpSession.send` hands one finished message to the server; the same session
(and TCP connection) carries message after message until it is closed or dies. Out
come frozen dataclasses and the errors of ``sync/errors.py`` -- never aiosmtplib
objects.

Why a private event loop per session: aiosmtplib is asyncio-only, and the outbox
sends many messages over one connection. ``asyncio.run`` per message would close the
loop, and with it the connection, after every message. So each session owns a loop
(``asyncio.new_event_loop``), runs each step with ``run_until_complete`` from the
calling thread, and closes it in :meth:`SmtpSession.close`. Between calls the loop
does not run: a server that hangs up while we are idle is noticed when ``alive`` is
read (it handles what already arrived, without waiting) or at the next send, which
then fails with ``SmtpTemporary`` before sending anything. Not for use from inside a
running event loop; one thread at a time (a lock serialises).

Errors are translated here, once, with ``raise ... from exc``:

* ``SmtpTemporary``: a 4xx reply, a timeout, a refused or dropped connection. A 421
  reply ("service not available, closing") ends the session, as RFC 5321 says.
* ``SmtpPermanent``: a 5xx reply; a message over the server's SIZE (refused before
  anything is sent); an address the server cannot take (non-ASCII without SMTPUTF8,
  or not an address at all).
* ``SmtpAuthFailed``: the login was refused, or the server offers no way to log in
  that we can use (XOAUTH2 for ``auth='oauth2'``; PLAIN, LOGIN or CRAM-MD5 otherwise).
* ``TlsError``: untrusted or mismatched certificate, failed handshake, STARTTLS asked
  for but not offered (we then send neither a password nor mail in the clear).

``code`` and ``reply`` carry the server's words (``reply`` is the whole reply on one
line: ``"554 5.7.1 Message rejected as spam"``); ``str(exc)`` is one line naming the
server. After a refused command the envelope is reset with RSET, so the session
stays usable for the next message; a dropped connection (or a failed RSET) marks the
session dead (``alive`` is False) and every later send fails at once.

Decisions worth knowing:

* Envelope and message are separate: ``send`` sends MAIL FROM ``sender``, one RCPT
  TO per recipient (exact duplicates dropped) and then ``raw`` as it is -- no header
  is added, removed or rewritten, so a Bcc recipient is simply one that is not in the
  headers. The only changes are the ones SMTP itself requires: bare CR or LF become
  CRLF, a final CRLF is added if missing, and lines starting with "." are dot-stuffed
  on the wire (the server removes the extra dot again).
* Per-recipient refusals do not stop the message: it goes to the recipients the
  server took and ``SendResult.refused`` says who was refused and why (a 4xx there
  is worth sending to that recipient again later). Only when every recipient is
  refused does ``send`` raise -- ``SmtpTemporary`` if every refusal was 4xx, else
  ``SmtpPermanent``; ``exc.refused`` has the details.
* MAIL FROM carries ``SIZE=`` (when the server has SIZE), ``BODY=8BITMIME`` (8-bit
  message, server has 8BITMIME) and ``SMTPUTF8`` (non-ASCII addresses, or raw UTF-8
  in the header section, when the server offers it). Non-ASCII addresses without
  SMTPUTF8 are refused before MAIL.
* The EHLO name is the address literal of our end of the connection (``[192.0.2.7]``),
  as Thunderbird does: it tells the server nothing about the machine, and it avoids
  ``socket.getfqdn()``, which can stall for seconds on a badly set up resolver.
* Password login uses one mechanism, not a series of guesses (each failed guess
  counts towards lockouts): PLAIN, else LOGIN, else CRAM-MD5 -- CRAM-MD5 first on an
  unencrypted connection, where it at least does not send the password itself.
* Certificates are always verified (system CAs plus ``ca_file``), host name included.
* The reply to the end of DATA may take a while for a big message on a slow uplink
  (aiosmtplib starts its timer once the whole message is queued, not sent): its
  timeout is ``timeout`` plus one second per 16 kB of message.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, NoReturn, TypeVar

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import normalize_message_line_endings

from sync.errors import (
    SmtpAuthFailed,
    SmtpError,
    SmtpPermanent,
    SmtpTemporary,
    SyncError,
    TlsError,
)
from sync.netfail import lower as _lower
from sync.netfail import os_reason as _os_reason
from sync.netfail import tls_context

__all__ = ["SendResult", "SmtpConfig", "SmtpSession", "too_big"]

SECURITY_MODES: Final = ("ssl", "starttls", "none")
AUTH_MODES: Final = ("password", "oauth2")
# QUIT and the TLS goodbye when closing must not hang on a dying server.
_CLOSE_TIMEOUT: Final = 5.0
# The DATA reply timeout grows by one second per this many bytes (~128 kbit/s).
_SLOW_UPLINK: Final = 16 * 1024
_X509_V_ERR_HOSTNAME_MISMATCH: Final = 62
# C0 controls and DEL (aiosmtplib refuses spaces and <>" outside a quoted local part).
_BAD_ADDRESS = re.compile(r"[\x00-\x1f\x7f]")
_T = TypeVar("_T")


# ------------------------------------------------------------------ data out


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # 'ssl' (implicit TLS) | 'starttls' (refused if not offered) | 'none'
    username: str | None  # None: no login
    secret: str | None
    auth: str = "password"  # 'password' | 'oauth2' (AUTH XOAUTH2, secret = access token)
    ca_file: str | None = None  # extra CA to trust; verification is always on
    timeout: float = 60.0

    def __repr__(self) -> str:  # never show the secret in a log or traceback
        return (
            f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, auth={self.auth!r}, ca_file={self.ca_file!r}, "
            f"timeout={self.timeout})"
        )


@dataclass(frozen=True)
class SendResult:
    accepted: tuple[str, ...]  # recipients the server took, in the order given
    refused: dict[str, tuple[int, str]]  # recipient -> (code, reply text) of its RCPT
    reply: str  # the server's reply to the end of DATA: "250 2.0.0 Ok: queued as 4F2..."


# ------------------------------------------------------------------- helpers


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reply(code: int, text: str) -> str:
    return f"{code} {_one_line(text)}".rstrip()


def _tls_context(cfg: SmtpConfig) -> ssl.SSLContext:
    return tls_context(cfg.ca_file)


def _tls_failure(host: str, where: str, exc: ssl.SSLError) -> TlsError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = _lower(exc.verify_message or exc.reason or str(exc))
        if exc.verify_code == _X509_V_ERR_HOSTNAME_MISMATCH or "mismatch" in reason.lower():
            return TlsError(f"TLS certificate of {host} is not valid for that name ({reason})")
        return TlsError(
            f"TLS certificate of {host} is not trusted ({reason}); use --ca-file for a private CA"
        )
    hint = ""
    if exc.reason in ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE"):
        hint = " -- the server does not speak TLS on this port (try security 'starttls')"
    return TlsError(f"TLS handshake with {where} failed ({_os_reason(exc)}){hint}")


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        value, unit = n / (1024 * 1024), "MB"
    elif n >= 1024:
        value, unit = n / 1024, "kB"
    else:
        return f"{n} bytes"
    text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {unit}"


def too_big(size: int, limit: int, host: str) -> str:
    """The one-line refusal of a message of ``size`` bytes over ``host``'s SIZE."""
    a, b = _size(size), _size(limit)
    if a == b:  # 25.3 MB over a 25 MB limit would read "25 MB ... at most 25 MB"
        a, b = f"{size:,} bytes", f"{limit:,} bytes"
    return f"the message is {a}; {host} accepts at most {b}"


def _header_section(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[:end]
    return raw


async def _spin(turns: int) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


def _ehlo_name(sockname: Any) -> str:
    """Our address as an EHLO address literal: ``[192.0.2.7]``, ``[IPv6:2001:db8::7]``."""
    host = sockname[0] if isinstance(sockname, tuple) and sockname else None
    if not isinstance(host, str) or not host:
        return "[127.0.0.1]"
    host = host.split("%", 1)[0]  # an IPv6 zone is meaningless to the server
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"


# -------------------------------------------------------------- the session


class SmtpSession:
    """One connected (and logged-in) SMTP session. Make it with :meth:`open`; use as a
    context manager or call :meth:`close`. One thread at a time."""

    max_size: int | None  # the server's SIZE limit in bytes; None when it names none
    smtputf8: bool  # the server offers SMTPUTF8 (international addresses)

    def __init__(
        self,
        cfg: SmtpConfig,
        loop: asyncio.AbstractEventLoop,
        smtp: aiosmtplib.SMTP,
        account: str | None,
    ) -> None:
        # Use open(); this only holds the parts together.
        self._cfg = cfg
        self._loop = loop
        self._smtp = smtp
        self._account = account
        self._where = f"{cfg.host}:{cfg.port}"
        self._sock: Any = None  # asyncio's wrapper of the TCP socket, to see it closed
        self._stage = "connect"  # the command under way, for messages
        self._dead: str | None = None  # why the session is unusable
        self._closed = False
        self._lock = threading.Lock()
        self.max_size = None
        self.smtputf8 = False
        self._eightbit = False

    # ----------------------------------------------------------- connecting

    @classmethod
    def open(
        cls, cfg: SmtpConfig, *, account: str | None = None, login: bool = True
    ) -> SmtpSession:
        """Connect, greet (EHLO), set up TLS (implicit or STARTTLS) and log in.

        ``login=False`` stops before the login: enough to learn what the server offers
        (``max_size``, ``smtputf8``) without spending a login attempt."""
        if cfg.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {SECURITY_MODES}, not {cfg.security!r}")
        if cfg.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {AUTH_MODES}, not {cfg.auth!r}")
        try:
            ctx = _tls_context(cfg) if cfg.security != "none" else None
        except TlsError as exc:
            exc.account = account
            raise
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout,
            use_tls=cfg.security == "ssl",
            start_tls=False,  # done here, so that "not offered" can be refused
            tls_context=ctx,
            # Replaced by our address literal once connected (see _open).
            local_hostname="localhost",
        )
        session = cls(cfg, asyncio.new_event_loop(), smtp, account)
        try:
            session._call(session._open(login=login))
        except BaseException:
            session._closed = True
            session._teardown()
            raise
        return session

    async def _open(self, *, login: bool) -> None:
        cfg, smtp = self._cfg, self._smtp
        try:
            await smtp.connect()
        except aiosmtplib.SMTPConnectResponseError as exc:
            # The greeting was not 220: 421/554 "no service for you".
            raise self._refusal(exc.code, exc.message, "the connection", greeting=True) from exc
        except aiosmtplib.SMTPConnectTimeoutError as exc:
            raise SmtpTemporary(f"cannot reach {self._where}: timed out") from exc
        except aiosmtplib.SMTPConnectError as exc:
            cause = exc.__cause__
            if isinstance(cause, ssl.SSLError):
                raise _tls_failure(cfg.host, self._where, cause) from exc
            if isinstance(cause, aiosmtplib.SMTPServerDisconnected):
                reason = "the server closed the connection before greeting"
            elif isinstance(cause, OSError):
                reason = _os_reason(cause)
            else:
                reason = _lower(exc.message)
            raise SmtpTemporary(f"cannot reach {self._where}: {reason}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            # A greeting that is not SMTP at all: wrong port (IMAP, HTTP ...).
            said = _one_line(exc.message).removeprefix("Malformed SMTP response line: ")
            raise SmtpPermanent(
                f"server {self._where} does not speak SMTP (it greeted with {said[:60]!r})"
            ) from exc
        self._sock = smtp.get_transport_info("socket")
        smtp.local_hostname = _ehlo_name(smtp.get_transport_info("sockname"))
        await self._ehlo()
        if cfg.security == "starttls":
            await self._starttls()
        if cfg.username is not None and login:
            await self._login(cfg.username, cfg.secret or "")
        ext = smtp.esmtp_extensions
        size = ext.get("size", "").strip()
        self.max_size = int(size) if size.isdigit() and int(size) > 0 else None
        self.smtputf8 = "smtputf8" in ext
        self._eightbit = "8bitmime" in ext

    async def _ehlo(self) -> None:
        smtp = self._smtp
        self._stage = "EHLO"
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError as exc:
            if not smtp.is_connected or not 500 <= exc.code < 600:
                raise self._refusal(exc.code, exc.message, "our greeting (EHLO)") from exc
            self._stage = "HELO"  # a server from before ESMTP
            try:
                await smtp.helo()
            except aiosmtplib.SMTPHeloError as exc2:
                raise self._refusal(exc2.code, exc2.message, "our greeting (HELO)") from exc2

    async def _starttls(self) -> None:
        smtp, host = self._smtp, self._cfg.host
        if not smtp.supports_extension("starttls"):
            what = "the password" if self._cfg.username is not None else "mail"
            raise TlsError(
                f"server {self._where} does not offer STARTTLS; not sending {what} unencrypted"
            )
        self._stage = "STARTTLS"
        try:
            await smtp.starttls()
        except ssl.SSLError as exc:
            raise _tls_failure(host, self._where, exc) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or not smtp.is_connected:
                raise self._refusal(exc.code, exc.message, "STARTTLS") from exc
            raise TlsError(
                f"server {host} refused STARTTLS: {_reply(exc.code, exc.message)}"
            ) from exc
        await self._ehlo()

    async def _login(self, user: str, secret: str) -> None:
        smtp, cfg = self._smtp, self._cfg
        who = f"{user} at {cfg.host}"
        methods = [m.lower() for m in smtp.server_auth_methods]
        self._stage = "AUTH"
        if not smtp.supports_extension("auth") or not methods:
            hint = (
                " (servers often allow it only over TLS: try security 'starttls' or 'ssl')"
                if cfg.security == "none"
                else ""
            )
            raise SmtpAuthFailed(f"login failed for {who}: the server offers no login{hint}")
        try:
            if cfg.auth == "oauth2":
                if "xoauth2" not in methods:
                    raise SmtpAuthFailed(
                        f"login failed for {who}: the server does not offer OAuth2 (XOAUTH2)"
                    )
                await smtp.auth_xoauth2(user, secret)
                return
            order = ("plain", "login", "cram-md5")
            if cfg.security == "none":
                order = ("cram-md5", "plain", "login")
            mech = next((m for m in order if m in methods), None)
            if mech == "plain":
                await smtp.auth_plain(user, secret)
            elif mech == "login":
                await smtp.auth_login(user, secret)
            elif mech == "cram-md5":
                await smtp.auth_crammd5(user, secret)
            else:
                offered = ", ".join(m.upper() for m in methods)
                raise SmtpAuthFailed(
                    f"login failed for {who}: the server offers only {offered}, "
                    "which Tidings does not support"
                )
        except aiosmtplib.SMTPAuthenticationError as exc:
            reply = _reply(exc.code, exc.message)
            if exc.code == 421 or not smtp.is_connected:
                raise self._refusal(exc.code, exc.message, "the login") from exc
            if 400 <= exc.code < 500:
                raise SmtpTemporary(
                    f"server {cfg.host} cannot log {user} in right now: {reply}",
                    code=exc.code,
                    reply=reply,
                ) from exc
            raise SmtpAuthFailed(
                f"server {cfg.host} refused the login for {user}: {reply}",
                code=exc.code,
                reply=reply,
            ) from exc

    # -------------------------------------------------------------- sending

    @property
    def alive(self) -> bool:
        """False once the connection is gone or the session closed.

        Reading it first handles what already arrived while the session was idle
        (without waiting for anything), so a server that hung up meanwhile -- servers
        drop idle connections after a few minutes -- shows here, before a send.
        """
        if self._closed or self._dead is not None:
            return False
        if self._lock.acquire(blocking=False):  # not while another thread sends
            try:
                self._poll()
            finally:
                self._lock.release()
        return self._dead is None and self._smtp.is_connected

    def _poll(self) -> None:
        """Let the loop handle events that are already there (EOF, reset); no waiting."""
        if self._closed or self._loop.is_running():
            return
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(_spin(3))
        if self._dead is None and not self._smtp.is_connected:
            self._dead = f"connection to {self._where} was closed by the server while idle"

    def send(self, sender: str, recipients: Sequence[str], raw: bytes) -> SendResult:
        """Send ``raw`` (a complete RFC 5322 message, sent as it is) from ``sender`` to
        ``recipients`` (the envelope: To, Cc and Bcc alike)."""
        if isinstance(recipients, str):
            raise TypeError("recipients must be a sequence of addresses, not one string")
        rcpts = list(dict.fromkeys(recipients))
        if not rcpts:
            raise ValueError("a message needs at least one recipient")
        with self._lock:
            if self._closed:
                raise SmtpTemporary(f"connection to {self._where} is closed", account=self._account)
            self._poll()
            if self._dead is not None or not self._smtp.is_connected:
                raise SmtpTemporary(
                    self._dead or f"connection to {self._where} was lost",
                    account=self._account,
                )
            options, encoding = self._envelope_options(sender, rcpts, raw)
            return self._call(self._send(sender, rcpts, raw, options, encoding))

    def _envelope_options(self, sender: str, rcpts: list[str], raw: bytes) -> tuple[list[str], str]:
        """MAIL FROM parameters and the address encoding; refuses what cannot go."""
        host = self._cfg.host
        intl = not (sender.isascii() and all(r.isascii() for r in rcpts))
        self._check_address(sender, allow_empty=True)
        for address in rcpts:
            self._check_address(address, allow_empty=False)
        if intl and not self.smtputf8:
            names = ", ".join(a for a in [sender, *rcpts] if not a.isascii())
            raise SmtpPermanent(
                f"{host} does not accept international addresses (SMTPUTF8): {names}",
                account=self._account,
            )
        size = len(normalize_message_line_endings(raw))
        if self.max_size is not None and size > self.max_size:
            raise SmtpPermanent(too_big(size, self.max_size, host), account=self._account)
        options: list[str] = []
        if self._smtp.supports_extension("size"):
            options.append(f"SIZE={size}")
        if self._eightbit and not raw.isascii():
            options.append("BODY=8BITMIME")
        if self.smtputf8 and (intl or not _header_section(raw).isascii()):
            options.append("SMTPUTF8")
        return options, "utf-8" if "SMTPUTF8" in options else "ascii"

    def _check_address(self, address: str, *, allow_empty: bool) -> None:
        if allow_empty and address == "":
            return  # the null reverse-path "<>"
        try:
            ok = bool(address) and not _BAD_ADDRESS.search(address)
            ok = ok and quote_address(address) == f"<{address}>"
        except ValueError:
            ok = False
        if not ok:
            raise SmtpPermanent(
                f"{address!r} is not an address {self._cfg.host} can send to",
                account=self._account,
            )

    async def _send(
        self, sender: str, rcpts: list[str], raw: bytes, options: list[str], encoding: str
    ) -> SendResult:
        smtp = self._smtp
        try:
            self._stage = "MAIL FROM"
            try:
                await smtp.mail(sender, options=options, encoding=encoding)
            except aiosmtplib.SMTPSenderRefused as exc:
                raise self._refusal(exc.code, exc.message, f"the sender {sender}") from exc
            accepted: list[str] = []
            refused: dict[str, tuple[int, str]] = {}
            self._stage = "RCPT TO"
            for rcpt in rcpts:
                try:
                    await smtp.rcpt(rcpt, encoding=encoding)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    if exc.code == 421 or not smtp.is_connected or not 400 <= exc.code < 600:
                        raise self._refusal(exc.code, exc.message, f"the recipient {rcpt}") from exc
                    refused[rcpt] = (exc.code, _one_line(exc.message))
                else:
                    accepted.append(rcpt)
            if not accepted:
                raise self._all_refused(refused)
            self._stage = "DATA"
            timeout = self._cfg.timeout + len(raw) / _SLOW_UPLINK
            try:
                response = await smtp.data(raw, timeout=timeout)
            except aiosmtplib.SMTPDataError as exc:
                raise self._refusal(exc.code, exc.message, "the message") from exc
        except SmtpError:
            await self._reset()
            raise
        return SendResult(tuple(accepted), refused, _reply(response.code, response.message))

    def _all_refused(self, refused: dict[str, tuple[int, str]]) -> SmtpError:
        host = self._cfg.host
        parts = [f"{rcpt} ({_reply(code, text)})" for rcpt, (code, text) in refused.items()]
        if len(parts) > 3:
            parts = [*parts[:3], f"and {len(parts) - 3} more"]
        code, text = next(iter(refused.values()))
        cls = SmtpTemporary if all(400 <= c < 500 for c, _ in refused.values()) else SmtpPermanent
        verb = "cannot take" if cls is SmtpTemporary else "refused"
        noun = "the recipient" if len(refused) == 1 else "every recipient"
        return cls(
            f"{host} {verb} {noun}: {', '.join(parts)}",
            code=code,
            reply=_reply(code, text),
            refused=refused,
            account=self._account,
        )

    async def _reset(self) -> None:
        """RSET after a refusal, so the next message starts a clean envelope."""
        smtp = self._smtp
        if not smtp.is_connected:
            return
        self._stage = "RSET"
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._dead = f"connection to {self._where} is unusable after a failed RSET"
            smtp.close()

    # ---------------------------------------------------------- lifecycle

    def close(self) -> None:
        """QUIT and close, best effort; never raises. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._dead is None and self._smtp.is_connected:
                    with contextlib.suppress(Exception):
                        self._loop.run_until_complete(
                            self._smtp.quit(timeout=min(self._cfg.timeout, _CLOSE_TIMEOUT))
                        )
            finally:
                self._teardown()

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        alive = self._dead is None and self._smtp.is_connected
        state = "closed" if self._closed else "open" if alive else "dead"
        who = f"{self._cfg.username}@" if self._cfg.username else ""
        return f"<SmtpSession {who}{self._where} {state}>"

    # ------------------------------------------------------------ internals

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run one step on the session's loop; translate what goes wrong, once."""
        try:
            return self._loop.run_until_complete(coro)
        except SyncError as exc:
            if exc.account is None:
                exc.account = self._account
            if self._dead is None and not self._smtp.is_connected and self._stage != "connect":
                self._dead = str(exc)
            raise
        except ssl.SSLError as exc:  # a TLS failure mid-session: the stream is gone
            self._kill(self._lost_message(exc), exc)
        except (
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
            OSError,
            EOFError,
        ) as exc:
            self._kill(self._lost_message(exc), exc)
        except aiosmtplib.SMTPResponseException as exc:
            # An unreadable reply (aiosmtplib's code -1), or one outside the command's
            # flow: the reply stream can no longer be trusted.
            self._kill(
                f"server {self._where} sent a reply we cannot use during {self._stage}: "
                f"{_one_line(exc.message)[:120]}",
                exc,
            )
        except aiosmtplib.SMTPException as exc:
            self._kill(
                f"SMTP with {self._where} failed during {self._stage}: {_lower(exc.message)}",
                exc,
            )

    def _lost_message(self, exc: BaseException) -> str:
        if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
            reason = "the server did not answer in time"
        elif isinstance(exc, aiosmtplib.SMTPServerDisconnected):
            cause = exc.__cause__
            if isinstance(cause, OSError) and not isinstance(cause, BrokenPipeError):
                reason = _os_reason(cause)
            else:
                reason = "the server closed the connection"
        else:
            reason = _os_reason(exc)
        if self._stage == "connect":
            return f"cannot reach {self._where}: {reason}"
        message = f"connection to {self._where} lost during {self._stage}: {reason}"
        if self._stage == "DATA":
            message += " (the message may or may not have been delivered)"
        return message

    def _refusal(self, code: int, text: str, what: str, *, greeting: bool = False) -> SmtpError:
        """A 4xx/5xx reply as our error. 421 means the server is closing the session."""
        host = self._cfg.host
        reply = _reply(code, text)
        if code == 421:
            self._dead = f"{host} is busy: {reply}"
            self._smtp.close()
            return SmtpTemporary(self._dead, code=code, reply=reply, account=self._account)
        if 400 <= code < 500:
            return SmtpTemporary(
                f"{host} cannot take {what} right now: {reply}",
                code=code,
                reply=reply,
                account=self._account,
            )
        if 500 <= code < 600:
            message = (
                f"{host} refuses connections: {reply}"
                if greeting
                else f"{host} refused {what}: {reply}"
            )
            return SmtpPermanent(message, code=code, reply=reply, account=self._account)
        # Not a refusal at all (code -1 for an unreadable reply, or a 2xx/3xx where it
        # makes no sense): the reply stream is out of step, so the session is over.
        self._dead = f"server {self._where} answered {what} with something unexpected: {reply}"
        self._smtp.close()
        return SmtpTemporary(self._dead, code=None, reply=reply, account=self._account)

    def _kill(self, message: str, cause: BaseException) -> NoReturn:
        """Mark the session dead, drop the connection, raise SmtpTemporary."""
        if self._dead is None:
            self._dead = message
        self._smtp.close()
        raise SmtpTemporary(message, account=self._account) from cause

    def _teardown(self) -> None:
        """Close the connection for good and the loop with it; never raises."""
        loop = self._loop
        if loop.is_closed():
            return
        with contextlib.suppress(Exception):
            loop.run_until_complete(self._release())
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()

    async def _release(self) -> None:
        """Close the transport and wait until the socket is really closed, so that no
        transport outlives the loop (it would warn, and leak the file descriptor)."""
        smtp = self._smtp
        protocol = smtp.protocol
        transport = protocol.transport if protocol is not None else None
        smtp.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self._cfg.timeout, _CLOSE_TIMEOUT)
        spins = 0
        while self._sock is not None and self._sock.fileno() != -1:
            if loop.time() > deadline:
                if isinstance(transport, asyncio.Transport):
                    transport.abort()
                break
            spins += 1
            await asyncio.sleep(0 if spins < 20 else 0.002)
        await _spin(5)  # let connection_lost callbacks run
