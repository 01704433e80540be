"""The sync worker: ``tidings sync --watch --events`` for the profile, run by QProcess.

The GUI never syncs itself (DESIGN.md): it starts the same command a user can run in
a terminal, reads its JSON lines from stdout, and re-emits each as ``event_received``
on the GUI thread. If the process dies (crash, kill, a bug), it is restarted with
exponential backoff (1 s doubling to 60 s, reset after a minute of uptime) and
``state_changed`` tells the status bar. On quit it gets SIGTERM (the worker stops its
IMAP sessions and exits cleanly within a few seconds), then SIGKILL if it lingers.
The worker's stderr is kept (last lines) so that a crash can be shown in one line.

The worker runs at a lower CPU priority (``WORKER_NICE``, where the OS has ``nice``).
A first sync keeps it busy for minutes; measured on two cores (bench/ui.py's sync
stall, per-thread ``schedstat``), the GUI thread spent about half of each 100-250 ms
stall waiting in the CPU run queue behind it, Dovecot and QtWebEngine. At a lower
priority the sync still takes every idle cycle, but a paint gets the CPU first.

Signals:
    event_received(dict): one event line from the worker.
    state_changed(str): 'starting' | 'running' | 'restarting' | 'stopped'.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

__all__ = ["SyncWorker"]

WORKER_NICE = 10  # added to the worker's niceness: background work yields to the GUI
_LAUNCH = (
    "import os, sys\n"
    "if hasattr(os, 'nice'):\n"
    "    try:\n"
    f"        os.nice({WORKER_NICE})\n"
    "    except OSError:\n"
    "        pass\n"
    "from app.cli import main\n"
    "sys.argv[0] = 'tidings'\n"
    "main()\n"
)


class SyncWorker(QObject):
    event_received = Signal(dict)
    state_changed = Signal(str)

    BACKOFF_START_MS = 1000
    BACKOFF_MAX_MS = 60_000
    STABLE_AFTER_S = 60.0

    def __init__(self, home: Path, parent: QObject | None = None, *, poll: float = 300.0) -> None:
        super().__init__(parent)
        self.home = home
        self.poll = poll
        self.state = "stopped"
        self.restarts = 0
        self.last_error: str | None = None
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self._wanted = False
        self._backoff = self.BACKOFF_START_MS
        self._started_at = 0.0
        self._buffer = b""
        self._proc: QProcess | None = None
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._launch)
        self.next_retry_ms = 0

    @property
    def pid(self) -> int | None:
        if self._proc is None or self._proc.state() == QProcess.ProcessState.NotRunning:
            return None
        return int(self._proc.processId())

    def start(self) -> None:
        self._wanted = True
        if self._proc is None:
            self._launch()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _launch(self) -> None:
        if not self._wanted:
            return
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.setProgram(sys.executable)
        args = ["-c", _LAUNCH, "--home", str(self.home), "sync", "--watch", "--events"]
        args += ["--poll", str(self.poll)]
        proc.setArguments(args)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self._proc = proc
        self._buffer = b""
        self._started_at = time.monotonic()
        self._set_state("starting")
        proc.start()
        if proc.waitForStarted(5000):
            self._set_state("running")

    def _read_stdout(self) -> None:
        proc = self.sender()
        if not isinstance(proc, QProcess):
            return
        self._buffer += bytes(proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and "event" in event:
                self.event_received.emit(event)

    def _read_stderr(self) -> None:
        proc = self.sender()
        if not isinstance(proc, QProcess):
            return
        text = bytes(proc.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self.stderr_tail.append(line.strip())

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.last_error = "the sync worker could not be started"
            self._schedule_restart()

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        proc = self.sender()
        if proc is not self._proc:
            return
        self._read_stdout()
        self._proc = None
        if isinstance(proc, QProcess):
            proc.deleteLater()
        if not self._wanted:
            self._set_state("stopped")
            return
        if status == QProcess.ExitStatus.CrashExit:
            self.last_error = "the sync worker stopped unexpectedly"
        else:
            last = self.stderr_tail[-1] if self.stderr_tail else ""
            self.last_error = f"the sync worker exited ({code}){': ' + last if last else ''}"
        self._schedule_restart()

    def _schedule_restart(self) -> None:
        if not self._wanted:
            return
        if time.monotonic() - self._started_at > self.STABLE_AFTER_S:
            self._backoff = self.BACKOFF_START_MS
        self.next_retry_ms = self._backoff
        self.restarts += 1
        self._set_state("restarting")
        self._retry.start(self._backoff)
        self._backoff = min(self.BACKOFF_MAX_MS, self._backoff * 2)

    def stop(self, timeout_ms: int = 5000) -> None:
        """Stop for good (quit): SIGTERM, then SIGKILL after ``timeout_ms``."""
        self._wanted = False
        self._retry.stop()
        proc = self._proc
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            proc.terminate()
            if not proc.waitForFinished(timeout_ms):
                proc.kill()
                proc.waitForFinished(2000)
        self._proc = None
        self._set_state("stopped")
