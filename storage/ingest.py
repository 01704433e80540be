"""Turning raw RFC 822 bytes into stored messages, a batch at a time.

Ingest has two stages, because sync must make mail *listable* far faster than it
can fully parse it:

1. :func:`ingest_batch` — to listable: headers decoded, addresses, thread, flags,
   raw bytes stored (compressed), committed by the caller per batch. Only the header
   block is parsed. The whole batch is written with a handful of multi-row
   statements (SQLAlchemy Core, not the ORM unit of work).
2. :func:`extract_pending` — full content: text body, snippet, attachments list;
   newest first, in batches, resumable (``messages.content_state``). It returns the
   extracted text so the search indexer can use it without parsing again.

Rules that hold for every input:

- **Ingest never raises on message content** (``storage.mime`` never raises, and is
  fuzzed to show it). A message the parser cannot make sense of is stored raw,
  flagged ``malformed`` with its defects, and listed with whatever headers could be
  read. (Errors of the database itself still raise.)
- The same bytes in the same account are one message (``content_hash``); a copy in
  another folder, or a second occurrence in the same folder, is another location.
- A location is identified by its UID (IMAP) or by a ``source_key`` (imports), so a
  re-run of the same sync batch or import adds nothing.
- A message without a usable Date gets the server's INTERNALDATE or the time it was
  ingested, so every message sorts somewhere sensible.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Table, bindparam, case, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from storage import mime
from storage.bodies import pack, unpack
from storage.models import (
    Account,
    Attachment,
    Contact,
    Folder,
    Message,
    MessageBody,
    MessageUid,
    table_of,
)
from storage.threader import ThreadInput, assign_threads, chunks

_messages = table_of(Message)
_uids = table_of(MessageUid)
_bodies = table_of(MessageBody)
_attachments = table_of(Attachment)
_contacts = table_of(Contact)
_folders = table_of(Folder)
_accounts = table_of(Account)

SYSTEM_FLAGS = ("seen", "flagged", "answered", "draft", "deleted")
_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|vs|antw|odp|r|res)\s*(\[\d+\])?\s*:", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message handed to ingest, with what the source knows about that copy."""

    raw: bytes
    flags: frozenset[str] = frozenset()  # lower-case: seen, flagged, answered, draft, deleted
    keywords: tuple[str, ...] = ()
    uid: int | None = None  # IMAP UID; None: the folder assigns one (imports)
    modseq: int | None = None
    source_key: str | None = None
    internal_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class Ingested:
    message_id: int  # the local row id (what `tidings list` prints)
    new_message: bool  # a message row was created (not a copy of a known one)
    new_location: bool  # a (folder, uid) row was created
    malformed: bool


@dataclass(frozen=True, slots=True)
class Extracted:
    message_id: int
    content: mime.Content


def content_hash(raw: bytes) -> bytes:
    # SHA-256 runs on the CPU's SHA extensions: faster here than BLAKE2 or MD5.
    return hashlib.sha256(raw).digest()[:16]


def _insert_many(
    conn: Connection, table: Table, cols: Sequence[str], rows: list[tuple[object, ...]]
) -> None:
    """A multi-row INSERT straight to the driver.

    The hot path of ingest: SQLAlchemy's per-row parameter processing costs more than
    SQLite's insert itself, so rows arrive as tuples of stored values (epoch seconds
    for datetimes, 0/1 for booleans), exactly what the column types would store.
    """
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in cols)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(cols))})'
    conn.exec_driver_sql(sql, rows)


_MESSAGE_COLS = (
    "account_id", "content_hash", "message_id", "date", "received_at", "size", "subject",
    "from_name", "from_email", "to_addrs", "cc_addrs", "reply_to", "in_reply_to",
    "references", "list_id", "list_unsubscribe", "list_unsubscribe_post", "content_type",
    "thread_id", "has_attachments", "malformed", "defects",
)  # fmt: skip
_UID_COLS = (
    "folder_id", "message_id", "uid", "modseq", "date", "seen", "flagged", "answered",
    "draft", "deleted", "keywords", "source_key",
)  # fmt: skip


def _addrs_json(addrs: Sequence[mime.Address]) -> str:
    if not addrs:
        return "[]"
    return json.dumps([[a.name, a.email] for a in addrs], ensure_ascii=False)


