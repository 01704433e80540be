"""A controllable aiosmtpd SMTP server for tests and benchmarks.

Why this exists: the outbox must be tested against a real SMTP conversation -- real
replies, real TLS, real dropped connections -- and must prove that every message
arrives exactly once through temporary failures. aiosmtpd is a real SMTP server that
starts in milliseconds; this wraps its ``Controller`` (own thread, own event loop) on
127.0.0.1 and a free port, records what it accepts, and lets a test inject faults at
any time from any thread.

Usage::

    with SmtpServer(starttls=True, auth={"alice": "secret"}) as server:
        cfg = SmtpConfig(server.host, server.port, "starttls", "alice", "secret",
                         ca_file=server.ca_pem)
        ...
        server.fail_next("data", 554, "5.7.1 Message rejected as spam")
        server.drop_next("rcpt")
        assert server.message_ids() == [...]

Behaviour worth knowing when writing tests:

* A message is recorded (``received``) only when the server answered 250 to the end
  of DATA. A fault at MAIL, RCPT or DATA, or a dropped connection, records nothing --
  including ``drop_next("data")``, where the server has the whole message but the
  client never learns it: counted as *not* delivered, so a retry makes it exactly once.
* Faults are queued per stage and used in order, one per command at that stage;
  ``fail_next("rcpt", ...)`` hits the next RCPT, whichever recipient it is. Queued
  faults go first; chaos applies only when none is queued.
* A 421 reply, injected or not, closes the connection after it is sent (RFC 5321
  3.8), as real servers do. 4xx/5xx other than 421 keep it open.
* ``connections`` counts client connections (aiosmtpd's own start-up probe excluded);
  ``Received.connection`` says which connection (1, 2, ...) delivered a message.
* With ``auth``, MAIL is refused with 530 until the client logged in. AUTH offers
  PLAIN, LOGIN and XOAUTH2 (the same dict holds passwords and tokens). With
  ``starttls`` AUTH is offered only after STARTTLS, as real servers do; with implicit
  TLS it is offered at once; on a plain server it is offered in the clear (handy for
  tests only).
* ``starttls=True`` requires STARTTLS before MAIL (530 otherwise). The certificate is
  issued by a throwaway trustme CA for 127.0.0.1 and localhost; ``ca_pem`` is its file.
* ``data_delay`` (seconds, settable any time) holds each 250 after DATA back, as a
  busy server does: the window in which a client killed has sent a message without
  knowing it.
* ``size_limit`` is advertised as SIZE and enforced (552 at MAIL for a declared size
  over it, 552 after DATA for more data); None advertises no SIZE.

This module must stay importable without pytest (benchmarks use it too).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import shutil
import ssl
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["CHAOS_FAULTS", "Received", "SmtpServer"]

HOSTNAME = "smtp.test"
FAIL_STAGES = ("mail", "rcpt", "data")
DROP_STAGES = ("connect", "mail", "rcpt", "data")
# What chaos() picks from, each equally likely: (kind, stage, code, text).
CHAOS_FAULTS: tuple[tuple[str, str, int, str], ...] = (
    ("fail", "mail", 421, "4.7.0 Chaos: try again later"),
    ("fail", "rcpt", 451, "4.3.0 Chaos: mailbox busy"),
    ("fail", "data", 451, "4.3.0 Chaos: local error in processing"),
    ("drop", "mail", 0, ""),
    ("drop", "rcpt", 0, ""),
    ("drop", "data", 0, ""),
)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the message as the server got it (dot-stuffing undone)
    message_id: str | None
    connection: int = 0  # which client connection (1, 2, ...) delivered it
    mail_options: tuple[str, ...] = ()  # MAIL FROM parameters, upper-cased (SIZE=..., ...)


@dataclass(frozen=True)
class _Fault:
    kind: str  # 'fail' | 'drop'
    code: int = 0
    text: str = ""


def _message_id(data: bytes) -> str | None:
    headers = BytesHeaderParser(policy=compat32).parsebytes(data)
    value = headers.get("Message-ID")
    return " ".join(str(value).split()) if value is not None else None


class _Smtp(SMTP):
    """aiosmtpd's SMTP with a connection number, 421-closes, and abrupt drops."""

    def __init__(self, owner: SmtpServer, handler: Any, *, probe: bool, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.owner = owner
        self.probe = probe  # aiosmtpd's own start-up connection: never faulted or counted
        self.number = 0
        self.pending: tuple[str, _Fault] | None = None  # a chaos fault for a later stage

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if first and not self.probe:
            self.number = self.owner._connected(self)

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            self.owner._disconnected(self)

    async def _handle_client(self) -> None:
        if not self.probe and self.owner._take("connect", self) is not None:
            self.abort()
            return
        await super()._handle_client()

    async def push(self, status: Any) -> None:
        await super().push(status)
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if text.startswith("421") and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    async def drop(self) -> str:
        """Close the connection without a reply; the handler task dies with it."""
        self.abort()
        await self.loop.create_future()  # cancelled by connection_lost
        raise AssertionError("unreachable")


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self,
        server: _Smtp,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> Any:
        if self.owner.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        server.pending = None
        fault = self.owner._take("mail", server)
        if fault is not None:
            return await self._apply(server, fault)
        return MISSING

    async def handle_RCPT(
        self,
        server: _Smtp,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> Any:
        fault = self.owner._take("rcpt", server)
        if fault is not None:
            return await self._apply(server, fault)
        refusal = self.owner._refusal(address)
        if refusal is not None:
            return refusal
        return MISSING

    async def handle_DATA(self, server: _Smtp, session: Session, envelope: Envelope) -> Any:
        fault = self.owner._take("data", server)
        if fault is not None:
            return await self._apply(server, fault)
        data = envelope.original_content or b""
        if self.owner.data_delay:  # the server "thinks" before its 250: a wider window
            await asyncio.sleep(self.owner.data_delay)
        queued = self.owner._record(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data,
                message_id=_message_id(data),
                connection=server.number,
                mail_options=tuple(envelope.mail_options),
            )
        )
        return f"250 2.0.0 Ok: queued as T{queued:05d}"

    async def handle_exception(self, error: Exception) -> str:
        # aiosmtpd would log a traceback at ERROR for every client that gives up on a
        # TLS handshake (an expected event in tests); the reply still reports it.
        return f"500 Error: ({type(error).__name__}) {error}"

    async def _apply(self, server: _Smtp, fault: _Fault) -> str:
        if fault.kind == "drop":
            return await server.drop()
        return f"{fault.code} {fault.text}".rstrip()

    async def auth_XOAUTH2(self, server: _Smtp, args: list[str]) -> AuthResult:
        """XOAUTH2 as Gmail does it: on failure a JSON challenge, then 535."""
        try:
            blob = base64.b64decode(args[1], validate=True) if len(args) > 1 else b""
            fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
            user, token = fields["user"], fields["auth"].removeprefix("Bearer ")
        except (ValueError, KeyError, UnicodeDecodeError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 Bad XOAUTH2")
        if self.owner.auth is not None and self.owner.auth.get(user) == token:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"})
        await server.challenge_auth(error)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )


class _Controller(Controller):
    def __init__(self, owner: SmtpServer, **kwargs: Any) -> None:
        super().__init__(_Handler(owner), hostname="127.0.0.1", port=0, **kwargs)
        self.owner = owner
        self.probed = False

    def factory(self) -> _Smtp:
        probe, self.probed = not self.probed, True
        return _Smtp(self.owner, self.handler, probe=probe, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before aiosmtpd's start-up probe.
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpServer:
    """A real SMTP server on 127.0.0.1 in its own thread; see the module docstring."""

    def __init__(
        self,
        *,
        tls: bool = False,
        starttls: bool = False,
        auth: dict[str, str] | None = None,
        size_limit: int | None = None,
        smtputf8: bool = True,
    ) -> None:
        if tls and starttls:
            raise ValueError("tls (implicit TLS) and starttls exclude each other")
        self.auth = dict(auth) if auth is not None else None
        self.data_delay = 0.0  # seconds between the end of DATA and the 250
        self.host = "127.0.0.1"
        self.ca_pem: str | None = None
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._faults: dict[str, deque[_Fault]] = {s: deque() for s in DROP_STAGES}
        self._refused: dict[str, tuple[int, str]] = {}
        self._chaos: tuple[float, random.Random] | None = None
        self._live: set[_Smtp] = set()
        self._connections = 0
        self._tmp: Path | None = None
        server_ctx: ssl.SSLContext | None = None
        if tls or starttls:
            self._tmp = Path(tempfile.mkdtemp(prefix="tidings-smtp-"))
            ca = trustme.CA()
            ca_file = self._tmp / "ca.pem"
            ca.cert_pem.write_to_path(str(ca_file))
            self.ca_pem = str(ca_file)
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost", HOSTNAME).configure_cert(server_ctx)
        smtp_kwargs: dict[str, Any] = {
            "data_size_limit": size_limit,
            "enable_SMTPUTF8": smtputf8,
            # aiosmtpd only knows STARTTLS as "encrypted": with implicit TLS and
            # auth_require_tls it would never offer AUTH at all.
            "auth_require_tls": starttls,
        }
        if self.auth is not None:
            smtp_kwargs["authenticator"] = self._authenticate
        else:  # no AUTH mechanism offered at all, like a plain relay
            smtp_kwargs.update(
                auth_require_tls=True, auth_exclude_mechanism=["PLAIN", "LOGIN", "XOAUTH2"]
            )
        if starttls:
            smtp_kwargs.update(tls_context=server_ctx, require_starttls=True)
        self._controller = _Controller(
            self,
            ssl_context=server_ctx if tls else None,
            server_hostname=HOSTNAME,
            **smtp_kwargs,
        )
        try:
            self._controller.start()
        except BaseException:
            self._remove_tmp()
            raise
        self.port: int = self._controller.port
        self._stopped = False

    # --------------------------------------------------------------- results

    @property
    def received(self) -> list[Received]:
        """A snapshot of what was delivered, in order."""
        with self._lock:
            return list(self._received)

    def message_ids(self) -> list[str]:
        """Message-IDs of everything delivered, in order (messages without one skipped)."""
        return [r.message_id for r in self.received if r.message_id is not None]

    @property
    def connections(self) -> int:
        """How many client connections were made so far."""
        with self._lock:
            return self._connections

    # ------------------------------------------------------- fault injection

    def fail_next(
        self, stage: str, code: int, text: str = "4.3.0 Injected failure", count: int = 1
    ) -> None:
        """Answer the next ``count`` commands at ``stage`` ('mail', 'rcpt', 'data') with
        ``code text`` instead of going on. For 'data' the reply comes after the data."""
        if stage not in FAIL_STAGES:
            raise ValueError(f"stage must be one of {FAIL_STAGES}, not {stage!r}")
        with self._lock:
            self._faults[stage].extend(_Fault("fail", code, text) for _ in range(count))

    def refuse_recipient(
        self, address: str, code: int = 550, text: str = "5.1.1 No such user"
    ) -> None:
        """Refuse RCPT TO ``address`` (exact, case-insensitive) from now on."""
        with self._lock:
            self._refused[address.casefold()] = (code, text)

    def drop_next(self, stage: str, count: int = 1) -> None:
        """Close the next ``count`` connections abruptly at ``stage``: 'connect' (before
        the greeting), 'mail', 'rcpt', or 'data' (the whole message received, no reply;
        not recorded)."""
        if stage not in DROP_STAGES:
            raise ValueError(f"stage must be one of {DROP_STAGES}, not {stage!r}")
        with self._lock:
            self._faults[stage].extend(_Fault("drop") for _ in range(count))

    def chaos(self, rate: float, seed: int) -> None:
        """From now on, at each MAIL FROM pick a fault from CHAOS_FAULTS with probability
        ``rate`` (seeded, so a run with one client repeats). ``rate`` 0 turns it off."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._chaos = (rate, random.Random(seed)) if rate > 0 else None

    # --------------------------------------------------------------- lifecycle

    def stop(self) -> None:
        """Close every connection, stop the server thread, remove the CA. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        loop = self._controller.loop
        try:
            future = asyncio.run_coroutine_threadsafe(self._close_all(), loop)
            future.result(timeout=10)
        finally:
            self._controller.stop()
            self._remove_tmp()

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SmtpServer {self.host}:{self.port}>"

    # -------------------------------------------- called in the server thread

    def _connected(self, smtp: _Smtp) -> int:
        with self._lock:
            self._live.add(smtp)
            self._connections += 1
            return self._connections

    def _disconnected(self, smtp: _Smtp) -> None:
        with self._lock:
            self._live.discard(smtp)

    def _take(self, stage: str, smtp: _Smtp) -> _Fault | None:
        """The fault for this command, if any: queued first, then chaos."""
        with self._lock:
            queue = self._faults[stage]
            if queue:
                return queue.popleft()
            if stage == "mail" and self._chaos is not None:
                rate, rng = self._chaos
                if rng.random() < rate:
                    kind, where, code, text = rng.choice(CHAOS_FAULTS)
                    smtp.pending = (where, _Fault(kind, code, text))
            if smtp.pending is not None and smtp.pending[0] == stage:
                fault = smtp.pending[1]
                smtp.pending = None
                return fault
            return None

    def _refusal(self, address: str) -> str | None:
        with self._lock:
            hit = self._refused.get(address.casefold())
        return f"{hit[0]} {hit[1]}".rstrip() if hit else None

    def _record(self, received: Received) -> int:
        with self._lock:
            self._received.append(received)
            return len(self._received)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.auth is not None:
            user = data.login.decode("utf-8", "replace")
            if self.auth.get(user) == data.password.decode("utf-8", "replace"):
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    async def _close_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for smtp in live:
            smtp.abort()
        for _ in range(200):
            with self._lock:
                if not self._live:
                    break
            await asyncio.sleep(0.005)
        for _ in range(5):
            await asyncio.sleep(0)

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
