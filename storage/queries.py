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
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from storage.bodies import unpack
from storage.dto import (
    AddressInfo,
    AttachmentInfo,
    ContactInfo,
    FolderInfo,
    ListRow,
    MessageDetail,
    MessageSummary,
)
from storage.errors import NotFound
from storage.models import (
    Account,
    Attachment,
    Contact,
    Folder,
    Message,
    MessageBody,
    MessageUid,
)

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


# --------------------------------------------------------------------------- desktop list
# The desktop message list pages through a set of folders newest first, keyset-paged
# on (message_uids.date, message_uids.id), the (folder, date, id) index order. In
# conversation mode a row is the newest location of its thread within the folders: a
# location is a thread's head when no other location of the same thread in the same
# folders sorts above it (one NOT EXISTS probe through messages.thread_id per row).


@dataclass(frozen=True, slots=True)
class PageQuery:
    folder_ids: Sequence[int]
    threads: bool = False
    limit: int = 200
    before: tuple[datetime | None, int] | None = None  # keyset: (date, key) of the last row


def _keyset(date_col: Any, key_col: Any, before: tuple[datetime | None, int]) -> Any:
    d, k = before
    if d is None:
        return and_(date_col.is_(None), key_col < k)
    return or_(date_col < d, date_col.is_(None), and_(date_col == d, key_col < k))


def _not_superseded(folder_ids: list[int]) -> Any:
    """No other live location of the same thread in ``folder_ids`` sorts above this one."""
    m2 = aliased(Message)
    mu2 = aliased(MessageUid)
    newer = (
        exists()
        .where(m2.thread_id == Message.thread_id)
        .where(mu2.message_id == m2.id)
        .where(mu2.folder_id.in_(folder_ids))
        .where(mu2.deleted.is_(False))
        .where(
            or_(
                mu2.date > MessageUid.date,
                and_(mu2.date == MessageUid.date, mu2.id > MessageUid.id),
            )
        )
    )
    return or_(Message.thread_id.is_(None), ~newer)


def list_page(session: Session, q: PageQuery) -> list[ListRow]:
    """One page of the desktop list, newest first, after ``q.before``.

    Message mode is plain SQL on the driver's connection (see ``_list_summaries``):
    the desktop reads a page while painting, and SQLAlchemy's statement building was
    most of a page's cost.
    """
    folder_ids = list(q.folder_ids)
    if not folder_ids:
        return []
    if not q.threads:
        # A row value, "(date, id) < (?, ?)", walks the (folder, date, id) index from the
        # key; the equivalent OR of comparisons made SQLite scan from the top (a page
        # deep in a big folder cost 10+ ms instead of 0.03). Rows without a date sort
        # last (SQLite's DESC puts NULL last) and are read after the dated ones.
        db = _driver(session)
        head = (
            "SELECT message_id, date, id FROM message_uids"
            f" WHERE folder_id IN ({','.join('?' * len(folder_ids))}) AND deleted = 0"
        )
        order = " ORDER BY date DESC, id DESC LIMIT ?"
        if q.before is None:
            raw = db.execute(head + order, [*folder_ids, q.limit]).fetchall()
        elif q.before[0] is None:
            raw = db.execute(
                head + " AND date IS NULL AND id < ?" + order,
                [*folder_ids, q.before[1], q.limit],
            ).fetchall()
        else:
            ts = int(q.before[0].timestamp())
            raw = db.execute(
                head + " AND (date, id) < (?, ?)" + order,
                [*folder_ids, ts, q.before[1], q.limit],
            ).fetchall()
            if len(raw) < q.limit:
                raw += db.execute(
                    head + " AND date IS NULL" + order, [*folder_ids, q.limit - len(raw)]
                ).fetchall()
        return _rows(session, [(r[0], _utc(r[1]), r[2]) for r in raw], folder_ids, False)
    query = (
        select(MessageUid.message_id, MessageUid.date, MessageUid.id)
        .where(MessageUid.folder_id.in_(folder_ids), MessageUid.deleted.is_(False))
        .order_by(MessageUid.date.desc(), MessageUid.id.desc())
        .limit(q.limit)
    )
    if q.threads:
        query = query.join(Message, Message.id == MessageUid.message_id).where(
            _not_superseded(folder_ids)
        )
    if q.before is not None:
        query = query.where(_keyset(MessageUid.date, MessageUid.id, q.before))
    keys = [(r[0], r[1], r[2]) for r in session.execute(query)]
    return _rows(session, keys, folder_ids, q.threads)


