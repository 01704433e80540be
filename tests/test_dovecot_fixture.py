"""Tests of the private Dovecot controller (tests/servers/dovecot.py) itself.

imapclient is only the test's client here: these tests check that the server the
sync tests will run against behaves as promised (login, folders, delivery, TLS,
capabilities, restart, cleanup), not the client code of Tidings.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from typing import Any

import pytest
from imapclient import IMAPClient, imap_utf7
from imapclient.exceptions import LoginError

from tests.servers.dovecot import (
    NO_CONDSTORE_CAPABILITIES,
    Dovecot,
    ImapUser,
    encode_mutf7,
    maildir_folder_name,
    unavailable_reason,
)

REQUIRE_ENV = "TIDINGS_REQUIRE_SERVERS"
_REASON = unavailable_reason()

pytestmark = pytest.mark.skipif(
    _REASON is not None and os.environ.get(REQUIRE_ENV) != "1",
    reason=f"NO IMAP SERVER TESTS: {_REASON} -- run `make system-deps` "
    f"(set {REQUIRE_ENV}=1 to make this a failure)",
)


def test_servers_are_available_when_required() -> None:
    # With TIDINGS_REQUIRE_SERVERS=1 a missing Dovecot is a failure, not a skip.
    if _REASON is not None:
        pytest.fail(f"{REQUIRE_ENV}=1 but no private Dovecot can run: {_REASON}")


def message(n: int, body: str = "Hello.") -> bytes:
    return (
        f"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\n"
        f"Subject: message {n}\r\nMessage-ID: <{n}@example.com>\r\n"
        f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


Connect = Callable[..., IMAPClient]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """connect(server, login=, implicit_tls=, context=): clients closed at teardown."""
    with ExitStack() as stack:

        def make(
            server: Dovecot,
            *,
            login: bool = True,
            implicit_tls: bool = False,
            context: ssl.SSLContext | None = None,
        ) -> IMAPClient:
            port = server.tls_port if implicit_tls else server.port
            assert port
            client = IMAPClient(
                server.host, port=port, ssl=implicit_tls, ssl_context=context, timeout=10
            )
            stack.callback(_close, client)
            if login:
                client.login("alice", "secret")
            return client

        yield make


def _close(client: IMAPClient) -> None:
    with suppress(OSError):
        client.shutdown()


@pytest.fixture
def server() -> Iterator[Dovecot]:
    with Dovecot(users=(ImapUser("alice", "secret"), ImapUser("bob", "hunter2"))) as s:
        yield s


def test_login_and_wrong_password(server: Dovecot, connect: Connect) -> None:
    client = connect(server, login=False)
    assert client.welcome.startswith(b"* OK")
    client.login("alice", "secret")
    connect(server, login=False).login("bob", "hunter2")
    started = time.monotonic()
    with pytest.raises(LoginError):
        connect(server, login=False).login("alice", "wrong")
    with pytest.raises(LoginError):
        connect(server, login=False).login("mallory", "secret")
    connect(server, login=False).login("alice", "secret")
    # Neither auth_failure_delay (2 s) nor anvil's growing auth penalty slow tests down.
    assert time.monotonic() - started < 3.0  # ~1 s; with the penalty it would be ~9 s


def test_special_use_folders_are_listed(server: Dovecot, connect: Connect) -> None:
    client = connect(server)
    folders = {name: flags for flags, _sep, name in client.list_folders()}
    for name in ("Sent", "Drafts", "Trash", "Archive", "Junk"):
        assert f"\\{name}".encode() in folders[name]
    assert "INBOX" in folders
    assert client.find_special_folder(b"\\Sent") == "Sent"
    assert client.namespace().personal[0][1] == "/"
    subscribed = {name for _flags, _sep, name in client.list_sub_folders()}
    assert {"Sent", "Drafts", "Trash", "Archive", "Junk"} <= subscribed


def test_delivered_messages_come_back_exactly(server: Dovecot, connect: Connect) -> None:
    # 8-bit UTF-8, Latin-1 and control bytes must survive untouched.
    first = message(0, "Grüße") + b"latin-1 \xe9, controls \x01\x02\x1b\x7f\xff\r\n"
    server.deliver(first, flags="SF")
    bulk = [message(n, "x" * (n * 37 % 3000)) for n in range(1, 301)]
    assert server.deliver_many(bulk) == 300
    server.deliver(message(999), folder="Sent", flags="S")

    client = connect(server)
    info = client.select_folder("INBOX", readonly=True)
    assert info[b"EXISTS"] == 301
    assert info[b"UIDNEXT"] == 302
    fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS", "RFC822.SIZE"])
    expected = [first, *bulk]
    assert sorted(fetched) == list(range(1, 302))  # UIDs in delivery order
    for uid, raw in zip(range(1, 302), expected, strict=True):
        assert fetched[uid][b"BODY[]"] == raw
        assert fetched[uid][b"RFC822.SIZE"] == len(raw)
    assert set(fetched[1][b"FLAGS"]) - {b"\\Recent"} == {b"\\Seen", b"\\Flagged"}
    assert b"\\Seen" not in fetched[2][b"FLAGS"]
    assert client.select_folder("Sent", readonly=True)[b"EXISTS"] == 1
    assert server.status("INBOX")["messages"] == 301


def test_lf_and_nul_are_normalised_by_the_server(server: Dovecot, connect: Connect) -> None:
    # Documents Dovecot's behaviour: IMAP wants CRLF and no NUL bytes in literals.
    server.deliver(b"Subject: lf\n\nline\x00one\n")
    client = connect(server)
    client.select_folder("INBOX", readonly=True)
    assert client.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"] == b"Subject: lf\r\n\r\nline\x80one\r\n"


def test_non_ascii_folder(server: Dovecot, connect: Connect) -> None:
    server.deliver(message(1), folder="Projekte/Übersicht")
    server.deliver(message(2), folder="Projekte/Übersicht", user="bob")
    assert (server.maildir() / ".Projekte.&ANw-bersicht" / "cur").is_dir()
    client = connect(server)
    names = {name: flags for flags, _sep, name in client.list_folders()}
    assert b"\\HasNoChildren" in names["Projekte/Übersicht"]
    assert b"\\Noselect" in names["Projekte"]  # Maildir++ parents need not exist
    assert client.select_folder("Projekte/Übersicht")[b"EXISTS"] == 1


def test_folder_names_match_dovecots_encoding(server: Dovecot) -> None:
    names = ["Projekte/Übersicht", "日本語", "x&y", "A&B/Ü&", "Sp ace", "INBOX/Child", "😀"]
    for name in names:
        server.create_folder(name)
    on_disk = {p.name for p in server.maildir().iterdir() if p.name.startswith(".")}
    assert {maildir_folder_name(n) for n in names} <= on_disk
    dovecots = server.doveadm("mailbox", "mutf7", "-8", *names).splitlines()
    for name, theirs in zip(names, dovecots, strict=True):
        assert "/".join(encode_mutf7(part) for part in name.split("/")) == theirs
        assert encode_mutf7(name).encode() == imap_utf7.encode(name)
    assert maildir_folder_name("INBOX") == maildir_folder_name("inbox") == ""
    for bad in ("a.b", "~x", "a//b"):
        with pytest.raises(ValueError, match="cannot store"):
            maildir_folder_name(bad)
    with pytest.raises(ValueError, match="Maildir flags"):
        server.deliver(message(1), flags="X")


def test_default_capabilities(server: Dovecot, connect: Connect) -> None:
    caps = set(connect(server).capabilities())
    assert {b"CONDSTORE", b"QRESYNC", b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE"} <= caps


def test_reduced_capabilities(connect: Connect) -> None:
    with Dovecot(capabilities=NO_CONDSTORE_CAPABILITIES, greeting="Tidings test server") as s:
        client = connect(s, login=False)
        assert client.welcome.endswith(b"] Tidings test server")
        client.login("alice", "secret")
        caps = set(client.capabilities())
        assert {b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE", b"ENABLE"} <= caps
        assert not caps & {b"CONDSTORE", b"QRESYNC"}


def _listening_sockets(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets these processes listen on."""
    inodes = set()
    for pid in pids:
        with suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                    hex_ip, hex_port = fields[1].split(":")
                    if len(hex_ip) == 8:
                        ip = socket.inet_ntoa(bytes.fromhex(hex_ip)[::-1])
                    else:
                        ip = f"IPv6 {hex_ip}"  # never expected
                    found.add((ip, int(hex_port, 16)))
    return found


