"""Local-first changes: apply to the store at once, queue the replay, undo.

Every user change (mark, flag, move, archive, delete, draft) is one transaction that
changes the local view *and* writes the ``actions`` rows that will make the server
agree (RFC 4549's disconnected model). The server may be down for days: the rows
wait, survive restarts and are retried with backoff by ``sync/replay.py``.

Rules:

- Flags are queued per (message, folder) as the *wanted* state of each flag with the
  value the server had before (``{"seen": [false, true]}``). A later change of the
  same flag merges into the pending row; a flag that ends where it started leaves
  the row, and an empty row is deleted: read then unread is no action at all.
- A move gives the moved location a placeholder UID (the negative action id) in the
  target folder until the server says where it landed (COPYUID); the action keeps
  the source UID. A move that fails for good puts the message back where it was.
- Sync never overwrites a flag that has a pending local change (see
  :func:`pending_message_ids`), and never treats a placeholder as an expunge.
- Undo is a separate log of user operations with their inverse; undoing applies the
  inverse as a new operation (so an already replayed change is reverted by a new
  action, and a pending one simply merges away).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.errors import NotFound, StorageError
from storage.models import Account, Action, Folder, Message, MessageUid, UndoEntry

FLAGS = ("seen", "flagged", "answered", "draft")
MAX_ATTEMPTS = 8
BACKOFF_START = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


class ActionError(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class OpResult:
    changed: int  # locations changed locally
    undo_id: int | None


@dataclass(frozen=True, slots=True)
class ActionInfo:
    id: int
    account: str
    message_id: int | None
    folder: str | None
    kind: str
    state: str
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    created_at: datetime
    summary: str


# -- flags ----------------------------------------------------------------------------


def set_flag(
    session: Session,
    message_ids: Sequence[int],
    flag: str,
    value: bool,
    *,
    now: datetime,
    record_undo: bool = True,
    missing_ok: bool = False,
) -> OpResult:
    """Set ``flag`` on every location of the messages; queue what the server needs.

    A message that is not there raises NotFound, unless ``missing_ok`` (the sender
    flagging the messages its replies answer: one may have been deleted meanwhile)."""
    if flag not in FLAGS:
        raise ActionError(f"unknown flag {flag!r}")
    locs = _locations(session, message_ids)
    if not missing_ok:
        _check_all_found(message_ids, {loc.message_id for loc in locs})
    col = getattr(MessageUid, flag)
    changed = [loc for loc in locs if bool(getattr(loc, flag)) != value]
    previous = {loc.message_id: bool(getattr(loc, flag)) for loc in locs}
    if changed:
        session.execute(
            update(MessageUid)
            .where(MessageUid.id.in_([loc.id for loc in changed]))
            .values({col: value})
        )
        pending = {
            (a.message_id, a.folder_id): a
            for a in session.scalars(
                select(Action).where(
                    Action.kind == "flags",
                    Action.state == "pending",
                    Action.message_id.in_(sorted({loc.message_id for loc in changed})),
                )
            )
        }
        accounts = _folder_accounts(session, {loc.folder_id for loc in changed})
        for loc in changed:
            action = pending.get((loc.message_id, loc.folder_id))
            if action is None:
                payload: dict[str, Any] = {"flags": {flag: [not value, value]}}
                session.add(
                    Action(
                        account_id=accounts[loc.folder_id],
                        message_id=loc.message_id,
                        folder_id=loc.folder_id,
                        kind="flags",
                        payload=json.dumps(payload),
                        created_at=now,
                        next_attempt=now,
                    )
                )
                continue
            payload = json.loads(action.payload)
            before = payload["flags"].get(flag, [not value, value])[0]
            if before == value:
                payload["flags"].pop(flag, None)
            else:
                payload["flags"][flag] = [before, value]
            if payload["flags"]:
                action.payload = json.dumps(payload)
            else:
                session.delete(action)
    undo_id = None
    if record_undo and changed:
        ids = sorted({loc.message_id for loc in changed})
        inverse = {
            "op": "flags",
            "flag": flag,
            "values": {str(m): previous[m] for m in ids},
        }
        word = {"seen": "read", "flagged": "starred", "answered": "answered", "draft": "draft"}[
            flag
        ]
        verb = f"marked {len(ids)} message(s) {'' if value else 'not '}{word}"
        undo_id = _log_undo(session, _account_of_messages(session, ids), verb, inverse, now)
    return OpResult(len(changed), undo_id)


# -- moves ----------------------------------------------------------------------------


def move(
    session: Session,
    message_ids: Sequence[int],
    target_folder_id: int,
    *,
    now: datetime,
    source_folder_id: int | None = None,
    record_undo: bool = True,
    verb: str = "moved",
) -> OpResult:
    """Move each message's location (the one in ``source_folder_id``, else its inbox
    copy, else its only one) into the target folder."""
    target = session.get(Folder, target_folder_id)
    if target is None:
        raise NotFound(f"no folder with id {target_folder_id}")
    locs = _locations(session, message_ids)
    _check_all_found(message_ids, {loc.message_id for loc in locs})
    by_msg: dict[int, list[MessageUid]] = {}
    for loc in locs:
        by_msg.setdefault(loc.message_id, []).append(loc)
    roles = {f.id: f.role for f in session.scalars(select(Folder))}
    moved: list[tuple[int, int, int]] = []  # (message, from folder, to folder)
    for mid in message_ids:
        candidates = by_msg.get(mid, [])
        if any(loc.folder_id == target_folder_id for loc in candidates):
            continue  # already there
        chosen = _pick(candidates, source_folder_id, roles)
        if chosen is None:
            continue
        loc = chosen
        here = loc.folder_id
        if loc.uid < 0 and _cancel_pending_move(session, loc, target_folder_id):
            moved.append((mid, here, target_folder_id))
            continue
        account_id = _folder_accounts(session, {loc.folder_id})[loc.folder_id]
        if account_id != target.account_id:
            raise ActionError("messages can only be moved within their account")
        action = Action(
            account_id=account_id,
            message_id=mid,
            folder_id=loc.folder_id,
            kind="move",
            payload="{}",
            created_at=now,
            next_attempt=now,
        )
        session.add(action)
        session.flush()
        action.payload = json.dumps(
            {"uid": loc.uid if loc.uid > 0 else None, "target": target_folder_id}
        )
        moved.append((mid, loc.folder_id, target_folder_id))
        loc.folder_id = target_folder_id
        loc.uid = -action.id
    session.flush()
    undo_id = None
    if record_undo and moved:
        inverse = {"op": "move", "moves": [[m, to, frm] for m, frm, to in moved]}
        desc = f"{verb} {len(moved)} message(s) to {target.name}"
        undo_id = _log_undo(session, target.account_id, desc, inverse, now)
    return OpResult(len(moved), undo_id)


def _cancel_pending_move(session: Session, loc: MessageUid, target_folder_id: int) -> bool:
    """Moving back a move that has not reached the server yet: forget both."""
    pending = session.get(Action, -loc.uid)
    if pending is None or pending.kind != "move" or pending.state != "pending":
        return False
    if pending.folder_id != target_folder_id:
        return False
    revert_move(session, pending)
    session.delete(pending)
    return True


def _pick(
    candidates: list[MessageUid], source: int | None, roles: dict[int, str | None]
) -> MessageUid | None:
    if source is not None:
        return next((c for c in candidates if c.folder_id == source), None)
    if len(candidates) == 1:
        return candidates[0]
    inbox = [c for c in candidates if roles.get(c.folder_id) == "inbox"]
    return inbox[0] if inbox else (candidates[0] if candidates else None)


def folder_with_role(session: Session, account_id: int, roles: Iterable[str]) -> Folder | None:
    for role in roles:
        f = session.scalar(
            select(Folder).where(Folder.account_id == account_id, Folder.role == role).limit(1)
        )
        if f is not None:
            return f
    return None


def archive(session: Session, message_ids: Sequence[int], *, now: datetime) -> OpResult:
    """Move out of the inbox into the account's Archive (or All Mail)."""
    total, last_undo = 0, None
    for account_id, ids in _by_account(session, message_ids).items():
        target = folder_with_role(session, account_id, ("archive", "all"))
        if target is None:
            raise ActionError("the account has no Archive or All Mail folder")
        res = move(session, ids, target.id, now=now, verb="archived")
        total, last_undo = total + res.changed, res.undo_id or last_undo
    return OpResult(total, last_undo)


