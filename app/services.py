"""The facade that the CLI and the desktop app use: one object per open profile.

Every method is one short unit of work on its own session and returns plain records
(``storage.dto``), so callers never hold a session or an ORM object. Names are
resolved here, with one-line errors for the user (unknown account, unknown folder).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.errors import UsageError
from app.profile import Profile
from storage import accounts as acc
from storage import actions, outbox, queries
from storage.db import open_database, read_factory, session_factory, session_scope
from storage.dto import AccountInfo, FolderInfo, MessageDetail, MessageSummary
from storage.models import Message


class Services:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        self._reader: sessionmaker[Session] | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = open_database(self.profile.db_path)
            self._factory = session_factory(self._engine)
        return self._engine

    @property
    def factory(self) -> sessionmaker[Session]:
        """The session factory, for code that runs its own units of work (sync)."""
        self.engine  # noqa: B018 - opens (and upgrades) the database on first use
        assert self._factory is not None
        return self._factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work that may write (it takes the write lock when it begins)."""
        self.engine  # noqa: B018 - opens (and upgrades) the database on first use
        assert self._factory is not None
        with session_scope(self._factory) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work: never waits for a writer (the sync worker)."""
        if self._reader is None:
            self._reader = read_factory(self.engine)
        with session_scope(self._reader) as session:
            yield session

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- accounts -------------------------------------------------------------------

    def add_account(self, new: acc.NewAccount) -> AccountInfo:
        with self.session() as s:
            return acc.add_account(s, new)

    def accounts(self) -> list[AccountInfo]:
        with self.reading() as s:
            return acc.list_accounts(s)

    def account(self, name: str) -> AccountInfo:
        with self.reading() as s:
            return acc.get_account(s, name)

    def remove_account(self, name: str) -> AccountInfo:
        with self.session() as s:
            info = acc.get_account(s, name)
            acc.remove_account(s, name)
            return info

    # -- folders and messages ---------------------------------------------------------

    def folders(self, account: str | None = None) -> list[FolderInfo]:
        with self.reading() as s:
            account_id = acc.get_account(s, account).id if account else None
            return queries.folder_infos(s, account_id)

    def list_messages(
        self,
        *,
        account: str | None = None,
        folder: str | None = None,
        limit: int = 50,
        unread_only: bool = False,
    ) -> list[MessageSummary]:
        with self.reading() as s:
            account_id = acc.get_account(s, account).id if account else None
            folder_ids = acc.find_folder(s, account_id, folder) if folder else None
            return queries.list_messages(
                s,
                queries.ListQuery(
                    account_ids=None if account_id is None else [account_id],
                    folder_ids=folder_ids,
                    unread_only=unread_only,
                    limit=limit,
                ),
            )

    def message(self, message_id: int) -> MessageDetail:
        with self.reading() as s:
            return queries.message_detail(s, message_id)

    def raw(self, message_id: int) -> bytes:
        with self.reading() as s:
            return queries.raw_message(s, message_id)

    def text(self, message_id: int) -> str:
        """The readable text of a message (the HTML part turned into text if need be)."""
        from storage.mime import extract_content

        return extract_content(self.raw(message_id)).text

    # -- local-first changes ------------------------------------------------------------
    # Each is one transaction: the local view changes and the actions that replay it
    # on the server are queued together. The running worker is nudged to replay now.

    def mark(self, ids: Sequence[int], flag: str, value: bool) -> int:
        with self.session() as s:
            changed = actions.set_flag(s, ids, flag, value, now=_now()).changed
        self._nudge()
        return changed

    def move(self, ids: Sequence[int], folder: str, account: str | None = None) -> int:
        with self.session() as s:
            account_id: int | None = None
            if account is not None:
                account_id = acc.get_account(s, account).id
            else:
                owners = {s.get_one(Message, i).account_id for i in ids if s.get(Message, i)}
                account_id = next(iter(owners)) if len(owners) == 1 else None
            targets = acc.find_folder(s, account_id, folder)
            if len(targets) != 1:
                raise UsageError(f"folder {folder!r} exists in several accounts: add --account")
            changed = actions.move(s, ids, targets[0], now=_now()).changed
        self._nudge()
        return changed

    def archive(self, ids: Sequence[int]) -> int:
        with self.session() as s:
            changed = actions.archive(s, ids, now=_now()).changed
        self._nudge()
        return changed

    def delete(self, ids: Sequence[int]) -> int:
        with self.session() as s:
            changed = actions.trash(s, ids, now=_now()).changed
        self._nudge()
        return changed

    def undo(self) -> str:
        with self.session() as s:
            what = actions.undo(s, now=_now())
        self._nudge()
        return what

    def actions(self, *, include_done: bool = False) -> list[actions.ActionInfo]:
        with self.reading() as s:
            return actions.list_actions(s, include_done=include_done)

    def retry_action(self, action_id: int | None) -> int:
        with self.session() as s:
            if action_id is None:
                n = actions.retry_all(s, now=_now())
            else:
                actions.retry(s, action_id, now=_now())
                n = 1
        self._nudge()
        return n

    def discard_action(self, action_id: int) -> None:
        with self.session() as s:
            actions.discard(s, action_id)

    def save_draft(self, account: str, raw: bytes, draft_key: str) -> int:
        with self.session() as s:
            mid = actions.save_draft(s, acc.get_account(s, account).id, raw, draft_key, now=_now())
        self._nudge()
        return mid

    def discard_draft(self, account: str, draft_key: str) -> None:
        with self.session() as s:
            actions.discard_draft(s, acc.get_account(s, account).id, draft_key, now=_now())
        self._nudge()

    # -- outbox ---------------------------------------------------------------------------

    def queue_mail(
        self,
        account: str,
        *,
        raw: bytes,
        message_id: str,
        sender: str,
        recipients: Sequence[str],
        subject: str,
        send_at: datetime | None = None,
        reply_to_message: int | None = None,
    ) -> int:
        """Put a built message in the outbox; it leaves after the undo window (or at
        ``send_at``)."""
        now = _now()
        with self.session() as s:
            item = outbox.enqueue(
                s,
                account_id=acc.get_account(s, account).id,
                raw=raw,
                message_id=message_id,
                sender=sender,
                recipients=recipients,
                subject=subject,
                send_at=send_at or now + outbox.UNDO_WINDOW,
                now=now,
                reply_to_message=reply_to_message,
            )
        self._nudge()
        return item

    def outbox(self, *, include_sent: bool = True) -> list[outbox.OutboxInfo]:
        with self.reading() as s:
            return outbox.list_outbox(s, include_sent=include_sent)

    def cancel_outgoing(self, item_id: int) -> None:
        with self.session() as s:
            outbox.cancel(s, item_id)

    def retry_outgoing(self, item_id: int | None) -> int:
        with self.session() as s:
            n = outbox.retry(s, item_id, now=_now())
        self._nudge()
        return n

    def _nudge(self) -> None:
        """Tell a running sync worker of this profile to replay now (SIGUSR1)."""
        import os
        import signal

        try:
            pid = int((self.profile.home / WORKER_PID).read_text().strip())
            os.kill(pid, signal.SIGUSR1)
        except (OSError, ValueError):
            pass


WORKER_PID = "worker.pid"


def _now() -> datetime:
    return datetime.now(UTC)
