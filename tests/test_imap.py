"""sync/imap.py against a real, private Dovecot (tests/servers/dovecot.py).

What a mock cannot show is what these tests are for: literals, TLS, capability
differences, flag and expunge reporting (CONDSTORE/QRESYNC), IDLE timing, a server
that goes away. One TLS-capable server serves the module (each test works in folders
of its own); tests that restart or reconfigure a server start their own. A few tiny
socket servers written here stand in for servers that misbehave in ways Dovecot
never does (garbage greeting, a stall mid-command, XOAUTH2).

Without /usr/sbin/dovecot (or root) the server tests skip loudly; with
TIDINGS_REQUIRE_SERVERS=1 they fail instead.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import itertools
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync.errors import (
    AuthFailed,
    ConnectionLost,
    FolderGone,
    ProtocolError,
    ServerUnreachable,
    SyncError,
    TlsError,
)
from sync.imap import (
    FetchedMessage,
    FolderEntry,
    ImapConnection,
    ServerConfig,
    flag_names,
    role_of,
)
from tests.mailmaker import mail
from tests.servers.dovecot import (
    NO_CONDSTORE_CAPABILITIES,
    Dovecot,
    ImapUser,
    unavailable_reason,
)

REQUIRE_ENV = "TIDINGS_REQUIRE_SERVERS"
_REASON = unavailable_reason()
# Without CONDSTORE/QRESYNC -- and, to reach the other fallbacks, without ESEARCH and IDLE.
REDUCED_CAPABILITIES = " ".join(
    c for c in NO_CONDSTORE_CAPABILITIES.split() if c not in {"ESEARCH", "IDLE"}
)
USERS = (ImapUser("alice", "secret"), ImapUser("bob", "pässwört-ü"))


def _need_dovecot() -> None:
    if _REASON is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but no private Dovecot can run: {_REASON}")
    pytest.skip(
        f"NO IMAP SERVER TESTS: {_REASON} -- run `make system-deps` "
        f"(set {REQUIRE_ENV}=1 to make this a failure)"
    )


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server() -> Iterator[Dovecot]:
    """One TLS-capable Dovecot for the module: plain+STARTTLS on .port, TLS on .tls_port."""
    _need_dovecot()
    with Dovecot(tls=True, users=USERS) as s:
        yield s


@pytest.fixture(scope="module")
def reduced() -> Iterator[Dovecot]:
    """No CONDSTORE, QRESYNC, ESEARCH or IDLE; no TLS at all."""
    _need_dovecot()
    with Dovecot(capabilities=REDUCED_CAPABILITIES, users=USERS) as s:
        yield s


@pytest.fixture
def own_server() -> Iterator[Dovecot]:
    """A server of the test's own, for restarts."""
    _need_dovecot()
    with Dovecot() as s:
        yield s


_folders = itertools.count(1)


@pytest.fixture
def folder(server: Dovecot) -> str:
    """A fresh, empty folder on the module's server."""
    name = f"T{next(_folders)}"
    server.create_folder(name)
    return name


@pytest.fixture
def rfolder(reduced: Dovecot) -> str:
    """A fresh, empty folder on the reduced server."""
    name = f"R{next(_folders)}"
    reduced.create_folder(name)
    return name


Connect = Callable[..., ImapConnection]


def config(server: Dovecot, **changes: object) -> ServerConfig:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": "alice",
        "secret": "secret",
        "timeout": 10.0,
    }
    values.update(changes)
    return ServerConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """connect(server, **ServerConfig changes): connections closed after the test."""
    with ExitStack() as stack:

        def make(server: Dovecot, **changes: object) -> ImapConnection:
            conn = ImapConnection.connect(config(server, **changes), account="acct")
            stack.callback(conn.close)
            return conn

        yield make


def message(n: int, body: str = "Hello.\n", *, msgid: bool = True) -> bytes:
    return mail(f"{n}@example.com" if msgid else None, f"message {n}", body=body)


# -------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("name", "attributes", "role"),
    [
        ("INBOX", [], "inbox"),
        ("inbox", ["\\HasNoChildren"], "inbox"),
        ("INBOX/sub", [], None),
        ("Sent", ["\\HasNoChildren", "\\Sent"], "sent"),
        ("Gesendet", ["\\sent"], "sent"),
        ("Entwürfe", ["\\Drafts"], "drafts"),
        ("Papierkorb", ["\\Trash"], "trash"),
        ("Spam", ["\\Junk"], "junk"),
        ("Archiv", ["\\Archive"], "archive"),
        ("[Gmail]/All Mail", ["\\All", "\\HasNoChildren"], "all"),
        ("[Gmail]/Starred", ["\\Flagged"], "flagged"),
        ("[Gmail]/Spam", ["\\Spam"], "junk"),
        ("[Gmail]/Alle", ["\\AllMail"], "all"),
        ("Posteingang", ["\\Inbox"], "inbox"),
        ("Projects", ["\\HasChildren"], None),
        ("Sent", [], None),  # a name is not a role
    ],
)
def test_role_of(name: str, attributes: list[str], role: str | None) -> None:
    assert role_of(name, attributes) == role


