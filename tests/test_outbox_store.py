"""The outbox state machine in the store (no SMTP here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from storage import outbox
from storage.errors import NotFound

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def add(session: Session, account_id: int, *, at: datetime = NOW, mid: str = "m1@x") -> int:
    return outbox.enqueue(
        session,
        account_id=account_id,
        raw=b"Subject: hi\r\n\r\nbody\r\n",
        message_id=mid,
        sender="me@example.com",
        recipients=["a@x", "b@x"],
        subject="hi",
        send_at=at,
        now=NOW,
    )


def state(session: Session, item_id: int) -> str:
    return next(i.state for i in outbox.list_outbox(session) if i.id == item_id)


def test_undo_window_then_due(session: Session, account_id: int) -> None:
    item = add(session, account_id, at=NOW + outbox.UNDO_WINDOW)
    assert state(session, item) == "scheduled"
    assert outbox.due(session, account_id, now=NOW) == []
    assert outbox.promote(session, now=NOW + timedelta(seconds=11)) == 1
    [due] = outbox.due(session, account_id, now=NOW + timedelta(seconds=11))
    assert (due.id, due.recipients, due.message_id) == (item, ("a@x", "b@x"), "m1@x")


def test_cancel_inside_the_window_and_not_after(session: Session, account_id: int) -> None:
    item = add(session, account_id, at=NOW + outbox.UNDO_WINDOW)
    outbox.cancel(session, item)
    assert state(session, item) == "cancelled"
    sent = add(session, account_id, mid="m2@x")
    outbox.claim(session, sent)
    with pytest.raises(outbox.OutboxError, match="being sent"):
        outbox.cancel(session, sent)
    outbox.mark_sent(session, sent, reply="250 ok", refused={}, now=NOW)
    with pytest.raises(outbox.OutboxError, match="sent already"):
        outbox.cancel(session, sent)
    with pytest.raises(NotFound):
        outbox.cancel(session, 999)


def test_temporary_failures_back_off_then_give_up(session: Session, account_id: int) -> None:
    item = add(session, account_id)
    delays = []
    for _ in range(outbox.MAX_ATTEMPTS - 1):
        outbox.claim(session, item)
        assert not outbox.mark_temporary(session, item, "421 busy", now=NOW)
        [info] = [i for i in outbox.list_outbox(session) if i.id == item]
        assert info.state == "queued"
        assert info.next_attempt is not None
        delays.append(info.next_attempt - NOW)
    assert delays[0] <= outbox.BACKOFF_START
    assert delays[-1] <= outbox.BACKOFF_MAX
    assert delays[3] > delays[0]
    outbox.claim(session, item)
    assert outbox.mark_temporary(session, item, "421 busy", now=NOW)
    assert state(session, item) == "failed"
    assert outbox.retry(session, item, now=NOW) == 1
    assert state(session, item) == "queued"


def test_permanent_failure_keeps_the_words_and_partial_refusals(
    session: Session, account_id: int
) -> None:
    bad = add(session, account_id)
    outbox.claim(session, bad)
    outbox.mark_permanent(session, bad, "server refused the message: 554 5.7.1 spam")
    [info] = [i for i in outbox.list_outbox(session) if i.id == bad]
    assert info.state == "failed"
    assert "554 5.7.1 spam" in (info.last_error or "")
    ok = add(session, account_id, mid="m3@x")
    outbox.claim(session, ok)
    outbox.mark_sent(
        session, ok, reply="250 queued", refused={"b@x": "550 5.1.1 No such user"}, now=NOW
    )
    [info] = [i for i in outbox.list_outbox(session) if i.id == ok]
    assert info.refused == {"b@x": "550 5.1.1 No such user"}
    assert info.state == "sent"


def test_in_doubt_after_a_crash(session: Session, account_id: int) -> None:
    item = add(session, account_id)
    outbox.claim(session, item)  # ... and the process died here
    [doubt] = outbox.in_doubt(session, account_id)
    assert doubt.id == item
    outbox.requeue(session, item, now=NOW)
    assert state(session, item) == "queued"


def test_a_message_cancelled_after_it_was_listed_as_due_is_not_claimed(
    session: Session, account_id: int
) -> None:
    item = add(session, account_id)
    [due] = outbox.due(session, account_id, now=NOW)
    outbox.cancel(session, due.id)  # the user was quicker than the sender
    session.flush()
    assert outbox.claim(session, item) is False
    assert state(session, item) == "cancelled"
    other = add(session, account_id, mid="m2@x")
    assert outbox.claim(session, other) is True
    assert state(session, other) == "sending"
