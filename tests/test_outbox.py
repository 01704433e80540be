"""Compose and outbox end to end: a real aiosmtpd (fault-injecting) and a real Dovecot."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.compose import Draft, Identity, build
from app.quicksync import smtp_config
from app.services import Services
from sync.outbox import send_due
from tests.conftest import PASSWORD_ENV
from tests.mailmaker import mail
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.test_sync import server_state

pytestmark = pytest.mark.usefixtures("dovecot_available")


@pytest.fixture
def work(cli, mail_account: Dovecot) -> Dovecot:
    dovecot = mail_account
    dovecot.deliver(
        mail(
            "orig@x",
            "Quarterly plan",
            sender="Bob <bob@example.org>",
            to="alice@example.com",
            cc="Carol <carol@example.org>",
            body="Shall we meet?\n",
        )
    )
    assert cli("sync").code == 0
    return dovecot


def _outbox(cli) -> list[dict[str, object]]:
    return [json.loads(line) for line in cli("outbox", "--json").out.splitlines()]


def test_send_now_delivers_once_files_in_sent_and_threads_the_reply(
    cli, services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    [orig] = list(map(json.loads, cli("list", "--json").out.splitlines()))
    r = cli(
        "send",
        "--account",
        "work",
        "--reply-all-to-id",
        str(orig["id"]),
        "--body",
        "Yes, Tuesday.",
        "--now",
    )
    assert r.code == 0, r.err
    assert "sent message" in r.out
    [got] = smtp.received
    assert sorted(got.rcpt_tos) == ["bob@example.org", "carol@example.org"]
    assert b"In-Reply-To: <orig@x>" in got.data
    assert b"References: <orig@x>" in got.data
    assert b"> Shall we meet?" in got.data
    [item] = _outbox(cli)
    assert item["state"] == "sent"
    assert f"<{item['message_id']}>" == got.message_id
    # The Sent copy reaches the server once, the original is answered, same thread.
    assert cli("sync").code == 0
    assert cli("sync").code == 0
    sent = server_state(work)["Sent"]
    assert len(sent) == 1
    assert [raw for raw, _ in sent.values()] == [got.data]
    rows = {m["subject"]: m for m in map(json.loads, cli("list", "--json").out.splitlines())}
    assert "answered" in rows["Quarterly plan"]["flags"]
    assert rows["Re: Quarterly plan"]["thread_id"] == rows["Quarterly plan"]["thread_id"]
    assert rows["Re: Quarterly plan"]["folders"] == ["Sent"]


def test_undo_window_cancel_sends_nothing(
    cli, services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    r = cli(
        "send", "--account", "work", "--to", "dan@example.org", "--subject", "oops", "--body", "x"
    )
    assert r.code == 0, r.err
    [item] = _outbox(cli)
    assert item["state"] == "scheduled"
    assert cli("outbox", "cancel", str(item["id"])).code == 0
    assert cli("sync").code == 0
    assert smtp.received == []
    assert _outbox(cli)[0]["state"] == "cancelled"


def test_send_later_leaves_at_its_time(services: Services, work: Dovecot, smtp: SmtpServer) -> None:
    account = services.account("work")
    built = build(
        Identity("alice@example.com"), Draft(to=("dan@example.org",), subject="later", text="x")
    )
    at = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    services.queue_mail("work", raw=built.raw, message_id=built.message_id, sender=built.sender,
                        recipients=built.recipients, subject="later", send_at=at)  # fmt: skip
    cfg = smtp_config(account)
    send_due(
        services.factory,
        account,
        cfg,
        find_sent=None,
        emit=lambda e: None,
        now=lambda: at - timedelta(minutes=1),
    )
    assert smtp.received == []
    send_due(
        services.factory,
        account,
        cfg,
        find_sent=None,
        emit=lambda e: None,
        now=lambda: at + timedelta(seconds=1),
    )
    assert [r.message_id for r in smtp.received] == [f"<{built.message_id}>"]


def test_partial_refusal_and_permanent_failure(
    cli, services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    smtp.refuse_recipient("ghost@example.org", 550, "5.1.1 No such user")
    r = cli("send", "--account", "work", "--to", "a@example.org", "ghost@example.org", "b@example.org",
            "--subject", "three", "--body", "hi", "--now")  # fmt: skip
    assert r.code == 0, r.err
    assert "refused: ghost@example.org" in r.out
    assert sorted(smtp.received[0].rcpt_tos) == ["a@example.org", "b@example.org"]
    [item] = _outbox(cli)
    assert item["refused"] == {"ghost@example.org": "550 5.1.1 No such user"}
    smtp.fail_next("data", 554, "5.7.1 Message rejected as spam")
    r = cli(
        "send",
        "--account",
        "work",
        "--to",
        "a@example.org",
        "--subject",
        "spam?",
        "--body",
        "hi",
        "--now",
    )
    assert r.code == 1
    failed = _outbox(cli)[-1]
    assert failed["state"] == "failed"
    assert failed["attempts"] == 1
    assert "554 5.7.1 Message rejected as spam" in str(failed["last_error"])
    assert len(smtp.received) == 1


def test_faults_on_30_percent_of_attempts_still_deliver_each_exactly_once(
    services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    account = services.account("work")
    ident = Identity("alice@example.com")
    ids = []
    for i in range(500):
        b = build(ident, Draft(to=(f"r{i % 7}@example.org",), subject=f"n{i}", text=f"body {i}"))
        services.queue_mail("work", raw=b.raw, message_id=b.message_id, sender=b.sender,
                            recipients=b.recipients, subject=f"n{i}", send_at=datetime.now(UTC))  # fmt: skip
        ids.append(b.message_id)
    smtp.chaos(0.3, seed=42)
    clock = datetime.now(UTC)
    for _ in range(60):
        send_due(
            services.factory,
            account,
            smtp_config(account),
            find_sent=None,
            emit=lambda e: None,
            now=lambda c=clock: c,
        )
        states = Counter(o.state for o in services.outbox())
        if states == Counter({"sent": 500}):
            break
        clock += timedelta(minutes=61)  # past every backoff (at most an hour)
    assert Counter(o.state for o in services.outbox()) == Counter({"sent": 500}), [
        (o.attempts, o.last_error, o.last_reply) for o in services.outbox() if o.state != "sent"
    ]
    counts = Counter(m.strip("<>") for m in smtp.message_ids())
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}


def test_bad_input_queues_nothing(cli, work: Dovecot, tmp_path) -> None:
    for args, words in [
        (("--account", "nope", "--to", "a@example.org", "--body", "x"), "no account named 'nope'"),
        (("--account", "work", "--to", "bob@", "--body", "x"), "not an email address"),
        (
            (
                "--account",
                "work",
                "--to",
                "a@example.org",
                "--attach",
                str(tmp_path / "missing.pdf"),
            ),
            "cannot read attachment missing.pdf",
        ),
        (("--account", "work", "--body", "x"), "no recipients"),
        (
            ("--account", "work", "--to", "a@example.org", "--at", "tomorrowish"),
            "not an ISO 8601 time",
        ),
    ]:
        r = cli("send", *args)
        assert r.code in (1, 2), args
        assert words in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1
    assert _outbox(cli) == []


def test_over_the_servers_size_fails_with_a_clear_error(
    cli, work: Dovecot, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = SmtpServer(auth={"alice": "secret"}, size_limit=25 * 1024 * 1024)
    with big:
        assert cli("account", "add", "small", "--email", "alice@example.com", "--smtp-host", big.host,
                   "--smtp-port", str(big.port), "--smtp-security", "none", "--username", "alice",
                   "--password-env", PASSWORD_ENV).code == 0  # fmt: skip
        f = tmp_path / "big.bin"
        f.write_bytes(b"\0" * 30_000_000)  # 30 MB: 39 MB as base64 in the message
        for when in ("--now", "--at=2030-01-01T09:00:00Z"):
            r = cli("send", "--account", "small", "--to", "a@example.org", "--attach", str(f), when)
            assert r.code == 1
            assert r.err.strip().splitlines() == [
                "tidings: error: the message is 39 MB; 127.0.0.1 accepts at most 25 MB: "
                "nothing was queued"
            ]
        assert big.received == []
        assert _outbox(cli) == []
    # Offline (the server can't be asked): queued all the same; the outbox refuses it
    # in the same words once it reaches the server (test_smtp.py, SIZE before MAIL).
    r = cli("send", "--account", "small", "--to", "a@example.org", "--attach", str(f))
    assert r.code == 0, r.err
    [item] = _outbox(cli)
    assert item["state"] == "scheduled"


def _queue_many(services: Services, n: int, tag: str) -> list[str]:
    ident = Identity("alice@example.com")
    ids = []
    for i in range(n):
        b = build(
            ident, Draft(to=(f"r{i % 7}@example.org",), subject=f"{tag}{i}", text=f"body {i}")
        )
        services.queue_mail("work", raw=b.raw, message_id=b.message_id, sender=b.sender,
                            recipients=b.recipients, subject=f"{tag}{i}", send_at=datetime.now(UTC))  # fmt: skip
        ids.append(b.message_id)
    return ids


def _exactly_once(smtp: SmtpServer, ids: list[str]) -> None:
    counts = Counter(m.strip("<>") for m in smtp.message_ids())
    assert sorted(counts) == sorted(ids)
    assert {mid: n for mid, n in counts.items() if n != 1} == {}


@pytest.mark.slow
def test_kill_9_of_the_worker_while_sending_repeatedly_delivers_each_exactly_once(
    cli, services: Services, home: Path, work: Dovecot, smtp: SmtpServer
) -> None:
    ids = _queue_many(services, 150, "k")
    smtp.data_delay = 0.03  # ~5 s of sending: several kills land in the middle of it
    exe = Path(sys.executable).parent / "tidings"
    env = dict(os.environ, **{PASSWORD_ENV: "secret"})
    rng = random.Random(11)
    delivered_at_kill = []
    for _ in range(5):
        worker = subprocess.Popen([exe, "--home", str(home), "sync", "--watch"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        # Kill it once some more mail has left (a random number of messages later),
        # so that the kill lands while its send agent is in mid-flow.
        target = min(len(ids), len(smtp.received) + rng.randint(3, 25))
        deadline = time.monotonic() + 20
        while len(smtp.received) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        delivered_at_kill.append(len(smtp.received))
    # The kills really fell while mail was leaving, not before or after all of it.
    assert sum(0 < n < len(ids) for n in delivered_at_kill) >= 3, delivered_at_kill
    smtp.data_delay = 0.0
    r = cli("sync")  # waits for an agent still sending, then sends what is left
    assert r.code == 0, r.err
    _exactly_once(smtp, ids)
    assert Counter(o.state for o in services.outbox()) == Counter({"sent": len(ids)})
    # ... and the Sent folder on the server holds exactly one copy of each.
    assert cli("sync").code == 0
    sent = server_state(work)["Sent"]
    assert sorted(_mid(raw) for raw, _ in sent.values()) == sorted(ids)


def _mid(raw: bytes) -> str:
    from email.parser import BytesHeaderParser

    return str(BytesHeaderParser().parsebytes(raw)["Message-ID"]).strip("<>")


def test_messages_in_doubt_after_a_crash_are_looked_up_in_sent(
    cli, services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    from storage import outbox as store

    left, stayed = _queue_many(services, 2, "d")
    raws = {}
    with services.session() as s:  # a crash after both were claimed: both in doubt
        for item in store.due(s, services.account("work").id, now=datetime.now(UTC)):
            store.claim(s, item.id)
            raws[item.message_id] = store.raw_of(s, item.id)
    # The first one did leave (and the server filed it in Sent); the second did not.
    work.deliver(raws[left], folder="Sent", flags="S")
    assert cli("sync").code == 0
    _exactly_once(smtp, [stayed])
    by_mid = {o.message_id: o for o in services.outbox()}
    assert by_mid[left].state == "sent"
    assert by_mid[left].last_reply == "found in Sent after a restart"
    assert by_mid[stayed].state == "sent"


def test_in_doubt_stays_in_doubt_while_sent_cannot_be_searched(
    services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    from storage import outbox as store
    from sync.errors import ServerUnreachable

    _queue_many(services, 1, "u")
    account = services.account("work")
    with services.session() as s:
        [item] = store.due(s, account.id, now=datetime.now(UTC))
        store.claim(s, item.id)

    def unreachable(folder: str, message_ids: list[str]) -> set[str]:
        raise ServerUnreachable("cannot reach 127.0.0.1:1: connection refused")

    summary = send_due(services.factory, account, smtp_config(account), find_sent=unreachable,
                       emit=lambda e: None)  # fmt: skip
    assert summary.in_doubt == 1
    assert smtp.received == []  # not resent blind
    assert [o.state for o in services.outbox()] == ["sending"]


def test_delivered_but_not_filed_before_a_crash_is_filed_once(
    cli, services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    from storage import outbox as store

    [orig] = list(map(json.loads, cli("list", "--json").out.splitlines()))
    built = build(Identity("alice@example.com"), Draft(to=("bob@example.org",), subject="Re: x",
                                                       text="ok"))  # fmt: skip
    item = services.queue_mail("work", raw=built.raw, message_id=built.message_id,
                               sender=built.sender, recipients=built.recipients,
                               subject="Re: x", send_at=datetime.now(UTC),
                               reply_to_message=orig["id"])  # fmt: skip
    with services.session() as s:  # the agent died after the 250, before filing
        store.claim(s, item)
        store.mark_sent(s, item, reply="250 ok", refused={}, now=datetime.now(UTC), to_file=True)
    assert [o.state for o in services.outbox()] == ["sent"]  # as the user sees it
    assert cli("sync").code == 0
    assert cli("sync").code == 0
    assert smtp.received == []  # filed, not sent again
    rows = {m["subject"]: m for m in map(json.loads, cli("list", "--json").out.splitlines())}
    assert rows["Re: x"]["folders"] == ["Sent"]
    assert "answered" in rows[orig["subject"]]["flags"]
    assert [_mid(raw) for raw, _ in server_state(work)["Sent"].values()] == [built.message_id]
    with services.session() as s:
        assert store.unfiled(s, services.account("work").id) == []
