"""Local-first changes against a real Dovecot: offline, replayed exactly, conflicts, undo."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.services import Services
from storage.models import Action, Message
from tests.conftest import PASSWORD_ENV
from tests.mailmaker import mail
from tests.servers.dovecot import Dovecot
from tests.test_sync import assert_converged, kill_sync_repeatedly, server_state

pytestmark = pytest.mark.usefixtures("dovecot_available")

NO_MOVE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ SPECIAL-USE UIDPLUS CONDSTORE QRESYNC"


class _Switch:
    """A TCP forwarder to the server that can be switched off and on (server 'down')."""

    def __init__(self, target: int) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self.sock: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.on()

    def on(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(8)
        self.sock = s
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def off(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            self.sock.close()
            self.sock = None
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        self.conns.clear()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def switched(cli, dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch):
    switch = _Switch(dovecot.port)
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    r = cli(
        "account", "add", "work", "--email", "alice@example.com", "--imap-host", "127.0.0.1",
        "--imap-port", str(switch.port), "--imap-security", "none", "--username", "alice",
        "--password-env", PASSWORD_ENV,
    )  # fmt: skip
    assert r.code == 0, r.err
    for i in range(8):
        dovecot.deliver(mail(f"m{i}@x", f"message {i}", body=f"text {i}\n"))
    dovecot.create_folder("Projekte")
    assert cli("sync").code == 0
    yield dovecot, switch
    switch.off()


def _ids(cli, *args: str) -> dict[str, int]:
    out = cli("list", "--json", "--limit", "100", *args).out
    return {m["subject"]: m["id"] for m in map(json.loads, out.splitlines())}


def _actions(cli) -> list[dict[str, object]]:
    return [json.loads(line) for line in cli("actions", "--json").out.splitlines()]


def test_offline_actions_are_local_at_once_and_reach_the_server_later(
    cli, services: Services, switched
) -> None:
    server, switch = switched
    ids = _ids(cli)
    switch.off()  # the server is unreachable from here on
    assert cli("mark", str(ids["message 0"]), str(ids["message 1"]), "--read").code == 0
    assert cli("mark", str(ids["message 2"]), "--flag").code == 0
    assert cli("move", str(ids["message 3"]), "Projekte").code == 0
    assert cli("archive", str(ids["message 4"])).code == 0
    assert cli("delete", str(ids["message 5"])).code == 0
    # Visible locally at once, with the server down.
    inbox = _ids(cli, "--folder", "INBOX")
    assert set(inbox) == {"message 0", "message 1", "message 2", "message 6", "message 7"}
    assert _ids(cli, "--folder", "Projekte") == {"message 3": ids["message 3"]}
    rows = {m["subject"]: m for m in map(json.loads, cli("list", "--json").out.splitlines())}
    assert rows["message 0"]["flags"] == ["seen"]
    assert rows["message 2"]["flags"] == ["flagged"]
    r = cli("sync")
    assert r.code == 1  # offline: a clear error, nothing lost
    assert len(_actions(cli)) == 6
    assert {a["state"] for a in _actions(cli)} == {"pending"}
    # The process restarts (a new CLI run reads the same queue) and the server is back.
    switch.on()
    r = cli("sync")
    assert r.code == 0, r.err
    assert _actions(cli) == []
    assert_converged(services, server)
    remote = server_state(server)
    assert len(remote["Projekte"]) == 1
    assert len(remote["Archive"]) == 1
    assert len(remote["Trash"]) == 1
    assert len(remote["INBOX"]) == 5


def test_expunged_on_the_server_before_replay_is_dropped_with_a_note(
    cli, services: Services, switched
) -> None:
    server, switch = switched
    ids = _ids(cli)
    switch.off()
    assert cli("mark", str(ids["message 6"]), "--read").code == 0
    uid = next(u for u, (raw, _) in server_state(server)["INBOX"].items() if b"text 6" in raw)
    server.expunge("INBOX", str(uid))
    switch.on()
    r = cli("sync")
    assert r.code == 0, r.err
    assert_converged(services, server)
    with services.session() as s:
        [action] = s.scalars(select(Action)).all()
        assert action.state == "dropped"
        assert "no longer on the server" in (action.last_error or "")


def test_move_to_a_folder_deleted_on_the_server_fails_and_stays(
    cli, services: Services, switched
) -> None:
    server, switch = switched
    ids = _ids(cli)
    switch.off()
    assert cli("move", str(ids["message 7"]), "Projekte").code == 0
    server.delete_folder("Projekte")
    switch.on()
    r = cli("sync")
    assert r.code == 0, r.err
    [failed] = _actions(cli)
    assert failed["state"] == "failed"
    assert "Projekte" in str(failed["last_error"])
    assert "message 7" in _ids(cli, "--folder", "INBOX")  # still visible where it was
    assert_converged(services, server)


def test_pending_local_flag_survives_a_read_sync(cli, services: Services, switched) -> None:
    server, _switch = switched
    ids = _ids(cli)
    assert cli("mark", str(ids["message 1"]), "--read").code == 0
    with services.session() as s:  # not due yet: the replay waits (say, backing off)
        s.execute(update(Action).values(next_attempt=datetime.now(UTC) + timedelta(hours=1)))
    uid = next(u for u, (raw, _) in server_state(server)["INBOX"].items() if b"text 1" in raw)
    server.set_flags("INBOX", str(uid), "\\Flagged")  # something changes on the server
    assert cli("sync").code == 0
    rows = {m["subject"]: m for m in map(json.loads, cli("list", "--json").out.splitlines())}
    assert "seen" in rows["message 1"]["flags"]  # the old server value did not win
    assert cli("actions", "retry", "--all").code == 0
    assert cli("sync").code == 0
    assert_converged(services, server)


def test_undo_after_replay_reverts_on_the_server(cli, services: Services, switched) -> None:
    server, _switch = switched
    ids = _ids(cli)
    assert cli("mark", str(ids["message 2"]), "--flag").code == 0
    assert cli("archive", str(ids["message 6"])).code == 0
    assert cli("sync").code == 0
    assert len(server_state(server)["Archive"]) == 1
    assert "archived 1" in cli("undo").out
    assert "starred" in cli("undo").out
    assert cli("sync").code == 0
    assert_converged(services, server)
    assert len(server_state(server)["Archive"]) == 0
    assert all(not flags for _, flags in server_state(server)["INBOX"].values())


def test_draft_saved_three_times_is_one_draft_on_the_server(
    cli, services: Services, switched
) -> None:
    server, _switch = switched
    for i in range(3):
        services.save_draft("work", mail("draft@x", "Plan", body=f"version {i}\n"), "compose-7")
        if i == 1:
            assert cli("sync").code == 0  # one version reaches the server in between
    assert cli("sync").code == 0
    drafts = server_state(server)["Drafts"]
    assert len(drafts) == 1
    [(raw, flags)] = drafts.values()
    assert b"version 2" in raw
    assert flags == frozenset({"draft", "seen"})
    assert_converged(services, server)


@pytest.mark.parametrize(
    "dovecot",
    [
        "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ SPECIAL-USE UIDPLUS CONDSTORE QRESYNC"
    ],
    indirect=True,
    ids=["no-MOVE"],
)
def test_move_without_move_expunges_only_those_messages(cli, services: Services, switched) -> None:
    server, _switch = switched
    ids = _ids(cli)
    # Someone else marked another message \Deleted but did not expunge it.
    uid7 = next(u for u, (raw, _) in server_state(server)["INBOX"].items() if b"text 7" in raw)
    server.set_flags("INBOX", str(uid7), "\\Deleted")
    assert cli("sync").code == 0
    assert cli("move", str(ids["message 0"]), str(ids["message 1"]), "Projekte").code == 0
    assert cli("sync").code == 0
    remote = server_state(server)
    assert len(remote["Projekte"]) == 2
    assert uid7 in remote["INBOX"]  # not expunged by our move
    assert_converged(services, server)


@pytest.mark.slow
def test_kill_9_during_replay_applies_nothing_twice(
    cli, services: Services, home: Path, switched
) -> None:
    server, _switch = switched
    from app.samples import synthetic_messages

    server.deliver_many(synthetic_messages(400, seed=5))
    assert cli("sync").code == 0
    with services.session() as s:
        ids = list(s.scalars(select(Message.id).order_by(Message.id)))
    before = sum(len(f) for f in server_state(server).values())
    assert services.mark(ids[:300], "seen", True) > 0
    assert services.move(ids[300:350], "Projekte") == 50
    kill_sync_repeatedly(home, times=3, seed=11, after=(0.05, 0.6))
    assert cli("sync").code == 0
    remote = server_state(server)
    assert sum(len(f) for f in remote.values()) == before  # no copy made twice, none lost
    assert len(remote["Projekte"]) == 50
    assert_converged(services, server)
    with services.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(Action).where(Action.state == "pending")) == 0
        )


def test_watch_replays_a_local_change_right_away(
    cli, services: Services, home: Path, switched
) -> None:
    from tests.test_sync import _events_until

    server, _switch = switched
    ids = _ids(cli)
    exe = Path(sys.executable).parent / "tidings"
    proc = subprocess.Popen(
        [exe, "--home", str(home), "sync", "--watch", "--events", "--poll", "3600"],
        env=dict(os.environ, **{PASSWORD_ENV: "secret"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _events_until(proc, "idle", 30)
        assert (home / "worker.pid").read_text().strip() == str(proc.pid)
        t0 = time.monotonic()
        assert cli("mark", str(ids["message 3"]), "--flag").code == 0  # nudges the worker
        _events_until(proc, "actions_replayed", 10)
        print(f"\nlocal change on the server after {time.monotonic() - t0:.2f} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert not (home / "worker.pid").exists()
    flagged = [flags for raw, flags in server_state(server)["INBOX"].values() if b"text 3" in raw]
    assert flagged == [frozenset({"flagged"})]


@pytest.mark.parametrize("dovecot", [NO_MOVE], indirect=True, ids=["no-MOVE"])
def test_replay_after_a_crash_between_copy_and_expunge_does_not_duplicate(
    cli, services: Services, switched
) -> None:
    server, _switch = switched
    ids = _ids(cli)
    assert cli("move", str(ids["message 2"]), "Projekte").code == 0
    # The previous run died after UID COPY, before STORE \Deleted + UID EXPUNGE.
    uid = next(u for u, (raw, _) in server_state(server)["INBOX"].items() if b"text 2" in raw)
    server.doveadm("copy", "-u", "alice", "Projekte", "mailbox", "INBOX", "uid", str(uid))
    assert cli("sync").code == 0
    remote = server_state(server)
    assert len(remote["Projekte"]) == 1
    assert uid not in remote["INBOX"]
    assert_converged(services, server)
