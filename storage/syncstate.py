"""The store's side of IMAP sync: folder state, flag and expunge updates, re-matching.

Sync (``sync/engine.py``) decides and talks to the server; this module is every
write it makes besides ingesting new messages, each in the caller's transaction.

Per-folder state machine (``folders.sync_state``):

    initial ──(sync completes)──> synced ──(UIDVALIDITY changed)──> uidinvalid
       ^                            │  ^                                │
       │                            v  │                                │
       └──────────────── error (last_error, next_retry) <───────────────┘

``uidnext`` and ``highestmodseq`` are written only by :func:`mark_synced`, when a
folder sync completes; a killed sync leaves the folder as it was, and the next run
compares UID sets (see ``sync/planner.py``). A UIDVALIDITY change drops the folder's
UID map but keeps the messages: they are found again by Message-ID and size
(:func:`match_existing`), so their bodies are not downloaded twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from storage.accounts import guess_role
from storage.models import Action, Folder, Message, MessageUid, Thread, table_of

_uids = table_of(MessageUid)


@dataclass(frozen=True, slots=True)
class FolderSyncState:
    id: int
    name: str
    remote_name: str | None
    role: str | None
    uidvalidity: int | None
    uidnext: int | None  # at the last completed sync
    highestmodseq: int | None
    state: str

    @property
    def complete(self) -> bool:
        return self.state == "synced"


@dataclass(frozen=True, slots=True)
class ServerFolder:
    name: str  # decoded, '/'-separated: as users see it
    remote_name: str  # decoded, as the server spells it
    delimiter: str | None
    role: str | None


@dataclass(frozen=True, slots=True)
class FlagState:
    uid: int
    flags: frozenset[str]
    keywords: tuple[str, ...]
    modseq: int | None


@dataclass(frozen=True, slots=True)
class Location:
    uid: int
    message_id: int  # the local message row
    flags: frozenset[str]
    keywords: tuple[str, ...]
    modseq: int | None


def _state(f: Folder) -> FolderSyncState:
    # uidnext of a local folder is its UID counter; for a synced folder it is the
    # server's UIDNEXT at the last completed sync.
    return FolderSyncState(
        f.id,
        f.name,
        f.remote_name,
        f.role,
        f.uidvalidity,
        f.uidnext if f.sync_state == "synced" else None,
        f.highestmodseq,
        f.sync_state,
    )


def folder_state(session: Session, folder_id: int) -> FolderSyncState:
    return _state(session.get_one(Folder, folder_id))


def inbox_state(session: Session, account_id: int) -> FolderSyncState | None:
    f = session.scalar(
        select(Folder).where(Folder.account_id == account_id, Folder.role == "inbox").limit(1)
    )
    return None if f is None else _state(f)


def update_folder_list(
    session: Session, account_id: int, server: Sequence[ServerFolder]
) -> tuple[list[FolderSyncState], list[str]]:
    """Make the account's folders those the server lists.

    New folders are created, roles refreshed. Folders the server no longer has are
    returned by name but *not* deleted yet: the caller removes them (with
    :func:`remove_folder`) after the other folders synced, so that the messages of a
    renamed folder are found again in its new place instead of downloaded anew.
    Returns the folders to sync (INBOX first, then by role, then by name) and the
    names that are gone.
    """
    local = {
        f.name: f for f in session.scalars(select(Folder).where(Folder.account_id == account_id))
    }
    keep: list[FolderSyncState] = []
    for sf in server:
        role = sf.role if sf.role is not None else guess_role(sf.name)
        f = local.pop(sf.name, None)
        if f is None:
            f = Folder(
                account_id=account_id,
                name=sf.name,
                remote_name=sf.remote_name,
                delimiter=sf.delimiter,
                role=role,
            )
            session.add(f)
            session.flush()
        else:
            if f.remote_name != sf.remote_name:
                f.remote_name = sf.remote_name
            if f.role != role:
                f.role = role
            if f.delimiter != sf.delimiter:
                f.delimiter = sf.delimiter
        keep.append(_state(f))
    order = {"inbox": 0, "sent": 1, "drafts": 2, "archive": 3, "all": 4, "junk": 8, "trash": 9}
    keep.sort(key=lambda s: (order.get(s.role or "", 5), s.name.casefold()))
    return keep, sorted(local)


def remove_folder(session: Session, account_id: int, name: str) -> None:
    session.execute(delete(Folder).where(Folder.account_id == account_id, Folder.name == name))


def local_uids(session: Session, folder_id: int) -> list[int]:
    """UIDs stored for the folder; placeholders of pending moves (< 0) are not UIDs."""
    return list(
        session.scalars(
            select(MessageUid.uid).where(MessageUid.folder_id == folder_id, MessageUid.uid > 0)
        )
    )


def protected_uids(session: Session, folder_id: int) -> set[int]:
    """UIDs whose message has a local change not yet replayed: sync keeps its flags."""
    return set(
        session.scalars(
            select(MessageUid.uid)
            .join(Action, Action.message_id == MessageUid.message_id)
            .where(
                MessageUid.folder_id == folder_id,
                Action.folder_id == folder_id,
                Action.state.in_(["pending", "running"]),
            )
        )
    )


def reset_folder(session: Session, folder_id: int, uidvalidity: int) -> int:
    """UIDVALIDITY changed: forget the folder's UIDs (messages stay). Returns how many."""
    gone = session.execute(delete(MessageUid).where(MessageUid.folder_id == folder_id))
    session.execute(
        update(Folder)
        .where(Folder.id == folder_id)
        .values(uidvalidity=uidvalidity, sync_state="uidinvalid", highestmodseq=None)
    )
    return int(getattr(gone, "rowcount", 0) or 0)


