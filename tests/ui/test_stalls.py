"""What keeps the GUI thread free during a first sync (issue 7, bench/ui.py's sync stall):
the reading pane warms up in idle time before any message is selected, the invitation
lookup answers ordinary mail without the iCalendar stack, and the sync worker runs at a
lower CPU priority than the window."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from app.mailbox import find_invite
from app.services import Services


def test_find_invite_answers_like_services_invite(demo_services: Services) -> None:
    from app.mailbox import Mailbox

    folders = [f.id for f in demo_services.folders()]
    source = Mailbox(demo_services).folder_source(folders, threads=False)
    ids = sorted({row.summary.id for row in source.page(None, 1000)})
    assert len(ids) > 10
    found = {mid: find_invite(demo_services, mid) for mid in ids}
    assert any(invite is not None for invite in found.values())  # the demo's invitation
    assert any(invite is None for invite in found.values())
    for mid, invite in found.items():
        assert invite == demo_services.invite(mid), mid


def test_reading_pane_warms_up_before_a_message_is_selected(
    qtbot, services: Services, home: Path
) -> None:
    from ui.app import open_settings
    from ui.mainwindow import MainWindow

    window = MainWindow(services, open_settings(home), start_worker=False)
    qtbot.addWidget(window)
    window.show()
    assert window._reader is None  # not built while the window is being shown
    qtbot.waitUntil(lambda: window._conversation is not None, timeout=15_000)
    assert window.list_model.rowCount() == 0  # built in idle time, not by a selection
    assert window._reader is not None
    assert "PySide6.QtWebEngineWidgets" in sys.modules
    # The reader was primed (Chromium's renderer started) and is empty again.
    qtbot.waitUntil(window.reader.placeholder.isVisible, timeout=15_000)
    assert not window.reader.view.isVisible()
    assert window.reader.message_id is None
    window.shutdown()


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no nice() on this system")
def test_worker_launch_lowers_its_priority(tmp_path: Path) -> None:
    import subprocess

    from ui.worker import _LAUNCH

    # The launch line without its last statement (main()): niceness, then report it.
    head = _LAUNCH.rsplit("main()", 1)[0]
    probe = head + "print(os.nice(0))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert int(out.stdout.strip()) >= os.nice(0) + 1
