"""Sending what the outbox holds: exactly once, through temporary failures.

Runs in the sync worker (and ``tidings sync --once``, ``tidings send --now``), per
account, over the state machine in ``storage/outbox.py``:

1. Scheduled messages whose undo window or send-later time has passed are queued.
2. Messages left in ``sending`` by a crash may have left: they are looked up in the
   Sent folder by Message-ID first, and sent again only when not found there.
3. Due messages go out over one reused SMTP session. Each is ``sending`` on disk
   before the first byte and ``sent`` as soon as the 250 is read; a 4xx, a timeout
   or a dropped connection puts it back with backoff (a new session is opened for
   the next one); a 5xx fails it with the server's words; refused recipients are
   kept while the accepted ones get it.
4. A sent message is stored in Sent locally and queued for APPEND (unless the server
   files sent mail itself), and the message it answers is flagged \\Answered — both
   as local-first actions, so they survive the server being away.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from storage import actions, outbox
from storage.db import session_scope
from storage.dto import AccountInfo
from storage.errors import NotFound
from sync.errors import SmtpPermanent, SmtpTemporary, SyncError
from sync.imap import ImapConnection
from sync.smtp import SmtpConfig, SmtpSession

Emit = Callable[[dict[str, Any]], None]
RECONNECT_DELAY = timedelta(seconds=30)


@dataclass(slots=True)
class SendSummary:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    found_in_sent: int = 0


def send_due(
    factory: sessionmaker[Session],
    account: AccountInfo,
    smtp: SmtpConfig,
    *,
    imap: ImapConnection | None,
    emit: Emit,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendSummary:
    summary = SendSummary()
    with session_scope(factory) as s:
        outbox.promote(s, now=now())
        doubtful = outbox.in_doubt(s, account.id)
        sent_folder = actions.folder_with_role(s, account.id, ("sent",))
        sent_name = (sent_folder.remote_name or sent_folder.name) if sent_folder else None
    keep_copy = sent_folder is not None and not account.server_files_sent
    if doubtful:
        _settle_doubts(factory, doubtful, imap=imap, sent_name=sent_name, summary=summary, now=now)
    with session_scope(factory) as s:
        items = outbox.due(s, account.id, now=now())
    if not items:
        return summary
    session: SmtpSession | None = None
    try:
        for item in items:
            if session is None or not session.alive:
                if session is not None:
                    session.close()
                try:
                    session = SmtpSession.open(smtp)
                except SyncError as exc:  # unreachable, TLS, login: not the messages' fault
                    waiting = [i.id for i in items if i.id >= item.id]
                    with session_scope(factory) as s:
                        outbox.postpone(s, waiting, str(exc), now=now(), delay=RECONNECT_DELAY)
                    summary.retrying += len(waiting)
                    emit({"event": "error", "account": account.name, "message": str(exc)})
                    return summary
            with session_scope(factory) as s:
                outbox.claim(s, item.id)
                raw = outbox.raw_of(s, item.id)
            try:
                result = session.send(item.sender, item.recipients, raw)
            except SmtpPermanent as exc:
                with session_scope(factory) as s:
                    outbox.mark_permanent(s, item.id, str(exc), exc.reply)
                summary.failed += 1
                emit(
                    {
                        "event": "send_failed",
                        "account": account.name,
                        "id": item.id,
                        "message": str(exc),
                    }
                )
                continue
            except SmtpTemporary as exc:
                _temporary(factory, [item.id], exc, summary, now)
                continue
            refused = {rcpt: f"{code} {text}" for rcpt, (code, text) in result.refused.items()}
            with session_scope(factory) as s:
                outbox.mark_sent(s, item.id, reply=result.reply, refused=refused, now=now())
            summary.sent += 1
            emit({"event": "sent", "account": account.name, "id": item.id, "refused": refused})
            _after_sent(factory, account, item, raw, now, keep_copy=keep_copy)
            del raw
    finally:
        if session is not None:
            session.close()
    return summary


def _temporary(
    factory: sessionmaker[Session],
    ids: list[int],
    exc: SyncError,
    summary: SendSummary,
    now: Callable[[], datetime],
) -> None:
    with session_scope(factory) as s:
        for item_id in ids:  # claimed already: the try is counted once
            if outbox.mark_temporary(s, item_id, str(exc), now=now()):
                summary.failed += 1
            else:
                summary.retrying += 1


def _settle_doubts(
    factory: sessionmaker[Session],
    doubtful: list[outbox.Outgoing],
    *,
    imap: ImapConnection | None,
    sent_name: str | None,
    summary: SendSummary,
    now: Callable[[], datetime],
) -> None:
    """Messages a crash left in ``sending``: sent already if Sent has them."""
    found: set[int] = set()
    if imap is not None and sent_name is not None:
        try:
            imap.select(sent_name, readonly=True)
            found = {item.id for item in doubtful if imap.find_by_message_id(item.message_id)}
        except SyncError:
            found = set()
    with session_scope(factory) as s:
        for item in doubtful:
            if item.id in found:
                outbox.mark_sent(
                    s, item.id, reply="found in Sent after a restart", refused={}, now=now()
                )
                summary.found_in_sent += 1
            else:
                outbox.requeue(s, item.id, now=now())


def _after_sent(
    factory: sessionmaker[Session],
    account: AccountInfo,
    item: outbox.Outgoing,
    raw: bytes,
    now: Callable[[], datetime],
    *,
    keep_copy: bool,
) -> None:
    if not keep_copy and item.reply_to_message is None:
        return
    with session_scope(factory) as s:
        if keep_copy:
            actions.store_sent(s, account.id, raw, now=now())
        if item.reply_to_message is not None:
            with contextlib.suppress(NotFound):  # the answered message may be gone meanwhile
                actions.set_flag(
                    s, [item.reply_to_message], "answered", True, now=now(), record_undo=False
                )
