"""``tidings sync``: one pass over every account, or a watch that stays up.

The desktop app runs exactly this (``tidings sync --watch --events``) as its worker
process, so command-line sync and the app share one engine.

- ``sync_once`` connects to each IMAP account, runs ``sync.engine.AccountSync``, then
  extracts content (snippets, attachment lists) of what arrived, newest first.
- ``watch`` keeps one thread per account: a full pass, then IDLE on the inbox (new
  mail is synced as soon as the server says so) and a poll of every folder at an
  interval; a dropped connection or a restarted server is retried with exponential
  backoff and jitter. ``stop()`` (on SIGTERM/SIGINT) interrupts the blocked reads so
  the process ends at once and cleanly: a batch being stored is rolled back as a
  whole and fetched again next time.

Events are plain dicts handed to ``emit``; the CLI prints them as JSON lines.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app import sendagent
from app.errors import TidingsError
from app.quicksync import server_config
from app.sendagent import AgentResult
from app.services import Services
from storage.dto import AccountInfo
from sync.engine import AccountResult, AccountSync
from sync.errors import AuthFailed, SyncError, TlsError
from sync.imap import ImapConnection

Emit = Callable[[dict[str, Any]], None]

IDLE_SLICE = 25 * 60  # RFC 2177: re-issue IDLE at least every 29 minutes
BACKOFF_START = 1.0
BACKOFF_MAX = 300.0
AGENT_BUSY_RETRY = 2.0
STOP_GRACE = 3.0  # seconds a stopping watch waits for its account threads


def imap_accounts(services: Services, name: str | None) -> list[AccountInfo]:
    if name is not None:
        account = services.account(name)
        if account.kind != "imap":
            raise TidingsError(f"account {name} is a local account: there is nothing to sync")
        return [account]
    found = [a for a in services.accounts() if a.kind == "imap"]
    if not found:
        raise TidingsError("no IMAP accounts to sync (add one with 'tidings account add')")
    return found


def extract_new(
    services: Services,
    account_id: int,
    emit: Emit,
    account: str,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Content for what arrived (snippets, attachments), newest first, in batches;
    then the search index takes what waits (app/search.py)."""
    from sqlalchemy import select

    from storage.models import Message

    with services.session() as s:
        pending = s.scalar(
            select(Message.id)
            .where(Message.account_id == account_id, Message.content_state == 0)
            .limit(1)
        )
    done = 0
    if pending is not None:
        from storage.ingest import extract_all

        done = extract_all(services.factory, account_id)
        if done:
            emit({"event": "content_extracted", "account": account, "count": done})
    from app.search import update_index

    update_index(services, emit, stop=stop)
    return done


def send_outbox(
    services: Services, info: AccountInfo, emit: Emit, *, wait: bool = True
) -> AgentResult | None:
    """Send what is due in the account's outbox, through a send agent (see
    ``app/sendagent.py``); None when there was nothing to do. ``wait=False``: if an
    agent (of an earlier, killed worker) is still sending, return at once (``busy``)."""
    if not info.smtp_host:
        return None
    from storage.outbox import has_work

    with services.session() as s:
        if not has_work(s, info.id, now=datetime.now(UTC)):
            return None
    result = sendagent.run(services.profile.home, info, emit, wait=wait)
    if result.error:
        emit({"event": "error", "account": info.name, "message": result.error})
    if result.sent or result.failed or result.retrying:
        emit(
            {
                "event": "outbox",
                "account": info.name,
                "sent": result.sent,
                "retrying": result.retrying,
                "failed": result.failed,
            }
        )
    return result


@dataclass
class SyncSummary:
    results: list[AccountResult]
    errors: list[str]


def sync_once(
    services: Services,
    *,
    account: str | None = None,
    folder: str | None = None,
    emit: Emit,
) -> SyncSummary:
    summary = SyncSummary([], [])
    for info in imap_accounts(services, account):
        try:
            cfg = server_config(info)
            emit({"event": "state", "account": info.name, "state": "connecting"})
            with ImapConnection.connect(cfg, account=info.name) as conn:
                emit({"event": "state", "account": info.name, "state": "syncing"})
                engine = AccountSync(services.factory, info, conn, emit=emit)
                result = engine.run(folder)
                sending = send_outbox(services, info, emit)
                if sending is not None and sending.sent:
                    engine.replay()  # the Sent copies and \Answered flags, now
            emit({"event": "listable", "account": info.name, "added": result.added})
            summary.results.append(result)
            summary.errors += [f"{info.name}/{e}" for e in result.errors]
            extract_new(services, info.id, emit, info.name)
            emit({"event": "state", "account": info.name, "state": "synced"})
        except (SyncError, TidingsError) as exc:
            summary.errors.append(str(exc))
            emit({"event": "error", "account": info.name, "message": str(exc)})
            emit({"event": "state", "account": info.name, "state": "error"})
    return summary


