"""The store's side of sync, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import queries, syncstate
from storage.ingest import Incoming, ingest_batch
from storage.models import Folder, Message, MessageUid, Thread
from tests.mailmaker import mail

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def sf(name: str, role: str | None = None) -> syncstate.ServerFolder:
    return syncstate.ServerFolder(name, name.replace("/", "."), ".", role)


def test_folder_list_creates_orders_and_reports_gone(session: Session, account_id: int) -> None:
    folders, gone = syncstate.update_folder_list(
        session,
        account_id,
        [
            sf("Zeta"),
            sf("Trash", "trash"),
            sf("INBOX"),
            sf("Sent Items", "sent"),
            sf("Projekte/Übersicht"),
        ],
    )
    assert [f.name for f in folders] == [
        "INBOX",
        "Sent Items",
        "Projekte/Übersicht",
        "Zeta",
        "Trash",
    ]
    assert [f.role for f in folders][:2] == ["inbox", "sent"]
    assert folders[2].remote_name == "Projekte.Übersicht"
    assert gone == []
    assert all(not f.complete for f in folders)
    again, gone = syncstate.update_folder_list(
        session, account_id, [sf("INBOX"), sf("Archive", "archive")]
    )
    assert [f.name for f in again] == ["INBOX", "Archive"]
    assert gone == ["Projekte/Übersicht", "Sent Items", "Trash", "Zeta"]
    syncstate.remove_folder(session, account_id, "Zeta")
    names = set(session.scalars(select(Folder.name)))
    assert "Zeta" not in names


def test_flags_expunges_and_state(session: Session, account_id: int, folder_id: int) -> None:
    res = ingest_batch(
        session,
        account_id,
        folder_id,
        [Incoming(mail(f"m{i}@x", f"s{i}"), uid=i, flags=frozenset({"seen"})) for i in (1, 2, 3)],
    )
    ids = [r.message_id for r in res]
    changed = syncstate.apply_flags(
        session,
        folder_id,
        [
            syncstate.FlagState(1, frozenset({"seen"}), (), 5),  # unchanged
            syncstate.FlagState(2, frozenset({"seen", "flagged"}), ("$Work",), 6),
            syncstate.FlagState(3, frozenset(), (), 7),
            syncstate.FlagState(99, frozenset(), (), 8),  # unknown UID: ignored
        ],
    )
    assert sorted(changed) == sorted(ids[1:])
    flags = {s.id: s.flags for s in queries.summaries(session, ids)}
    assert flags[ids[1]] == ("seen", "flagged", "$work")
    assert flags[ids[2]] == ()
    removed = syncstate.remove_uids(session, folder_id, [3, 42])
    assert removed == [ids[2]]
    assert syncstate.local_uids(session, folder_id) == [1, 2]

    syncstate.mark_synced(
        session, folder_id, uidvalidity=9, uidnext=None, highestmodseq=8, when=NOW
    )
    st = syncstate.folder_state(session, folder_id)
    assert (st.uidvalidity, st.uidnext, st.highestmodseq, st.complete) == (9, 3, 8, True)
    syncstate.mark_error(session, folder_id, "boom", NOW)
    assert not syncstate.folder_state(session, folder_id).complete
    assert syncstate.reset_folder(session, folder_id, 10) == 2
    st = syncstate.folder_state(session, folder_id)
    assert (st.uidvalidity, st.state) == (10, "uidinvalid")
    assert session.scalar(select(func.count()).select_from(Message)) == 3  # messages stay


def test_rematch_by_message_id_and_size(session: Session, account_id: int, folder_id: int) -> None:
    raw = mail("keep@x", "kept")
    [r] = ingest_batch(session, account_id, folder_id, [Incoming(raw, uid=5)])
    syncstate.reset_folder(session, folder_id, 2)
    wanted = {
        11: ("keep@x", len(raw)),
        12: ("keep@x", len(raw) + 1),
        13: (None, 10),
        14: ("new@x", 5),
    }
    assert syncstate.match_existing(session, account_id, wanted) == {11: r.message_id}
    syncstate.add_locations(
        session, folder_id, [syncstate.Location(11, r.message_id, frozenset({"flagged"}), (), 3)]
    )
    [s] = queries.summaries(session, [r.message_id])
    assert s.flags == ("flagged",)
    assert syncstate.local_uids(session, folder_id) == [11]


def test_orphans_are_removed_with_their_threads(
    session: Session, account_id: int, folder_id: int
) -> None:
    a = mail("a@x", "A")
    b = mail("b@x", "Re: A", refs="<a@x>")
    c = mail("c@x", "C")
    ingest_batch(
        session, account_id, folder_id, [Incoming(a, uid=1), Incoming(b, uid=2), Incoming(c, uid=3)]
    )
    syncstate.remove_uids(session, folder_id, [2, 3])
    assert syncstate.remove_orphans(session, account_id) == 2
    assert session.scalar(select(func.count()).select_from(Message)) == 1
    assert list(session.scalars(select(Thread.message_count))) == [1]
    assert session.scalar(select(func.count()).select_from(MessageUid)) == 1