def test_flag_names_byte_table() -> None:
    assert flag_names([b"\\Seen", b"\\Recent", b"$Forwarded", b"\\ANSWERED"]) == (
        frozenset({"seen", "answered"}),
        ("$Forwarded",),
    )
    assert flag_names([]) == (frozenset(), ())


def test_config_repr_hides_the_secret() -> None:
    cfg = ServerConfig("h", 993, "ssl", "alice", "hunter2")
    assert "hunter2" not in repr(cfg)
    assert "alice" in repr(cfg)


@pytest.mark.parametrize(("field", "value"), [("security", "tls"), ("auth", "kerberos")])
def test_bad_config_values_are_programming_errors(field: str, value: str) -> None:
    cfg = ServerConfig("127.0.0.1", 1, "none", "alice", "secret")
    with pytest.raises(ValueError, match=field):
        ImapConnection.connect(dataclasses.replace(cfg, **{field: value}))


def test_error_tree() -> None:
    for cls in (AuthFailed, ServerUnreachable, TlsError, ProtocolError, ConnectionLost, FolderGone):
        assert issubclass(cls, SyncError)
    assert issubclass(ServerUnreachable, ConnectionError)
    assert issubclass(ConnectionLost, ConnectionError)
    exc = ConnectionLost("lost\n  the  line", account="work")
    assert str(exc) == "lost the line"
    assert exc.account == "work"


# ------------------------------------------------------------ connecting


def test_connect_plain(server: Dovecot, connect: Connect) -> None:
    conn = connect(server)
    assert {"IMAP4REV1", "IDLE", "CONDSTORE", "QRESYNC"} <= conn.capabilities
    assert all(c == c.upper() for c in conn.capabilities)
    assert conn.has_condstore
    assert conn.has_qresync
    assert conn.has_idle
    assert conn.has_move
    assert conn.has_uidplus
    conn.noop()


def test_connect_implicit_tls_with_the_ca(server: Dovecot, connect: Connect) -> None:
    assert server.tls_port
    assert server.ca_pem
    conn = connect(server, port=server.tls_port, security="ssl", ca_file=str(server.ca_pem))
    assert conn.select("INBOX").uidvalidity > 0


def test_connect_starttls_with_the_ca(server: Dovecot, connect: Connect) -> None:
    assert server.ca_pem
    conn = connect(server, security="starttls", ca_file=str(server.ca_pem))
    assert conn.has_qresync  # capabilities are the ones after login, not the pre-TLS list
    assert "STARTTLS" not in conn.capabilities


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_without_the_ca_is_not_trusted(server: Dovecot, security: str) -> None:
    port = server.tls_port if security == "ssl" else server.port
    with pytest.raises(TlsError) as info:
        ImapConnection.connect(config(server, port=port, security=security), account="acct")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"TLS certificate of {server.host} is not trusted (")
    assert text.endswith("; use --ca-file for a private CA")
    assert info.value.account == "acct"
    assert info.value.__cause__ is not None


def test_implicit_tls_on_the_plain_port(server: Dovecot) -> None:
    with pytest.raises(TlsError, match="does not speak TLS on this port"):
        ImapConnection.connect(config(server, security="ssl"))


def test_starttls_not_offered(reduced: Dovecot) -> None:
    with pytest.raises(TlsError, match="does not offer STARTTLS"):
        ImapConnection.connect(config(reduced, security="starttls"))


def test_missing_ca_file(server: Dovecot, tmp_path: Path) -> None:
    with pytest.raises(TlsError, match="cannot use the CA file"):
        ImapConnection.connect(config(server, security="ssl", ca_file=str(tmp_path / "nope.pem")))


def test_wrong_password(server: Dovecot) -> None:
    with pytest.raises(AuthFailed) as info:
        ImapConnection.connect(config(server, secret="wrong"), account="acct")
    assert str(info.value) == f"login failed for alice at {server.host}: authentication failed"
    assert info.value.account == "acct"


def test_non_ascii_password_logs_in_with_authenticate_plain(
    server: Dovecot, connect: Connect
) -> None:
    conn = connect(server, username="bob", secret="pässwört-ü")
    assert conn.select("INBOX").exists == 0


def test_oauth2_without_xoauth2_on_the_server(server: Dovecot) -> None:
    with pytest.raises(AuthFailed, match="does not offer OAuth2"):
        ImapConnection.connect(config(server, auth="oauth2", secret="token"))


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_nothing_listening() -> None:
    port = _refused_port()
    began = time.monotonic()
    cfg = ServerConfig("127.0.0.1", port, "none", "alice", "secret")
    with pytest.raises(ServerUnreachable) as info:
        ImapConnection.connect(cfg)
    assert time.monotonic() - began < 1.0
    assert str(info.value) == f"cannot reach 127.0.0.1:{port}: connection refused"
    assert isinstance(info.value, ConnectionError)


