"""Read side of the store: folder counts, message lists, one message, raw bytes.

Lists are keyset-paged ("rows older than (date, id)"), never OFFSET, so that page
1,000 of a million-message folder costs what page 1 costs: the (folder, date, id)
index is walked from the key. Locations, flags and folder names for a page are
fetched in one more query for the page's ids, not one per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from storage.bodies import unpack
from storage.dto import AddressInfo, AttachmentInfo, FolderInfo, MessageDetail, MessageSummary
from storage.errors import NotFound
from storage.models import Account, Attachment, Folder, Message, MessageBody, MessageUid

HIDDEN_ROLES = ("junk", "trash")
_ROLE_ORDER = {"inbox": 0, "drafts": 1, "sent": 2, "archive": 3, "all": 4, "flagged": 5}
_ROLE_LAST = {"junk": 8, "trash": 9}


@dataclass(frozen=True, slots=True)
class ListQuery:
    account_ids: Sequence[int] | None = None  # None: all accounts
    folder_ids: Sequence[int] | None = None  # None: all folders
    unread_only: bool = False
    limit: int = 50
    before: tuple[datetime, int] | None = None  # keyset: (date, id) of the last row seen


def folder_infos(session: Session, account_id: int | None = None) -> list[FolderInfo]:
    counts = (
        select(
            MessageUid.folder_id,
            func.count().label("total"),
            func.sum(case((MessageUid.seen, 0), else_=1)).label("unread"),
        )
        .where(MessageUid.deleted.is_(False))
        .group_by(MessageUid.folder_id)
        .subquery()
    )
    query = (
        select(
            Folder,
            Account.name,
            func.coalesce(counts.c.total, 0),
            func.coalesce(counts.c.unread, 0),
        )
        .join(Account, Account.id == Folder.account_id)
        .outerjoin(counts, counts.c.folder_id == Folder.id)
    )
    if account_id is not None:
        query = query.where(Folder.account_id == account_id)
    out = [
        FolderInfo(
            id=f.id,
            account_id=f.account_id,
            account=account,
            name=f.name,
            role=f.role,
            total=int(total),
            unread=int(unread),
            sync_state=f.sync_state,
            last_error=f.last_error,
            next_retry=f.next_retry,
        )
        for f, account, total, unread in session.execute(query)
    ]

    def order(f: FolderInfo) -> tuple[str, int, str]:
        rank = _ROLE_ORDER.get(f.role or "", _ROLE_LAST.get(f.role or "", 7))
        if f.role is None:
            rank = 6
        return (f.account, rank, f.name.casefold())

    return sorted(out, key=order)


def list_messages(session: Session, q: ListQuery) -> list[MessageSummary]:
    """Newest first; by location when folders are given, by message otherwise.

    Without folders, messages that live only in Junk or Trash are left out.
    """
    m = Message
    if q.folder_ids is not None:
        mu = MessageUid
        query = (
            select(m.id, mu.date, mu.id.label("key"))
            .join(mu, mu.message_id == m.id)
            .where(mu.folder_id.in_(list(q.folder_ids)))
            .order_by(mu.date.desc(), mu.id.desc())
        )
        if q.unread_only:
            query = query.where(mu.seen.is_(False))
        if q.before is not None:
            d, k = q.before
            query = query.where(or_(mu.date < d, and_(mu.date == d, mu.id < k)))
    else:
        # All mail, as Gmail means it: not what lives only in Junk or Trash.
        kept = (
            exists()
            .where(MessageUid.message_id == m.id)
            .where(MessageUid.folder_id == Folder.id)
            .where(or_(Folder.role.is_(None), Folder.role.not_in(HIDDEN_ROLES)))
        )
        query = (
            select(m.id, m.date, m.id.label("key")).where(kept).order_by(m.date.desc(), m.id.desc())
        )
        if q.unread_only:
            query = query.where(
                ~exists().where(MessageUid.message_id == m.id, MessageUid.seen.is_(True))
            )
        if q.before is not None:
            d, k = q.before
            query = query.where(or_(m.date < d, and_(m.date == d, m.id < k)))
    if q.account_ids is not None:
        query = query.where(m.account_id.in_(list(q.account_ids)))
    rows = session.execute(query.limit(q.limit)).all()
    ids = []
    for r in rows:
        if r.id not in ids:  # the same message twice in the chosen folders
            ids.append(r.id)
    return summaries(session, ids)


def summaries(session: Session, ids: Sequence[int]) -> list[MessageSummary]:
    """Summaries for ``ids``, in the order given (ids that do not exist are skipped)."""
    if not ids:
        return []
    msgs = {
        row.Message.id: row
        for row in session.execute(
            select(Message, Account.name)
            .join(Account, Account.id == Message.account_id)
            .where(Message.id.in_(list(ids)))
        )
    }
    locs: dict[int, list[tuple[str, MessageUid]]] = {}
    for loc, fname in session.execute(
        select(MessageUid, Folder.name)
        .join(Folder, Folder.id == MessageUid.folder_id)
        .where(MessageUid.message_id.in_(list(ids)))
        .order_by(Folder.name)
    ):
        locs.setdefault(loc.message_id, []).append((fname, loc))
    out = []
    for mid in ids:
        row = msgs.get(mid)
        if row is None:
            continue
        msg: Message = row.Message
        here = locs.get(mid, [])
        out.append(
            MessageSummary(
                id=msg.id,
                account=row.name,
                date=msg.date,
                sender=AddressInfo(msg.from_name, msg.from_email),
                to=_addrs(msg.to_addrs),
                subject=msg.subject,
                folders=tuple(dict.fromkeys(name for name, _ in here)),
                flags=_flags([loc for _, loc in here]),
                has_attachments=msg.has_attachments,
                snippet=msg.snippet,
                thread_id=msg.thread_id,
                size=msg.size,
                malformed=msg.malformed,
            )
        )
    return out


def _flags(locs: Sequence[MessageUid]) -> tuple[str, ...]:
    flags = [
        name
        for name in ("seen", "flagged", "answered", "draft", "deleted")
        if any(getattr(loc, name) for loc in locs)
    ]
    keywords = dict.fromkeys(k.lower() for loc in locs for k in loc.keywords.split() if k)
    return tuple(flags) + tuple(k for k in keywords if k not in flags)


def _addrs(data: str) -> tuple[AddressInfo, ...]:
    try:
        pairs = json.loads(data)
        return tuple(AddressInfo(str(n), str(e)) for n, e in pairs)
    except (ValueError, TypeError):
        return ()


def message_detail(session: Session, message_id: int) -> MessageDetail:
    found = summaries(session, [message_id])
    if not found:
        raise NotFound(f"no message with id {message_id}")
    msg = session.get_one(Message, message_id)
    atts = session.scalars(
        select(Attachment).where(Attachment.message_id == message_id).order_by(Attachment.id)
    )
    return MessageDetail(
        summary=found[0],
        cc=_addrs(msg.cc_addrs),
        reply_to=_addrs(msg.reply_to),
        message_id=msg.message_id,
        in_reply_to=tuple((msg.in_reply_to or "").split()),
        references=tuple((msg.references or "").split()),
        list_id=msg.list_id,
        list_unsubscribe=msg.list_unsubscribe,
        list_unsubscribe_post=msg.list_unsubscribe_post,
        content_type=msg.content_type,
        attachments=tuple(
            AttachmentInfo(a.part_id, a.filename, a.content_type, a.size, a.content_id, a.inline)
            for a in atts
        ),
        defects=tuple(d for d in (msg.defects or "").split("; ") if d),
    )


def raw_message(session: Session, message_id: int) -> bytes:
    body = session.get(MessageBody, message_id)
    if body is None:
        raise NotFound(f"no message with id {message_id}")
    return unpack(body.compression, body.raw)


def count_messages(session: Session, account_id: int | None = None) -> int:
    query = select(func.count()).select_from(Message)
    if account_id is not None:
        query = query.where(Message.account_id == account_id)
    return int(session.scalar(query) or 0)