def list_rows_for(
    session: Session, folder_ids: Sequence[int], message_ids: Sequence[int], *, threads: bool
) -> list[ListRow]:
    """The current rows for ``message_ids`` in the folders (to update a list in place).

    In message mode: the live locations of those messages in the folders. In
    conversation mode: the head row of each thread the messages belong to (so a new
    reply moves its conversation up). Anything not returned is no longer in the list.
    """
    folders = list(folder_ids)
    if not folders or not message_ids:
        return []
    ids = list(dict.fromkeys(message_ids))
    if not threads:
        marks = ",".join("?" * len(folders))
        found: list[tuple[int, datetime | None, int]] = []
        for chunk in _chunks(ids):
            found += [
                (r[0], _utc(r[1]), r[2])
                for r in _driver(session).execute(
                    "SELECT message_id, date, id FROM message_uids"
                    f" WHERE folder_id IN ({marks}) AND deleted = 0"
                    f" AND message_id IN ({','.join('?' * len(chunk))})",
                    [*folders, *chunk],
                )
            ]
        keys = sorted(
            found, key=lambda k: (k[1] is not None, k[1] or datetime.min, k[2]), reverse=True
        )
        return _rows(session, keys, folders, threads)
    thread_ids = thread_ids_of(session, ids)
    with_thread = sorted({t for t in thread_ids.values() if t is not None})
    lone = [i for i in ids if thread_ids.get(i) is None]
    query = (
        select(MessageUid.message_id, MessageUid.date, MessageUid.id)
        .join(Message, Message.id == MessageUid.message_id)
        .where(
            MessageUid.folder_id.in_(folders),
            MessageUid.deleted.is_(False),
            or_(Message.thread_id.in_(with_thread), MessageUid.message_id.in_(lone)),
            _not_superseded(folders),
        )
    )
    keys = sorted(
        ((r[0], r[1], r[2]) for r in session.execute(query)),
        key=lambda k: (k[1] is not None, k[1] or datetime.min, k[2]),
        reverse=True,
    )
    return _rows(session, keys, folders, threads)


def thread_ids_of(session: Session, message_ids: Sequence[int]) -> dict[int, int | None]:
    """message id -> thread id (None when the message has none); unknown ids are left out."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(Message.id, Message.thread_id).where(Message.id.in_(list(message_ids)))
    )
    return {r[0]: r[1] for r in rows}


def _rows(
    session: Session,
    keys: list[tuple[int, datetime | None, int]],
    folder_ids: list[int],
    threads: bool,
) -> list[ListRow]:
    seen: set[int] = set()
    unique = []
    for k in keys:
        if k[0] not in seen:  # the same message in two of the listed folders
            seen.add(k[0])
            unique.append(k)
    by_id = {s.id: s for s in _list_summaries(session, [k[0] for k in unique])}
    counts: dict[int, tuple[int, int]] = {}
    if threads:
        tids = sorted({s.thread_id for s in by_id.values() if s.thread_id is not None})
        if tids:
            total = {
                r[0]: r[1]
                for r in session.execute(
                    select(Message.thread_id, func.count())
                    .where(Message.thread_id.in_(tids))
                    .group_by(Message.thread_id)
                )
            }
            unread = {
                r[0]: r[1]
                for r in session.execute(
                    select(Message.thread_id, func.count(func.distinct(Message.id)))
                    .join(MessageUid, MessageUid.message_id == Message.id)
                    .where(
                        Message.thread_id.in_(tids),
                        MessageUid.folder_id.in_(folder_ids),
                        MessageUid.seen.is_(False),
                        MessageUid.deleted.is_(False),
                    )
                    .group_by(Message.thread_id)
                )
            }
            counts = {t: (int(total.get(t, 1) or 1), int(unread.get(t, 0) or 0)) for t in tids}
    out = []
    for mid, date, key in unique:
        summary = by_id.get(mid)
        if summary is None:
            continue
        n, unread_n = 1, 0 if "seen" in summary.flags else 1
        if threads and summary.thread_id is not None:
            n, unread_n = counts.get(summary.thread_id, (1, unread_n))
        out.append(ListRow(summary, date, key, n, unread_n))
    return out


def thread_summaries(session: Session, thread_id: int) -> list[MessageSummary]:
    """Every message of a conversation, oldest first."""
    ids = session.scalars(
        select(Message.id)
        .where(Message.thread_id == thread_id)
        .order_by(Message.date.asc(), Message.id.asc())
    ).all()
    return summaries(session, list(ids))


def contacts_matching(session: Session, text: str, limit: int = 10) -> list[ContactInfo]:
    """Contacts whose address, or a word of whose name, starts with ``text``.

    People the user wrote to rank first, then those often heard from, then recent ones.
    """
    needle = text.strip().casefold()
    if not needle:
        return []
    pattern = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(Contact)
        .where(
            or_(
                Contact.email.like(f"{pattern}%", escape="\\"),
                func.lower(Contact.name).like(f"{pattern}%", escape="\\"),
                func.lower(Contact.name).like(f"% {pattern}%", escape="\\"),
                Contact.email.like(f"%.{pattern}%@%", escape="\\"),
            )
        )
        .order_by(
            Contact.sent_count.desc(),
            Contact.seen_count.desc(),
            Contact.last_seen.desc(),
            Contact.email,
        )
        .limit(limit)
    )
    return [
        ContactInfo(c.name, c.email, c.sent_count, c.seen_count) for c in session.scalars(query)
    ]


def _driver(session: Session) -> Any:
    """The sqlite3 connection under the session, inside the session's transaction."""
    return session.connection().connection.driver_connection