def test_unknown_host() -> None:
    cfg = ServerConfig("nonexistent.invalid", 993, "ssl", "alice", "secret", timeout=5)
    with pytest.raises(ServerUnreachable, match=r"^cannot reach nonexistent\.invalid:993: host"):
        ImapConnection.connect(cfg)


# ------------------------------------------------- servers that misbehave


class TinyServer:
    """A one-connection TCP server on 127.0.0.1 running ``script(conn)`` in a thread."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self.port = int(self._listener.getsockname()[1])
        self._script = script
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                self._script(conn)
            except OSError:
                pass
            except BaseException as exc:  # reported by close()
                self.error = exc

    def close(self) -> None:
        self._listener.close()
        self._thread.join(10)
        if self.error is not None:
            raise self.error


@pytest.fixture
def tiny() -> Iterator[Callable[[Callable[[socket.socket], None]], TinyServer]]:
    servers: list[TinyServer] = []

    def start(script: Callable[[socket.socket], None]) -> TinyServer:
        servers.append(TinyServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _lines(conn: socket.socket) -> Iterator[bytes]:
    buf = b""
    while True:
        while b"\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        yield line


Handler = Callable[[bytes, bytes, socket.socket, Iterator[bytes]], bool]


def fake_imap(capabilities: str, handle: Handler) -> Callable[[socket.socket], None]:
    """A scripted IMAP server: greeting, CAPABILITY, LOGOUT; other commands go to
    ``handle(tag, rest, conn, lines)``, which returns False to stop reading."""

    def script(conn: socket.socket) -> None:
        conn.sendall(b"* OK fake ready\r\n")
        lines = _lines(conn)
        for line in lines:
            tag, _, rest = line.partition(b" ")
            if rest.upper() == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY %s\r\n%s OK done\r\n" % (capabilities.encode(), tag))
            elif rest.upper() == b"LOGOUT":
                conn.sendall(b"* BYE bye\r\n%s OK done\r\n" % tag)
                return
            elif not handle(tag, rest, conn, lines):
                return

    return script


@pytest.mark.parametrize(
    ("greeting", "error", "message"),
    [
        (b"HELLO\r\n", ProtocolError, "server 127.0.0.1:{port} greeted with something that is not IMAP"),
        (b"", ServerUnreachable, "cannot reach 127.0.0.1:{port}: the server closed the connection before greeting"),
        (b"* BYE Too many connections\r\n", ServerUnreachable, "server 127.0.0.1:{port} refused the connection: too many connections"),
    ],
)  # fmt: skip
def test_bad_greetings(
    tiny: Callable[..., TinyServer], greeting: bytes, error: type[SyncError], message: str
) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(greeting)
        conn.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            conn.recv(100)

    srv = tiny(script)
    with pytest.raises(error) as info:
        ImapConnection.connect(ServerConfig("127.0.0.1", srv.port, "none", "a", "b", timeout=5))
    assert str(info.value) == message.format(port=srv.port)


def test_server_that_never_greets(tiny: Callable[..., TinyServer]) -> None:
    done = threading.Event()
    srv = tiny(lambda conn: done.wait(10))
    began = time.monotonic()
    with pytest.raises(ServerUnreachable, match="timed out"):
        ImapConnection.connect(ServerConfig("127.0.0.1", srv.port, "none", "a", "b", timeout=0.5))
    assert time.monotonic() - began < 3
    done.set()


def test_timeout_mid_command_is_connection_lost(tiny: Callable[..., TinyServer]) -> None:
    release = threading.Event()

    def handle(tag: bytes, rest: bytes, conn: socket.socket, lines: Iterator[bytes]) -> bool:
        if rest.upper().startswith(b"LOGIN"):
            conn.sendall(b"%s OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n" % tag)
            return True
        release.wait(10)  # EXAMINE: never answered
        return False

    srv = tiny(fake_imap("IMAP4rev1 AUTH=PLAIN", handle))
    cfg = ServerConfig("127.0.0.1", srv.port, "none", "alice", "secret", timeout=0.5)
    with ImapConnection.connect(cfg) as conn:
        assert conn.capabilities == {"IMAP4REV1", "IDLE"}
        assert not conn.has_condstore
        with pytest.raises(ConnectionLost, match="lost during EXAMINE: timed out"):
            conn.select("INBOX")
        with pytest.raises(ConnectionLost):  # dead from now on, at once
            conn.noop()
    release.set()


def _authenticate(conn: socket.socket, lines: Iterator[bytes]) -> bytes:
    """The client's first AUTHENTICATE response, decoded."""
    conn.sendall(b"+ \r\n")
    return base64.b64decode(next(lines))


