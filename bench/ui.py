"""UI model benchmark: main window start, a 100,000-message folder, scrolling, memory.

    python bench/ui.py [--messages N]

Prints: time to the main window shown (demo profile, in-process, after imports),
time to the first rows of an N-message folder, the cost of data() for a screen of
rows, the longest fetchMore stall while scrolling to the end, and RSS growth.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox --disable-gpu")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()

    t_import = time.perf_counter()
    from ui.reader import register_scheme

    register_scheme()
    from PySide6.QtCore import QModelIndex, Qt
    from PySide6.QtWidgets import QApplication, QTableView

    app = QApplication([])
    from app.demo import build_demo
    from app.mailbox import Mailbox
    from app.profile import Profile
    from app.services import Services
    from storage.db import open_database
    from tests.ui.conftest import fill_folder
    from ui.app import open_settings
    from ui.mainwindow import MainWindow
    from ui.models import MessageListModel

    with tempfile.TemporaryDirectory() as tmp:
        demo = Services(Profile.open(Path(tmp) / "demo"))
        build_demo(demo)
        t0 = time.perf_counter()
        window = MainWindow(demo, open_settings(demo.profile.home), start_worker=False)
        window.show()
        while window.list_model.rowCount() == 0:
            app.processEvents()
        print(
            f"main window shown with rows: {(time.perf_counter() - t0) * 1000:.0f} ms "
            f"(imports before it: {(t0 - t_import) * 1000:.0f} ms)"
        )
        window.close()

        big = Path(tmp) / "big"
        big.mkdir()
        open_database(big / "tidings.db").dispose()
        t0 = time.perf_counter()
        _acc, folder = fill_folder(big / "tidings.db", args.messages)
        print(f"filled {args.messages:,} messages in {time.perf_counter() - t0:.1f} s")
        svc = Services(Profile.open(big))
        model = MessageListModel()
        view = QTableView()
        view.resize(900, 800)
        view.setModel(model)
        view.show()
        rss0 = rss_mb()
        t0 = time.perf_counter()
        model.set_source(Mailbox(svc).folder_source([folder], threads=False))
        app.processEvents()
        print(f"first rows shown: {(time.perf_counter() - t0) * 1000:.1f} ms")
        rows_on_screen = 40
        t0 = time.perf_counter()
        for r in range(rows_on_screen):
            for c in range(4):
                for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.FontRole):
                    model.index(r, c).data(role)
        print(
            f"data() for a screen ({rows_on_screen} rows x 4 columns x 2 roles): "
            f"{(time.perf_counter() - t0) * 1000:.2f} ms"
        )
        worst = 0.0
        t_all = time.perf_counter()
        while model.canFetchMore(QModelIndex()):
            t0 = time.perf_counter()
            view.scrollToBottom()
            app.processEvents()
            worst = max(worst, time.perf_counter() - t0)
        print(
            f"scrolled to row {model.rowCount():,} in {time.perf_counter() - t_all:.1f} s; "
            f"longest step {worst * 1000:.1f} ms; RSS +{rss_mb() - rss0:.0f} MB; "
            f"cached records {model.cached_rows()}"
        )
        t0 = time.perf_counter()
        model.index(0, 2).data()
        print(f"re-reading an evicted row block: {(time.perf_counter() - t0) * 1000:.1f} ms")
        svc.close()
        demo.close()


if __name__ == "__main__":
    main()