@dataclass(slots=True)
class _Pending:
    index: int
    item: Incoming
    digest: bytes
    env: mime.Envelope | None = None
    message_pk: int | None = None
    new_message: bool = False
    uid: int = 0
    date: datetime = field(default_factory=lambda: datetime.now(UTC))


def ingest_batch(
    session: Session,
    account_id: int,
    folder_id: int,
    items: Sequence[Incoming],
    *,
    now: datetime | None = None,
) -> list[Ingested]:
    """Store ``items`` in ``folder_id``; one result per item, in order.

    Runs in the session's transaction; the caller commits (once per batch).
    """
    if not items:
        return []
    now = now or datetime.now(UTC)
    conn = session.connection()
    results: list[Ingested | None] = [None] * len(items)
    pending = [_Pending(i, it, content_hash(it.raw)) for i, it in enumerate(items)]

    # 1. Copies already at this location (a re-run of the same batch): nothing to do.
    pending = _drop_known_locations(conn, folder_id, pending, results)

    # 2. Messages already stored in this account (another folder, or an earlier run).
    by_hash = _ids_by_hash(conn, account_id, sorted({p.digest for p in pending}))

    new: list[_Pending] = []
    first_of: dict[bytes, _Pending] = {}
    for p in pending:
        if p.digest in by_hash:
            p.message_pk = by_hash[p.digest]
        elif p.digest in first_of:
            continue  # same bytes twice in this batch: resolved after the insert
        else:
            p.env = mime.parse_envelope(p.item.raw)
            p.date = p.env.date or p.item.internal_date or now
            p.new_message = True
            first_of[p.digest] = p
            new.append(p)

    if new:
        _insert_messages(conn, account_id, new, now)
    for p in pending:
        if p.message_pk is None:
            p.message_pk = first_of[p.digest].message_pk
            p.date = first_of[p.digest].date

    # Existing messages need their date for the location row.
    missing = [p for p in pending if not p.new_message]
    if missing:
        ids = sorted({p.message_pk for p in missing if p.message_pk is not None})
        dates: dict[int, datetime] = {}
        for i in range(0, len(ids), 500):
            rows = conn.execute(
                select(_messages.c.id, _messages.c.date).where(_messages.c.id.in_(ids[i : i + 500]))
            )
            dates.update({r.id: r.date for r in rows})
        for p in missing:
            assert p.message_pk is not None
            p.date = dates.get(p.message_pk) or now

    _insert_locations(conn, folder_id, pending)
    for p in pending:
        assert p.message_pk is not None
        malformed = bool(p.env.defects) if p.env is not None else False
        results[p.index] = Ingested(p.message_pk, p.new_message, True, malformed)
    return [r for r in results if r is not None]


def _ids_by_hash(conn: Connection, account_id: int, digests: Sequence[bytes]) -> dict[bytes, int]:
    """Stored message ids of the account by content hash (the unique key)."""
    found: dict[bytes, int] = {}
    for i in range(0, len(digests), 500):
        rows = conn.execute(
            select(_messages.c.content_hash, _messages.c.id).where(
                _messages.c.account_id == account_id,
                _messages.c.content_hash.in_(digests[i : i + 500]),
            )
        )
        found.update({r.content_hash: r.id for r in rows})
    return found


def _drop_known_locations(
    conn: Connection, folder_id: int, pending: list[_Pending], results: list[Ingested | None]
) -> list[_Pending]:
    uids = [p.item.uid for p in pending if p.item.uid is not None]
    keys = [p.item.source_key for p in pending if p.item.source_key is not None]
    by_uid: dict[int, int] = {}
    by_key: dict[str, int] = {}
    for i in range(0, len(uids), 500):
        rows = conn.execute(
            select(_uids.c.uid, _uids.c.message_id).where(
                _uids.c.folder_id == folder_id, _uids.c.uid.in_(uids[i : i + 500])
            )
        )
        by_uid.update({r.uid: r.message_id for r in rows})
    for part in chunks(keys):
        rows = conn.execute(
            select(_uids.c.source_key, _uids.c.message_id).where(
                _uids.c.folder_id == folder_id, _uids.c.source_key.in_(part)
            )
        )
        by_key.update({r.source_key: r.message_id for r in rows})
    keep: list[_Pending] = []
    for p in pending:
        pk = None
        if p.item.uid is not None:
            pk = by_uid.get(p.item.uid)
        elif p.item.source_key is not None:
            pk = by_key.get(p.item.source_key)
        if pk is None:
            keep.append(p)
        else:
            results[p.index] = Ingested(pk, False, False, False)
    return keep