def test_tls_implicit_and_starttls(connect: Connect) -> None:
    with Dovecot(tls=True) as s:
        assert s.ca_pem is not None
        assert s.tls_port
        assert s.tls_port != s.port
        # Loopback only, and nothing but the two IMAP ports (no 143/993/110/587/...).
        assert _listening_sockets(s.processes()) == {(s.host, s.port), (s.host, s.tls_port)}
        trusted = ssl.create_default_context(cafile=str(s.ca_pem))

        implicit = connect(s, implicit_tls=True, context=trusted)
        assert implicit.select_folder("INBOX")[b"EXISTS"] == 0

        plain = connect(s, login=False)
        assert b"STARTTLS" in plain.capabilities()
        plain.starttls(trusted)
        plain.login("alice", "secret")
        assert plain.select_folder("INBOX")[b"EXISTS"] == 0

        untrusting = ssl.create_default_context()  # system CAs only
        with (
            socket.create_connection((s.host, s.tls_port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            untrusting.wrap_socket(raw, server_hostname=s.host)
        starttls = connect(s, login=False)
        with pytest.raises(ssl.SSLCertVerificationError):
            starttls.starttls(untrusting)


def test_doveadm_changes_reach_a_connected_client(server: Dovecot, connect: Connect) -> None:
    server.deliver_many(message(n) for n in range(1, 6))
    client = connect(server)
    client.select_folder("INBOX")
    server.set_flags("INBOX", "1:2", "\\Seen \\Flagged")
    server.set_flags("INBOX", "2", "\\Flagged", add=False)
    server.expunge("INBOX", "5")
    client.noop()
    flags = client.get_flags([1, 2, 3])
    assert {b"\\Seen", b"\\Flagged"} <= set(flags[1])
    assert b"\\Flagged" not in flags[2]
    assert b"\\Seen" not in flags[3]
    assert client.search("ALL") == [1, 2, 3, 4]
    server.deliver(message(6))
    assert client.noop()[1]  # the new file is noticed without reselecting
    assert client.search("ALL") == [1, 2, 3, 4, 6]

    server.create_folder("Work/Old")
    server.rename_folder("Work/Old", "Work/New")
    server.create_folder("Gone")
    server.delete_folder("Gone")
    names = {name for _flags, _sep, name in client.list_folders()}
    assert {"Work/New", "Work"} <= names
    assert not names & {"Work/Old", "Gone"}
    with pytest.raises(RuntimeError, match="doveadm"):
        server.delete_folder("Gone")


def test_idle_sees_deliveries(server: Dovecot, connect: Connect) -> None:
    client = connect(server)
    client.select_folder("INBOX")
    client.idle()
    started = time.monotonic()
    server.deliver(message(1))
    responses: list[Any] = []
    while not responses and time.monotonic() - started < 5:
        responses = client.idle_check(timeout=1)
    client.idle_done()
    assert (1, b"EXISTS") in responses
    assert time.monotonic() - started < 2.5


def test_recreate_folder_changes_uidvalidity(server: Dovecot, connect: Connect) -> None:
    server.deliver(message(1), folder="Work")
    before = server.uidvalidity("Work")
    server.recreate_folder("Work")
    assert server.uidvalidity("Work") != before
    info = connect(server).select_folder("Work")
    assert info[b"UIDVALIDITY"] == server.uidvalidity("Work")
    assert info[b"EXISTS"] == 0

    server.deliver(message(2))
    inbox_before = server.uidvalidity("INBOX")
    assert server.bump_uidvalidity("INBOX") > inbox_before
    info = connect(server).select_folder("INBOX")
    assert info[b"UIDVALIDITY"] == server.uidvalidity("INBOX") > inbox_before
    assert info[b"EXISTS"] == 1  # the messages stay
    with pytest.raises(ValueError, match="INBOX"):
        server.recreate_folder("INBOX")


def test_restart_keeps_mail_and_port(server: Dovecot, connect: Connect) -> None:
    server.deliver(message(1))
    old = connect(server)
    old.select_folder("INBOX")
    port, old_pids = server.port, server.processes()
    server.restart()
    assert server.port == port
    assert not set(old_pids) & set(server.processes())
    with pytest.raises((OSError, IMAPClient.AbortError)):
        old.noop()  # the old session was cut
    new = connect(server)
    assert new.select_folder("INBOX")[b"EXISTS"] == 1
    assert new.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"] == message(1)


def test_stop_leaves_nothing_behind(connect: Connect) -> None:
    s = Dovecot()
    s.deliver(message(1))  # before start: the Maildir exists from the constructor on
    s.start()
    client = connect(s)
    assert client.select_folder("INBOX")[b"EXISTS"] == 1  # an imap process exists too
    assert len(s.processes()) >= 5
    assert set(_pgrep(s.instance_name)) <= set(s.processes())
    assert len(_pgrep(s.instance_name)) >= 5
    started = time.monotonic()
    s.stop()
    assert time.monotonic() - started < 1.0  # Dovecot alone would take > 1 s
    assert _pgrep(s.instance_name) == []
    assert s.processes() == []
    assert not s.root.exists()
    s.stop()  # idempotent
    with pytest.raises(RuntimeError, match="stopped for good"):
        s.start()


def _pgrep(pattern: str) -> list[int]:
    pgrep = shutil.which("pgrep")
    if pgrep is None:
        pytest.skip("pgrep is not installed")
    out = subprocess.run([pgrep, "-f", pattern], capture_output=True, text=True, check=False)
    return [int(pid) for pid in out.stdout.split()]


def test_two_servers_at_once(server: Dovecot, connect: Connect) -> None:
    with Dovecot() as other:
        assert other.port != server.port
        assert other.root != server.root
        server.deliver(message(1))
        assert connect(server).select_folder("INBOX")[b"EXISTS"] == 1
        assert connect(other).select_folder("INBOX")[b"EXISTS"] == 0


def test_start_failure_reports_dovecots_log() -> None:
    class Broken(Dovecot):
        def _config(self) -> str:
            return super()._config() + "no_such_setting = 1\n"

    broken = Broken()
    with pytest.raises(RuntimeError, match="Unknown setting: no_such_setting"):
        broken.start()
    broken.stop()
    assert not broken.root.exists()
