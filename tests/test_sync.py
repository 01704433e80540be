"""`tidings sync` against a real private Dovecot: full, incremental, resets, faults.

The local store is compared with what the server holds, read with a separate IMAP
client: per folder, the same messages (by bytes) under the same UIDs, with the same
flags.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import imapclient
import pytest
from sqlalchemy import func, select

from app.services import Services
from storage.bodies import unpack
from storage.models import Folder, Message, MessageBody, MessageUid
from tests.conftest import PASSWORD_ENV
from tests.mailmaker import mail
from tests.servers.dovecot import NO_CONDSTORE_CAPABILITIES as NO_CONDSTORE
from tests.servers.dovecot import Dovecot

pytestmark = pytest.mark.usefixtures("dovecot_available")


FlagMap = dict[int, tuple[bytes, frozenset[str]]]


def server_state(server: Dovecot) -> dict[str, FlagMap]:
    """Every selectable folder: UID -> (bytes, system flags as lower-case names)."""
    out: dict[str, FlagMap] = {}
    with imapclient.IMAPClient(server.host, port=server.port, ssl=False) as c:
        c.login("alice", "secret")
        for flags, delim, name in c.list_folders():
            if b"\\Noselect" in flags:
                continue
            c.select_folder(name, readonly=True)
            uids = c.search("ALL")
            data = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
            user_name = name.replace(delim.decode(), "/") if delim else name
            out[user_name] = {
                uid: (
                    d[b"BODY[]"],
                    frozenset(
                        f.decode().lstrip("\\").lower()
                        for f in d[b"FLAGS"]
                        if f.decode().lstrip("\\").lower()
                        in {"seen", "flagged", "answered", "draft", "deleted"}
                    ),
                )
                for uid, d in data.items()
            }
    return out


def local_state(services: Services, account: str = "work") -> dict[str, FlagMap]:
    out: dict[str, FlagMap] = {}
    with services.session() as s:
        rows = s.execute(
            select(Folder.name, MessageUid, MessageBody.compression, MessageBody.raw)
            .join(MessageUid, MessageUid.folder_id == Folder.id, isouter=True)
            .join(MessageBody, MessageBody.message_id == MessageUid.message_id, isouter=True)
        ).all()
        for name, loc, compression, raw in rows:
            folder = out.setdefault(name, {})
            if loc is None:
                continue
            flags = frozenset(
                n for n in ("seen", "flagged", "answered", "draft", "deleted") if getattr(loc, n)
            )
            folder[loc.uid] = (unpack(compression, raw), flags)
    return out


def assert_converged(services: Services, server: Dovecot) -> None:
    remote = server_state(server)
    local = local_state(services)
    assert sorted(local) == sorted(remote)
    for name in remote:
        assert sorted(local[name]) == sorted(remote[name]), name
        for uid in remote[name]:
            assert local[name][uid][0] == remote[name][uid][0], (name, uid)
            assert local[name][uid][1] == remote[name][uid][1], (name, uid)
    with services.session() as s:
        # One message per distinct content, and none without a folder.
        n = s.scalar(select(func.count()).select_from(Message))
        distinct = {raw for folder in remote.values() for raw, _ in folder.values()}
        assert n == len(distinct)


@pytest.fixture
def work(cli, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    r = cli(
        "account", "add", "work", "--email", "alice@example.com",
        "--imap-host", dovecot.host, "--imap-port", str(dovecot.port),
        "--imap-security", "none", "--username", "alice", "--password-env", PASSWORD_ENV,
    )  # fmt: skip
    assert r.code == 0, r.err
    return dovecot


def fill(server: Dovecot, n: int = 12) -> None:
    server.create_folder("Projekte/Übersicht")
    for i in range(n):
        server.deliver(
            mail(f"in{i}@x", f"Inbox {i}", body=f"body {i}\n"), flags="S" if i % 2 else ""
        )
    server.deliver(mail("sent1@x", "Re: Inbox 1", refs="<in1@x>"), folder="Sent", flags="S")
    server.deliver(mail("p1@x", "Übersicht"), folder="Projekte/Übersicht", flags="FS")
    # The same message in two folders: one message, two locations.
    server.deliver(mail("in3@x", "Inbox 3", body="body 3\n"), folder="Archive", flags="S")


def test_full_sync_equals_server(cli, services: Services, work: Dovecot) -> None:
    fill(work)
    r = cli("sync")
    assert r.code == 0, r.err
    assert "work: 15 new" in r.out or "found again" in r.out
    assert_converged(services, work)
    folders = {f["name"]: f for f in _json_lines(cli("folders", "--json").out)}
    assert folders["Projekte/Übersicht"]["total"] == 1
    assert folders["INBOX"]["role"] == "inbox"
    assert folders["Sent"]["role"] == "sent"
    assert folders["INBOX"]["sync_state"] == "synced"
    assert folders["INBOX"]["unread"] == 6


@pytest.mark.parametrize("dovecot", [None, NO_CONDSTORE], indirect=True, ids=["qresync", "plain"])
def test_incremental_after_server_changes(cli, services: Services, work: Dovecot) -> None:
    fill(work)
    work.create_folder("Old stuff")
    work.deliver(mail("old@x", "old"), folder="Old stuff")
    assert cli("sync").code == 0
    work.delete_folder("Old stuff")
    work.deliver(mail("late@x", "late arrival"))
    work.set_flags("INBOX", "1:3", "\\Flagged \\Seen")
    work.set_flags("INBOX", "2", "\\Seen", add=False)
    work.expunge("INBOX", "5:6")
    work.rename_folder("Projekte/Übersicht", "Projekte/Archiv 2026")
    r = cli("sync")
    assert r.code == 0, r.err
    assert_converged(services, work)
    # The renamed folder's message was found again, not downloaded twice; the deleted
    # folder is gone, and so is its message (it lived nowhere else).
    assert "1 found again" in r.out
    assert "Old stuff" not in local_state(services)
    # Nothing changed: a second run changes nothing.
    r = cli("sync")
    assert "0 new, 0 found again, 0 removed, 0 flag changes" in r.out
    assert_converged(services, work)


def test_uidvalidity_change_rematches_without_duplicates(
    cli, services: Services, work: Dovecot
) -> None:
    fill(work)
    assert cli("sync").code == 0
    with services.session() as s:
        before = s.scalar(select(func.count()).select_from(Message))
    raws = [raw for raw, _ in server_state(work)["Archive"].values()]
    work.recreate_folder("Archive")
    work.deliver_many(raws, folder="Archive")
    work.deliver(mail("new-in-archive@x", "fresh"), folder="Archive")
    r = cli("sync")
    assert r.code == 0, r.err
    assert "1 new, 1 found again" in r.out  # the old message was not downloaded again
    assert_converged(services, work)
    with services.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == before + 1


def test_bad_endpoints_fail_in_one_line_and_touch_nothing(
    cli, services: Services, work: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(work, 2)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    r = cli("sync")
    assert r.code == 1
    assert "login failed" in r.err.lower() or "authentication" in r.err.lower()
    assert len(r.err.strip().splitlines()) == 1
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    closed = _closed_port()
    assert cli("account", "add", "down", "--email", "a@b.c", "--imap-host", "127.0.0.1",
               "--imap-port", str(closed), "--imap-security", "none",
               "--password-env", PASSWORD_ENV).code == 0  # fmt: skip
    r = cli("sync", "--account", "down")
    assert r.code == 1
    assert "cannot reach" in r.err
    with _garbage_server() as port:
        cli("account", "add", "junk", "--email", "a@b.c", "--imap-host", "127.0.0.1",
            "--imap-port", str(port), "--imap-security", "none", "--password-env", PASSWORD_ENV)  # fmt: skip
        r = cli("sync", "--account", "junk")
    assert r.code == 1
    assert "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1
    with services.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0


def test_tls_needs_the_ca(
    cli, services: Services, tls_dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    tls_dovecot.deliver(mail("tls@x", "over TLS"))
    base = ["--email", "alice@example.com", "--imap-host", "127.0.0.1", "--username", "alice",
            "--password-env", PASSWORD_ENV]  # fmt: skip
    assert cli("account", "add", "bad", "--imap-port", str(tls_dovecot.tls_port), *base).code == 0
    r = cli("sync", "--account", "bad")
    assert r.code == 1
    assert "certificate" in r.err.lower()
    assert cli("account", "add", "good", "--imap-port", str(tls_dovecot.tls_port),
               "--ca-file", str(tls_dovecot.ca_pem), *base).code == 0  # fmt: skip
    assert cli("sync", "--account", "good").code == 0
    assert cli("account", "add", "st", "--imap-port", str(tls_dovecot.port), "--imap-security",
               "starttls", "--ca-file", str(tls_dovecot.ca_pem), *base).code == 0  # fmt: skip
    r = cli("sync", "--account", "st")
    assert r.code == 0, r.err
    assert [m["subject"] for m in _json_lines(cli("list", "--json", "--account", "st").out)] == [
        "over TLS"
    ]


def kill_sync_repeatedly(home: Path, *, times: int, seed: int, after: tuple[float, float]) -> None:
    """Start `tidings sync` and kill -9 it after a random moment, ``times`` times."""
    exe = Path(sys.executable).parent / "tidings"
    env = dict(os.environ, **{PASSWORD_ENV: "secret"})
    rng = random.Random(seed)
    for _ in range(times):
        proc = subprocess.Popen([exe, "--home", str(home), "sync"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(*after))
        proc.send_signal(signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_kill_9_during_full_sync_then_converge(
    cli, services: Services, home: Path, work: Dovecot
) -> None:
    from app.samples import synthetic_messages

    work.deliver_many(synthetic_messages(2000, seed=3))
    kill_sync_repeatedly(home, times=4, seed=7, after=(0.3, 1.5))
    r = cli("sync")
    assert r.code == 0, r.err
    assert_converged(services, work)


class _CuttingProxy:
    """TCP proxy to the server that drops the connection after N bytes, once."""

    def __init__(self, target: int, cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            budget = self.cut_after if self.cuts == 0 else None
            threading.Thread(
                target=self._pipe, args=(upstream, client, budget), daemon=True
            ).start()
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, budget: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                sent += len(data)
                if budget is not None and sent >= budget:
                    self.cuts += 1
                    break
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def test_cut_connection_once_fails_cleanly_then_converges(
    cli, services: Services, work: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.samples import synthetic_messages

    total = work.deliver_many(synthetic_messages(1200, seed=1))
    # The first batch (at most 16 MB) is stored before the cut, the rest (44 MB in all) is not.
    proxy = _CuttingProxy(work.port, cut_after=25_000_000)
    try:
        monkeypatch.setenv(PASSWORD_ENV, "secret")
        assert cli("account", "add", "viaproxy", "--email", "alice@example.com", "--imap-host",
                   "127.0.0.1", "--imap-port", str(proxy.port), "--imap-security", "none",
                   "--username", "alice", "--password-env", PASSWORD_ENV).code == 0  # fmt: skip
        assert cli("account", "remove", "work").code == 0
        r = cli("sync")
        assert r.code == 1
        assert "connection" in r.err.lower()
        assert len(r.err.strip().splitlines()) == 1
        with services.session() as s:
            stored = s.scalar(select(func.count()).select_from(Message))
        assert 0 < stored < total, r.err  # what was committed before the cut is kept
        r = cli("sync")
        assert r.code == 0, r.err
    finally:
        proxy.close()
    with services.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == total
        dupes = s.scalar(
            select(func.count()).select_from(
                select(MessageUid.folder_id, MessageUid.uid)
                .group_by(MessageUid.folder_id, MessageUid.uid)
                .having(func.count() > 1)
                .subquery()
            )
        )
        assert dupes == 0


@pytest.fixture
def watch_proc(home: Path, work: Dovecot) -> Iterator[subprocess.Popen[str]]:
    exe = Path(sys.executable).parent / "tidings"
    env = dict(os.environ, **{PASSWORD_ENV: "secret"})
    proc = subprocess.Popen(
        [exe, "--home", str(home), "sync", "--watch", "--events", "--poll", "3600"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()


def _events_until(
    proc: subprocess.Popen[str], want: str, timeout: float
) -> list[dict[str, object]]:
    """Read the worker's JSON events until one whose event or state is ``want``."""
    import json
    import select as sel

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = getattr(proc, "_pending", b"")
    seen: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            ev = json.loads(line)
            seen.append(ev)
            if want in (ev.get("event"), ev.get("state")):
                proc._pending = pending  # type: ignore[attr-defined]
                return seen
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {want!r} within {timeout}s; got {seen}")
        ready, _, _ = sel.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"worker exited before {want!r}; got {seen}")
            pending += chunk