def test_logindisabled_uses_authenticate_plain(tiny: Callable[..., TinyServer]) -> None:
    seen: list[bytes] = []

    def handle(tag: bytes, rest: bytes, conn: socket.socket, lines: Iterator[bytes]) -> bool:
        seen.append(rest)
        if rest.upper() == b"AUTHENTICATE PLAIN":
            creds = _authenticate(conn, lines)
            ok = creds == b"\0alice\0s3cr\xc3\xa9t"
            conn.sendall(b"%s %s done\r\n" % (tag, b"OK" if ok else b"NO [AUTHENTICATIONFAILED]"))
            return True
        conn.sendall(b"%s BAD what\r\n" % tag)
        return True

    srv = tiny(fake_imap("IMAP4rev1 LOGINDISABLED AUTH=PLAIN", handle))
    cfg = ServerConfig("127.0.0.1", srv.port, "none", "alice", "s3cr\u00e9t", timeout=5)
    with ImapConnection.connect(cfg):
        pass
    assert seen == [b"AUTHENTICATE PLAIN"]  # never LOGIN


@pytest.mark.parametrize("token_ok", [True, False])
def test_xoauth2(tiny: Callable[..., TinyServer], token_ok: bool) -> None:
    seen: list[bytes] = []

    def handle(tag: bytes, rest: bytes, conn: socket.socket, lines: Iterator[bytes]) -> bool:
        seen.append(rest)
        if rest.upper() != b"AUTHENTICATE XOAUTH2":
            conn.sendall(b"%s BAD what\r\n" % tag)
            return True
        creds = _authenticate(conn, lines)
        assert creds == b"user=alice@example.com\x01auth=Bearer tok\x01\x01"
        if token_ok:
            conn.sendall(b"%s OK welcome\r\n" % tag)
        else:  # RFC 7628 style: error as a challenge, the client answers empty, then NO
            conn.sendall(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")
            assert next(lines) == b""
            conn.sendall(b"%s NO [AUTHENTICATIONFAILED] Invalid credentials\r\n" % tag)
        return True

    srv = tiny(fake_imap("IMAP4rev1 AUTH=XOAUTH2", handle))
    cfg = ServerConfig("127.0.0.1", srv.port, "none", "alice@example.com", "tok", auth="oauth2")
    if token_ok:
        with ImapConnection.connect(cfg):
            pass
    else:
        with pytest.raises(AuthFailed, match=r"^login failed for alice@example\.com at 127\.0\.0\.1: invalid credentials$"):  # fmt: skip
            ImapConnection.connect(cfg)
    assert seen == [b"AUTHENTICATE XOAUTH2"]


def logged_in(
    capabilities: str, commands: Callable[[bytes, bytes, socket.socket], None]
) -> Callable[[socket.socket], None]:
    """A fake server that accepts any LOGIN and hands every other command to ``commands``."""

    def handle(tag: bytes, rest: bytes, conn: socket.socket, lines: Iterator[bytes]) -> bool:
        if rest.upper().startswith(b"LOGIN "):
            conn.sendall(b"%s OK [CAPABILITY %s] in\r\n" % (tag, capabilities.encode()))
        else:
            commands(tag, rest, conn)
        return True

    return fake_imap("IMAP4rev1 AUTH=PLAIN", handle)


def test_condstore_without_enable_selects_with_condstore(tiny: Callable[..., TinyServer]) -> None:
    seen: list[bytes] = []

    def commands(tag: bytes, rest: bytes, conn: socket.socket) -> None:
        seen.append(rest)
        conn.sendall(
            b"* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 4] n\r\n"
            b"* OK [HIGHESTMODSEQ 99] h\r\n%s OK [READ-ONLY] done\r\n" % tag
        )

    srv = tiny(logged_in("IMAP4rev1 CONDSTORE", commands))
    with ImapConnection.connect(ServerConfig("127.0.0.1", srv.port, "none", "a", "b")) as conn:
        assert conn.has_condstore
        assert not conn.has_qresync
        info = conn.select("Ärger")
        assert (info.uidvalidity, info.uidnext, info.exists, info.highestmodseq) == (7, 4, 3, 99)
    assert seen == [b'EXAMINE "&AMQ-rger" (CONDSTORE)']


def test_fetch_quirks_of_other_servers(tiny: Callable[..., TinyServer]) -> None:
    body = b"Subject: hi\r\n\r\nhi\r\n"

    def commands(tag: bytes, rest: bytes, conn: socket.socket) -> None:
        if rest.startswith(b"EXAMINE"):
            conn.sendall(b"* 3 EXISTS\r\n* OK [UIDVALIDITY 1] v\r\n%s OK done\r\n" % tag)
        elif rest.startswith(b"UID FETCH 1:3 "):
            conn.sendall(
                b"* 1 FETCH (UID 1 FLAGS (\\Seen) BODY[] {%d}\r\n%s)\r\n" % (len(body), body)
                + b"* 2 FETCH (UID 2 FLAGS () BODY[] NIL)\r\n"  # a body the server lost
                + b"* 3 FETCH (FLAGS (\\Deleted))\r\n"  # unsolicited, another message
                + b"%s NO [EXPUNGEISSUED] Some messages were expunged\r\n" % tag
            )
        elif rest.startswith(b"UID FETCH"):
            conn.sendall(b"%s BAD [SERVERBUG] no\r\n" % tag)
        else:
            conn.sendall(b"%s OK fine\r\n" % tag)

    srv = tiny(logged_in("IMAP4rev1", commands))
    with ImapConnection.connect(ServerConfig("127.0.0.1", srv.port, "none", "a", "b")) as conn:
        conn.select("INBOX")
        got = conn.fetch_messages([1, 2, 3])
        assert [(m.uid, m.raw, m.flags, m.modseq) for m in got] == [(1, body, {"seen"}, None)]
        with pytest.raises(ProtocolError, match=r"^server 127\.0\.0\.1 refused FETCH: no$"):
            conn.fetch_messages([5])
        conn.noop()  # a refused command leaves the session usable


# ------------------------------------------------------------------- folders


def test_list_folders_roles_and_non_ascii(server: Dovecot, connect: Connect) -> None:
    server.create_folder("Projekte/Übersicht")
    server.create_folder('Tom & "Jerry"')
    folders = {f.name: f for f in connect(server).list_folders()}
    roles = {f.role: f.name for f in folders.values() if f.role}
    assert roles == {
        "inbox": "INBOX",
        "sent": "Sent",
        "drafts": "Drafts",
        "trash": "Trash",
        "archive": "Archive",
        "junk": "Junk",
    }
    assert folders["Projekte/Übersicht"] == FolderEntry(
        name="Projekte/Übersicht",
        delimiter="/",
        attributes=frozenset({"\\hasnochildren"}),
        role=None,
        selectable=True,
    )
    assert not folders["Projekte"].selectable  # a parent that only exists as a path
    assert "\\sent" in folders["Sent"].attributes
    assert 'Tom & "Jerry"' in folders


def test_select_non_ascii_and_quoted_names(server: Dovecot, connect: Connect) -> None:
    server.deliver(message(1), folder="Unterordner/Grüße")
    server.create_folder('Q "x" \\ y')
    conn = connect(server)
    info = conn.select("Unterordner/Grüße")
    assert info.exists == 1
    assert info.uidvalidity == server.uidvalidity("Unterordner/Grüße")
    assert [m.raw for m in conn.fetch_messages(conn.search_all_uids())] == [message(1)]
    assert conn.select('Q "x" \\ y').exists == 0
    assert conn.selected == 'Q "x" \\ y'


def test_select_reports_the_folder_state(server: Dovecot, connect: Connect, folder: str) -> None:
    server.deliver_many([message(i) for i in range(3)], folder=folder)
    conn = connect(server)
    info = conn.select(folder)
    status = server.status(folder)
    assert info.uidvalidity == status["uidvalidity"]
    assert info.uidnext == status["uidnext"] == 4
    assert info.exists == 3
    assert info.highestmodseq == status["highestmodseq"]
    assert info.vanished == ()
    assert info.changed == ()


def test_select_of_a_missing_folder(server: Dovecot, connect: Connect, folder: str) -> None:
    conn = connect(server)
    conn.select(folder)
    server.delete_folder(folder)
    with pytest.raises(FolderGone) as info:
        conn.select(folder)
    assert str(info.value) == f"folder {folder} does not exist on {server.host}"
    assert info.value.account == "acct"
    assert conn.selected is None
    assert conn.select("INBOX").uidvalidity  # the connection is fine


def test_select_writable(server: Dovecot, connect: Connect, folder: str) -> None:
    server.deliver(message(1), folder=folder)
    conn = connect(server)
    assert conn.select(folder, readonly=False).exists == 1
    assert conn.search_all_uids() == [1]


# -------------------------------------------------------------------- fetching


def test_search_and_fetch_exact_bytes(server: Dovecot, connect: Connect, folder: str) -> None:
    raws = [
        message(1),
        message(2, body="Unicode: grüße, 日本語\n" + "x" * 5000 + "\n"),
        message(3, body=") {12}\n* 1 FETCH (UID 9)\nA001 OK\n"),
        message(4, msgid=False),
    ]
    server.deliver_many(raws[:2], folder=folder, flags="S")
    server.deliver(raws[2], folder=folder, flags="FR")
    server.deliver(raws[3], folder=folder)
    # Dovecot 2.3 ignores the Maildir "P" (passed) letter: keywords go through doveadm.
    server.set_flags(folder, "3", "$Forwarded")
    conn = connect(server)
    conn.select(folder)
    uids = conn.search_all_uids()
    assert uids == [1, 2, 3, 4]
    got = conn.fetch_messages([4, 3, 2, 1, 99])
    assert [m.uid for m in got] == [1, 2, 3, 4]  # the server's order; 99 is simply absent
    assert [m.raw for m in got] == raws
    assert got[0].flags == {"seen"}
    assert got[2].flags == {"flagged", "answered"}
    assert got[2].keywords == ("$Forwarded",)
    assert got[3].flags == frozenset()
    assert got[3].keywords == ()  # \Recent is not a keyword
    now = datetime.now(UTC)
    for m in got:
        assert isinstance(m, FetchedMessage)
        assert m.internal_date is not None
        assert m.internal_date.tzinfo is UTC
        assert abs(m.internal_date - now) < timedelta(days=1)
        assert m.modseq is not None
    assert conn.fetch_messages([]) == []


def test_uids_from_filters_the_highest_uid_quirk(
    server: Dovecot, connect: Connect, folder: str
) -> None:
    server.deliver_many([message(i) for i in range(5)], folder=folder)
    conn = connect(server)
    conn.select(folder)
    assert conn.uids_from(3) == [3, 4, 5]
    assert conn.uids_from(1) == [1, 2, 3, 4, 5]
    assert conn.uids_from(6) == []  # "6:*" matches UID 5 on the wire
    assert conn.uids_from(0) == [1, 2, 3, 4, 5]


def test_sizes_and_headers(server: Dovecot, connect: Connect, folder: str) -> None:
    raws = [message(1), message(2, msgid=False), message(3, body="longer\n" * 50)]
    server.deliver_many(raws, folder=folder)
    conn = connect(server)
    conn.select(folder)
    assert conn.fetch_sizes([1, 2, 3, 42]) == {i + 1: len(r) for i, r in enumerate(raws)}
    assert conn.fetch_headers([3, 2, 1]) == {
        1: ("1@example.com", len(raws[0])),
        2: (None, len(raws[1])),
        3: ("3@example.com", len(raws[2])),
    }
    assert conn.fetch_sizes([]) == {}
    assert conn.fetch_headers([]) == {}


def test_many_sparse_uids_are_split_into_several_commands(
    server: Dovecot, connect: Connect, folder: str
) -> None:
    server.deliver_many((message(i) for i in range(3000)), folder=folder)
    conn = connect(server)
    conn.select(folder)
    odd = list(range(1, 3001, 2))  # "1,3,5,...": ~7,000 characters as one set
    sizes = conn.fetch_sizes([*odd, 10_000])
    assert sorted(sizes) == odd
    updates, _ = conn.fetch_flags(odd)
    assert [u.uid for u in updates] == odd


def test_a_25_mb_message_is_not_copied_around(
    server: Dovecot, connect: Connect, folder: str
) -> None:
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"  # 74 bytes, CRLF, no NUL
    size = 25 * 1024 * 1024
    big = mail("big@example.com", "big", body="") + line * (size // len(line))
    server.deliver(big, folder=folder)
    conn = connect(server, port=server.tls_port, security="ssl", ca_file=str(server.ca_pem))
    conn.select(folder)
    tracemalloc.start()
    try:
        (got,) = conn.fetch_messages([1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.raw == big
    assert peak < 4 * len(big), f"peak {peak / len(big):.1f}x the message size"
    print(f"\n25 MB fetch: tracemalloc peak {peak / len(big):.2f}x the message size")


# --------------------------------------------------------------- flag changes


def test_fetch_flags_changedsince(server: Dovecot, connect: Connect, folder: str) -> None:
    server.deliver_many([message(i) for i in range(4)], folder=folder, flags="S")
    conn = connect(server)
    info = conn.select(folder)
    assert info.highestmodseq is not None
    every, gone = conn.fetch_flags("1:*")
    assert [u.uid for u in every] == [1, 2, 3, 4]
    assert all(u.flags == {"seen"} and u.modseq for u in every)
    assert gone == []
    assert conn.fetch_flags("1:*", changedsince=info.highestmodseq) == ([], [])

    server.set_flags(folder, "2", "\\Flagged $Work")
    server.set_flags(folder, "4", "\\Seen", add=False)
    changed, gone = conn.fetch_flags("1:*", changedsince=info.highestmodseq)
    assert [(u.uid, u.flags, u.keywords) for u in changed] == [
        (2, {"seen", "flagged"}, ("$Work",)),
        (4, frozenset(), ()),
    ]
    assert all(u.modseq is not None and u.modseq > info.highestmodseq for u in changed)
    assert gone == []
    assert conn.fetch_flags([2], changedsince=info.highestmodseq)[0] == changed[:1]


def test_vanished_with_qresync_select_and_fetch(
    server: Dovecot, connect: Connect, folder: str
) -> None:
    server.deliver_many([message(i) for i in range(5)], folder=folder)
    conn = connect(server)
    before = conn.select(folder)
    assert before.highestmodseq is not None
    server.expunge(folder, "3")
    server.expunge(folder, "5")
    server.set_flags(folder, "1", "\\Answered")

    _, vanished = conn.fetch_flags("1:*", changedsince=before.highestmodseq, vanished=True)
    assert vanished == [3, 5]

    conn.select("INBOX")
    after = conn.select(folder, qresync=(before.uidvalidity, before.highestmodseq))
    assert after.vanished == (3, 5)
    assert after.exists == 3
    assert [(u.uid, u.flags) for u in after.changed] == [(1, {"answered"})]
    assert after.highestmodseq is not None
    assert after.highestmodseq > before.highestmodseq
    # Nothing changed since: nothing reported.
    again = conn.select(folder, qresync=(after.uidvalidity, after.highestmodseq))
    assert (again.vanished, again.changed) == ((), ())


def test_condstore_without_qresync() -> None:
    _need_dovecot()
    caps = " ".join(c for c in NO_CONDSTORE_CAPABILITIES.split()) + " CONDSTORE"
    with Dovecot(capabilities=caps) as srv:
        srv.deliver_many([message(1), message(2)])
        with ImapConnection.connect(config(srv)) as conn:
            assert conn.has_condstore
            assert not conn.has_qresync
            info = conn.select("INBOX")
            assert info.highestmodseq is not None
            srv.set_flags("INBOX", "2", "\\Seen")
            changed, gone = conn.fetch_flags("1:*", changedsince=info.highestmodseq)
            assert [(u.uid, u.flags) for u in changed] == [(2, {"seen"})]
            assert gone == []
            with pytest.raises(ValueError, match="QRESYNC"):
                conn.fetch_flags("1:*", changedsince=info.highestmodseq, vanished=True)
            with pytest.raises(ValueError, match="QRESYNC"):
                conn.select("INBOX", qresync=(info.uidvalidity, info.highestmodseq))


def test_flag_arguments_the_server_cannot_serve(
    reduced: Dovecot, connect: Connect, rfolder: str
) -> None:
    conn = connect(reduced)
    conn.select(rfolder)
    with pytest.raises(ValueError, match="QRESYNC"):
        conn.select(rfolder, qresync=(1, 1))
    with pytest.raises(ValueError, match="CONDSTORE"):
        conn.fetch_flags("1:*", changedsince=1)
    with pytest.raises(ValueError, match="UID set"):
        conn.fetch_flags("1:* FLAGS")


# ---------------------------------------------------------------- reduced server


def test_reduced_capabilities_still_work(reduced: Dovecot, connect: Connect, rfolder: str) -> None:
    reduced.deliver_many([message(i) for i in range(3)], folder=rfolder, flags="S")
    conn = connect(reduced)
    assert not conn.has_condstore
    assert not conn.has_qresync
    assert not conn.has_idle
    info = conn.select(rfolder)
    assert info.highestmodseq is None
    assert info.exists == 3
    assert conn.search_all_uids() == [1, 2, 3]  # plain SEARCH, not ESEARCH
    assert conn.uids_from(2) == [2, 3]
    assert conn.uids_from(9) == []
    got = conn.fetch_messages([1, 2, 3])
    assert [m.raw for m in got] == [message(i) for i in range(3)]
    assert all(m.modseq is None for m in got)  # MODSEQ is not even asked for
    reduced.set_flags(rfolder, "2", "\\Flagged")
    updates, gone = conn.fetch_flags("1:*")
    assert [(u.uid, u.flags, u.modseq) for u in updates] == [
        (1, {"seen"}, None),
        (2, {"seen", "flagged"}, None),
        (3, {"seen"}, None),
    ]
    assert gone == []
    assert conn.fetch_headers([1])[1][0] == "0@example.com"


def test_idle_without_the_capability_polls(
    reduced: Dovecot, connect: Connect, rfolder: str
) -> None:
    conn = connect(reduced)
    conn.select(rfolder)
    began = time.monotonic()
    assert conn.idle(0.3) is False
    assert 0.3 <= time.monotonic() - began < 2
    timer = threading.Timer(0.1, reduced.deliver, args=(message(99),), kwargs={"folder": rfolder})
    timer.start()
    assert conn.idle(0.8) is True
    timer.join()


# ------------------------------------------------------------------------- IDLE


def test_idle_reports_new_mail_quickly(server: Dovecot, connect: Connect, folder: str) -> None:
    conn = connect(server)
    conn.select(folder)
    began = time.monotonic()
    assert conn.idle(0.5) is False
    assert 0.5 <= time.monotonic() - began < 1.5

    timer = threading.Timer(0.3, server.deliver, args=(message(1),), kwargs={"folder": folder})
    timer.start()
    began = time.monotonic()
    assert conn.idle(10) is True
    assert time.monotonic() - began < 2
    timer.join()
    # IDLE ended cleanly: the session goes on.
    assert conn.search_all_uids() == [1]


def test_idle_reports_flag_changes_and_expunges(
    server: Dovecot, connect: Connect, folder: str
) -> None:
    server.deliver_many([message(1), message(2)], folder=folder)
    conn = connect(server)
    conn.select(folder)
    for change in (
        lambda: server.set_flags(folder, "1", "\\Seen"),
        lambda: server.expunge(folder, "2"),
    ):
        timer = threading.Timer(0.2, change)
        timer.start()
        began = time.monotonic()
        assert conn.idle(10) is True
        assert time.monotonic() - began < 2
        timer.join()
    assert conn.search_all_uids() == [1]


def test_interrupt_ends_a_blocked_idle(server: Dovecot) -> None:
    conn = ImapConnection.connect(config(server))
    try:
        conn.select("INBOX")
        timer = threading.Timer(0.2, conn.interrupt)
        timer.start()
        began = time.monotonic()
        with pytest.raises(ConnectionLost, match="interrupted"):
            conn.idle(30)
        assert time.monotonic() - began < 2
        timer.join()
        with pytest.raises(ConnectionLost):
            conn.noop()
    finally:
        conn.close()


# ---------------------------------------------------------------- lost connections


def test_server_restart_loses_the_connection(own_server: Dovecot) -> None:
    conn = ImapConnection.connect(config(own_server), account="acct")
    try:
        conn.select("INBOX")
        own_server.restart()
        with pytest.raises(ConnectionLost) as info:
            conn.noop()
        assert str(info.value).startswith(f"connection to {own_server.host}:{own_server.port} lost")
        assert info.value.account == "acct"
        with pytest.raises(ConnectionLost):
            conn.search_all_uids()
        # A new connection works against the restarted server.
        with ImapConnection.connect(config(own_server)) as again:
            assert again.select("INBOX").exists == 0
    finally:
        conn.close()
    conn.close()  # idempotent


def test_restart_during_idle(own_server: Dovecot) -> None:
    conn = ImapConnection.connect(config(own_server))
    try:
        conn.select("INBOX")
        timer = threading.Timer(0.2, own_server.restart)
        timer.start()
        with pytest.raises(ConnectionLost):
            conn.idle(10)
        timer.join()
    finally:
        conn.close()


def test_commands_after_close(server: Dovecot) -> None:
    conn = ImapConnection.connect(config(server))
    with conn:
        conn.noop()
    with pytest.raises(ConnectionLost, match="closed"):
        conn.noop()


# ------------------------------------------------------------------ speed (slow)


@pytest.mark.slow
def test_fetch_speed_against_raw_imaplib(server: Dovecot, connect: Connect, folder: str) -> None:
    """Timing print, no assertion: fetch_messages vs a bare imaplib FETCH (2,000 msgs)."""
    import imaplib

    raws = [
        message(i, body="lorem ipsum dolor sit amet " * (20 + i % 700) + "\n") for i in range(2000)
    ]
    server.deliver_many(raws, folder=folder, flags="S")
    items = "(UID FLAGS INTERNALDATE BODY.PEEK[] MODSEQ)"

    def raw_imaplib() -> float:
        imap = imaplib.IMAP4(server.host, server.port)
        try:
            imap.login("alice", "secret")
            imap._simple_command("ENABLE", "QRESYNC")
            imap.select(f'"{folder}"', readonly=True)
            began = time.perf_counter()
            typ, data = imap.uid("FETCH", "1:*", items)
            took = time.perf_counter() - began
            assert typ == "OK"
            assert sum(isinstance(d, tuple) for d in data) == len(raws)
            imap.logout()
        finally:
            with contextlib.suppress(OSError):
                imap.shutdown()
        return took

    def ours() -> float:
        conn = connect(server)
        conn.select(folder)
        uids = conn.search_all_uids()
        began = time.perf_counter()
        got = conn.fetch_messages(uids)
        took = time.perf_counter() - began
        assert [m.raw for m in got] == raws
        conn.close()
        return took

    raw_imaplib()  # warm the server's caches
    raw_times, our_times = [], []
    for _ in range(5):
        raw_times.append(raw_imaplib())
        our_times.append(ours())
    mib = sum(map(len, raws)) / 2**20
    print(
        f"\nfetch of {len(raws)} messages ({mib:.1f} MiB), best of 5: "
        f"imaplib {min(raw_times):.3f} s, fetch_messages {min(our_times):.3f} s "
        f"({min(our_times) / min(raw_times):.2f}x)"
    )
