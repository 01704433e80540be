"""The store side of calendar invitations: answers given, and later invitations.

``app/invites.py`` reads and writes iCalendar and decides what an answer or a newer
invitation means; this module only keeps what it needs from the database, so that no
query and no ORM object leaves ``storage`` (the rule for every module outside it).

Decisions:

* An answer (table ``rsvps``) is written by :func:`record` in the caller's
  transaction, the one that puts the iMIP REPLY in the outbox, so the two exist
  together or not at all. It is keyed by the event (UID, RECURRENCE-ID) as well as by
  the message, because every update of an invitation arrives as a new message.
* :func:`latest` is the newest answer to one event occurrence whose mail was not
  cancelled in the undo window (such an answer never reached the organiser). Its
  ``outbox_state`` is the outbox row's state as users see it (``delivered`` reads as
  ``sent``, as in ``storage.outbox``), or None when the row is gone.
* :func:`later_messages_with_parts` narrows the search for a newer version of an
  invitation to ids, newest first: messages of the account with a part of the given
  content types, dated no earlier than the message less ``clock_slack`` (or undated),
  at most ``limit`` of them. Reading and comparing the calendars is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.models import Attachment, Message, Outbox, RsvpRecord

__all__ = ["Rsvp", "later_messages_with_parts", "latest", "record"]


@dataclass(frozen=True, slots=True)
class Rsvp:
    """An answer the user gave (recorded locally, sent through the outbox)."""

    partstat: str  # ACCEPTED | TENTATIVE | DECLINED
    comment: str | None
    sequence: int  # the invitation's SEQUENCE that was answered
    answered_at: datetime
    message_id: int | None  # the invitation message it was given from
    outbox_id: int | None
    outbox_state: str | None  # scheduled, queued, sending, sent, failed (None: row gone)


def record(
    session: Session,
    *,
    account_id: int,
    message_id: int,
    uid: str,
    recurrence_id: str | None,
    sequence: int,
    partstat: str,
    comment: str | None,
    outbox_id: int,
    now: datetime,
) -> None:
    """Remember an answer (in the caller's transaction, next to its outbox row)."""
    session.add(
        RsvpRecord(
            account_id=account_id,
            message_id=message_id,
            uid=uid,
            recurrence_id=recurrence_id,
            sequence=sequence,
            partstat=partstat,
            comment=comment or None,
            outbox_id=outbox_id,
            created_at=now,
        )
    )
    session.flush()


def latest(session: Session, account_id: int, uid: str, recurrence_id: str | None) -> Rsvp | None:
    """The user's latest answer to this UID and occurrence, unless its mail was cancelled."""
    rid = (
        RsvpRecord.recurrence_id.is_(None)
        if recurrence_id is None
        else RsvpRecord.recurrence_id == recurrence_id
    )
    rows = session.execute(
        select(RsvpRecord, Outbox.state)
        .outerjoin(Outbox, Outbox.id == RsvpRecord.outbox_id)
        .where(RsvpRecord.account_id == account_id, RsvpRecord.uid == uid, rid)
        .order_by(RsvpRecord.id.desc())
    ).all()
    for row, state in rows:
        if state == "cancelled":
            continue
        return Rsvp(
            partstat=row.partstat,
            comment=row.comment,
            sequence=row.sequence,
            answered_at=row.created_at,
            message_id=row.message_id,
            outbox_id=row.outbox_id,
            # 'delivered' is 'sent' with the Sent copy still to be filed: sent, to the user.
            outbox_state="sent" if state == "delivered" else state,
        )
    return None


def later_messages_with_parts(
    session: Session,
    *,
    account_id: int,
    message_id: int,
    content_types: Sequence[str],
    clock_slack: timedelta,
    limit: int,
) -> list[int]:
    """Other messages of the account with such a part, sent about or after this one."""
    when = session.scalar(select(Message.date).where(Message.id == message_id))
    query = (
        select(Message.id)
        .join(Attachment, Attachment.message_id == Message.id)
        .where(
            Message.account_id == account_id,
            Message.id != message_id,
            Attachment.content_type.in_(list(content_types)),
        )
    )
    if when is not None:
        query = query.where(or_(Message.date >= when - clock_slack, Message.date.is_(None)))
    return list(
        session.scalars(
            query.group_by(Message.id).order_by(Message.date.desc(), Message.id.desc()).limit(limit)
        )
    )