class Backoff:
    """Exponential backoff with full jitter (AWS style), capped."""

    def __init__(self, start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> None:
        self.start, self.cap, self.attempt = start, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.start * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


class Watcher:
    """Keeps every account in sync until :meth:`stop`."""

    def __init__(
        self,
        services: Services,
        accounts: list[AccountInfo],
        *,
        emit: Emit,
        poll_interval: float = 300.0,
    ) -> None:
        self.services = services
        self.accounts = accounts
        self.emit = emit
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()  # local changes to replay now
        self._conns: dict[str, ImapConnection] = {}
        self._lock = threading.Lock()

    def run(self) -> None:
        threads = [
            threading.Thread(
                target=self._account_loop, args=(a,), name=f"sync-{a.name}", daemon=True
            )
            for a in self.accounts
        ]
        for t in threads:
            t.start()
        stop_deadline: float | None = None
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
            if self._stop.is_set():
                # A thread waiting for its send agent need not be waited for: the
                # agent finishes its round on its own (see app/sendagent.py).
                stop_deadline = stop_deadline or time.monotonic() + STOP_GRACE
                if time.monotonic() > stop_deadline:
                    break

    def nudge(self) -> None:
        """Local changes were queued (SIGUSR1 from the app or the CLI): replay now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            for conn in self._conns.values():
                conn.interrupt()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _account_loop(self, info: AccountInfo) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                self._session(info, backoff)
            except SyncError as exc:
                if self._stop.is_set():
                    break
                delay = backoff.next()
                if isinstance(exc, AuthFailed | TlsError):
                    delay = max(delay, 60.0)  # don't hammer a server that refuses us
                self.emit({"event": "error", "account": info.name, "message": str(exc)})
                self.emit(
                    {
                        "event": "state",
                        "account": info.name,
                        "state": "offline",
                        "retry_in": round(delay, 1),
                    }
                )
                self._stop.wait(delay)
            except TidingsError as exc:
                self.emit({"event": "error", "account": info.name, "message": str(exc)})
                self._stop.wait(BACKOFF_MAX)
        self.emit({"event": "state", "account": info.name, "state": "stopped"})

    def _session(self, info: AccountInfo, backoff: Backoff) -> None:
        cfg = server_config(info)
        self.emit({"event": "state", "account": info.name, "state": "connecting"})
        conn = ImapConnection.connect(cfg, account=info.name)
        with self._lock:
            self._conns[info.name] = conn
        if self._stop.is_set():
            conn.interrupt()
        try:
            engine = AccountSync(self.services.factory, info, conn, emit=self.emit)
            self._full_pass(info, engine)
            backoff.reset()
            last_poll = time.monotonic()
            while not self._stop.is_set():
                if self._wake.is_set() and not self._stop.is_set():
                    self._wake.clear()
                    engine.replay()
                sending = send_outbox(self.services, info, self.emit, wait=False)
                if sending is not None and sending.sent:
                    engine.replay()  # the Sent copies and \\Answered flags
                inbox = engine.inbox()
                until_poll = max(0.0, self.poll_interval - (time.monotonic() - last_poll))
                until_send = self._until_outbox(info)
                if sending is not None and sending.busy:
                    until_send = AGENT_BUSY_RETRY  # an earlier worker's agent is sending
                if until_send is not None and until_send < until_poll:
                    until_poll = until_send
                if inbox is None or not conn.has_idle:
                    self._wake.wait(until_poll)
                else:
                    conn.select(inbox.remote_name or inbox.name, readonly=True)
                    self.emit({"event": "state", "account": info.name, "state": "idle"})
                    wait = min(IDLE_SLICE, until_poll)
                    if conn.idle(wait, wake=self._wake) and not self._stop.is_set():
                        engine.sync_folder(engine.folder_state(inbox.id))
                        extract_new(self.services, info.id, self.emit, info.name, self._stop.is_set)
                if self._stop.is_set():
                    break
                if time.monotonic() - last_poll >= self.poll_interval:
                    self._full_pass(info, engine)
                    last_poll = time.monotonic()
        finally:
            with self._lock:
                self._conns.pop(info.name, None)
            conn.close()

    def _until_outbox(self, info: AccountInfo) -> float | None:
        """Seconds until the next outgoing message of the account is due, if any."""
        from storage.outbox import next_due

        with self.services.session() as s:
            when = next_due(s, info.id)
        if when is None:
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    def _full_pass(self, info: AccountInfo, engine: AccountSync) -> None:
        self.emit({"event": "state", "account": info.name, "state": "syncing"})
        engine.run()
        sending = send_outbox(self.services, info, self.emit, wait=False)
        if sending is not None and sending.sent:
            engine.replay()
        extract_new(self.services, info.id, self.emit, info.name, self._stop.is_set)
        self.emit(
            {
                "event": "state",
                "account": info.name,
                "state": "synced",
                "at": datetime.now(UTC).isoformat(),
            }
        )
