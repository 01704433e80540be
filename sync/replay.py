"""Replaying local changes on the server, exactly (RFC 4549).

``storage/actions.py`` queues what the user did; this sends it, oldest first, folder
by folder, batched: every pending "+seen" of a folder is one ``UID STORE`` with a
UID set, every move to the same target one ``UID MOVE`` (or COPY + STORE \\Deleted +
``UID EXPUNGE`` of exactly those UIDs, never a bare EXPUNGE).

Every action is safe to run twice: STORE of a flag already set changes nothing; a
move is sent only for UIDs the server still has in the source folder (checked just
before), so a move replayed after a crash finds nothing to move and is done; an
APPEND of a draft first looks for the draft's Message-ID in the folder.

Outcomes: done; dropped with a note when the message is gone from the server
(expunged elsewhere: nothing to do, nothing to crash on); failed with the server's
words when it cannot be done (the target folder is gone: the message is put back);
or retried with backoff on a temporary error. A lost connection leaves the rest
pending for the next session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from storage import actions
from storage.bodies import unpack
from storage.db import session_scope
from storage.models import MessageBody
from sync.errors import ConnectionLost, FolderGone, SyncError
from sync.imap import ImapConnection

Emit = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class ReplayResult:
    done: int = 0
    dropped: int = 0
    failed: int = 0
    retrying: int = 0
    folders: set[int] = field(default_factory=set)


def replay(
    factory: sessionmaker[Session],
    account_id: int,
    account: str,
    conn: ImapConnection,
    *,
    emit: Emit,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReplayResult:
    result = ReplayResult()
    with session_scope(factory) as s:
        todo = actions.due(s, account_id, now())
    if not todo:
        return result
    by_folder: dict[int, list[actions.Due]] = {}
    for d in todo:
        by_folder.setdefault(d.folder_id, []).append(d)
    for folder_id, items in by_folder.items():
        try:
            _replay_folder(factory, conn, items, result, now)
        except ConnectionLost:
            raise
        except SyncError as exc:
            with session_scope(factory) as s:
                for d in items:
                    if actions.mark_retry(s, d.id, str(exc), now=now()):
                        result.failed += 1
                    else:
                        result.retrying += 1
        result.folders.add(folder_id)
    emit(
        {
            "event": "actions_replayed",
            "account": account,
            "done": result.done,
            "dropped": result.dropped,
            "failed": result.failed,
            "retrying": result.retrying,
        }
    )
    return result


def _replay_folder(
    factory: sessionmaker[Session],
    conn: ImapConnection,
    items: list[actions.Due],
    result: ReplayResult,
    now: Callable[[], datetime],
) -> None:
    folder = items[0].folder
    try:
        conn.select(folder, readonly=False)
    except FolderGone:
        with session_scope(factory) as s:
            for d in items:
                actions.mark_dropped(s, d.id, f"folder {folder} no longer exists on the server")
                result.dropped += 1
        return
    known = [d.uid for d in items if d.uid is not None and d.uid > 0]
    present = set()
    if known:
        updates, _ = conn.fetch_flags(sorted(set(known)))
        present = {u.uid for u in updates}

    def gone(d: actions.Due) -> bool:
        return d.uid is None or d.uid <= 0 or d.uid not in present

    # Flags: one STORE per (flag, value) with every UID that wants it.
    stores: dict[tuple[str, bool], list[actions.Due]] = {}
    for d in items:
        if d.kind != "flags":
            continue
        if d.uid is not None and d.uid < 0:
            continue  # still waiting for an earlier move to land; stays pending
        if gone(d):
            with session_scope(factory) as s:
                actions.mark_dropped(s, d.id, "the message is no longer on the server")
            result.dropped += 1
            continue
        for flag, (_before, after) in d.payload["flags"].items():
            stores.setdefault((flag, bool(after)), []).append(d)
    for (flag, value), group in stores.items():
        conn.store_flags(sorted({d.uid for d in group if d.uid}), [flag], add=value)
    flag_done = {d.id for group in stores.values() for d in group}
    if flag_done:
        with session_scope(factory) as s:
            for action_id in flag_done:
                actions.mark_done(s, action_id)
        result.done += len(flag_done)

    # Moves, grouped by target.
    moves: dict[str, list[actions.Due]] = {}
    for d in items:
        if d.kind == "move":
            if d.target is None:
                with session_scope(factory) as s:
                    actions.fail(s, d.id, "the target folder no longer exists")
                result.failed += 1
            elif gone(d):
                _find_landed(factory, conn, d, result)
            else:
                moves.setdefault(d.target, []).append(d)
    for target, wanted in moves.items():
        group = wanted if conn.has_move else _skip_copied(factory, conn, wanted, target, result)
        if not group:
            continue
        try:
            mapping = conn.move([d.uid for d in group if d.uid], target)
        except FolderGone as exc:
            with session_scope(factory) as s:
                for d in group:
                    actions.fail(s, d.id, str(exc))
            result.failed += len(group)
            continue
        with session_scope(factory) as s:
            for d in group:
                assert d.uid is not None
                assert d.target_id is not None
                actions.landed(s, d.id, d.target_id, mapping.get(d.uid))
                actions.mark_done(s, d.id)
        result.done += len(group)

    # Deletions for good.
    expunge = [d for d in items if d.kind == "expunge"]
    live = [d for d in expunge if not gone(d)]
    if live:
        conn.expunge_uids([d.uid for d in live if d.uid])
    if expunge:
        with session_scope(factory) as s:
            for d in expunge:
                actions.mark_done(s, d.id)
        result.done += len(expunge)

    # Drafts.
    for d in items:
        if d.kind == "append":
            _append(factory, conn, d, result)


def _skip_copied(
    factory: sessionmaker[Session],
    conn: ImapConnection,
    group: list[actions.Due],
    target: str,
    result: ReplayResult,
) -> list[actions.Due]:
    """Without MOVE a move is COPY, STORE \\Deleted, UID EXPUNGE: a crash between COPY
    and EXPUNGE leaves the copy made. Finish those (expunge the source only) instead of
    copying again, so a replay never duplicates a message."""
    source = group[0].folder
    conn.select(target, readonly=False)
    copied: dict[int, int] = {}
    for d in group:
        if d.header_id and d.uid:
            found = conn.find_by_message_id(d.header_id)
            if found:
                copied[d.id] = max(found)
    conn.select(source, readonly=False)
    if not copied:
        return group
    done = [d for d in group if d.id in copied]
    conn.expunge_uids([d.uid for d in done if d.uid])
    with session_scope(factory) as s:
        for d in done:
            if d.target_id is not None:
                actions.landed(s, d.id, d.target_id, copied[d.id])
            actions.mark_done(s, d.id)
    result.done += len(done)
    return [d for d in group if d.id not in copied]


def _find_landed(
    factory: sessionmaker[Session], conn: ImapConnection, d: actions.Due, result: ReplayResult
) -> None:
    """A move whose source UID is gone: done already (a crash after MOVE), or the
    message was expunged meanwhile."""
    uid = None
    if d.header_id and d.target:
        conn.select(d.target, readonly=False)
        found = conn.find_by_message_id(d.header_id)
        uid = max(found) if found else None
        conn.select(d.folder, readonly=False)
    with session_scope(factory) as s:
        if uid is not None and d.target_id is not None:
            actions.landed(s, d.id, d.target_id, uid)
            actions.mark_done(s, d.id)
            result.done += 1
        else:
            actions.fail(s, d.id, "the message is no longer on the server")
            result.dropped += 1


def _append(
    factory: sessionmaker[Session], conn: ImapConnection, d: actions.Due, result: ReplayResult
) -> None:
    with session_scope(factory) as s:
        body = s.get(MessageBody, d.message_id) if d.message_id is not None else None
        raw = unpack(body.compression, body.raw) if body is not None else None
    if raw is None:
        with session_scope(factory) as s:
            actions.mark_dropped(s, d.id, "the draft was discarded")
        result.dropped += 1
        return
    existing = conn.find_by_message_id(d.header_id) if d.header_id else []
    flags = d.payload.get("flags", ["draft", "seen"])
    new_uid = max(existing) if existing else conn.append(d.folder, raw, flags=flags)
    with session_scope(factory) as s:
        actions.landed(s, d.id, d.folder_id, new_uid)
        actions.mark_done(s, d.id)
    result.done += 1
