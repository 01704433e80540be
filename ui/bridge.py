"""Running short work off the GUI thread and handing results back (picard's run_task).

The GUI thread only dispatches: a read that may take more than a few milliseconds
(parsing a message for the reader, folder counts over a big mailbox, a search, a
connection test) runs on the global ``QThreadPool``; its result or exception comes
back through a queued signal and is handled on the GUI thread. The signal carrier is
created on the GUI thread and kept alive until it has delivered, so a callback never
runs on a pool thread and nothing is collected early.

``known_error`` decides what a user sees: app and storage errors (and the sync layer's)
carry a one-line message; anything else is a bug and goes to the crash dialog with its
traceback (qutebrowser's known-vs-bug split).

Writes the user makes (mark, star, archive, delete, undo) go through ``run_write``: one
writer thread, so they reach the database in the order they were made, and the GUI
thread waits for one at most ``wait_ms``. A write takes SQLite's write lock, which the
sync worker holds for each batch it stores and takes again at once: measured during a
first sync, a key's write on the GUI thread waited up to 2.2 s for its turn (a frozen
window). A write that finishes within ``wait_ms`` (the usual case: ~15 ms) is handled
before ``run_write`` returns, so the list changes at once; a later one is handled when
it finishes, and the window stays responsive meanwhile.

Signals (of ``_Carrier``): ``finished(object)``, ``failed(object)``.
"""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

__all__ = ["TaskHandle", "known_error", "run_task", "run_write", "wait_for_tasks"]

_alive: set[_Carrier] = set()


class _Carrier(QObject):
    finished = Signal(object)
    failed = Signal(object)


class TaskHandle:
    """Returned by :func:`run_task`; ``cancel()`` drops the result when it arrives."""

    def __init__(self) -> None:
        self.cancelled = False
        self.done = False

    def cancel(self) -> None:
        self.cancelled = True


class _Outcome:
    """What a task ended with, readable from the GUI thread as soon as it is set."""

    def __init__(self) -> None:
        self.value: tuple[bool, Any] | None = None  # (ok, result or exception)
        self.settled = threading.Event()


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], carrier: _Carrier, outcome: _Outcome) -> None:
        super().__init__()
        self.fn = fn
        self.carrier = carrier
        self.outcome = outcome
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as exc:  # handed to the GUI thread, never lost
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self.outcome.value = (False, exc)
            self.outcome.settled.set()
            self.carrier.failed.emit(exc)
        else:
            self.outcome.value = (True, result)
            self.outcome.settled.set()
            self.carrier.finished.emit(result)


def run_task(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
    *,
    owner: QObject | None = None,
) -> TaskHandle:
    """Run ``fn()`` on the thread pool; ``on_done(result)`` or ``on_error(exc)`` on the GUI.

    With ``owner``, the result is dropped when the owner was deleted meanwhile (a closed
    window must not be updated).
    """
    handle, _outcome, _deliver = _start(fn, on_done, on_error, owner, QThreadPool.globalInstance())
    return handle


def run_write(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
    *,
    owner: QObject | None = None,
    wait_ms: int = 0,
) -> TaskHandle:
    """Run a write ``fn()`` on the writer thread, after the writes started before it;
    wait for it up to ``wait_ms`` (see the module docstring). The callbacks are
    ``run_task``'s, called exactly once: before this returns when the write finished
    within ``wait_ms``, else on the GUI thread when it finishes."""
    handle, outcome, deliver = _start(fn, on_done, on_error, owner, _writer())
    if wait_ms > 0 and outcome.settled.wait(wait_ms / 1000):
        deliver()
    return handle


def _start(
    fn: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None,
    owner: QObject | None,
    pool: QThreadPool,
) -> tuple[TaskHandle, _Outcome, Callable[[], None]]:
    carrier = _Carrier()
    handle = TaskHandle()
    outcome = _Outcome()
    _alive.add(carrier)

    def gone() -> bool:
        return handle.cancelled or (owner is not None and not shiboken6.isValid(owner))

    def finish(ok: bool, value: object) -> None:  # the callbacks, called once
        if handle.done:
            return
        handle.done = True
        if gone():
            return
        if ok:
            on_done(value)
            return
        assert isinstance(value, BaseException)
        if on_error is not None:
            on_error(value)
        else:
            report_error(value)

    # The carrier's signal always comes, also after run_write delivered the outcome
    # itself: the carrier is let go here, on the GUI thread (a QObject must not be
    # destroyed by the pool thread that drops the task).
    def done(result: object) -> None:
        _alive.discard(carrier)
        finish(True, result)

    def failed(exc: object) -> None:
        _alive.discard(carrier)
        finish(False, exc)

    def deliver() -> None:
        assert outcome.value is not None
        finish(*outcome.value)

    carrier.finished.connect(done)
    carrier.failed.connect(failed)
    pool.start(_Task(fn, carrier, outcome))
    return handle, outcome, deliver


@functools.cache
def _writer() -> QThreadPool:
    """The writer thread: a pool of one, which runs its tasks in the order started."""
    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    pool.setExpiryTimeout(-1)  # kept: a write should not wait for a thread to start
    return pool


def wait_for_tasks(msecs: int = 10_000) -> bool:
    """Wait for the pool and the writer to drain (used on quit, so no task outlives the
    database and no write the user made is lost)."""
    writes = _writer().waitForDone(msecs)
    return QThreadPool.globalInstance().waitForDone(msecs) and writes


def known_error(exc: BaseException) -> str | None:
    """The one-line message of an error a user can act on; None for a bug."""
    from app.errors import TidingsError
    from storage.errors import StorageError
    from sync.errors import SyncError

    if isinstance(exc, TidingsError | StorageError | SyncError):
        return str(exc) or type(exc).__name__
    return None


def report_error(exc: BaseException) -> None:
    """Show an error that no caller handled: one line if known, the crash dialog if not."""
    from ui.app import show_error

    show_error(exc)
