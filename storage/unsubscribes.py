"""The store side of leaving mailing lists: what was done, for which message and list.

``app/unsubscribe.py`` decides how to unsubscribe and does it (the RFC 8058 POST, the
``mailto:`` message); this module keeps the outcome in table ``unsubscribes`` and
answers "did the user already leave this list?", so that no query and no ORM object
leaves ``storage``.

Decisions:

* Only what happened is recorded (:func:`record`, in the caller's transaction, which
  also holds the outbox row of a ``mailto:`` unsubscribe); a failure is shown to the
  user and changes nothing here.
* :func:`last_result` looks for the message itself *or* its list (List-Id), so every
  message of a list the user left can say "Unsubscribed on ...", also messages that
  arrived afterwards. The newest record wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.models import UnsubscribeRecord

__all__ = ["UnsubscribeResult", "last_result", "record"]


@dataclass(frozen=True, slots=True)
class UnsubscribeResult:
    method: str  # 'one-click' | 'mailto' | 'browser'
    target: str
    outcome: str  # 'done' | 'queued' | 'link'
    detail: str | None  # 'HTTP 200 OK', 'outbox 12'
    outbox_id: int | None
    at: datetime
    message_id: int | None = None
    list_id: str | None = None


def _result(row: UnsubscribeRecord) -> UnsubscribeResult:
    return UnsubscribeResult(
        method=row.method,
        target=row.target,
        outcome=row.outcome,
        detail=row.detail,
        outbox_id=row.outbox_id,
        at=row.created_at,
        message_id=row.message_id,
        list_id=row.list_id,
    )


def record(
    session: Session,
    *,
    account_id: int,
    message_id: int,
    list_id: str | None,
    method: str,
    target: str,
    outcome: str,
    detail: str | None,
    outbox_id: int | None,
    now: datetime,
) -> UnsubscribeResult:
    """Record an unsubscribe that was done (or queued, or handed to the browser)."""
    row = UnsubscribeRecord(
        account_id=account_id,
        message_id=message_id,
        list_id=list_id,
        method=method,
        target=target,
        outcome=outcome,
        detail=detail,
        outbox_id=outbox_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _result(row)


def last_result(
    session: Session, *, account_id: int, message_id: int, list_id: str | None
) -> UnsubscribeResult | None:
    """The latest unsubscribe from this message, or from its list (List-Id)."""
    which = [UnsubscribeRecord.message_id == message_id]
    if list_id:
        which.append(UnsubscribeRecord.list_id == list_id)
    row = session.scalars(
        select(UnsubscribeRecord)
        .where(UnsubscribeRecord.account_id == account_id, or_(*which))
        .order_by(UnsubscribeRecord.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _result(row)
