"""Writes of sync/imap.py against a real, private Dovecot: flags, copy, move, expunge,
append and the Message-ID lookup.

Results are checked from a *second* connection (or server-side via doveadm), not from
what the writing connection believes. The protocol promises that matter for safety --
a move without MOVE never sends a bare EXPUNGE, a server without UIDPLUS gets no
expunge at all -- are checked on the wire through a small recording proxy, because
Dovecot answers commands it does not advertise (MOVE included), so the outcome alone
cannot tell the paths apart.

Without /usr/sbin/dovecot (or root) these tests skip loudly; with
TIDINGS_REQUIRE_SERVERS=1 they fail instead (the ``dovecot_available`` fixture).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest

from sync.errors import ConnectionLost, FolderGone, ProtocolError
from sync.imap import FlagUpdate, ImapConnection, ServerConfig, _appenduid, _copyuid
from tests.mailmaker import mail
from tests.servers.dovecot import DEFAULT_CAPABILITIES, Dovecot

NO_MOVE = " ".join(c for c in DEFAULT_CAPABILITIES.split() if c != "MOVE")
NO_UIDPLUS = " ".join(c for c in DEFAULT_CAPABILITIES.split() if c != "UIDPLUS")
NO_MOVE_NO_UIDPLUS = " ".join(
    c for c in DEFAULT_CAPABILITIES.split() if c not in {"MOVE", "UIDPLUS"}
)


def message(n: int, body: str = "Hello.\n") -> bytes:
    """A CRLF message with Message-ID <n@example.com> (Dovecot returns CRLF bytes as-is)."""
    return mail(f"{n}@example.com", f"message {n}", body=body)


# ----------------------------------------------------------------- fixtures


class RecordingProxy:
    """TCP proxy to a server that records what the client sends, one line per entry."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._sent = bytearray()
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self.port = int(self._sock.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self._sent += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def commands(self) -> list[str]:
        """Client lines without their tags: ``UID STORE 1:2 +FLAGS.SILENT (\\Deleted)``."""
        with self._lock:
            lines = bytes(self._sent).decode("utf-8", "replace").split("\r\n")
        return [line.partition(" ")[2] for line in lines if line]

    def close(self) -> None:
        self._sock.close()


Connect = Callable[..., ImapConnection]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """connect(server, port=None): a logged-in connection, closed after the test."""
    with ExitStack() as stack:

        def make(server: Dovecot, port: int | None = None) -> ImapConnection:
            cfg = ServerConfig(
                server.host, port or server.port, "none", "alice", "secret", timeout=10.0
            )
            conn = ImapConnection.connect(cfg, account="acct")
            stack.callback(conn.close)
            return conn

        yield make


@pytest.fixture
def proxy() -> Iterator[Callable[[Dovecot], RecordingProxy]]:
    proxies: list[RecordingProxy] = []

    def make(server: Dovecot) -> RecordingProxy:
        proxies.append(RecordingProxy(server.port))
        return proxies[-1]

    yield make
    for p in proxies:
        p.close()


def flags_of(conn: ImapConnection, folder: str) -> dict[int, FlagUpdate]:
    conn.select(folder)
    return {u.uid: u for u in conn.fetch_flags("1:*")[0]}


def uids_in(conn: ImapConnection, folder: str) -> list[int]:
    conn.select(folder)
    return conn.search_all_uids()


def bare_expunges(commands: list[str]) -> list[str]:
    return [c for c in commands if re.match(r"(?i)EXPUNGE\b", c)]


# ------------------------------------------------- response codes (no server)


def test_copyuid_and_appenduid_byte_table() -> None:
    # The two sets pair up element by element, in the order written (RFC 4315).
    assert _copyuid([b"17 5,1:3 10:13"], 4) == {5: 10, 1: 11, 2: 12, 3: 13}
    # imaplib's greedy response-code pattern may leave text behind the sets.
    assert _copyuid([b"17 1:2 7:8] Moved [sic", b"17 3 9"], 2) == {1: 7, 2: 8, 3: 9}
    assert _copyuid([b"17 4,6 20:21", b"17 7 22"], 2) == {4: 20, 6: 21, 7: 22}
    assert _copyuid([b"17 1:3 10:11"], 3) == {}  # lengths differ: a server bug, skipped
    assert _copyuid([b"17 1:4294967295 1:4294967295"], 3) == {}  # more than was asked
    assert _copyuid([b"garbage", None, b"17 0 5"], 3) == {}
    assert _appenduid([b"1700000000 42"]) == 42
    assert _appenduid([b"1700000000 42:43"]) is None  # MULTIAPPEND set: not one UID
    assert _appenduid([None, b"nonsense"]) is None


# -------------------------------------------------------------- store_flags


def test_store_flags_add_and_remove(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.deliver_many(message(n) for n in range(1, 5))
    conn, observer = connect(dovecot), connect(dovecot)
    conn.select("INBOX", readonly=False)

    conn.store_flags([1, 3], ["seen", "flagged", "$Forwarded", "Work"], add=True)
    got = flags_of(observer, "INBOX")
    assert got[1].flags == got[3].flags == {"seen", "flagged"}
    assert got[1].keywords == got[3].keywords == ("$Forwarded", "Work")
    assert got[2].flags == got[4].flags == frozenset()
    assert got[2].keywords == got[4].keywords == ()

    conn.store_flags([3], ["flagged", "$Forwarded"], add=False)
    got = flags_of(observer, "INBOX")
    assert (got[1].flags, got[1].keywords) == ({"seen", "flagged"}, ("$Forwarded", "Work"))
    assert (got[3].flags, got[3].keywords) == ({"seen"}, ("Work",))


def test_store_flags_maps_every_system_flag(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.deliver(message(1))
    conn, observer = connect(dovecot), connect(dovecot)
    conn.select("INBOX", readonly=False)
    names = ["seen", "flagged", "answered", "draft", "deleted"]
    conn.store_flags([1], names, add=True)
    assert flags_of(observer, "INBOX")[1].flags == set(names)
    # Flags as IMAP spells them are accepted too; duplicates go out once.
    conn.store_flags([1], ["\\Seen", "\\DRAFT", "seen"], add=False)
    assert flags_of(observer, "INBOX")[1].flags == {"flagged", "answered", "deleted"}


def test_store_flags_is_idempotent(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.deliver_many(message(n) for n in range(1, 4))
    conn, observer = connect(dovecot), connect(dovecot)
    conn.select("INBOX", readonly=False)
    for _ in range(2):
        conn.store_flags([1, 2], ["seen", "$Label1"], add=True)
        got = flags_of(observer, "INBOX")
        assert [(u.flags, u.keywords) for u in got.values()] == [
            ({"seen"}, ("$Label1",)),
            ({"seen"}, ("$Label1",)),
            (frozenset(), ()),
        ]
    for _ in range(2):
        conn.store_flags([1, 2, 3], ["seen", "$Label1"], add=False)
        assert all(not u.flags and not u.keywords for u in flags_of(observer, "INBOX").values())
    # UIDs the folder does not (or no longer) have are fine, as are empty calls.
    conn.store_flags([2, 99], ["flagged"], add=True)
    conn.store_flags([], ["flagged"], add=True)
    conn.store_flags([1], [], add=True)
    got = flags_of(observer, "INBOX")
    assert [u.uid for u in got.values() if u.flags] == [2]


def test_store_flags_not_silent(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.deliver(message(1))
    conn, observer = connect(dovecot), connect(dovecot)
    conn.select("INBOX", readonly=False)
    conn.store_flags([1], ["answered"], add=True, silent=False)
    assert flags_of(observer, "INBOX")[1].flags == {"answered"}
    conn.noop()  # the FETCH replies were consumed; the session is in step


def test_store_flags_on_a_set_longer_than_one_command(dovecot: Dovecot, connect: Connect) -> None:
    """4,000 UIDs, every other one flagged: a ~9,400-character set, sent as two commands."""
    dovecot.deliver_many(message(n) for n in range(1, 4001))
    conn, observer = connect(dovecot), connect(dovecot)
    conn.select("INBOX", readonly=False)
    odd = list(range(1, 4001, 2))
    conn.store_flags(odd, ["seen"], add=True)
    got = flags_of(observer, "INBOX")
    assert sorted(u for u, f in got.items() if f.flags == {"seen"}) == odd
    assert len(got) == 4000


def test_store_flags_refuses_bad_flags(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.deliver(message(1))
    conn = connect(dovecot)
    conn.select("INBOX", readonly=False)
    for bad in (["\\Recent"], ["\\Whatever"], ["two words"], ["(x)"], ["Über"], [""]):
        with pytest.raises(ValueError, match=r"flag|keyword"):
            conn.store_flags([1], bad, add=True)
    with pytest.raises(TypeError):
        conn.store_flags([1], "seen", add=True)  # one string, not a list of names


def test_writes_need_a_writable_selection(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.deliver(message(1))
    dovecot.create_folder("Dest")
    conn = connect(dovecot)
    with pytest.raises(ValueError, match="select"):
        conn.store_flags([1], ["seen"], add=True)
    with pytest.raises(ValueError, match="select"):
        conn.find_by_message_id("1@example.com")
    conn.select("INBOX")  # EXAMINE
    with pytest.raises(ValueError, match="readonly=False"):
        conn.store_flags([1], ["seen"], add=True)
    with pytest.raises(ValueError, match="readonly=False"):
        conn.move([1], "Dest")
    with pytest.raises(ValueError, match="readonly=False"):
        conn.expunge_uids([1])
    assert conn.copy([1], "Dest") == {1: 1}  # copying does not change the source
    conn.close()
    with pytest.raises(ConnectionLost):
        conn.store_flags([1], ["seen"], add=True)


# ---------------------------------------------------------------------- copy


def test_copy_returns_the_copyuid_mapping_and_the_bytes_arrive(
    dovecot: Dovecot, connect: Connect
) -> None:
    raws = [message(n) for n in range(1, 5)]
    dovecot.deliver_many(raws)
    dovecot.deliver(message(100), folder="Dest")  # so that new UIDs differ from old ones
    conn, observer = connect(dovecot), connect(dovecot)
    assert uids_in(observer, "Dest") == [1]  # Dovecot numbers Maildir files when it looks
    conn.select("INBOX", readonly=False)
    mapping = conn.copy([1, 3, 4], "Dest")
    assert mapping == {1: 2, 3: 3, 4: 4}
    observer.select("Dest")
    got = {m.uid: m.raw for m in observer.fetch_messages([1, 2, 3, 4])}
    assert got == {1: message(100)} | {new: raws[old - 1] for old, new in mapping.items()}
    assert uids_in(observer, "INBOX") == [1, 2, 3, 4]  # the source keeps them
    assert conn.copy([], "Dest") == {}


def test_copy_without_uidplus_returns_no_mapping(
    make_dovecot: Callable[..., Dovecot], connect: Connect
) -> None:
    server = make_dovecot(capabilities=NO_UIDPLUS)
    server.deliver(message(1))
    server.create_folder("Dest")
    conn, observer = connect(server), connect(server)
    assert not conn.has_uidplus
    conn.select("INBOX", readonly=False)
    assert conn.copy([1], "Dest") == {}  # Dovecot sends COPYUID anyway; it is not trusted
    assert uids_in(observer, "Dest") == [1]


@pytest.mark.parametrize("dovecot", [None, NO_MOVE], indirect=True, ids=["move", "no-move"])
def test_copy_and_move_to_a_missing_folder(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.deliver_many(message(n) for n in range(1, 3))
    conn, observer = connect(dovecot), connect(dovecot)
    conn.select("INBOX", readonly=False)
    for write in (conn.copy, conn.move):
        with pytest.raises(FolderGone) as info:
            write([1, 2], "Nowhere/Sub")
        assert str(info.value) == f"folder Nowhere/Sub does not exist on {dovecot.host}"
        assert info.value.account == "acct"
    got = flags_of(observer, "INBOX")
    assert sorted(got) == [1, 2]
    assert all("deleted" not in u.flags for u in got.values())  # no half-done fallback
    conn.noop()  # still usable


# ---------------------------------------------------------------------- move


@pytest.mark.parametrize("dovecot", [None, NO_MOVE], indirect=True, ids=["move", "no-move"])
def test_move_removes_exactly_the_moved_uids(
    dovecot: Dovecot, connect: Connect, proxy: Callable[[Dovecot], RecordingProxy]
) -> None:
    raws = [message(n) for n in range(1, 6)]
    dovecot.deliver_many(raws)
    dovecot.create_folder("Archive/2026")
    dovecot.set_flags("INBOX", "4", "\\Deleted")  # another client's, not yet expunged
    wire = proxy(dovecot)
    conn, observer = connect(dovecot, port=wire.port), connect(dovecot)
    assert conn.has_move == (dovecot.capabilities is None)
    conn.select("INBOX", readonly=False)

    assert conn.move([1, 3, 5], "Archive/2026") == {1: 1, 3: 2, 5: 3}

    got = flags_of(observer, "INBOX")
    assert sorted(got) == [2, 4]
    assert got[4].flags == {"deleted"}  # someone else's \Deleted message survives
    observer.select("Archive/2026")
    moved = observer.fetch_messages([1, 2, 3])
    assert [m.raw for m in moved] == [raws[0], raws[2], raws[4]]
    assert all("deleted" not in m.flags for m in moved)  # the copies are not \Deleted

    commands = wire.commands()
    assert not bare_expunges(commands)
    if conn.has_move:
        assert 'UID MOVE 1,3,5 "Archive/2026"' in commands
    else:
        assert not [c for c in commands if " MOVE " in c]
        assert commands[-3:] == [
            'UID COPY 1,3,5 "Archive/2026"',
            "UID STORE 1,3,5 +FLAGS.SILENT (\\Deleted)",
            "UID EXPUNGE 1,3,5",
        ]


def test_move_without_move_or_uidplus_is_refused_before_copying(
    make_dovecot: Callable[..., Dovecot],
    connect: Connect,
    proxy: Callable[[Dovecot], RecordingProxy],
) -> None:
    server = make_dovecot(capabilities=NO_MOVE_NO_UIDPLUS)
    server.deliver_many(message(n) for n in range(1, 3))
    server.create_folder("Dest")
    wire = proxy(server)
    conn, observer = connect(server, port=wire.port), connect(server)
    conn.select("INBOX", readonly=False)
    with pytest.raises(ProtocolError) as info:
        conn.move([1], "Dest")
    assert str(info.value) == (
        f"server {server.host} cannot expunge single messages safely "
        "(it has neither MOVE nor UIDPLUS)"
    )
    with pytest.raises(ProtocolError, match="cannot expunge single messages safely"):
        conn.expunge_uids([1])
    assert uids_in(observer, "Dest") == []
    assert uids_in(observer, "INBOX") == [1, 2]
    assert not [c for c in wire.commands() if re.search(r"COPY|MOVE|STORE|EXPUNGE", c)]


def test_move_with_move_but_without_uidplus(
    make_dovecot: Callable[..., Dovecot], connect: Connect
) -> None:
    server = make_dovecot(capabilities=NO_UIDPLUS)
    server.deliver_many(message(n) for n in range(1, 3))
    server.create_folder("Dest")
    conn, observer = connect(server), connect(server)
    conn.select("INBOX", readonly=False)
    assert conn.move([2], "Dest") == {}  # moved; the new UID is just not known
    assert uids_in(observer, "INBOX") == [1]
    assert uids_in(observer, "Dest") == [1]


# ------------------------------------------------------------- expunge_uids


def test_expunge_uids_leaves_the_others(
    dovecot: Dovecot, connect: Connect, proxy: Callable[[Dovecot], RecordingProxy]
) -> None:
    dovecot.deliver_many(message(n) for n in range(1, 7))
    dovecot.set_flags("INBOX", "5", "\\Deleted")  # marked by someone else
    wire = proxy(dovecot)
    conn, observer = connect(dovecot, port=wire.port), connect(dovecot)
    conn.select("INBOX", readonly=False)
    conn.expunge_uids([2, 3, 6])
    conn.expunge_uids([2, 3])  # already gone: fine
    conn.expunge_uids([])
    got = flags_of(observer, "INBOX")
    assert sorted(got) == [1, 4, 5]
    assert got[5].flags == {"deleted"}
    assert not bare_expunges(wire.commands())
    assert "UID EXPUNGE 2:3,6" in wire.commands()


# -------------------------------------------------------------------- append


def test_append_returns_the_appenduid_and_the_exact_bytes(
    dovecot: Dovecot, connect: Connect
) -> None:
    dovecot.create_folder("Sent")
    dovecot.deliver(message(100), folder="Sent")
    raw = message(1, body="Line one.\nLine two, with trailing spaces   \n\n-- \nsig\n")
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    conn, observer = connect(dovecot), connect(dovecot)
    assert uids_in(observer, "Sent") == [1]  # Dovecot numbers Maildir files when it looks
    uid = conn.append("Sent", raw, flags=["seen", "$Forwarded"], internal_date=when)
    assert uid == 2
    assert conn.append("Sent", message(2)) == 3
    observer.select("Sent")
    got = {m.uid: m for m in observer.fetch_messages([2, 3])}
    assert got[2].raw == raw
    assert got[2].flags == {"seen"}
    assert got[2].keywords == ("$Forwarded",)
    assert got[2].internal_date == when
    assert got[3].raw == message(2)
    assert got[3].flags == frozenset()


def test_append_into_the_selected_folder_and_bare_lf(dovecot: Dovecot, connect: Connect) -> None:
    conn = connect(dovecot)
    conn.select("INBOX", readonly=False)
    lf = b"From: a@example.com\nSubject: lf\nMessage-ID: <lf@example.com>\n\nbody\n"
    uid = conn.append("INBOX", lf, flags=["draft"])
    assert uid == 1
    (got,) = conn.fetch_messages([1])
    assert got.raw == lf.replace(b"\n", b"\r\n")
    assert got.flags == {"draft"}
    assert conn.search_all_uids() == [1]


def test_append_without_uidplus_returns_none(
    make_dovecot: Callable[..., Dovecot], connect: Connect
) -> None:
    server = make_dovecot(capabilities=NO_UIDPLUS)
    conn = connect(server)
    assert conn.append("INBOX", message(1)) is None
    assert uids_in(conn, "INBOX") == [1]


def test_append_to_a_missing_folder(dovecot: Dovecot, connect: Connect) -> None:
    conn = connect(dovecot)
    with pytest.raises(FolderGone) as info:
        conn.append("Nowhere", message(1), flags=["seen"])
    assert str(info.value) == f"folder Nowhere does not exist on {dovecot.host}"
    assert info.value.account == "acct"
    conn.noop()  # the literal was not left half-sent
    assert conn.append("INBOX", message(1)) == 1


def test_append_refuses_bad_arguments(dovecot: Dovecot, connect: Connect) -> None:
    conn = connect(dovecot)
    with pytest.raises(ValueError, match="empty"):
        conn.append("INBOX", b"")
    with pytest.raises(ValueError, match="aware"):
        conn.append("INBOX", message(1), internal_date=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="keyword"):
        conn.append("INBOX", message(1), flags=["no good"])
    assert uids_in(conn, "INBOX") == []


# --------------------------------------------------------- find_by_message_id


def test_find_by_message_id(dovecot: Dovecot, connect: Connect) -> None:
    dovecot.create_folder("Sent")
    conn = connect(dovecot)
    uids = {n: conn.append("Sent", message(n)) for n in (1, 11, 21)}
    assert conn.append("Sent", mail(None, "no id")) is not None
    dup = conn.append("Sent", message(11))
    conn.select("Sent")
    assert conn.find_by_message_id("1@example.com") == [uids[1]]  # not 11 or 21
    assert conn.find_by_message_id("<11@example.com>") == [uids[11], dup]
    assert conn.find_by_message_id("21@example.com") == [uids[21]]
    assert conn.find_by_message_id("unknown@example.com") == []
    assert conn.find_by_message_id("example.com") == []  # a substring is no match
    with pytest.raises(ValueError, match="Message-ID"):
        conn.find_by_message_id("  ")


def test_find_by_non_ascii_message_id(dovecot: Dovecot, connect: Connect) -> None:
    conn = connect(dovecot)
    raw = mail("grüße@example.com", "utf-8 id")
    uid = conn.append("INBOX", raw)
    conn.select("INBOX")
    assert conn.find_by_message_id("grüße@example.com") == [uid]
    assert conn.find_by_message_id("grüsse@example.com") == []


# --------------------------------------------------------------- speed (slow)


@pytest.mark.slow
def test_store_flags_speed_batch_vs_one_by_one(dovecot: Dovecot, connect: Connect) -> None:
    """Timing print, no assertion on speed: one call for 1,000 UIDs vs 1,000 calls."""
    dovecot.deliver_many(message(n) for n in range(1, 1001))
    conn, observer = connect(dovecot), connect(dovecot)
    conn.select("INBOX", readonly=False)
    uids = list(range(1, 1001))

    began = time.perf_counter()
    conn.store_flags(uids, ["seen"], add=True)
    batch = time.perf_counter() - began

    began = time.perf_counter()
    for uid in uids:
        conn.store_flags([uid], ["flagged"], add=True)
    single = time.perf_counter() - began

    got = flags_of(observer, "INBOX")
    assert all(u.flags == {"seen", "flagged"} for u in got.values())
    assert len(got) == 1000
    print(
        f"\nstore_flags on 1,000 UIDs: one call {batch * 1000:.1f} ms, "
        f"1,000 calls {single * 1000:.0f} ms ({single / batch:.0f}x)"
    )