def _insert_messages(conn: Connection, account_id: int, new: list[_Pending], now: datetime) -> None:
    envs = [p.env for p in new]
    assert all(e is not None for e in envs)
    threads = assign_threads(
        conn,
        account_id,
        [
            ThreadInput(
                msgid=e.message_id,
                refs=_refs(e),
                subject=_norm_subject(e.subject),
                is_reply=bool(_REPLY_PREFIX.match(e.subject)),
                date=p.date,
            )
            for p in new
            if (e := p.env) is not None
        ],
    )
    rows: list[tuple[object, ...]] = []
    received = int(now.timestamp())
    for p, tid in zip(new, threads, strict=True):
        e = p.env
        assert e is not None
        sender = e.from_[0] if e.from_ else mime.Address("", "")
        rows.append(
            (
                account_id,
                p.digest,
                e.message_id,
                int(p.date.timestamp()),
                received,
                len(p.item.raw),
                e.subject,
                sender.name,
                sender.email,
                _addrs_json(e.to),
                _addrs_json(e.cc),
                _addrs_json(e.reply_to),
                " ".join(e.in_reply_to) or None,
                " ".join(e.references) or None,
                e.list_id,
                e.list_unsubscribe,
                e.list_unsubscribe_post,
                e.content_type[:255],
                tid,
                int(e.content_type == "multipart/mixed"),
                int(bool(e.defects)),
                "; ".join(e.defects) or None,
            )
        )
    # Plain executemany: SQLite cannot RETURNING the ids of a multi-row insert in
    # order, and SQLAlchemy would fall back to one statement per row.
    _insert_many(conn, _messages, _MESSAGE_COLS, rows)
    # One executemany in our write transaction: SQLite gave the rows consecutive
    # rowids ending at last_insert_rowid() (no AUTOINCREMENT gaps, no other writer).
    last = int(conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
    for n, p in enumerate(new):
        p.message_pk = last - len(new) + 1 + n
    ends = (new[0], new[-1])
    check = conn.execute(
        select(_messages.c.id, _messages.c.content_hash).where(
            _messages.c.id.in_([p.message_pk for p in ends])
        )
    )
    if {(r.id, r.content_hash) for r in check} != {(p.message_pk, p.digest) for p in ends}:
        raise RuntimeError("message ids were not assigned consecutively")  # pragma: no cover
    bodies: list[tuple[object, ...]] = []
    for p in new:
        compression, data = pack(p.item.raw)
        bodies.append((p.message_pk, compression, data))
    _insert_many(conn, _bodies, ("message_id", "compression", "raw"), bodies)
    _count_contacts(conn, account_id, new)


def _insert_locations(conn: Connection, folder_id: int, pending: list[_Pending]) -> None:
    if not pending:
        return
    local = [p for p in pending if p.item.uid is None]
    if local:
        uidnext = conn.execute(
            select(_folders.c.uidnext).where(_folders.c.id == folder_id)
        ).scalar_one()
        for n, p in enumerate(local):
            p.uid = uidnext + n
        conn.execute(
            update(_folders).where(_folders.c.id == folder_id).values(uidnext=uidnext + len(local))
        )
    rows: list[tuple[object, ...]] = []
    for p in pending:
        flags = p.item.flags
        rows.append(
            (
                folder_id,
                p.message_pk,
                p.item.uid if p.item.uid is not None else p.uid,
                p.item.modseq,
                int(p.date.timestamp()),
                int("seen" in flags),
                int("flagged" in flags),
                int("answered" in flags),
                int("draft" in flags),
                int("deleted" in flags),
                " ".join(p.item.keywords),
                p.item.source_key,
            )
        )
    _insert_many(conn, _uids, _UID_COLS, rows)


def _refs(env: mime.Envelope) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for ref in env.references + env.in_reply_to:
        if ref and ref != env.message_id:
            seen[ref] = None
    return tuple(seen)


def _norm_subject(subject: str) -> str:
    try:
        return mime.normalize_subject(subject)
    except Exception:
        return subject.casefold().strip()


def _count_contacts(conn: Connection, account_id: int, new: list[_Pending]) -> None:
    own = conn.execute(
        select(_accounts.c.email).where(_accounts.c.id == account_id)
    ).scalar_one_or_none()
    own = (own or "").casefold()
    counts: dict[str, list[object]] = {}  # email -> [name, seen, sent, last]

    def bump(addr: mime.Address, seen: int, sent: int, when: datetime) -> None:
        email = addr.email.strip().casefold()
        if not email or "@" not in email or len(email) > 320:
            return
        entry = counts.setdefault(email, [addr.name, 0, 0, when])
        if addr.name:
            entry[0] = addr.name
        entry[1] = int(str(entry[1])) + seen
        entry[2] = int(str(entry[2])) + sent
        last = entry[3]
        if isinstance(last, datetime) and when > last:
            entry[3] = when

    for p in new:
        e = p.env
        if e is None:
            continue
        if own and any(a.email.casefold() == own for a in e.from_):
            for a in e.to + e.cc + e.bcc:
                bump(a, 0, 1, p.date)
        else:
            for a in e.from_:
                bump(a, 1, 0, p.date)
    if not counts:
        return
    stmt = sqlite_insert(_contacts)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_contacts.c.email],
            set_={
                "seen_count": _contacts.c.seen_count + stmt.excluded.seen_count,
                "sent_count": _contacts.c.sent_count + stmt.excluded.sent_count,
                "name": case(
                    (stmt.excluded.name != "", stmt.excluded.name), else_=_contacts.c.name
                ),
                "last_seen": stmt.excluded.last_seen,
            },
        ),
        [
            {"email": k, "name": v[0], "seen_count": v[1], "sent_count": v[2], "last_seen": v[3]}
            for k, v in counts.items()
        ],
    )


