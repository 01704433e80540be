"""Local-first changes in the store: instant, merged, undoable (no server here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import accounts as acc
from storage import actions, queries, syncstate
from storage.errors import NotFound
from storage.ingest import Incoming, ingest_batch
from storage.models import Action, MessageUid
from tests.mailmaker import mail

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def mailbox(session: Session, account_id: int, folder_id: int) -> list[int]:
    for name in ("Archive", "Trash", "Drafts"):
        acc.ensure_folder(session, account_id, name)
    res = ingest_batch(
        session,
        account_id,
        folder_id,
        [Incoming(mail(f"a{i}@x", f"s{i}"), uid=10 + i) for i in range(5)],
    )
    return [r.message_id for r in res]


def pending(session: Session) -> list[Action]:
    return list(
        session.scalars(select(Action).where(Action.state == "pending").order_by(Action.id))
    )


def flags_of(session: Session, mid: int) -> tuple[str, ...]:
    return queries.summaries(session, [mid])[0].flags


def test_mark_read_is_local_at_once_and_queued(session: Session, mailbox: list[int]) -> None:
    res = actions.set_flag(session, mailbox[:2], "seen", True, now=NOW)
    assert res.changed == 2
    assert flags_of(session, mailbox[0]) == ("seen",)
    queued = pending(session)
    assert [(a.kind, json.loads(a.payload)) for a in queued] == [
        ("flags", {"flags": {"seen": [False, True]}})
    ] * 2
    # Again: nothing changes, nothing more is queued.
    assert actions.set_flag(session, mailbox[:2], "seen", True, now=NOW).changed == 0
    assert len(pending(session)) == 2


def test_read_then_unread_is_no_action(session: Session, mailbox: list[int]) -> None:
    actions.set_flag(session, [mailbox[0]], "seen", True, now=NOW)
    actions.set_flag(session, [mailbox[0]], "flagged", True, now=NOW)
    actions.set_flag(session, [mailbox[0]], "seen", False, now=NOW)
    [a] = pending(session)
    assert json.loads(a.payload) == {"flags": {"flagged": [False, True]}}
    actions.set_flag(session, [mailbox[0]], "flagged", False, now=NOW)
    assert pending(session) == []


def test_move_uses_a_placeholder_until_replayed(
    session: Session, mailbox: list[int], account_id: int, folder_id: int
) -> None:
    archive = acc.find_folder(session, account_id, "Archive")[0]
    res = actions.archive(session, [mailbox[0]], now=NOW)
    assert res.changed == 1
    [a] = pending(session)
    assert a.kind == "move"
    assert json.loads(a.payload) == {"uid": 10, "target": archive}
    loc = session.scalar(select(MessageUid).where(MessageUid.message_id == mailbox[0]))
    assert loc is not None
    assert (loc.folder_id, loc.uid) == (archive, -a.id)
    # Sync sees no UID there, and does not take the placeholder for an expunge.
    assert syncstate.local_uids(session, archive) == []
    assert 10 not in syncstate.local_uids(session, folder_id)
    # The server answered COPYUID 10 -> 77.
    actions.landed(session, a.id, archive, 77)
    actions.mark_done(session, a.id)
    assert syncstate.local_uids(session, archive) == [77]


def test_failed_move_puts_the_message_back(
    session: Session, mailbox: list[int], account_id: int, folder_id: int
) -> None:
    actions.archive(session, [mailbox[1]], now=NOW)
    [a] = pending(session)
    actions.fail(session, a.id, "folder Archive no longer exists on the server")
    loc = session.scalar(select(MessageUid).where(MessageUid.message_id == mailbox[1]))
    assert loc is not None
    assert (loc.folder_id, loc.uid) == (folder_id, 11)
    [info] = actions.list_actions(session)
    assert info.state == "failed"
    assert "no longer exists" in (info.last_error or "")


def test_delete_goes_to_trash_then_for_good(
    session: Session, mailbox: list[int], account_id: int
) -> None:
    trash = acc.find_folder(session, account_id, "Trash")[0]
    actions.trash(session, [mailbox[2]], now=NOW)
    assert queries.summaries(session, [mailbox[2]])[0].folders == ("Trash",)
    [move] = pending(session)
    actions.landed(session, move.id, trash, 5)
    actions.mark_done(session, move.id)
    actions.trash(session, [mailbox[2]], now=NOW)
    [gone] = pending(session)
    assert gone.kind == "expunge"
    assert json.loads(gone.payload) == {"uid": 5}
    assert queries.summaries(session, [mailbox[2]])[0].folders == ()
    with pytest.raises(actions.ActionError, match="cannot undo"):
        actions.undo(session, now=NOW)


def test_undo_flags_and_moves(session: Session, mailbox: list[int]) -> None:
    actions.set_flag(session, mailbox[:3], "flagged", True, now=NOW)
    actions.archive(session, [mailbox[3]], now=NOW)
    assert actions.undo(session, now=NOW) == "archived 1 message(s) to Archive"
    assert queries.summaries(session, [mailbox[3]])[0].folders == ("INBOX",)
    assert actions.undo(session, now=NOW) == "marked 3 message(s) starred"
    assert all(flags_of(session, m) == () for m in mailbox[:3])
    assert pending(session) == []  # undone before replay: nothing reaches the server
    with pytest.raises(NotFound, match="nothing to undo"):
        actions.undo(session, now=NOW)


def test_undo_after_replay_queues_the_inverse(session: Session, mailbox: list[int]) -> None:
    actions.set_flag(session, [mailbox[4]], "seen", True, now=NOW)
    [a] = pending(session)
    actions.mark_done(session, a.id)  # replayed
    actions.undo(session, now=NOW)
    [inverse] = pending(session)
    assert json.loads(inverse.payload) == {"flags": {"seen": [True, False]}}


def test_pending_changes_are_protected_from_read_sync(
    session: Session, mailbox: list[int], folder_id: int
) -> None:
    actions.set_flag(session, [mailbox[0]], "seen", True, now=NOW)
    assert syncstate.protected_uids(session, folder_id) == {10}


def test_save_draft_three_times_keeps_one(
    session: Session, account_id: int, mailbox: list[int]
) -> None:
    drafts = acc.find_folder(session, account_id, "Drafts")[0]
    ids = [
        actions.save_draft(
            session, account_id, mail("d@x", "draft", body=f"v{i}\n"), "compose-1", now=NOW
        )
        for i in range(3)
    ]
    appends = [a for a in pending(session) if a.kind == "append"]
    assert len(appends) == 1
    assert appends[0].message_id == ids[-1]
    locs = list(session.scalars(select(MessageUid).where(MessageUid.folder_id == drafts)))
    assert [loc.message_id for loc in locs] == [ids[-1]]
    # Once on the server, a new version replaces it there too.
    actions.landed(session, appends[0].id, drafts, 3)
    actions.mark_done(session, appends[0].id)
    actions.save_draft(session, account_id, mail("d@x", "draft", body="v4\n"), "compose-1", now=NOW)
    kinds = sorted(a.kind for a in pending(session))
    assert kinds == ["append", "expunge"]
    actions.discard_draft(session, account_id, "compose-1", now=NOW)
    assert [a.kind for a in pending(session)] == ["expunge"]


def test_unknown_messages_are_refused(session: Session, mailbox: list[int]) -> None:
    with pytest.raises(NotFound, match="no message with id 999"):
        actions.set_flag(session, [mailbox[0], 999], "seen", True, now=NOW)
    assert pending(session) == []
