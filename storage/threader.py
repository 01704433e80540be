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

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
    for m in msgs:
        ids = ((m.msgid,) if m.msgid else ()) + m.refs
        tids = {known[i] for i in ids if i in known}
        if not tids and not m.refs and m.is_reply and m.subject:
            found = _thread_by_subject(conn, account_id, m.subject, m.date)
            if found is not None:
                tids = {found}
        if not tids:
            tid = _new_thread(conn, account_id, m.subject)
        elif len(tids) == 1:
            tid = next(iter(tids))
        else:
            tid = min(tids)
            losers = tids - {tid}
            _merge(conn, tid, losers, stats)
            forward.update(dict.fromkeys(losers, tid))
            for key, value in known.items():
                if value in losers:
                    known[key] = tid
                    changed[key] = tid
        for i in ids:
            if known.get(i) != tid:
                known[i] = tid
                changed[i] = tid
        count, last = stats.get(tid, (0, m.date))
        stats[tid] = (count + 1, max(last, m.date))
        result.append(tid)

    if changed:
        stmt = sqlite_insert(_refs)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[_refs.c.account_id, _refs.c.msgid],
                set_={"thread_id": stmt.excluded.thread_id},
            ),
            [{"account_id": account_id, "msgid": k, "thread_id": v} for k, v in changed.items()],
        )
    if stats:
        conn.execute(
            update(_threads)
            .where(_threads.c.id == bindparam("tid"))
            .values(
                message_count=_threads.c.message_count + bindparam("n"),
                last_date=func.max(func.coalesce(_threads.c.last_date, 0), bindparam("last")),
            ),
            [
                {"tid": tid, "n": n, "last": int(last.timestamp())}
                for tid, (n, last) in stats.items()
            ],
        )
    return [_follow(tid, forward) for tid in result]


def _follow(tid: int, forward: dict[int, int]) -> int:
    while tid in forward:
        tid = forward[tid]
    return tid


def _new_thread(conn: Connection, account_id: int, subject: str) -> int:
    res = conn.execute(
        insert(_threads)
        .values(account_id=account_id, subject=subject, message_count=0)
        .returning(_threads.c.id)
    )
    return int(res.scalar_one())


def _thread_by_subject(
    conn: Connection, account_id: int, subject: str, date: datetime
) -> int | None:
    row = conn.execute(
        select(_threads.c.id, _threads.c.last_date)
        .where(_threads.c.account_id == account_id, _threads.c.subject == subject)
        .order_by(_threads.c.last_date.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    last: datetime | None = row.last_date
    if last is not None and abs(last - date) > SUBJECT_WINDOW:
        return None
    return int(row.id)


def _merge(
    conn: Connection, winner: int, losers: set[int], stats: dict[int, tuple[int, datetime]]
) -> None:
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
    # Batch-local counts of the losers move to the winner.
    for loser in ids:
        if loser in stats:
            n, loser_last = stats.pop(loser)
            wn, wlast = stats.get(winner, (0, loser_last))
            stats[winner] = (wn + n, max(wlast, loser_last))
