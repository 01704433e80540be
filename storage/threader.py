"""Incremental JWZ threading over SQLite.

JWZ threads messages by their References / In-Reply-To chains, with the subject only
as a last resort. Done incrementally, its "containers" become ``thread_refs`` rows:
every Message-ID a message has *or mentions* maps to a thread. Then:

- a reply joins the thread of any id it references (even one never seen: the
  container is there because a sibling mentioned it);
- a parent that arrives after its replies finds its own id already mapped;
- a message that links two threads merges them (the older thread id wins);
- a message with no references whose subject carries a reply prefix ("Re:", "AW:",
  ...) joins the newest thread with the same normalised subject if that thread was
  active within :data:`SUBJECT_WINDOW` of it — never a years-old namesake.

Everything runs inside the caller's transaction, batch at a time: one query for the
known ids of a whole batch, one upsert for the new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select, update

from storage.models import Message, Thread, ThreadRef, table_of

SUBJECT_WINDOW = timedelta(days=60)
_CHUNK = 500

_messages = table_of(Message)
_threads = table_of(Thread)
_refs = table_of(ThreadRef)


@dataclass(frozen=True, slots=True)
class ThreadInput:
    msgid: str | None
    refs: tuple[str, ...]  # References then In-Reply-To, oldest first
    subject: str  # normalised
    is_reply: bool  # the subject had a reply prefix
    date: datetime


def chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def assign_threads(conn: Connection, account_id: int, msgs: Sequence[ThreadInput]) -> list[int]:
    """Give each message a thread id, creating and merging threads as needed.

    Thread counts and last dates are updated for the messages given; the caller
    inserts the messages themselves with the returned ids.
    """
    wanted = sorted({i for m in msgs for i in ((m.msgid,) if m.msgid else ()) + m.refs})
    known: dict[str, int] = {}
    for part in chunks(wanted):
        rows = conn.execute(
            select(_refs.c.msgid, _refs.c.thread_id).where(
                _refs.c.account_id == account_id, _refs.c.msgid.in_(part)
            )
        )
        known.update({r.msgid: r.thread_id for r in rows})

    changed: dict[str, int] = {}
    forward: dict[int, int] = {}  # merged-away thread -> the thread that took it
    result: list[int] = []
    stats: dict[int, tuple[int, datetime]] = {}
    # Threads born in this batch get negative placeholder ids and are inserted in one
    # statement at the end; a real (positive) thread always wins a merge.
    born: dict[int, str] = {}
    by_subject: dict[str, tuple[int, datetime]] = {}
    for m in msgs:
        ids = ((m.msgid,) if m.msgid else ()) + m.refs
        tids = {_follow(known[i], forward) for i in ids if i in known}
        if not tids and not m.refs and m.is_reply and m.subject:
            found = _subject_match(conn, account_id, m, by_subject, forward)
            if found is not None:
                tids = {found}
        if not tids:
            tid = -(len(born) + 1)
            born[tid] = m.subject
        elif len(tids) == 1:
            tid = next(iter(tids))
        else:
            real = [t for t in tids if t > 0]
            tid = min(real) if real else max(tids)
            losers = tids - {tid}
            stored = {t for t in losers if t > 0}
            if stored:
                _merge(conn, tid, stored)
            _move_stats(stats, tid, losers)
            forward.update(dict.fromkeys(losers, tid))
            for loser in losers:
                born.pop(loser, None)
        for i in ids:
            if known.get(i) != tid:
                known[i] = tid
                changed[i] = tid
        count, last = stats.get(tid, (0, m.date))
        stats[tid] = (count + 1, max(last, m.date))
        if m.subject and (m.subject not in by_subject or by_subject[m.subject][1] <= m.date):
            by_subject[m.subject] = (tid, m.date)
        result.append(tid)

    if born:
        placeholders = sorted(born, reverse=True)
        # One raw INSERT per new thread (lastrowid): SQLite cannot hand back the ids
        # of a multi-row insert in order, and a thread has no natural key to find it by.
        sql = "INSERT INTO threads (account_id, subject, message_count) VALUES (?, ?, 0)"
        for p in placeholders:
            cursor = conn.exec_driver_sql(sql, (account_id, born[p]))
            tid = cursor.lastrowid
            assert tid is not None
            forward[p] = int(tid)
        changed = {k: _follow(v, forward) for k, v in changed.items()}
        merged: dict[int, tuple[int, datetime]] = {}
        for tid, (n, last) in stats.items():
            real_tid = _follow(tid, forward)
            if real_tid > 0:
                merged[real_tid] = (n, last)
        stats = merged

    # Straight to the driver: these run for every batch of a sync and SQLAlchemy's
    # per-row parameter processing would cost more than SQLite does.
    if changed:
        conn.exec_driver_sql(
            "INSERT INTO thread_refs (account_id, msgid, thread_id) VALUES (?, ?, ?) "
            "ON CONFLICT (account_id, msgid) DO UPDATE SET thread_id = excluded.thread_id",
            [(account_id, k, v) for k, v in changed.items()],
        )
    if stats:
        conn.exec_driver_sql(
            "UPDATE threads SET message_count = message_count + ?, "
            "last_date = max(coalesce(last_date, 0), ?) WHERE id = ?",
            [(n, int(last.timestamp()), tid) for tid, (n, last) in stats.items()],
        )
    return [_follow(tid, forward) for tid in result]


def _follow(tid: int, forward: dict[int, int]) -> int:
    while tid in forward:
        tid = forward[tid]
    return tid


def _subject_match(
    conn: Connection,
    account_id: int,
    m: ThreadInput,
    by_subject: dict[str, tuple[int, datetime]],
    forward: dict[int, int],
) -> int | None:
    """The newest thread with the same normalised subject, active near ``m.date``."""
    if m.subject in by_subject:
        tid, last = by_subject[m.subject]
        if abs(last - m.date) <= SUBJECT_WINDOW:
            return _follow(tid, forward)
    row = conn.execute(
        select(_threads.c.id, _threads.c.last_date)
        .where(_threads.c.account_id == account_id, _threads.c.subject == m.subject)
        .order_by(_threads.c.last_date.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    stored_last: datetime | None = row.last_date
    if stored_last is not None and abs(stored_last - m.date) > SUBJECT_WINDOW:
        return None
    return _follow(int(row.id), forward)


def _move_stats(stats: dict[int, tuple[int, datetime]], winner: int, losers: set[int]) -> None:
    """Batch-local counts of merged-away threads move to the winner."""
    for loser in losers:
        if loser in stats:
            n, loser_last = stats.pop(loser)
            wn, wlast = stats.get(winner, (0, loser_last))
            stats[winner] = (wn + n, max(wlast, loser_last))


def _merge(conn: Connection, winner: int, losers: set[int]) -> None:
    """Fold stored threads ``losers`` into ``winner``."""
    ids = sorted(losers)
    conn.execute(update(_messages).where(_messages.c.thread_id.in_(ids)).values(thread_id=winner))
    conn.execute(update(_refs).where(_refs.c.thread_id.in_(ids)).values(thread_id=winner))
    moved = conn.execute(
        select(
            func.coalesce(func.sum(_threads.c.message_count), 0), func.max(_threads.c.last_date)
        ).where(_threads.c.id.in_(ids))
    ).one()
    values: dict[str, object] = {"message_count": _threads.c.message_count + int(moved[0])}
    if moved[1] is not None:
        moved_last = int(moved[1].timestamp())
        values["last_date"] = func.max(func.coalesce(_threads.c.last_date, 0), moved_last)
    conn.execute(update(_threads).where(_threads.c.id == winner).values(**values))
    conn.execute(delete(_threads).where(_threads.c.id.in_(ids)))