def test_watch_gets_new_mail_by_idle_and_stops_on_sigterm(
    work: Dovecot, watch_proc: subprocess.Popen[str]
) -> None:
    work.deliver(mail("first@x", "before the watch"))
    _events_until(watch_proc, "idle", 30)
    t0 = time.monotonic()
    work.deliver(mail("pushed@x", "pushed by IDLE"))
    events = _events_until(watch_proc, "messages_added", 20)
    latency = time.monotonic() - t0
    print(f"\nIDLE latency: {latency:.2f} s")
    assert any(e.get("event") == "messages_added" and e.get("ids") for e in events)
    watch_proc.send_signal(signal.SIGTERM)
    assert watch_proc.wait(timeout=10) == 0


def test_watch_reconnects_after_server_restart(
    cli, services: Services, work: Dovecot, watch_proc: subprocess.Popen[str]
) -> None:
    _events_until(watch_proc, "idle", 30)
    work.restart()
    _events_until(watch_proc, "offline", 20)
    work.deliver(mail("after@x", "after the restart"))
    _events_until(watch_proc, "idle", 60)
    assert_converged(services, work)


def _json_lines(text: str) -> list[dict[str, object]]:
    import json

    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


class _garbage_server:
    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            c.sendall(b"HELLO THERE\r\n")
            c.close()

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_watch_through_a_cutting_proxy_reconnects_and_converges(
    cli, services: Services, home: Path, work: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.samples import synthetic_messages

    total = work.deliver_many(synthetic_messages(1200, seed=1))  # 44 MB: cut at 25
    proxy = _CuttingProxy(work.port, cut_after=25_000_000)
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    assert cli("account", "remove", "work").code == 0
    assert cli("account", "add", "work", "--email", "alice@example.com", "--imap-host",
               "127.0.0.1", "--imap-port", str(proxy.port), "--imap-security", "none",
               "--username", "alice", "--password-env", PASSWORD_ENV).code == 0  # fmt: skip
    exe = Path(sys.executable).parent / "tidings"
    proc = subprocess.Popen(
        [exe, "--home", str(home), "sync", "--watch", "--events", "--poll", "3600"],
        env=dict(os.environ, **{PASSWORD_ENV: "secret"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _events_until(proc, "offline", 60)  # the cut
        _events_until(proc, "idle", 60)  # reconnected and caught up
        assert proxy.cuts == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
        proxy.close()
    with services.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == total


def test_no_change_sync_takes_the_fast_path(
    cli, services: Services, home: Path, work: Dovecot
) -> None:
    fill(work)
    assert cli("sync").code == 0
    code = (
        "import sys; from app.cli import run; code = run(['--home', sys.argv[1], 'sync']);"
        "print(code, 'sqlalchemy' in sys.modules)"
    )
    env = dict(os.environ, **{PASSWORD_ENV: "secret"})
    out = subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.splitlines()[-1] == "0 False"  # answered without loading the engine
    assert "work: 0 new, 0 found again, 0 removed, 0 flag changes in 7 folders" in out.stdout
    # One flag changed on the server: the fast path sees it and the engine runs.
    work.set_flags("INBOX", "1", "\\Flagged")
    out = subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.splitlines()[-1] == "0 True"
    assert "1 flag changes" in out.stdout
    assert_converged(services, work)
