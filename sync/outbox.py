"""Sending what the outbox holds: exactly once, through temporary failures.

Runs per account, over the state machine in ``storage/outbox.py``, inside the send
agent (``app/sendagent.py``): a process of its own that the sync worker, ``tidings
sync --once`` and ``tidings send --now`` start, so that killing any of them cannot
split "the server said 250" from "we wrote it down".

1. Scheduled messages whose undo window or send-later time has passed are queued.
2. Messages left in ``sending`` by a crash of the agent itself may have left: they
   are looked up in the Sent folder by Message-ID first, and sent again only when
   not found there (and kept in doubt while Sent cannot be searched).
3. Due messages go out over one reused SMTP session. Each is ``sending`` on disk
   before the first byte and ``delivered`` once the 250 is read, in the transaction
   that claims the next one (see ``_Book``); a 4xx, a timeout or a dropped connection puts
   it back with backoff (a new session is opened for the next one); a 5xx fails it
   with the server's words; refused recipients are kept while the accepted ones get it.
4. Delivered messages are filed in batches, in the same transactions: stored in
   Sent locally and queued for APPEND (unless the server files sent mail itself),
   and the messages they answer flagged \\Answered -- local-first actions that
   survive the server being away. A crash before filing: the next round files them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from storage import actions, outbox
from storage.db import session_scope
from storage.dto import AccountInfo
from sync.errors import SmtpPermanent, SmtpTemporary, SyncError
from sync.imap import ImapConnection
from sync.smtp import SendResult, SmtpConfig, SmtpSession

Emit = Callable[[dict[str, Any]], None]
# (Sent folder name, Message-IDs) -> those of them found there; SyncError: can't tell.
FindSent = Callable[[str, list[str]], set[str]]
RECONNECT_DELAY = timedelta(seconds=30)
FILE_COUNT = 100  # delivered messages filed (Sent copy, \Answered) together ...
FILE_BYTES = 8 * 1024 * 1024  # ... or fewer, once their bytes reach this


@dataclass(slots=True)
class SendSummary:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    found_in_sent: int = 0
    in_doubt: int = 0  # left in doubt: Sent could not be searched


def send_due(
    factory: sessionmaker[Session],
    account: AccountInfo,
    smtp: SmtpConfig,
    *,
    find_sent: FindSent | None,
    emit: Emit,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendSummary:
    """Send the account's due messages. ``find_sent`` settles messages in doubt (None:
    the account has no IMAP server to ask).

    The caller must be the only sender of the account (``app/sendagent.py`` holds a
    lock for that): a message in ``sending`` is taken to be left over from a crash.
    """
    summary = SendSummary()
    with session_scope(factory) as s:
        outbox.promote(s, now=now())
        doubtful = outbox.in_doubt(s, account.id)
        sent_folder = actions.folder_with_role(s, account.id, ("sent",))
        sent_name = (sent_folder.remote_name or sent_folder.name) if sent_folder else None
    if doubtful:
        _settle_doubts(
            factory, doubtful, find_sent=find_sent, sent_name=sent_name, summary=summary, now=now
        )
    book = _Book(factory, account, summary, emit, now, keep_copy=sent_folder is not None)
    book.file_leftovers()  # delivered before a crash, not yet filed
    with session_scope(factory) as s:
        items = outbox.due(s, account.id, now=now())
    if not items:
        return summary
    session: SmtpSession | None = None
    try:
        for n, item in enumerate(items):
            if session is None or not session.alive:
                if session is not None:
                    session.close()
                try:
                    session = SmtpSession.open(smtp, account=account.name)
                except SyncError as exc:  # unreachable, TLS, login: not the messages' fault
                    book.postpone([i.id for i in items[n:]], exc)
                    return summary
            raw = book.claim(item)
            if raw is None:
                continue
            try:
                result = session.send(item.sender, item.recipients, raw)
            except SmtpPermanent as exc:
                book.failed(item, exc)
            except SmtpTemporary as exc:
                book.temporary(item, exc)
            else:
                book.sent(item, result, raw)
            del raw
    finally:
        book.settle()  # whatever happens next, a 250 that was read is recorded
        if session is not None:
            session.close()
    return summary


class _Book:
    """Writes outcomes to the outbox, one transaction per message.

    An outcome is kept in memory only until the next message is claimed: the same
    transaction records "message k delivered" and "message k+1 sending". Nothing
    happens on the network in between, so this is as safe as a commit of its own, at
    half the cost. Delivered messages are filed (Sent copy, \\Answered flag) in
    batches of up to ``FILE_COUNT`` messages or ``FILE_BYTES``, inside those same
    transactions, and the rest when the round ends.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        account: AccountInfo,
        summary: SendSummary,
        emit: Emit,
        now: Callable[[], datetime],
        *,
        keep_copy: bool,
    ) -> None:
        self.factory = factory
        self.account = account
        self.summary = summary
        self.emit = emit
        self.now = now
        self.keep_copy = keep_copy and not account.server_files_sent
        self._pending: Callable[[Session], dict[str, Any] | None] | None = None
        self._unfiled: list[tuple[outbox.Outgoing, bytes]] = []
        self._unfiled_bytes = 0

    def file_leftovers(self) -> None:
        with session_scope(self.factory) as s:
            left = outbox.unfiled(s, self.account.id)
            for i in range(0, len(left), FILE_COUNT):
                chunk = left[i : i + FILE_COUNT]
                self._file(s, [(item, outbox.raw_of(s, item.id)) for item in chunk])

    def claim(self, item: outbox.Outgoing) -> bytes | None:
        """The message's bytes, now ``sending``; None if it was cancelled meanwhile."""
        with session_scope(self.factory) as s:
            event = self._write(s)
            raw = outbox.raw_of(s, item.id) if outbox.claim(s, item.id) else None
        self._announce(event)
        return raw

    def settle(self) -> None:
        if self._pending is None and not self._unfiled:
            return
        with session_scope(self.factory) as s:
            event = self._write(s)
            self._file_unfiled(s)
        self._announce(event)

    def postpone(self, ids: list[int], exc: SyncError) -> None:
        with session_scope(self.factory) as s:
            event = self._write(s)
            outbox.postpone(s, ids, str(exc), now=self.now(), delay=RECONNECT_DELAY)
        self._announce(event)
        self.summary.retrying += len(ids)
        self.emit({"event": "error", "account": self.account.name, "message": str(exc)})

    def sent(self, item: outbox.Outgoing, result: SendResult, raw: bytes) -> None:
        refused = {rcpt: f"{code} {text}" for rcpt, (code, text) in result.refused.items()}

        to_file = self.keep_copy or item.reply_to_message is not None

        def write(s: Session) -> dict[str, Any]:
            outbox.mark_sent(
                s, item.id, reply=result.reply, refused=refused, now=self.now(), to_file=to_file
            )
            if to_file:
                self._unfiled.append((item, raw))
                self._unfiled_bytes += len(raw)
                if len(self._unfiled) >= FILE_COUNT or self._unfiled_bytes >= FILE_BYTES:
                    self._file_unfiled(s)
            self.summary.sent += 1
            return {"event": "sent", "account": self.account.name, "id": item.id,
                    "refused": refused}  # fmt: skip

        self._pending = write

    def failed(self, item: outbox.Outgoing, exc: SmtpPermanent) -> None:
        def write(s: Session) -> dict[str, Any]:
            outbox.mark_permanent(s, item.id, str(exc), exc.reply)
            self.summary.failed += 1
            return {"event": "send_failed", "account": self.account.name, "id": item.id,
                    "message": str(exc)}  # fmt: skip

        self._pending = write

    def temporary(self, item: outbox.Outgoing, exc: SmtpTemporary) -> None:
        def write(s: Session) -> None:
            # Claimed already: this try is counted once.
            if outbox.mark_temporary(s, item.id, str(exc), now=self.now()):
                self.summary.failed += 1
            else:
                self.summary.retrying += 1

        self._pending = write

    def _file_unfiled(self, s: Session) -> None:
        self._file(s, self._unfiled)
        self._unfiled, self._unfiled_bytes = [], 0

    def _file(self, s: Session, batch: list[tuple[outbox.Outgoing, bytes]]) -> None:
        """Sent copies and \\Answered flags of delivered messages; then they are sent."""
        if not batch:
            return
        when = self.now()
        if self.keep_copy:
            actions.store_sent(s, self.account.id, [raw for _, raw in batch], now=when)
        answered = sorted({i.reply_to_message for i, _ in batch if i.reply_to_message})
        if answered:  # one may have been deleted meanwhile: the others are flagged
            actions.set_flag(
                s, answered, "answered", True, now=when, record_undo=False, missing_ok=True
            )
        outbox.mark_filed(s, [item.id for item, _ in batch])

    def _write(self, s: Session) -> dict[str, Any] | None:
        pending, self._pending = self._pending, None
        return pending(s) if pending is not None else None

    def _announce(self, event: dict[str, Any] | None) -> None:
        if event is not None:
            self.emit(event)


