"""Starting the app as ``make run`` does: ``python main.py --demo`` in a fresh process,
with no Chromium flags from the environment, shows its rows and renders a message.

This also covers running as root (CI and a fresh Debian machine): Chromium refuses
to start its sandbox as root, and the reader must not die of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ui.scheme import chromium_flags

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import main  # main.py's start-up settings
from ui.app import main as run

def ready(window):
    print("ROWS", window.list_model.rowCount(), flush=True)

    def shown(message_id):
        print("SHOWN", message_id, flush=True)
        QTimer.singleShot(0, QApplication.quit)

    window.message_shown.connect(shown)
    QTimer.singleShot(60_000, QApplication.quit)

sys.exit(run(["--demo"], on_ready=ready))
"""


def test_flags_turn_the_sandbox_off_only_for_root_and_the_zygote_with_it() -> None:
    assert chromium_flags("", root=False) == ("", False)
    assert chromium_flags("--disable-gpu", root=False) == ("--disable-gpu", False)
    assert chromium_flags("", root=True) == ("--no-sandbox --no-zygote", True)
    assert chromium_flags("--no-sandbox --disable-gpu", root=True) == (
        "--no-sandbox --disable-gpu --no-zygote",
        False,
    )
    assert chromium_flags("", root=False, sandbox_off=True) == ("--no-zygote", False)
    assert chromium_flags("--no-sandbox --no-zygote", root=True) == (
        "--no-sandbox --no-zygote",
        False,
    )


@pytest.mark.slow
def test_make_run_opens_the_demo_and_renders_a_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTWEBENGINE_")}
    env |= {"TIDINGS_HOME": str(tmp_path / "demo"), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [int(line.split()[1]) for line in lines if line.startswith("ROWS")]
    assert rows, proc.stdout
    assert rows[0] > 0
    assert any(line.startswith("SHOWN") for line in lines), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    if os.geteuid() == 0:
        assert "running as root: messages are shown without Chromium's sandbox" in proc.stderr