def extract_pending(
    session: Session, limit: int = 200, account_id: int | None = None
) -> list[Extracted]:
    """Extract content for up to ``limit`` listable-only messages, newest first.

    Fills snippet, attachments and has_attachments, marks them done, and returns the
    content (text for the index). Runs in the caller's transaction.
    """
    conn = session.connection()
    query = (
        select(_messages.c.id, _bodies.c.compression, _bodies.c.raw)
        .join(_bodies, _bodies.c.message_id == _messages.c.id)
        .where(_messages.c.content_state == 0)
        .order_by(_messages.c.date.desc())
        .limit(limit)
    )
    if account_id is not None:
        query = query.where(_messages.c.account_id == account_id)
    out: list[Extracted] = []
    updates = []
    atts: list[dict[str, object]] = []
    for row in conn.execute(query).all():
        content = mime.extract_content(unpack(row.compression, row.raw))
        out.append(Extracted(row.id, content))
        real = [a for a in content.attachments if not a.inline or a.filename]
        updates.append(
            {
                "mid": row.id,
                "snippet": content.snippet[:300],
                "has_att": bool(real),
                "malformed_body": bool(content.defects),
            }
        )
        atts.extend(
            {
                "message_id": row.id,
                "part_id": a.part_id[:64],
                "filename": a.filename,
                "content_type": a.content_type[:255],
                "size": a.size,
                "content_id": a.content_id,
                "inline": a.inline,
            }
            for a in content.attachments
        )
    if updates:
        conn.execute(
            update(_messages)
            .where(_messages.c.id == bindparam("mid"))
            .values(
                snippet=bindparam("snippet"),
                has_attachments=bindparam("has_att"),
                malformed=func.max(_messages.c.malformed, bindparam("malformed_body")),
                content_state=1,
            ),
            updates,
        )
    if atts:
        conn.execute(insert(_attachments), atts)
    return out


def extract_all(
    factory: sessionmaker[Session],
    account_id: int,
    on_batch: Callable[[int], None] | None = None,
    *,
    batch: int = 200,
) -> int:
    """Run :func:`extract_pending` for the account until nothing is left, one committed
    batch at a time (import, demo and sync all finish the content stage this way).
    ``on_batch`` gets the running count. Returns how many messages were done."""
    from storage.db import session_scope

    done = 0
    while True:
        with session_scope(factory) as s:
            n = len(extract_pending(s, limit=batch, account_id=account_id))
        if not n:
            return done
        done += n
        if on_batch is not None:
            on_batch(done)
