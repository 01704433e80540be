"""The sync runner: carries out ``planner.plan`` for each folder of an account.

Thin on purpose: decisions live in ``sync/planner.py`` (pure, tested without a
server), writes in ``storage/syncstate.py`` and ``storage/ingest.py``, the protocol in
``sync/imap.py``. What is here is the order of things, and that order is what makes
sync crash-safe and cheap:

1. LIST, then refresh the folder table (new folders, roles); folders gone from the
   server are removed only after the others synced, so a renamed folder's messages
   are found again (by Message-ID and size) instead of downloaded again.
2. Per folder: SELECT (with QRESYNC when we have a state to resume), plan, then
   - a UIDVALIDITY change drops the UID map (messages stay, re-matched below);
   - UIDs to fetch are first matched against messages already stored in the account
     (a copy, a label, a moved or renamed message): only the rest is downloaded;
   - downloads go newest first in batches bounded by count and bytes, each batch
     committed on its own, so a kill loses at most one batch of work;
   - flag changes (CHANGEDSINCE, or every flag without CONDSTORE) and expunges
     (VANISHED, or comparing UID sets) are applied;
   - only then is the folder marked synced with the UIDNEXT / HIGHESTMODSEQ seen at
     SELECT, so anything that arrived meanwhile is picked up next time.
3. Messages that live in no folder any more are deleted.

Progress and results are reported as plain events (dicts) through ``emit``; the CLI
prints them as JSON lines for the desktop app.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage import syncstate
from storage.db import session_scope
from storage.dto import AccountInfo
from storage.models import Message
from sync import planner
from sync.errors import ConnectionLost, FolderGone, SyncError
from sync.imap import FetchedMessage, FlagUpdate, ImapConnection, SelectInfo

BATCH_COUNT = 500
BATCH_BYTES = 16 * 1024 * 1024
RETRY_AFTER = timedelta(minutes=5)

Emit = Callable[[dict[str, Any]], None]


def _ignore(event: dict[str, Any]) -> None:
    del event


@dataclass(slots=True)
class FolderResult:
    name: str
    added: int = 0
    matched: int = 0  # stored again from messages already here (no download)
    removed: int = 0
    flags_changed: int = 0
    error: str | None = None


@dataclass(slots=True)
class AccountResult:
    account: str
    folders: list[FolderResult] = field(default_factory=list)
    removed_folders: list[str] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.folders)

    @property
    def errors(self) -> list[str]:
        return [f"{f.name}: {f.error}" for f in self.folders if f.error]


class AccountSync:
    """Sync one account over one open connection."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        account: AccountInfo,
        conn: ImapConnection,
        *,
        emit: Emit = _ignore,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.factory = factory
        self.account = account
        self.conn = conn
        self.emit = emit
        self.now = now
        self.caps = planner.Capabilities(conn.has_condstore, conn.has_qresync)

    # -- account --------------------------------------------------------------------

    def run(self, only_folder: str | None = None) -> AccountResult:
        result = AccountResult(self.account.name)
        # Local changes first (RFC 4549): the server must see them before we read it.
        self.replay()
        server = [
            syncstate.ServerFolder(_user_name(e.name, e.delimiter), e.name, e.delimiter, e.role)
            for e in self.conn.list_folders()
            if e.selectable
        ]
        with session_scope(self.factory) as s:
            folders, gone = syncstate.update_folder_list(s, self.account.id, server)
        for f in folders:
            if only_folder is not None and f.name != only_folder:
                continue
            result.folders.append(self.sync_folder(f))
        if only_folder is None:
            with session_scope(self.factory) as s:
                for name in gone:
                    syncstate.remove_folder(s, self.account.id, name)
                removed = syncstate.remove_orphans(s, self.account.id)
            result.removed_folders = gone
            if gone or removed:
                self.emit(
                    {"event": "folders_removed", "account": self.account.name, "folders": gone}
                )
        return result

    def replay(self) -> None:
        from sync.replay import replay

        replay(
            self.factory,
            self.account.id,
            self.account.name,
            self.conn,
            emit=self.emit,
            now=self.now,
        )

    def inbox(self) -> syncstate.FolderSyncState | None:
        with session_scope(self.factory) as s:
            return syncstate.inbox_state(s, self.account.id)

    def folder_state(self, folder_id: int) -> syncstate.FolderSyncState:
        with session_scope(self.factory) as s:
            return syncstate.folder_state(s, folder_id)

    # -- folder ---------------------------------------------------------------------

    def sync_folder(self, folder: syncstate.FolderSyncState) -> FolderResult:
        res = FolderResult(folder.name)
        try:
            self._sync_folder(folder, res)
        except ConnectionLost:
            raise
        except FolderGone:
            with session_scope(self.factory) as s:
                syncstate.remove_folder(s, self.account.id, folder.name)
            res.error = None
        except SyncError as exc:
            res.error = str(exc)
            with session_scope(self.factory) as s:
                syncstate.mark_error(s, folder.id, str(exc), self.now() + RETRY_AFTER)
            self.emit(
                {
                    "event": "error",
                    "account": self.account.name,
                    "folder": folder.name,
                    "message": str(exc),
                }
            )
        return res

    def _sync_folder(self, folder: syncstate.FolderSyncState, res: FolderResult) -> None:
        qresync = None
        if (
            self.caps.qresync
            and folder.complete
            and folder.uidvalidity is not None
            and folder.highestmodseq is not None
        ):
            qresync = (folder.uidvalidity, folder.highestmodseq)
        info = self.conn.select(folder.remote_name or folder.name, readonly=True, qresync=qresync)
        local = planner.LocalFolder(
            folder.uidvalidity, folder.uidnext, folder.highestmodseq, folder.complete
        )
        remote = planner.RemoteFolder(
            info.uidvalidity, info.uidnext, info.highestmodseq, info.exists
        )
        plan = planner.plan(local, remote, self.caps)
        if plan.nothing_to_do and not info.vanished and not info.changed:
            self._done(folder, info, res)
            return

        with session_scope(self.factory) as s:
            if plan.reset:
                syncstate.reset_folder(s, folder.id, info.uidvalidity)
            else:
                syncstate.start_folder(s, folder.id, info.uidvalidity)
            have = syncstate.local_uids(s, folder.id)
            protected = syncstate.protected_uids(s, folder.id)

        flag_updates: list[FlagUpdate] = []
        vanished: list[int] = list(info.vanished)
        remote_uids: list[int] | None = None
        if plan.flags is planner.Flags.ALL and plan.expunges is planner.Expunges.COMPARE and have:
            # One FETCH gives every flag and, with it, the server's UID list.
            flag_updates, _ = self.conn.fetch_flags("1:*")
            remote_uids = [u.uid for u in flag_updates]
        elif plan.list_uids or plan.expunges is planner.Expunges.COMPARE:
            remote_uids = self.conn.search_all_uids()

        if plan.flags is planner.Flags.CHANGEDSINCE:
            if qresync is not None:
                flag_updates = list(info.changed)
            else:
                flag_updates, more = self.conn.fetch_flags(
                    "1:*",
                    changedsince=plan.since_modseq,
                    vanished=plan.expunges is planner.Expunges.VANISHED,
                )
                vanished += more

        if remote_uids is not None:
            to_fetch = planner.missing(remote_uids, have)
            gone = planner.gone(remote_uids, have) if have else []
        else:
            to_fetch = (
                sorted(self.conn.uids_from(plan.new_from), reverse=True)
                if plan.new_from is not None
                else []
            )
            gone = sorted(set(vanished) & set(have))
        if plan.expunges is planner.Expunges.VANISHED:
            gone = sorted(set(gone) | (set(vanished) & set(have)))

        if gone:
            with session_scope(self.factory) as s:
                removed = syncstate.remove_uids(s, folder.id, gone)
            res.removed = len(removed)
            self.emit(
                {
                    "event": "messages_removed",
                    "account": self.account.name,
                    "folder": folder.name,
                    "ids": sorted(set(removed)),
                }
            )
        if flag_updates:
            known = set(have)
            with session_scope(self.factory) as s:
                changed = syncstate.apply_flags(
                    s,
                    folder.id,
                    [
                        syncstate.FlagState(u.uid, u.flags, u.keywords, u.modseq)
                        for u in flag_updates
                        if u.uid in known and u.uid not in protected
                    ],
                )
            res.flags_changed = len(changed)
            if changed:
                self.emit(
                    {
                        "event": "flags_changed",
                        "account": self.account.name,
                        "folder": folder.name,
                        "ids": sorted(set(changed)),
                    }
                )
        if to_fetch:
            self._fetch(folder, to_fetch, res)
        held_back = any(u.uid in protected for u in flag_updates)
        self._done(folder, info, res, held_back=held_back)

    def _done(
        self,
        folder: syncstate.FolderSyncState,
        info: SelectInfo,
        res: FolderResult,
        *,
        held_back: bool = False,
    ) -> None:
        # When flags of messages with pending local changes were held back, keep the
        # old HIGHESTMODSEQ: the next sync asks for those changes again, after replay.
        modseq = folder.highestmodseq if held_back else info.highestmodseq
        with session_scope(self.factory) as s:
            syncstate.mark_synced(
                s,
                folder.id,
                uidvalidity=info.uidvalidity,
                uidnext=info.uidnext,
                highestmodseq=modseq,
                when=self.now(),
            )
        self.emit(
            {
                "event": "folder_synced",
                "account": self.account.name,
                "folder": folder.name,
                "added": res.added,
                "matched": res.matched,
                "removed": res.removed,
                "flags_changed": res.flags_changed,
            }
        )

    def _fetch(self, folder: syncstate.FolderSyncState, uids: list[int], res: FolderResult) -> None:
        """Store ``uids`` (newest first): re-match what we have, download the rest."""
        with session_scope(self.factory) as s:
            has_mail = s.scalar(
                select(Message.id).where(Message.account_id == self.account.id).limit(1)
            )
        sizes: dict[int, int] = {}
        if has_mail is not None:
            headers = self.conn.fetch_headers(uids)
            sizes = {uid: size for uid, (_mid, size) in headers.items()}
            with session_scope(self.factory) as s:
                matched = syncstate.match_existing(s, self.account.id, headers)
            if matched:
                flags, _ = self.conn.fetch_flags(list(matched))
                with session_scope(self.factory) as s:
                    syncstate.add_locations(
                        s,
                        folder.id,
                        [
                            syncstate.Location(u.uid, matched[u.uid], u.flags, u.keywords, u.modseq)
                            for u in flags
                            if u.uid in matched
                        ],
                    )
                res.matched = len(matched)
                uids = [u for u in uids if u not in matched]
        if not uids:
            return
        if not sizes:
            sizes = self.conn.fetch_sizes(uids)
        total = len(uids)
        done = 0
        for batch in planner.batches(uids, sizes, max_count=BATCH_COUNT, max_bytes=BATCH_BYTES):
            fetched = self.conn.fetch_messages(batch)
            ids = self._store(folder, fetched)
            done += len(batch)
            res.added += len(ids)
            self.emit(
                {
                    "event": "messages_added",
                    "account": self.account.name,
                    "folder": folder.name,
                    "ids": ids,
                }
            )
            self.emit(
                {
                    "event": "progress",
                    "account": self.account.name,
                    "folder": folder.name,
                    "done": done,
                    "total": total,
                }
            )

    def _store(
        self, folder: syncstate.FolderSyncState, fetched: Sequence[FetchedMessage]
    ) -> list[int]:
        # Imported here: parsing costs nothing to a sync that finds nothing new.
        from storage.ingest import Incoming, ingest_batch

        items = [
            Incoming(
                m.raw,
                flags=m.flags,
                keywords=m.keywords,
                uid=m.uid,
                modseq=m.modseq,
                internal_date=m.internal_date,
            )
            for m in fetched
        ]
        with session_scope(self.factory) as s:
            results = ingest_batch(s, self.account.id, folder.id, items)
        return [r.message_id for r in results if r.new_location]


def _user_name(name: str, delimiter: str | None) -> str:
    """Folder names as users see them: '/'-separated whatever the server's delimiter."""
    if delimiter and delimiter != "/":
        return "/".join(name.split(delimiter))
    return name