def sent_finder(connect: Callable[[], ImapConnection]) -> FindSent:
    """A FindSent that connects (only when there is something to look up) and asks."""

    def find(folder: str, message_ids: list[str]) -> set[str]:
        with connect() as conn:
            conn.select(folder, readonly=True)
            return {mid for mid in message_ids if conn.find_by_message_id(mid)}

    return find


def _settle_doubts(
    factory: sessionmaker[Session],
    doubtful: list[outbox.Outgoing],
    *,
    find_sent: FindSent | None,
    sent_name: str | None,
    summary: SendSummary,
    now: Callable[[], datetime],
) -> None:
    """Messages a crash left in ``sending``: sent already if Sent has them.

    Not found in Sent: sent again. Sent could not be searched (the server is away):
    they stay in doubt until it can be -- resending blind is how mail goes out twice.
    Without a Sent folder or an IMAP server there is nothing to ask: sent again.
    """
    found: set[int] = set()
    if find_sent is not None and sent_name is not None:
        try:
            there = find_sent(sent_name, [item.message_id for item in doubtful])
            found = {item.id for item in doubtful if item.message_id in there}
        except SyncError:
            summary.in_doubt += len(doubtful)
            return
    with session_scope(factory) as s:
        for item in doubtful:
            if item.id in found:
                outbox.mark_sent(
                    s, item.id, reply="found in Sent after a restart", refused={}, now=now()
                )
                summary.found_in_sent += 1
            else:
                outbox.requeue(s, item.id, now=now())