def trash(session: Session, message_ids: Sequence[int], *, now: datetime) -> OpResult:
    """Delete: to Trash; for a message already in Trash, delete it for good."""
    total, last_undo = 0, None
    for account_id, ids in _by_account(session, message_ids).items():
        target = folder_with_role(session, account_id, ("trash",))
        if target is None:
            raise ActionError("the account has no Trash folder")
        trash_locs = [loc for loc in _locations(session, ids) if loc.folder_id == target.id]
        in_trash = sorted({loc.message_id for loc in trash_locs})
        elsewhere = [m for m in ids if m not in in_trash]
        if elsewhere:
            res = move(session, elsewhere, target.id, now=now, verb="deleted")
            total, last_undo = total + res.changed, res.undo_id or last_undo
        for loc in trash_locs:
            _queue_expunge(session, account_id, loc, now)
            session.delete(loc)
            total += 1
        if in_trash:
            _log_undo(
                session,
                account_id,
                f"deleted {len(in_trash)} message(s) for good",
                None,
                now,
            )
    return OpResult(total, last_undo)


# -- drafts ---------------------------------------------------------------------------


# -- undo -----------------------------------------------------------------------------


def _log_undo(
    session: Session, account_id: int | None, description: str, inverse: Any, now: datetime
) -> int:
    entry = UndoEntry(
        account_id=account_id,
        description=description,
        inverse=None if inverse is None else json.dumps(inverse),
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry.id


def undo(session: Session, *, now: datetime) -> str:
    """Undo the newest operation not undone yet; returns what was undone."""
    entry = session.scalar(
        select(UndoEntry).where(UndoEntry.undone.is_(False)).order_by(UndoEntry.id.desc()).limit(1)
    )
    if entry is None:
        raise NotFound("nothing to undo")
    entry.undone = True
    if entry.inverse is None:
        raise ActionError(f"cannot undo: {entry.description}")
    inverse = json.loads(entry.inverse)
    if inverse["op"] == "flags":
        by_value: dict[bool, list[int]] = {}
        for mid, value in inverse["values"].items():
            by_value.setdefault(bool(value), []).append(int(mid))
        for value, ids in by_value.items():
            existing = [m for m in ids if session.get(Message, m) is not None]
            if existing:
                set_flag(session, existing, inverse["flag"], value, now=now, record_undo=False)
    elif inverse["op"] == "move":
        for mid, frm, to in inverse["moves"]:
            if session.get(Message, mid) is not None and session.get(Folder, to) is not None:
                move(session, [mid], to, now=now, source_folder_id=frm, record_undo=False)
    return entry.description


# -- the queue ------------------------------------------------------------------------


def pending_message_ids(session: Session, folder_id: int) -> set[int]:
    """Messages with a local change not yet on the server (sync must not undo it)."""
    return set(
        session.scalars(
            select(Action.message_id).where(
                Action.folder_id == folder_id,
                Action.state.in_(["pending", "running"]),
                Action.message_id.is_not(None),
            )
        )
    )


def list_actions(
    session: Session, *, include_done: bool = False, account_id: int | None = None
) -> list[ActionInfo]:
    q = (
        select(Action, Account.name, Folder.name)
        .join(Account, Account.id == Action.account_id)
        .outerjoin(Folder, Folder.id == Action.folder_id)
        .order_by(Action.id)
    )
    if not include_done:
        q = q.where(Action.state.in_(["pending", "running", "failed"]))
    if account_id is not None:
        q = q.where(Action.account_id == account_id)
    out = []
    for a, account, folder in session.execute(q):
        out.append(
            ActionInfo(
                a.id,
                account,
                a.message_id,
                folder,
                a.kind,
                a.state,
                a.attempts,
                a.next_attempt,
                a.last_error,
                a.created_at,
                _summary(session, a),
            )
        )
    return out


def _summary(session: Session, a: Action) -> str:
    payload = json.loads(a.payload)
    if a.kind == "flags":
        return ", ".join(
            f"{'+' if to else '-'}{flag}" for flag, (_frm, to) in sorted(payload["flags"].items())
        )
    if a.kind == "move":
        target = session.get(Folder, payload.get("target"))
        return f"to {target.name if target else '(deleted folder)'}"
    if a.kind == "append":
        return "save draft"
    return "delete for good" if a.kind == "expunge" else a.kind


def retry(session: Session, action_id: int, *, now: datetime) -> None:
    action = _get(session, action_id)
    if action.state not in ("pending", "failed"):
        raise ActionError(
            f"action {action_id} is {action.state}; only pending or failed ones retry"
        )
    action.state, action.next_attempt, action.attempts = "pending", now, 0


def retry_all(session: Session, *, now: datetime) -> int:
    res = session.execute(
        update(Action)
        .where(Action.state.in_(["pending", "failed"]))
        .values(state="pending", next_attempt=now, attempts=0)
    )
    return int(getattr(res, "rowcount", 0) or 0)


def discard(session: Session, action_id: int) -> None:
    """Give up on an action. A move is put back where it was; the next sync brings the
    server's flags back."""
    action = _get(session, action_id)
    if action.state == "done":
        raise ActionError(f"action {action_id} is done already")
    if action.kind == "move":
        revert_move(session, action)
    action.state = "dropped"
    action.last_error = (action.last_error or "") + " (discarded by the user)"


def _get(session: Session, action_id: int) -> Action:
    action = session.get(Action, action_id)
    if action is None:
        raise NotFound(f"no action with id {action_id}")
    return action


def revert_move(session: Session, action: Action) -> None:
    """Put a moved location back into its source folder (the move did not happen)."""
    payload = json.loads(action.payload)
    loc = session.scalar(
        select(MessageUid).where(
            MessageUid.folder_id == payload["target"], MessageUid.uid == -action.id
        )
    )
    if loc is None or action.folder_id is None:
        return
    uid = payload.get("uid") or -action.id
    clash = session.scalar(
        select(MessageUid.id).where(MessageUid.folder_id == action.folder_id, MessageUid.uid == uid)
    )
    if clash is not None:
        session.delete(loc)
        return
    loc.folder_id = action.folder_id
    loc.uid = uid


def backoff(attempts: int) -> timedelta:
    delay: timedelta = BACKOFF_START * (2 ** max(0, attempts - 1))
    return min(BACKOFF_MAX, delay)


# -- helpers --------------------------------------------------------------------------


def _locations(session: Session, message_ids: Sequence[int]) -> list[MessageUid]:
    out: list[MessageUid] = []
    ids = sorted(set(message_ids))
    for i in range(0, len(ids), 500):
        out += list(
            session.scalars(select(MessageUid).where(MessageUid.message_id.in_(ids[i : i + 500])))
        )
    return out


def _check_all_found(wanted: Sequence[int], found: set[int]) -> None:
    missing = sorted(set(wanted) - found)
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise NotFound(f"no message with id {shown}")


def _folder_accounts(session: Session, folder_ids: set[int]) -> dict[int, int]:
    return dict(
        session.execute(select(Folder.id, Folder.account_id).where(Folder.id.in_(folder_ids))).all()
    )


def _account_of_messages(session: Session, ids: Sequence[int]) -> int | None:
    return session.scalar(select(Message.account_id).where(Message.id.in_(list(ids))).limit(1))


def _by_account(session: Session, message_ids: Sequence[int]) -> dict[int, list[int]]:
    rows = session.execute(
        select(Message.id, Message.account_id).where(Message.id.in_(list(message_ids)))
    ).all()
    _check_all_found(message_ids, {r.id for r in rows})
    out: dict[int, list[int]] = {}
    for r in rows:
        out.setdefault(r.account_id, []).append(r.id)
    return out


# -- replay bookkeeping (used by sync/replay.py) --------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    kind: str
    message_id: int | None
    folder_id: int
    folder: str  # remote name of the source folder
    uid: int | None  # the message's UID in the source folder, when known
    payload: dict[str, Any]
    target_id: int | None
    target: str | None  # remote name of the target folder (moves)
    header_id: str | None  # Message-ID, to find a message whose UID is unknown
    attempts: int


def due(session: Session, account_id: int, now: datetime) -> list[Due]:
    """Pending actions of the account whose time has come, oldest first."""
    rows = session.scalars(
        select(Action)
        .where(
            Action.account_id == account_id,
            Action.state == "pending",
            (Action.next_attempt.is_(None)) | (Action.next_attempt <= now),
        )
        .order_by(Action.id)
    ).all()
    folders = {
        f.id: f for f in session.scalars(select(Folder).where(Folder.account_id == account_id))
    }
    out = []
    for a in rows:
        src = folders.get(a.folder_id or -1)
        if src is None:
            a.state, a.last_error = "dropped", "the folder no longer exists"
            continue
        payload = json.loads(a.payload)
        uid: int | None = None
        if a.kind in ("move", "expunge"):
            uid = payload.get("uid")
        elif a.kind == "flags" and a.message_id is not None:
            uid = session.scalar(
                select(MessageUid.uid).where(
                    MessageUid.message_id == a.message_id, MessageUid.folder_id == src.id
                )
            )
        target = folders.get(payload.get("target", -1)) if a.kind == "move" else None
        header = session.scalar(select(Message.message_id).where(Message.id == a.message_id))
        out.append(
            Due(
                a.id,
                a.kind,
                a.message_id,
                src.id,
                src.remote_name or src.name,
                uid,
                payload,
                target.id if target else None,
                (target.remote_name or target.name) if target else None,
                header,
                a.attempts,
            )
        )
    return out


def mark_done(session: Session, action_id: int) -> None:
    session.execute(update(Action).where(Action.id == action_id).values(state="done"))


def mark_dropped(session: Session, action_id: int, note: str) -> None:
    session.execute(
        update(Action).where(Action.id == action_id).values(state="dropped", last_error=note)
    )


def mark_retry(session: Session, action_id: int, error: str, *, now: datetime) -> bool:
    """Count a failed attempt; returns True when the action failed for good."""
    action = _get(session, action_id)
    action.attempts += 1
    action.last_error = error[:500]
    if action.attempts >= MAX_ATTEMPTS:
        fail(session, action, error)
        return True
    action.next_attempt = now + backoff(action.attempts)
    return False


def fail(session: Session, action: Action | int, error: str) -> None:
    """The action cannot be done: show why, and undo a move locally."""
    if isinstance(action, int):
        action = _get(session, action)
    action.state = "failed"
    action.last_error = error[:500]
    if action.kind == "move":
        revert_move(session, action)


def landed(session: Session, action_id: int, folder_id: int, new_uid: int | None) -> None:
    """A moved or appended message is on the server: give its location the real UID
    (or, when the server did not say, drop the placeholder: sync finds it again)."""
    loc = session.scalar(
        select(MessageUid).where(MessageUid.folder_id == folder_id, MessageUid.uid == -action_id)
    )
    if loc is None:
        return
    if new_uid is None:
        session.delete(loc)
        return
    clash = session.scalar(
        select(MessageUid).where(MessageUid.folder_id == folder_id, MessageUid.uid == new_uid)
    )
    if clash is not None:
        session.delete(loc)  # a sync got there first
        return
    loc.uid = new_uid
    # Later moves of the same message out of this folder now know their source UID.
    for later in session.scalars(
        select(Action).where(
            Action.folder_id == folder_id,
            Action.message_id == loc.message_id,
            Action.state == "pending",
            Action.kind.in_(["move", "expunge"]),
        )
    ):
        payload = json.loads(later.payload)
        if not payload.get("uid"):
            payload["uid"] = new_uid
            later.payload = json.dumps(payload)


# -- drafts ---------------------------------------------------------------------------


def _queue_expunge(session: Session, account_id: int, loc: MessageUid, now: datetime) -> None:
    """Queue deleting a location for good on the server (UID STORE \\Deleted + UID EXPUNGE)."""
    session.add(
        Action(
            account_id=account_id,
            message_id=loc.message_id,
            folder_id=loc.folder_id,
            kind="expunge",
            payload=json.dumps({"uid": loc.uid if loc.uid > 0 else None}),
            created_at=now,
            next_attempt=now,
        )
    )


def _drafts_folder(session: Session, account_id: int) -> Folder:
    folder = folder_with_role(session, account_id, ("drafts",))
    if folder is None:
        raise ActionError("the account has no Drafts folder")
    return folder


def _forget_draft(
    session: Session, account_id: int, folder: Folder, draft_key: str, now: datetime
) -> None:
    """Remove the stored versions of a draft locally, and from the server if there."""
    for old in session.scalars(
        select(Action).where(Action.account_id == account_id, Action.kind == "append")
    ):
        if json.loads(old.payload).get("draft") != draft_key or old.message_id is None:
            continue
        for loc in session.scalars(
            select(MessageUid).where(
                MessageUid.message_id == old.message_id, MessageUid.folder_id == folder.id
            )
        ):
            if loc.uid > 0:
                _queue_expunge(session, account_id, loc, now)
            session.delete(loc)
        if old.state in ("pending", "failed"):
            session.delete(old)
        else:
            old.payload = json.dumps({"draft": None, "was": draft_key})


def save_draft(
    session: Session, account_id: int, raw: bytes, draft_key: str, *, now: datetime
) -> int:
    """Store a draft version locally at once and queue its APPEND; the version saved
    before (same ``draft_key``, one compose session) is replaced, here and on the
    server. Returns the local message id."""
    from storage.ingest import Incoming, ingest_batch

    folder = _drafts_folder(session, account_id)
    _forget_draft(session, account_id, folder, draft_key, now)
    action = Action(
        account_id=account_id,
        folder_id=folder.id,
        kind="append",
        payload=json.dumps({"draft": draft_key}),
        created_at=now,
        next_attempt=now,
    )
    session.add(action)
    session.flush()
    [res] = ingest_batch(
        session,
        account_id,
        folder.id,
        [Incoming(raw, flags=frozenset({"draft", "seen"}), uid=-action.id)],
        now=now,
    )
    action.message_id = res.message_id
    return res.message_id


def discard_draft(session: Session, account_id: int, draft_key: str, *, now: datetime) -> None:
    _forget_draft(session, account_id, _drafts_folder(session, account_id), draft_key, now)


def store_sent(
    session: Session, account_id: int, raws: Sequence[bytes], *, now: datetime
) -> list[int]:
    """Keep sent messages in Sent: locally at once, on the server by queued APPENDs.

    Returns the local message ids (none when the account has no Sent folder). Many
    at a time: the outbox files what one round sent in batches."""
    from storage.ingest import Incoming, ingest_batch

    folder = folder_with_role(session, account_id, ("sent",))
    if folder is None or not raws:
        return []
    appends = [
        Action(
            account_id=account_id,
            folder_id=folder.id,
            kind="append",
            payload=json.dumps({"flags": ["seen"]}),
            created_at=now,
            next_attempt=now,
        )
        for _ in raws
    ]
    session.add_all(appends)
    session.flush()
    stored = ingest_batch(
        session,
        account_id,
        folder.id,
        [
            Incoming(raw, flags=frozenset({"seen"}), uid=-a.id)
            for raw, a in zip(raws, appends, strict=True)
        ],
        now=now,
    )
    for action, res in zip(appends, stored, strict=True):
        action.message_id = res.message_id
    return [res.message_id for res in stored]
