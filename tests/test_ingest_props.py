"""Property tests: garbled, truncated, random bytes — ingest always stores a row."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from storage import queries
from storage.ingest import Incoming, extract_pending, ingest_batch
from tests.mailmaker import mail

BASES = [
    mail("p1@x", "=?utf-8?q?caf=C3=A9?=", refs="<a@x> <b@x>", cc="=?koi8-r?b?8NLJ18XU?= <c@x>"),
    (
        b"From: a@x\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: text/html; charset=x-unknown\r\n\r\n<p>Hi &amp; <b>bye</b></p>\r\n"
        b"--zz\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
        b"--zz\r\nContent-Type: image/png; name*=UTF-8''%C3%BC.png\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--zz--\r\n"
    ),
    b"From x Mon Jan  1 00:00:00 2001\nSubject: =?iso-2022-jp?b?GyRCJEckOSEjGyhC?=\n\n\x1b$B$3\n",
]


@st.composite
def garbled(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i : i + draw(st.integers(1, 40))]
        elif op == "insert":
            raw[i:i] = draw(st.binary(max_size=30))
        else:
            raw[i:i] = raw[i : i + draw(st.integers(1, 60))]
    return bytes(raw)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=st.one_of(garbled(), st.binary(max_size=600)))
def test_ingest_never_raises_and_always_stores(
    session: Session, account_id: int, folder_id: int, raw: bytes
) -> None:
    savepoint = session.begin_nested()
    [r] = ingest_batch(session, account_id, folder_id, [Incoming(raw)])
    assert queries.raw_message(session, r.message_id) == raw
    [summary] = queries.summaries(session, [r.message_id])
    assert isinstance(summary.subject, str)
    extracted = extract_pending(session, limit=5)
    assert all(isinstance(e.content.text, str) for e in extracted)
    savepoint.rollback()
