"""The send agent: a process of its own for each round of sending, so mail leaves once.

The dangerous moment in sending mail is between the server's ``250`` (the message
is theirs now) and our commit of ``sent``. If the process dies there, the message
is in ``sending`` and nobody knows whether it left; resending it is how users get
mail twice. Looking it up in the Sent folder only helps when a copy got there, and
our Sent copy is appended *after* sending.

So the SMTP conversation does not run in the sync worker (which the desktop app
kills and restarts, and users stop with kill -9) nor in ``tidings send --now``.
Those start this agent: ``python -m app.sendagent``, in a new session (no terminal
signal reaches it), with the job -- profile, account, server settings including the
secret -- on stdin (never on the command line). The agent takes the account's send
lock, runs ``sync.outbox.send_due`` and writes every outcome to the database
itself; its events come back on stdout as JSON lines for the parent to pass on.
When the parent dies, the agent finishes the round regardless (its stdout writes
fail quietly) -- killing the worker cannot split "delivered" from "recorded".

The lock (``flock`` on ``send-<account id>.lock`` in the profile) makes the agent the
account's only sender: a message in ``sending`` while the lock is free is really
left over from a crash of an agent, and only then is it looked up in Sent. A parent
that finds the lock held starts no second agent; it tries again a little later.

What remains: a kill -9 of the agent itself (or a power cut) between 250 and
commit -- a window of microseconds with no I/O in it -- leaves a message in doubt;
it is looked up in Sent and resent if not found, which can duplicate it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from storage.dto import AccountInfo
from sync.outbox import SendSummary

Emit = Callable[[dict[str, Any]], None]

LOCK_NAME = "send-{account}.lock"


@dataclass(slots=True)
class AgentResult(SendSummary):
    """What one round of sending did, as the agent reported it."""

    busy: bool = False  # another agent holds the account's lock: nothing was done
    error: str | None = None  # the agent itself failed (its one-line reason)


def lock_path(home: Path, account_id: int) -> Path:
    return home / LOCK_NAME.format(account=account_id)


def busy(home: Path, account_id: int) -> bool:
    """Is an agent sending for this account right now?"""
    try:
        fd = os.open(lock_path(home, account_id), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we took it
    return False


# ------------------------------------------------------------------ parent side


def run(
    home: Path, account: AccountInfo, emit: Emit, *, wait: bool = True, debug: bool = False
) -> AgentResult:
    """Start an agent for ``account``, pass its events to ``emit``, wait for it.

    When another agent is sending for the account: with ``wait``, this one waits for
    it (and then sends what is still due); without, returns at once (``busy``).
    """
    from app.quicksync import server_config, smtp_config

    if not wait and busy(home, account.id):
        return AgentResult(busy=True)
    job = {
        "home": str(home),
        "account": account.id,
        "smtp": asdict(smtp_config(account)),
        "imap": asdict(server_config(account)) if account.imap_host else None,
        "debug": debug,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.sendagent"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None if debug else subprocess.DEVNULL,
        start_new_session=True,  # not in our process group: our death is not its death
        close_fds=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        with proc.stdin:
            proc.stdin.write(json.dumps(job).encode())
    except BrokenPipeError:
        pass  # it died at once; its exit code says so below
    result: AgentResult | None = None
    with proc.stdout:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "agent_done":
                result = AgentResult(**{k: v for k, v in event.items() if k != "event"})
            else:
                emit(event)
    code = proc.wait()
    if result is None:
        result = AgentResult(error=f"the send agent stopped unexpectedly (exit code {code})")
    return result


# ------------------------------------------------------------------- agent side


class _Out:
    """JSON lines to the parent; once the parent is gone, silence (never a crash)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.gone = False

    def __call__(self, event: dict[str, Any]) -> None:
        if self.gone:
            return
        data = (json.dumps(event, ensure_ascii=False) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            self.gone = True


@contextlib.contextmanager
def _account_lock(home: Path, account_id: int) -> Iterator[None]:
    fd = os.open(lock_path(home, account_id), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # wait for an agent still finishing its round
        yield
    finally:
        os.close(fd)


def _agent(job: dict[str, Any], out: _Out) -> AgentResult:
    from app.profile import Profile
    from app.services import Services
    from storage import accounts as acc
    from sync.imap import ImapConnection, ServerConfig
    from sync.outbox import FindSent, send_due, sent_finder
    from sync.smtp import SmtpConfig

    home = Path(job["home"])
    with _account_lock(home, int(job["account"])):
        services = Services(Profile.open(home))
        try:
            with services.session() as s:
                info = acc.account_by_id(s, int(job["account"]))
            find_sent: FindSent | None = None
            if job.get("imap"):
                imap_cfg = ServerConfig(**job["imap"])

                def connect() -> ImapConnection:
                    return ImapConnection.connect(imap_cfg, account=info.name)

                find_sent = sent_finder(connect)
            summary = send_due(
                services.factory,
                info,
                SmtpConfig(**job["smtp"]),
                find_sent=find_sent,
                emit=out,
            )
        finally:
            services.close()
    return AgentResult(**asdict(summary))


def main(stdin: IO[bytes] | None = None) -> int:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    out = _Out(sys.stdout.fileno())
    debug = False
    try:
        job = json.loads((stdin or sys.stdin.buffer).read())
        debug = bool(job.get("debug"))
        result = _agent(job, out)
    except Exception as exc:  # report in one line; the outbox rows say the rest
        if debug:
            traceback.print_exc()
        from app.errors import TidingsError
        from storage.errors import StorageError
        from sync.errors import SyncError

        known = isinstance(exc, TidingsError | StorageError | SyncError)
        reason = str(exc) if known else f"{type(exc).__name__}: {exc}"
        result = AgentResult(error=f"sending failed: {reason}")
    out({"event": "agent_done", **asdict(result)})
    return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main())
