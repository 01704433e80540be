"""Start the Tidings desktop app: ``python main.py [--demo] [--home DIR] [--debug]``.

``--demo`` opens the demo profile (built from the sample mail the project ships the
first time, so a newcomer sees a working client without any account; ``tidings demo``
rebuilds it). ``--home DIR`` opens that profile; a profile without accounts shows a
first-run screen offering "Add account" or "Open demo". The window itself is
``ui.app.main``.
"""

from __future__ import annotations

import gc
import sys

# Start-up allocates hundreds of thousands of long-lived objects (SQLAlchemy, Qt
# bindings): collecting them over and over while importing costs ~10% of the start.
# ui.app turns the collector back on once the window shows its first rows, after
# freezing what exists then (so later collections never walk it again).
gc.disable()

# Pool threads (a message being parsed, counts being read) run Python while the GUI
# thread paints, and every cell a view paints calls into Python (the model): each call
# waits for the GIL until the running thread is made to drop it. At the default 5 ms a
# list repaint took 2-3x longer while a pool task ran; at 1 ms the GUI thread gets it
# back sooner (bench/ui.py).
SWITCH_INTERVAL = 0.001
sys.setswitchinterval(SWITCH_INTERVAL)


def main(argv: list[str] | None = None) -> int:
    from ui.app import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