def start_folder(session: Session, folder_id: int, uidvalidity: int) -> None:
    """Remember the UIDVALIDITY the UIDs about to be stored belong to."""
    session.execute(update(Folder).where(Folder.id == folder_id).values(uidvalidity=uidvalidity))


def mark_synced(
    session: Session,
    folder_id: int,
    *,
    uidvalidity: int,
    uidnext: int | None,
    highestmodseq: int | None,
    when: datetime,
) -> None:
    values: dict[str, object] = {
        "uidvalidity": uidvalidity,
        "highestmodseq": highestmodseq,
        "sync_state": "synced",
        "last_error": None,
        "next_retry": None,
        "last_synced": when,
    }
    if uidnext is not None:
        values["uidnext"] = uidnext
    else:
        top = session.scalar(
            select(MessageUid.uid)
            .where(MessageUid.folder_id == folder_id)
            .order_by(MessageUid.uid.desc())
            .limit(1)
        )
        values["uidnext"] = (top or 0) + 1
    session.execute(update(Folder).where(Folder.id == folder_id).values(**values))


def mark_error(session: Session, folder_id: int, error: str, next_retry: datetime | None) -> None:
    session.execute(
        update(Folder)
        .where(Folder.id == folder_id)
        .values(sync_state="error", last_error=error[:500], next_retry=next_retry)
    )


def apply_flags(session: Session, folder_id: int, updates: Iterable[FlagState]) -> list[int]:
    """Set the flags of the given UIDs as the server has them.

    Returns the local message ids whose flags actually changed.
    """
    rows = [
        (
            int("seen" in u.flags),
            int("flagged" in u.flags),
            int("answered" in u.flags),
            int("draft" in u.flags),
            int("deleted" in u.flags),
            " ".join(u.keywords),
            u.modseq,
            folder_id,
            u.uid,
        )
        for u in updates
    ]
    if not rows:
        return []
    conn = session.connection()
    before = _flag_rows(session, folder_id, [r[-1] for r in rows])
    conn.exec_driver_sql(
        "UPDATE message_uids SET seen = ?, flagged = ?, answered = ?, draft = ?, deleted = ?, "
        "keywords = ?, modseq = coalesce(?, modseq) WHERE folder_id = ? AND uid = ?",
        rows,
    )
    changed = []
    for r in rows:
        old = before.get(r[-1])
        if old is not None and old[1:] != r[:6]:
            changed.append(old[0])
    return changed


