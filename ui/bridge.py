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

Signals (of ``_Carrier``): ``finished(object)``, ``failed(object)``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

__all__ = ["TaskHandle", "known_error", "run_task", "wait_for_tasks"]

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


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], carrier: _Carrier) -> None:
        super().__init__()
        self.fn = fn
        self.carrier = carrier
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as exc:  # handed to the GUI thread, never lost
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            self.carrier.failed.emit(exc)
        else:
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
    carrier = _Carrier()
    handle = TaskHandle()
    _alive.add(carrier)

    def gone() -> bool:
        return handle.cancelled or (owner is not None and not shiboken6.isValid(owner))

    def done(result: object) -> None:
        _alive.discard(carrier)
        handle.done = True
        if not gone():
            on_done(result)

    def failed(exc: object) -> None:
        _alive.discard(carrier)
        handle.done = True
        if gone():
            return
        assert isinstance(exc, BaseException)
        if on_error is not None:
            on_error(exc)
        else:
            report_error(exc)

    carrier.finished.connect(done)
    carrier.failed.connect(failed)
    QThreadPool.globalInstance().start(_Task(fn, carrier))
    return handle


def wait_for_tasks(msecs: int = 10_000) -> bool:
    """Wait for the pool to drain (used on quit, so no task outlives the database)."""
    return QThreadPool.globalInstance().waitForDone(msecs)


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
