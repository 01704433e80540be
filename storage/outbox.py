"""The outbox: outgoing mail as a persisted state machine.

    scheduled ──(send_at reached)──> queued ──(claimed)──> sending ──> delivered ──> sent
        │                              ^  │                   │       (filed)
        └──────── cancelled <──────────┘  └── failed <────────┘ (5xx, or too many tries)
                                          (4xx / dropped: back to queued, later)

Every transition is written *before* the step it announces: a message is
``sending`` on disk before the first SMTP byte goes out and ``delivered`` the moment
the server's 250 is read. A message found in ``sending`` after a crash may or may
not have left; the sender (``sync/outbox.py``) looks for its Message-ID in the Sent
folder before sending it again.

``delivered`` means the server has it and what follows locally -- the copy in Sent
and the \\Answered flag on the message it replies to -- is still to be recorded
("filed"). Filing runs in batches (storing one message at a time in Sent cost more
than sending it), in the same transactions as the sending, and a crash leaves
``delivered`` rows that the next round files first: nothing is filed twice or lost.
Users see ``delivered`` as ``sent``: from where they stand, it is.

Temporary failures back off exponentially with jitter, bounded by a number of tries
and an age; permanent ones keep the server's words for the user.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, defer

from storage.errors import NotFound, StorageError
from storage.models import Account, Outbox, table_of

MAX_ATTEMPTS = 12
MAX_AGE = timedelta(days=3)
BACKOFF_START = timedelta(seconds=15)
BACKOFF_MAX = timedelta(hours=1)
UNDO_WINDOW = timedelta(seconds=10)

# The statements run for every message sent are built once, as Core statements with
# bound parameters (compiled once, cached): building and coercing an ORM-enabled
# update per message cost more than SQLite spends running it.
_t = table_of(Outbox)
_CLAIM = (
    update(_t)
    .where(_t.c.id == bindparam("item"), _t.c.state == "queued")
    .values(state="sending", attempts=_t.c.attempts + 1)
)
_RAW = select(_t.c.raw).where(_t.c.id == bindparam("item"))
_SENT = (
    update(_t)
    .where(_t.c.id == bindparam("item"))
    .values(
        state=bindparam("state"),
        sent_at=bindparam("when"),
        last_reply=bindparam("reply"),
        refused=bindparam("refused_json"),
        last_error=bindparam("error"),
    )
)


class OutboxError(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class OutboxInfo:
    id: int
    account: str
    state: str
    attempts: int
    next_attempt: datetime | None
    send_at: datetime | None
    last_error: str | None
    last_reply: str | None
    message_id: str
    to: tuple[str, ...]
    subject: str
    refused: dict[str, str]
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: int
    account_id: int
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    reply_to_message: int | None
    attempts: int


def enqueue(
    session: Session,
    *,
    account_id: int,
    raw: bytes,
    message_id: str,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    send_at: datetime,
    now: datetime,
    reply_to_message: int | None = None,
) -> int:
    if not recipients:
        raise OutboxError("no recipients")
    item = Outbox(
        account_id=account_id,
        message_id_header=message_id,
        raw=raw,
        sender=sender,
        recipients=json.dumps(list(recipients)),
        subject=subject,
        state="scheduled" if send_at > now else "queued",
        send_at=send_at,
        next_attempt=send_at,
        reply_to_message=reply_to_message,
        created_at=now,
    )
    session.add(item)
    session.flush()
    return item.id


def _get(session: Session, item_id: int) -> Outbox:
    item = session.get(Outbox, item_id)
    if item is None:
        raise NotFound(f"no outbox message with id {item_id}")
    return item


def cancel(session: Session, item_id: int) -> None:
    item = _get(session, item_id)
    if item.state in ("scheduled", "queued", "failed"):
        item.state = "cancelled"
        return
    if item.state == "sending":
        raise OutboxError(f"message {item_id} is being sent right now")
    raise OutboxError(f"message {item_id} is {item.state} already")


def retry(session: Session, item_id: int | None, *, now: datetime) -> int:
    """Make waiting or failed items due now (all of them when ``item_id`` is None)."""
    q = update(Outbox).where(Outbox.state.in_(["scheduled", "queued", "failed"]))
    if item_id is not None:
        item = _get(session, item_id)
        if item.state not in ("scheduled", "queued", "failed"):
            raise OutboxError(f"message {item_id} is {item.state}: nothing to retry")
        q = q.where(Outbox.id == item_id)
    res = session.execute(
        q.values(state="queued", next_attempt=now, send_at=now, attempts=0, last_error=None)
    )
    return int(getattr(res, "rowcount", 0) or 0)


def promote(session: Session, *, now: datetime) -> int:
    """Scheduled messages whose time has come become queued."""
    res = session.execute(
        update(Outbox)
        .where(Outbox.state == "scheduled", Outbox.send_at <= now)
        .values(state="queued")
    )
    return int(getattr(res, "rowcount", 0) or 0)


def _outgoing(item: Outbox) -> Outgoing:
    return Outgoing(
        item.id,
        item.account_id,
        item.message_id_header,
        item.sender,
        tuple(json.loads(item.recipients)),
        item.reply_to_message,
        item.attempts,
    )


def raw_of(session: Session, item_id: int) -> bytes:
    """The message bytes, loaded one message at a time (never the whole queue)."""
    raw = session.connection().execute(_RAW, {"item": item_id}).scalar()
    if raw is None:
        raise NotFound(f"no outbox message with id {item_id}")
    return bytes(raw)


def due(session: Session, account_id: int, *, now: datetime) -> list[Outgoing]:
    rows = session.scalars(
        select(Outbox)
        .options(defer(Outbox.raw))
        .where(
            Outbox.account_id == account_id,
            Outbox.state == "queued",
            (Outbox.next_attempt.is_(None)) | (Outbox.next_attempt <= now),
        )
        .order_by(Outbox.id)
    )
    return [_outgoing(r) for r in rows]


def in_doubt(session: Session, account_id: int) -> list[Outgoing]:
    """Messages left in ``sending`` by a crash: they may have left already."""
    rows = session.scalars(
        select(Outbox)
        .options(defer(Outbox.raw))
        .where(Outbox.account_id == account_id, Outbox.state == "sending")
    )
    return [_outgoing(r) for r in rows]


def claim(session: Session, item_id: int) -> bool:
    """``sending`` from now on; False when it is no longer queued (cancelled since)."""
    res = session.connection().execute(_CLAIM, {"item": item_id})
    return bool(getattr(res, "rowcount", 0))


def mark_sent(
    session: Session,
    item_id: int,
    *,
    reply: str,
    refused: dict[str, str],
    now: datetime,
    to_file: bool = False,
) -> None:
    """The server took it. ``to_file``: its Sent copy or \\Answered flag is still to be
    recorded (``delivered`` until :func:`mark_filed`)."""
    note = "; ".join(f"{rcpt}: {why}" for rcpt, why in refused.items())
    session.connection().execute(
        _SENT,
        {
            "item": item_id,
            "state": "delivered" if to_file else "sent",
            "when": now,
            "reply": reply[:500],
            "refused_json": json.dumps(refused, ensure_ascii=False),
            "error": f"refused: {note}"[:500] if refused else None,
        },
    )


def unfiled(session: Session, account_id: int) -> list[Outgoing]:
    """Delivered messages whose Sent copy and \\Answered flag are still to be recorded."""
    rows = session.scalars(
        select(Outbox)
        .options(defer(Outbox.raw))
        .where(Outbox.account_id == account_id, Outbox.state == "delivered")
        .order_by(Outbox.id)
    )
    return [_outgoing(r) for r in rows]


def mark_filed(session: Session, item_ids: Sequence[int]) -> None:
    session.execute(
        update(Outbox)
        .where(Outbox.id.in_(list(item_ids)), Outbox.state == "delivered")
        .values(state="sent")
    )


def mark_temporary(session: Session, item_id: int, error: str, *, now: datetime) -> bool:
    """A 4xx or a dropped connection: try again later. True when it gave up."""
    item = _get(session, item_id)
    item.last_error = error[:500]
    if item.attempts >= MAX_ATTEMPTS or now - item.created_at > MAX_AGE:
        item.state = "failed"
        return True
    delay = min(BACKOFF_MAX, BACKOFF_START * (2 ** max(0, item.attempts - 1)))
    item.state = "queued"
    item.next_attempt = now + delay * random.uniform(0.5, 1.0)
    return False


def postpone(
    session: Session, item_ids: Sequence[int], error: str, *, now: datetime, delay: timedelta
) -> None:
    """The server could not be reached at all: wait, without counting a try against
    the messages themselves (MAX_AGE still bounds how long they wait)."""
    session.execute(
        update(Outbox)
        .where(Outbox.id.in_(list(item_ids)), Outbox.state == "queued")
        .values(next_attempt=now + delay, last_error=error[:500])
    )


def mark_permanent(session: Session, item_id: int, error: str, reply: str | None = None) -> None:
    session.execute(
        update(Outbox)
        .where(Outbox.id == item_id)
        .values(state="failed", last_error=error[:500], last_reply=(reply or error)[:500])
    )


def requeue(session: Session, item_id: int, *, now: datetime) -> None:
    """A message in doubt was not found in Sent: it did not leave; send it again."""
    session.execute(
        update(Outbox).where(Outbox.id == item_id).values(state="queued", next_attempt=now)
    )


def has_work(session: Session, account_id: int, *, now: datetime) -> bool:
    """Anything to send (or to settle or file after a crash) for the account now?"""
    row = session.scalar(
        select(Outbox.id)
        .where(
            Outbox.account_id == account_id,
            (Outbox.state.in_(["sending", "delivered"]))
            | (
                (Outbox.state == "queued")
                & ((Outbox.next_attempt.is_(None)) | (Outbox.next_attempt <= now))
            )
            | ((Outbox.state == "scheduled") & (Outbox.send_at <= now)),
        )
        .limit(1)
    )
    return row is not None


def next_due(session: Session, account_id: int) -> datetime | None:
    """When the next waiting message of the account is due."""
    times = [
        session.scalar(
            select(func.min(Outbox.next_attempt)).where(
                Outbox.account_id == account_id, Outbox.state == "queued"
            )
        ),
        session.scalar(
            select(func.min(Outbox.send_at)).where(
                Outbox.account_id == account_id, Outbox.state == "scheduled"
            )
        ),
    ]
    present = [t for t in times if t is not None]
    return min(present) if present else None


def list_outbox(session: Session, *, include_sent: bool = True) -> list[OutboxInfo]:
    q = (
        select(Outbox, Account.name)
        .options(defer(Outbox.raw))
        .join(Account, Account.id == Outbox.account_id)
    )
    if not include_sent:
        q = q.where(Outbox.state.not_in(["sent", "delivered", "cancelled"]))
    out = []
    for item, account in session.execute(q.order_by(Outbox.id)):
        out.append(
            OutboxInfo(
                id=item.id,
                account=account,
                state="sent" if item.state == "delivered" else item.state,
                attempts=item.attempts,
                next_attempt=item.next_attempt if item.state in ("queued", "scheduled") else None,
                send_at=item.send_at,
                last_error=item.last_error,
                last_reply=item.last_reply,
                message_id=item.message_id_header,
                to=tuple(json.loads(item.recipients)),
                subject=item.subject,
                refused=json.loads(item.refused or "{}"),
                sent_at=item.sent_at,
            )
        )
    return out
