"""The facade that the CLI and the desktop app use: one object per open profile.

Every method is one short unit of work on its own session and returns plain records
(``storage.dto``), so callers never hold a session or an ORM object. Names are
resolved here, with one-line errors for the user (unknown account, unknown folder).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.errors import UsageError
from app.profile import Profile
from storage import accounts as acc
from storage import actions, outbox, queries, rsvps, unsubscribes
from storage.db import open_database, read_factory, session_factory, session_scope
from storage.dto import AccountInfo, FolderInfo, MessageDetail, MessageSummary
from storage.models import Message

if TYPE_CHECKING:
    from app.attachments import AttachmentView, SavedFile
    from app.compose import Built
    from app.invites import Invite
    from app.unsubscribe import Plan as UnsubscribePlan
    from storage.search import SavedSearchInfo
    from storage.unsubscribes import UnsubscribeResult


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

    # -- rich messages: invitations, unsubscribe, attachments -----------------------------
    # The logic lives in app/invites.py, app/unsubscribe.py and app/attachments.py, what
    # is kept of it in storage/rsvps.py and storage/unsubscribes.py; these methods find
    # the message's account and run each change in one transaction.

    @staticmethod
    def _enqueue_built(
        s: Session,
        account_id: int,
        built: Built,
        subject: str,
        *,
        send_at: datetime,
        now: datetime,
        reply_to_message: int | None = None,
    ) -> int:
        """Put a message built by ``app.compose`` in the outbox, in the caller's unit of
        work (so that what goes with it is written in the same transaction)."""
        return outbox.enqueue(
            s,
            account_id=account_id,
            raw=built.raw,
            message_id=built.message_id,
            sender=built.sender,
            recipients=built.recipients,
            subject=subject,
            send_at=send_at,
            now=now,
            reply_to_message=reply_to_message,
        )

    def invite(self, message_id: int) -> Invite | None:
        """The calendar invitation in a message (None if it has none), with the user's
        answer and whether a newer version arrived since."""
        from app import invites

        detail = self.message(message_id)
        top = detail.content_type
        if not top.startswith("multipart/") and top not in invites.CALENDAR_TYPES:
            return None  # a single text or HTML part: no calendar to look for
        account = self.account(detail.summary.account)
        found = invites.find_invite(self.raw(message_id), me=(account.email,))
        if found is None:
            return None
        with self.session() as s:
            response = rsvps.latest(s, account.id, found.uid, found.recurrence_id)
            later = rsvps.later_messages_with_parts(
                s,
                account_id=account.id,
                message_id=message_id,
                content_types=invites.CALENDAR_TYPES,
                clock_slack=invites.NEWER_CLOCK_SLACK,
                limit=invites.MAX_NEWER_CANDIDATES,
            )
            candidates = ((other, queries.raw_message(s, other)) for other in later)
            newer = invites.newer_invite(found, candidates, me=(account.email,))
        return invites.with_state(found, response, newer)

    def rsvp(
        self,
        message_id: int,
        answer: str,
        *,
        comment: str | None = None,
        send_at: datetime | None = None,
    ) -> int:
        """Answer an invitation ('accept', 'tentative', 'decline'): the iMIP REPLY goes
        into the outbox and the answer is recorded, together. Returns the outbox id."""
        from app import compose, invites
        from app.errors import InviteError

        partstat = invites.ANSWERS.get(answer.lower())
        if partstat is None:
            raise UsageError(f"not an answer: {answer!r} (accept, tentative or decline)")
        invite = self.invite(message_id)
        if invite is None:
            raise InviteError(f"message {message_id} has no calendar invitation")
        account = self.account(self.message(message_id).summary.account)
        if not account.smtp_host:
            raise InviteError(f"account {account.name} has no SMTP server to send the answer")
        now = _now()
        built, subject = invites.build_reply(
            invite,
            compose.Identity(account.email, account.display_name),
            self.raw(message_id),
            partstat=partstat,
            comment=comment,
            now=now,
        )
        with self.session() as s:
            item = self._enqueue_built(
                s,
                account.id,
                built,
                subject,
                send_at=send_at or now + outbox.UNDO_WINDOW,
                now=now,
                reply_to_message=message_id,
            )
            rsvps.record(
                s,
                account_id=account.id,
                message_id=message_id,
                uid=invite.uid,
                recurrence_id=invite.recurrence_id,
                sequence=invite.sequence,
                partstat=partstat,
                comment=comment,
                outbox_id=item,
                now=now,
            )
        self._nudge()
        return item

    def save_ics(self, message_id: int, destination: Path) -> Path:
        """Export a message's invitation as a .ics file (a folder: named after the event)."""
        from app import invites
        from app.errors import InviteError

        invite = self.invite(message_id)
        if invite is None:
            raise InviteError(f"message {message_id} has no calendar invitation")
        return invites.save_ics(invite, destination)

    def unsubscribe_plan(
        self, message_id: int, *, allow_http_loopback: bool = False
    ) -> UnsubscribePlan:
        """What unsubscribing from this message's list would do (for the confirmation)."""
        from app import unsubscribe

        d = self.message(message_id)
        options = unsubscribe.parse(d.list_unsubscribe, d.list_unsubscribe_post)
        return unsubscribe.plan(options, allow_http_loopback=allow_http_loopback)

    def unsubscribe(
        self,
        message_id: int,
        *,
        allow_http_loopback: bool = False,
        timeout: float | None = None,
    ) -> UnsubscribeResult:
        """Leave the message's list the best way it offers (after the user confirmed).

        One-click: the RFC 8058 POST, now (network I/O: not on the GUI thread). Mailto: a
        message queued in the outbox. Browser: nothing sent; the result's ``target`` is
        the https link for the caller to open. Failures raise and record nothing.
        """
        from app import compose, unsubscribe
        from app.errors import UnsubscribeError

        d = self.message(message_id)
        account = self.account(d.summary.account)
        plan = self.unsubscribe_plan(message_id, allow_http_loopback=allow_http_loopback)
        now = _now()
        outcome, detail, item = "link", None, None
        mail: tuple[compose.Built, str] | None = None
        if plan.method == "one-click":
            detail = unsubscribe.one_click_post(
                plan.target,
                allow_http_loopback=allow_http_loopback,
                timeout=timeout or unsubscribe.TIMEOUT,
            )
            outcome = "done"
        elif plan.method == "mailto":
            assert plan.mailto is not None
            if not account.smtp_host:
                raise UnsubscribeError(
                    f"account {account.name} has no SMTP server to send the unsubscribe message"
                )
            mail = unsubscribe.build_mailto(
                plan.mailto, compose.Identity(account.email, account.display_name)
            )
            outcome = "queued"
        with self.session() as s:
            if mail is not None:
                built, subject = mail
                # the user confirmed: no undo window
                item = self._enqueue_built(s, account.id, built, subject, send_at=now, now=now)
                detail = f"outbox {item}"
            result = unsubscribes.record(
                s,
                account_id=account.id,
                message_id=message_id,
                list_id=d.list_id,
                method=plan.method,
                target=plan.target,
                outcome=outcome,
                detail=detail,
                outbox_id=item,
                now=now,
            )
        if item is not None:
            self._nudge()
        return result

    def unsubscribe_state(self, message_id: int) -> UnsubscribeResult | None:
        """The latest unsubscribe from this message or its list, for the reader's bar."""
        d = self.message(message_id)
        with self.session() as s:
            account_id = acc.get_account(s, d.summary.account).id
            return unsubscribes.last_result(
                s, account_id=account_id, message_id=message_id, list_id=d.list_id
            )

    def attachments(self, message_id: int) -> list[AttachmentView]:
        from app import attachments

        return attachments.list_attachments(self.raw(message_id))

    def save_attachments(
        self, message_id: int, folder: Path, part_ids: Sequence[str] | None = None
    ) -> list[SavedFile]:
        """Save one, some or (None) all attachments into ``folder`` under safe names."""
        from app import attachments

        return attachments.save(self.raw(message_id), folder, part_ids)

    def open_attachment(self, message_id: int, part_id: str) -> Path:
        """A read-only copy in a private temporary folder, for the system's handler."""
        from app import attachments

        return attachments.open_copy(self.raw(message_id), part_id)

    # -- search (app/search.py) -----------------------------------------------------------
    # Read-only here: the sync worker (or the command line when none runs) writes the
    # index. A query that cannot be understood raises storage.searchquery.QueryError.

    def search(
        self, query: str, *, account: str | None = None, limit: int = 50, sort: str = "date"
    ) -> list[MessageSummary]:
        """Messages matching ``query`` (Gmail's operators), newest first or by
        ``sort="relevance"``; the same rows as :meth:`list_messages`."""
        from app import search

        return search.search(self, query, account=account, limit=limit, sort=sort)

    def saved_searches(self) -> list[SavedSearchInfo]:
        """Saved searches (smart folders), by name."""
        from app import search

        return search.saved_searches(self)

    def save_search(self, name: str, query: str) -> SavedSearchInfo:
        """Save ``query`` as ``name``, replacing a saved search of that name."""
        from app import search

        return search.save_search(self, name, query)

    def delete_saved_search(self, name: str) -> None:
        from app import search

        search.delete_saved_search(self, name)


WORKER_PID = "worker.pid"


def _now() -> datetime:
    return datetime.now(UTC)