def _utc(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _chunks(ids: Sequence[int], size: int = 900) -> list[Sequence[int]]:
    """``IN (...)`` lists within SQLite's limit on bound parameters."""
    return [ids[n : n + size] for n in range(0, len(ids), size)]


_FLAG_NAMES = ("seen", "flagged", "answered", "draft", "deleted")


def _list_summaries(session: Session, ids: Sequence[int]) -> list[MessageSummary]:
    """``summaries`` for list pages: plain SQL on the driver's connection, no ORM objects
    and no SQLAlchemy statements (a page of 200 costs a few ms instead of tens)."""
    if not ids:
        return []
    db = _driver(session)
    rows: list[Any] = []
    locs: dict[int, list[Any]] = {}
    for chunk in _chunks(list(ids)):
        marks = ",".join("?" * len(chunk))
        rows += db.execute(
            "SELECT m.id, a.name, m.date, m.from_name, m.from_email, m.to_addrs, m.subject,"
            " m.has_attachments, m.snippet, m.thread_id, m.size, m.malformed"
            f" FROM messages m JOIN accounts a ON a.id = m.account_id WHERE m.id IN ({marks})",
            chunk,
        ).fetchall()
        for loc in db.execute(
            "SELECT mu.message_id, f.name, mu.seen, mu.flagged, mu.answered, mu.draft,"
            " mu.deleted, mu.keywords FROM message_uids mu JOIN folders f ON f.id = mu.folder_id"
            f" WHERE mu.message_id IN ({marks}) ORDER BY f.name",
            chunk,
        ):
            locs.setdefault(loc[0], []).append(loc)
    by_id = {}
    for r in rows:
        here = locs.get(r[0], ())
        if len(here) == 1:
            loc = here[0]
            flags = [name for n, name in enumerate(_FLAG_NAMES) if loc[2 + n]]
            keywords = loc[7].lower().split() if loc[7] else []
            folders: tuple[str, ...] = (loc[1],)
        else:
            flags = [name for n, name in enumerate(_FLAG_NAMES) if any(lc[2 + n] for lc in here)]
            keywords = list(dict.fromkeys(k.lower() for lc in here for k in (lc[7] or "").split()))
            folders = tuple(dict.fromkeys(lc[1] for lc in here))
        by_id[r[0]] = MessageSummary(
            id=r[0],
            account=r[1],
            date=None if r[2] is None else datetime.fromtimestamp(r[2], UTC),
            sender=AddressInfo(r[3], r[4]),
            to=_addrs(r[5]) if r[5] != "[]" else (),
            subject=r[6],
            folders=folders,
            flags=tuple(flags) + tuple(dict.fromkeys(k for k in keywords if k not in flags)),
            has_attachments=bool(r[7]),
            snippet=r[8],
            thread_id=r[9],
            size=r[10],
            malformed=bool(r[11]),
        )
    return [by_id[i] for i in ids if i in by_id]