def _flag_rows(
    session: Session, folder_id: int, uids: Sequence[int]
) -> dict[int, tuple[int, int, int, int, int, int, str]]:
    out: dict[int, tuple[int, int, int, int, int, int, str]] = {}
    for i in range(0, len(uids), 500):
        for r in session.execute(
            select(
                _uids.c.uid,
                _uids.c.message_id,
                _uids.c.seen,
                _uids.c.flagged,
                _uids.c.answered,
                _uids.c.draft,
                _uids.c.deleted,
                _uids.c.keywords,
            ).where(_uids.c.folder_id == folder_id, _uids.c.uid.in_(uids[i : i + 500]))
        ):
            out[r.uid] = (
                r.message_id,
                int(r.seen),
                int(r.flagged),
                int(r.answered),
                int(r.draft),
                int(r.deleted),
                r.keywords,
            )
    return out


def remove_uids(session: Session, folder_id: int, uids: Sequence[int]) -> list[int]:
    """Forget expunged UIDs. Returns the local message ids that lost this location."""
    removed: list[int] = []
    for i in range(0, len(uids), 500):
        part = list(uids[i : i + 500])
        removed += list(
            session.scalars(
                select(MessageUid.message_id).where(
                    MessageUid.folder_id == folder_id, MessageUid.uid.in_(part)
                )
            )
        )
        session.execute(
            delete(MessageUid).where(MessageUid.folder_id == folder_id, MessageUid.uid.in_(part))
        )
    return removed


def match_existing(
    session: Session, account_id: int, wanted: dict[int, tuple[str | None, int]]
) -> dict[int, int]:
    """UIDs whose (Message-ID, size) matches a message already stored in the account.

    ``wanted`` maps UID -> (Message-ID, size). Returns UID -> local message id.
    """
    by_id: dict[str, list[int]] = {}
    for uid, (mid, _size) in wanted.items():
        if mid:
            by_id.setdefault(mid, []).append(uid)
    found: dict[int, int] = {}
    keys = sorted(by_id)
    for i in range(0, len(keys), 500):
        rows = session.execute(
            select(Message.id, Message.message_id, Message.size).where(
                Message.account_id == account_id, Message.message_id.in_(keys[i : i + 500])
            )
        )
        for r in rows:
            for uid in by_id.get(r.message_id or "", []):
                if wanted[uid][1] == r.size and uid not in found:
                    found[uid] = r.id
    return found


def add_locations(session: Session, folder_id: int, locations: Sequence[Location]) -> None:
    """Store known messages at new UIDs (re-matched, so no body download)."""
    if not locations:
        return
    dates = dict(
        session.execute(
            select(Message.id, Message.date).where(
                Message.id.in_(sorted({loc.message_id for loc in locations}))
            )
        ).all()
    )
    session.connection().exec_driver_sql(
        "INSERT OR IGNORE INTO message_uids (folder_id, message_id, uid, modseq, date, seen, "
        "flagged, answered, draft, deleted, keywords) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                folder_id,
                loc.message_id,
                loc.uid,
                loc.modseq,
                int(d.timestamp()) if (d := dates.get(loc.message_id)) else None,
                int("seen" in loc.flags),
                int("flagged" in loc.flags),
                int("answered" in loc.flags),
                int("draft" in loc.flags),
                int("deleted" in loc.flags),
                " ".join(loc.keywords),
            )
            for loc in locations
        ],
    )


def remove_orphans(session: Session, account_id: int) -> int:
    """Delete messages of the account that live in no folder any more."""
    orphan = ~exists().where(MessageUid.message_id == Message.id)
    rows = session.execute(
        select(Message.id, Message.thread_id).where(Message.account_id == account_id, orphan)
    ).all()
    ids = [r.id for r in rows]
    threads = sorted({r.thread_id for r in rows if r.thread_id is not None})
    for i in range(0, len(ids), 500):
        session.execute(delete(Message).where(Message.id.in_(ids[i : i + 500])))
    for i in range(0, len(threads), 500):
        part = threads[i : i + 500]
        count = (
            select(func.count())
            .where(Message.thread_id == Thread.id)
            .correlate(Thread)
            .scalar_subquery()
        )
        session.execute(update(Thread).where(Thread.id.in_(part)).values(message_count=count))
        session.execute(delete(Thread).where(Thread.id.in_(part), Thread.message_count == 0))
    return len(ids)
