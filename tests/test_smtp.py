"""sync/smtp.py against a real (aiosmtpd) SMTP server with injected faults."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sync.errors import (
    SmtpAuthFailed,
    SmtpError,
    SmtpPermanent,
    SmtpTemporary,
    SyncError,
    TlsError,
)
from sync.smtp import SendResult, SmtpConfig, SmtpSession
from tests.servers.smtp import SmtpServer

SENDER = "me@example.com"


def message(n: int = 1, *, to: str = "you@example.org", body: bytes = b"Hello.\r\n") -> bytes:
    return (
        f"From: Me <{SENDER}>\r\n"
        f"To: <{to}>\r\n"
        f"Subject: test {n}\r\n"
        f"Message-ID: <m{n}@tidings.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
    ).encode() + body


@pytest.fixture
def make_server() -> Iterator[Callable[..., SmtpServer]]:
    servers: list[SmtpServer] = []

    def make(**options: Any) -> SmtpServer:
        server = SmtpServer(**options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., SmtpServer]) -> SmtpServer:
    return make_server()


@pytest.fixture
def connect() -> Iterator[Callable[..., SmtpSession]]:
    """connect(server, **config overrides) -> an open session, closed after the test."""
    sessions: list[SmtpSession] = []

    def make(server: SmtpServer, **overrides: Any) -> SmtpSession:
        session = SmtpSession.open(config(server, **overrides))
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


def config(server: SmtpServer, **overrides: Any) -> SmtpConfig:
    values: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": None,
        "secret": None,
        "timeout": 10.0,
    }
    values.update(overrides)
    return SmtpConfig(**values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------- sending


def test_plain_send_records_exact_bytes_and_envelope(server: SmtpServer, connect) -> None:
    raw = message(body=b"Hello.\r\n.leading dot survives\r\n..two dots too\r\n")
    session = connect(server)
    result = session.send(SENDER, ["you@example.org"], raw)
    assert result == SendResult(
        accepted=("you@example.org",), refused={}, reply="250 2.0.0 Ok: queued as T00001"
    )
    (got,) = server.received
    assert got.data == raw
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ("you@example.org",)
    assert got.message_id == "<m1@tidings.test>"
    assert session.alive


def test_bcc_recipient_gets_it_without_being_in_the_headers(server, connect) -> None:
    raw = message(to="you@example.org")
    connect(server).send(SENDER, ["you@example.org", "hidden@example.net"], raw)
    (got,) = server.received
    assert got.rcpt_tos == ("you@example.org", "hidden@example.net")
    assert got.data == raw
    assert b"hidden" not in got.data


def test_one_connection_carries_several_messages(server, connect) -> None:
    session = connect(server)
    for n in range(1, 4):
        session.send(SENDER, ["you@example.org"], message(n))
    assert server.connections == 1
    assert [r.connection for r in server.received] == [1, 1, 1]
    assert server.message_ids() == [f"<m{n}@tidings.test>" for n in range(1, 4)]


def test_size_is_declared_and_8bit_body_marked(make_server, connect) -> None:
    server = make_server(size_limit=100_000)
    raw = message(body="Grüße\r\n".encode())
    session = connect(server)
    assert session.max_size == 100_000
    session.send(SENDER, ["you@example.org"], raw)
    (got,) = server.received
    assert f"SIZE={len(raw)}" in got.mail_options
    assert "BODY=8BITMIME" in got.mail_options
    assert got.data == raw


def test_bare_lf_becomes_crlf_and_a_final_crlf_is_added(server, connect) -> None:
    raw = b"Subject: lf\nMessage-ID: <lf@t>\n\nline one\nlast line without newline"
    connect(server).send(SENDER, ["you@example.org"], raw)
    assert server.received[0].data == raw.replace(b"\n", b"\r\n") + b"\r\n"


# --------------------------------------------------------------- TLS and login


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_with_the_private_ca(make_server, connect, security: str) -> None:
    server = make_server(tls=security == "ssl", starttls=security == "starttls")
    session = connect(server, security=security, ca_file=server.ca_pem)
    session.send(SENDER, ["you@example.org"], message())
    assert server.message_ids() == ["<m1@tidings.test>"]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_without_the_ca_is_refused(make_server, security: str) -> None:
    server = make_server(tls=security == "ssl", starttls=security == "starttls")
    with pytest.raises(TlsError, match="not trusted"):
        SmtpSession.open(config(server, security=security))
    assert server.received == []


def test_starttls_not_offered_is_refused(server) -> None:
    with pytest.raises(TlsError, match="does not offer STARTTLS"):
        SmtpSession.open(config(server, security="starttls"))


def test_implicit_tls_against_a_plain_server(server) -> None:
    with pytest.raises(TlsError, match="handshake"):
        SmtpSession.open(config(server, security="ssl"))


def test_login_ok(make_server, connect) -> None:
    server = make_server(starttls=True, auth={"alice": "s3cret"})
    session = connect(
        server, security="starttls", ca_file=server.ca_pem, username="alice", secret="s3cret"
    )
    session.send(SENDER, ["you@example.org"], message())
    assert len(server.received) == 1


def test_bad_password(make_server) -> None:
    server = make_server(starttls=True, auth={"alice": "s3cret"})
    cfg = config(
        server, security="starttls", ca_file=server.ca_pem, username="alice", secret="wrong"
    )
    with pytest.raises(SmtpAuthFailed) as info:
        SmtpSession.open(cfg)
    assert info.value.code == 535
    assert str(info.value) == (
        "server 127.0.0.1 refused the login for alice: 535 5.7.8 Authentication credentials invalid"
    )
    assert "wrong" not in str(info.value)


def test_oauth2(make_server, connect) -> None:
    server = make_server(tls=True, auth={"alice": "tok-123"})
    good = {"security": "ssl", "ca_file": server.ca_pem, "username": "alice", "auth": "oauth2"}
    connect(server, secret="tok-123", **good).send(SENDER, ["you@example.org"], message())
    assert len(server.received) == 1
    with pytest.raises(SmtpAuthFailed, match="535"):
        SmtpSession.open(config(server, secret="expired", **good))


def test_no_login_when_the_server_wants_one(make_server, connect) -> None:
    server = make_server(auth={"alice": "s3cret"})
    session = connect(server)
    with pytest.raises(SmtpPermanent, match=r"530 5\.7\.0 Authentication required"):
        session.send(SENDER, ["you@example.org"], message())
    assert session.alive


def test_login_asked_for_but_not_offered(server) -> None:
    with pytest.raises(SmtpAuthFailed, match="the server offers no login"):
        SmtpSession.open(config(server, username="alice", secret="s3cret"))


def test_not_an_smtp_server() -> None:
    """The wrong port: an IMAP server greets instead."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def greet() -> None:
            conn, _ = listener.accept()
            with conn, contextlib.suppress(OSError):
                conn.sendall(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n")
                conn.recv(1024)

        thread = threading.Thread(target=greet)
        thread.start()
        try:
            port = listener.getsockname()[1]
            with pytest.raises(SmtpPermanent, match="does not speak SMTP"):
                SmtpSession.open(SmtpConfig("127.0.0.1", port, "none", None, None, timeout=10))
        finally:
            thread.join()


def test_config_repr_hides_the_secret(server) -> None:
    cfg = config(server, username="alice", secret="hunter2")
    assert "hunter2" not in repr(cfg)


# --------------------------------------------------------------- refusals


def test_one_refused_recipient_of_three(server, connect) -> None:
    server.refuse_recipient("nobody@example.org")
    session = connect(server)
    rcpts = ["a@example.org", "nobody@example.org", "b@example.org"]
    result = session.send(SENDER, rcpts, message())
    assert result.accepted == ("a@example.org", "b@example.org")
    assert result.refused == {"nobody@example.org": (550, "5.1.1 No such user")}
    assert server.received[0].rcpt_tos == ("a@example.org", "b@example.org")


def test_all_recipients_refused(server, connect) -> None:
    server.refuse_recipient("x@example.org")
    server.refuse_recipient("y@example.org", 450, "4.2.1 Mailbox busy")
    session = connect(server)
    with pytest.raises(SmtpPermanent) as info:
        session.send(SENDER, ["x@example.org", "y@example.org"], message())
    assert info.value.refused == {
        "x@example.org": (550, "5.1.1 No such user"),
        "y@example.org": (450, "4.2.1 Mailbox busy"),
    }
    with pytest.raises(SmtpTemporary, match="cannot take the recipient"):
        session.send(SENDER, ["y@example.org"], message())
    session.send(SENDER, ["ok@example.org"], message(2))
    assert server.message_ids() == ["<m2@tidings.test>"]
    assert server.connections == 1


def test_554_at_data_then_the_session_goes_on(server, connect) -> None:
    server.fail_next("data", 554, "5.7.1 Message rejected as spam")
    session = connect(server)
    with pytest.raises(SmtpPermanent) as info:
        session.send(SENDER, ["you@example.org"], message(1))
    assert str(info.value) == "127.0.0.1 refused the message: 554 5.7.1 Message rejected as spam"
    assert info.value.code == 554
    assert info.value.reply == "554 5.7.1 Message rejected as spam"
    assert session.alive
    session.send(SENDER, ["you@example.org"], message(2))
    assert server.message_ids() == ["<m2@tidings.test>"]
    assert server.connections == 1


def test_sender_refused(server, connect) -> None:
    server.fail_next("mail", 553, "5.7.1 Sender address rejected: not owned by user")
    session = connect(server)
    with pytest.raises(SmtpPermanent, match=re.escape(f"refused the sender {SENDER}: 553 5.7.1")):
        session.send(SENDER, ["you@example.org"], message())
    assert session.alive


def test_421_ends_the_session(server, connect) -> None:
    server.fail_next("mail", 421, "4.7.0 Try again later")
    session = connect(server)
    with pytest.raises(SmtpTemporary) as info:
        session.send(SENDER, ["you@example.org"], message())
    assert str(info.value) == "127.0.0.1 is busy: 421 4.7.0 Try again later"
    assert info.value.code == 421
    assert not session.alive
    with pytest.raises(SmtpTemporary, match="busy"):
        session.send(SENDER, ["you@example.org"], message())
    assert server.received == []


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_451_is_temporary_and_the_session_goes_on(server, connect, stage: str) -> None:
    server.fail_next(stage, 451, "4.3.0 Local error in processing")
    session = connect(server)
    with pytest.raises(SmtpTemporary) as info:
        session.send(SENDER, ["you@example.org"], message(1))
    assert info.value.code == 451
    assert "451 4.3.0 Local error in processing" in str(info.value)
    assert session.alive
    session.send(SENDER, ["you@example.org"], message(2))
    assert server.message_ids() == ["<m2@tidings.test>"]


def test_connection_refused(server) -> None:
    with pytest.raises(SmtpTemporary, match="connection refused"):
        SmtpSession.open(config(server, port=free_port()))


# --------------------------------------------------------------- dropped connections


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data"])
def test_drop_mid_transaction(server, connect, stage: str) -> None:
    server.drop_next(stage)
    session = connect(server)
    with pytest.raises(SmtpTemporary) as info:
        session.send(SENDER, ["you@example.org"], message(1))
    assert "lost during" in str(info.value)
    assert info.value.code is None
    assert not session.alive
    with pytest.raises(SmtpTemporary):
        session.send(SENDER, ["you@example.org"], message(1))
    assert server.received == []
    connect(server).send(SENDER, ["you@example.org"], message(1))
    assert server.message_ids() == ["<m1@tidings.test>"]


def test_drop_at_connect(server) -> None:
    server.drop_next("connect")
    with pytest.raises(SmtpTemporary, match="cannot reach"):
        SmtpSession.open(config(server))


def test_drop_at_connect_over_tls(make_server) -> None:
    server = make_server(tls=True)
    server.drop_next("connect")
    with pytest.raises(SmtpTemporary, match="cannot reach"):
        SmtpSession.open(config(server, security="ssl", ca_file=server.ca_pem))


def test_server_gone_while_idle(make_server) -> None:
    server = make_server()
    session = SmtpSession.open(config(server))
    try:
        assert session.alive
        server.stop()  # closes every connection; the client's loop is not running
        assert not session.alive
        with pytest.raises(SmtpTemporary, match="closed by the server while idle"):
            session.send(SENDER, ["you@example.org"], message())
    finally:
        session.close()


def test_drop_over_starttls(make_server, connect) -> None:
    server = make_server(starttls=True)
    server.drop_next("data")
    session = connect(server, security="starttls", ca_file=server.ca_pem)
    with pytest.raises(SmtpTemporary, match="may or may not have been delivered"):
        session.send(SENDER, ["you@example.org"], message())
    assert not session.alive


# --------------------------------------------------------------- limits and addresses


def test_too_big_is_refused_before_sending(make_server, connect) -> None:
    server = make_server(size_limit=2000)
    session = connect(server)
    assert session.max_size == 2000
    with pytest.raises(SmtpPermanent) as info:
        session.send(SENDER, ["you@example.org"], message(body=b"x" * 78 + b"\r\n") * 40)
    assert str(info.value).startswith("the message is ")
    assert str(info.value).endswith("; 127.0.0.1 accepts at most 2 kB")
    assert info.value.code is None
    assert session.alive
    assert server.received == []


def test_no_size_advertised(server, connect) -> None:
    assert connect(server).max_size is None


def test_international_address_with_smtputf8(server, connect) -> None:
    session = connect(server)
    assert session.smtputf8
    raw = message(to="jörg@exämple.org")
    session.send(SENDER, ["jörg@exämple.org"], raw)
    (got,) = server.received
    assert got.rcpt_tos == ("jörg@exämple.org",)
    assert "SMTPUTF8" in got.mail_options
    assert got.data == raw


def test_international_address_without_smtputf8(make_server, connect) -> None:
    server = make_server(smtputf8=False)
    session = connect(server)
    with pytest.raises(SmtpPermanent, match=r"SMTPUTF8.*jörg@exämple\.org"):
        session.send(SENDER, ["jörg@exämple.org"], message())
    assert session.alive
    assert server.received == []


@pytest.mark.parametrize(
    "bad", ["you@example.org\r\nRCPT TO:<evil@x>", "You <you@example.org>", "a b@c.org", ""]
)
def test_bad_addresses_are_refused_before_mail(server, connect, bad: str) -> None:
    session = connect(server)
    with pytest.raises(SmtpPermanent, match="is not an address"):
        session.send(SENDER, ["ok@example.org", bad], message())
    assert session.alive
    assert server.received == []


def test_errors_are_one_tree() -> None:
    assert issubclass(SmtpAuthFailed, SmtpPermanent)
    assert issubclass(SmtpTemporary, SmtpError)
    assert issubclass(SmtpError, SyncError)


def test_context_manager_and_double_close(server) -> None:
    with SmtpSession.open(config(server)) as session:
        session.send(SENDER, ["you@example.org"], message())
    assert not session.alive
    session.close()
    with pytest.raises(SmtpTemporary, match="closed"):
        session.send(SENDER, ["you@example.org"], message())


# --------------------------------------------------------------- chaos


def send_with_retries(server: SmtpServer, messages: list[bytes], tries: int = 30) -> None:
    """What the outbox does, minus the waiting: retry a message until it is accepted,
    opening a new session whenever the old one died."""
    cfg = config(server)
    session: SmtpSession | None = None
    try:
        for raw in messages:
            for _ in range(tries):
                if session is None or not session.alive:
                    if session is not None:
                        session.close()
                    session = SmtpSession.open(cfg)
                try:
                    session.send(SENDER, ["you@example.org"], raw)
                    break
                except SmtpTemporary:
                    continue
            else:
                pytest.fail(f"not delivered after {tries} tries")
    finally:
        if session is not None:
            session.close()


def test_chaos_every_message_exactly_once(server) -> None:
    server.chaos(0.3, seed=20240601)
    messages = [message(n) for n in range(50)]
    send_with_retries(server, messages)
    counts = Counter(server.message_ids())
    assert counts == Counter({f"<m{n}@tidings.test>": 1 for n in range(50)})
    assert server.connections > 1  # the drops and 421s did happen


# --------------------------------------------------------------- throughput


@pytest.mark.slow
def test_throughput_reused_vs_new_session(server, capsys) -> None:
    n = 1000
    messages = [message(i) for i in range(n)]
    cfg = config(server)

    start = time.perf_counter()
    with SmtpSession.open(cfg) as session:
        for raw in messages:
            session.send(SENDER, ["you@example.org"], raw)
    reused = time.perf_counter() - start

    start = time.perf_counter()
    for raw in messages:
        with SmtpSession.open(cfg) as session:
            session.send(SENDER, ["you@example.org"], raw)
    fresh = time.perf_counter() - start

    assert len(server.received) == 2 * n
    with capsys.disabled():
        print(
            f"\n{n} small messages: one reused session {reused:.2f} s "
            f"({n / reused:.0f}/s); new session each {fresh:.2f} s ({n / fresh:.0f}/s)"
        )
