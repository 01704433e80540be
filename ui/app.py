"""Starting the desktop app: QApplication, profile, first-run screen, main window, errors.

Why it is shaped this way:

* ``main(argv)`` is what ``python main.py`` runs. ``--demo`` opens the demo profile,
  building it first when it does not exist yet (``tidings demo`` rebuilds it on demand),
  so ``make run`` works on a fresh machine without any account. ``--home DIR`` picks a
  profile like the CLI does.
* The ``tidings:`` URL scheme of the reader must be declared before the QApplication
  exists, so it happens first (``ui.scheme``, which loads only QtWebEngineCore);
  QtWebEngine's widgets load with the reader, which the main window builds after its
  first rows are painted.
* A profile without accounts shows a first-run screen: "Add account…" (the account
  dialog) or "Open demo" (builds the demo profile on the thread pool, then opens it).
* UI layout lives in ``<profile>/ui.ini`` (``QSettings``, INI format), not in the
  platform's registry, so each profile has its own window layout.
* Start-up: ``main.py`` turns the garbage collector off while it imports; once the
  window shows its first rows, what exists is frozen out of later collections and the
  collector runs again (a full collection over the start-up heap was a 120 ms stall).
* Errors: known ones (``TidingsError``, storage and sync errors) are shown as one line;
  anything else reaches ``sys.excepthook`` and a crash dialog with the traceback behind
  "Show Details" (qutebrowser's known-vs-bug split). ``--debug`` also prints tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main", "open_settings", "show_error"]

_STATE = {"debug": False}


def open_settings(home: Path) -> Any:
    from PySide6.QtCore import QSettings

    return QSettings(str(home / "ui.ini"), QSettings.Format.IniFormat)


def show_error(exc: BaseException, parent: Any = None) -> None:
    """One line for a known error; the crash dialog (with the traceback) for a bug."""
    from PySide6.QtWidgets import QApplication, QMessageBox

    from ui.bridge import known_error

    text = known_error(exc)
    details = getattr(exc, "__traceback_text__", None) or "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    if _STATE["debug"] or text is None:
        sys.stderr.write(details)
    if QApplication.instance() is None:
        return
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen" and "PYTEST_CURRENT_TEST" in os.environ:
        if text is None:
            raise exc  # let the test fail loudly instead of opening a dialog nobody sees
        return
    box = QMessageBox(parent)
    if text is not None:
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Tidings")
        box.setText(text)
    else:
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("Tidings: internal error")
        box.setText(f"Something went wrong inside Tidings: {type(exc).__name__}: {exc}")
        box.setDetailedText(details)
    box.exec()


def _excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    if issubclass(kind, KeyboardInterrupt):
        from PySide6.QtWidgets import QApplication

        QApplication.quit()
        return
    show_error(exc)


def _first_run(home: Path, services: Any, settings: Any, app: Any) -> Any:
    """The first-run screen; returns the window that should stay open."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

    screen = QWidget()
    screen.setObjectName("firstRun")
    screen.setWindowTitle("Welcome to Tidings")
    title = QLabel("<h2>Welcome to Tidings</h2>", screen)
    title.setAlignment(Qt.AlignmentFlag.AlignCenter)
    text = QLabel(
        "Your mail, stored on this computer: fast, searchable offline, and safe to read.\n"
        "Add your mail account, or look around in a demo mailbox first.",
        screen,
    )
    text.setAlignment(Qt.AlignmentFlag.AlignCenter)
    text.setWordWrap(True)
    add = QPushButton("Add account…", screen)
    add.setObjectName("addAccount")
    demo = QPushButton("Open demo", screen)
    demo.setObjectName("openDemo")
    status = QLabel("", screen)
    status.setAlignment(Qt.AlignmentFlag.AlignCenter)
    layout = QVBoxLayout(screen)
    layout.addStretch(1)
    for w in (title, text, add, demo, status):
        layout.addWidget(w)
    layout.addStretch(1)
    screen.resize(560, 360)
    state: dict[str, Any] = {"window": None}

    def open_main(svc: Any, s: Any) -> None:
        from ui.mainwindow import MainWindow

        window = MainWindow(svc, s)
        state["window"] = window
        app.aboutToQuit.connect(window.shutdown)
        window.show()
        screen.close()

    def on_add() -> None:
        from ui.accountdialog import AccountDialog

        dialog = AccountDialog(services, screen)
        if dialog.exec():
            open_main(services, settings)

    def on_demo() -> None:
        from app.demo import build_demo
        from app.profile import Profile, demo_home
        from app.services import Services
        from ui.bridge import run_task

        add.setEnabled(False)
        demo.setEnabled(False)
        status.setText("Building the demo mailbox…")
        demo_services = Services(Profile.open(demo_home()))

        def ready(_summary: Any) -> None:
            open_main(demo_services, open_settings(demo_services.profile.home))

        def failed(exc: BaseException) -> None:
            add.setEnabled(True)
            demo.setEnabled(True)
            status.setText(str(exc))

        run_task(lambda: build_demo(demo_services), ready, failed)

    add.clicked.connect(on_add)
    demo.clicked.connect(on_demo)
    screen.show()
    state["screen"] = screen
    return state


def settle_garbage_collector() -> None:
    """After start-up: keep what exists out of every later collection (a full
    collection over it stalled the list for 120 ms while scrolling), and collect again
    (``main.py`` turns the collector off while it imports)."""
    import gc

    gc.freeze()
    gc.enable()


def _when_ready(window: Any, fn: Callable[[Any], None]) -> None:
    called = []

    def ready(_count: int = 0) -> None:
        if not called:
            called.append(True)
            fn(window)

    if window.list_model.rowCount():
        ready()
    else:
        window.list_model.rows_loaded.connect(ready)


def main(argv: list[str] | None = None, *, on_ready: Callable[[Any], None] | None = None) -> int:
    """Run the app; ``on_ready(window)`` is called once the main window shows its first
    rows (``bench/ui.py`` measures cold start with it)."""
    parser = argparse.ArgumentParser(prog="main.py", description="Tidings desktop app")
    parser.add_argument("--demo", action="store_true", help="open the demo profile")
    parser.add_argument("--home", metavar="DIR", help="profile folder")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    _STATE["debug"] = bool(args.debug)

    from app.errors import TidingsError
    from app.profile import Profile, demo_home
    from storage.errors import StorageError

    try:
        home = args.home
        if args.demo and home is None:
            home = os.environ.get("TIDINGS_HOME") or demo_home()
        profile = Profile.open(home)
        from app.services import Services

        services = Services(profile)
        if args.demo and not any(a.name == "demo" for a in services.accounts()):
            from app.demo import build_demo

            sys.stderr.write(f"building the demo profile at {profile.home} …\n")
            build_demo(services)
    except (TidingsError, StorageError) as exc:
        if _STATE["debug"]:
            raise
        sys.stderr.write(f"tidings: error: {exc}\n")
        return 1

    from PySide6.QtWidgets import QApplication

    from ui.scheme import prepare_web_engine

    prepare_web_engine()  # the reader itself (QtWebEngineWidgets) loads after the first rows
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    app.setApplicationName("Tidings")
    app.setOrganizationName("Tidings")
    app.setQuitOnLastWindowClosed(True)
    sys.excepthook = _excepthook
    settings = open_settings(profile.home)
    keep: Any
    if not services.accounts():
        keep = _first_run(profile.home, services, settings, app)
        settle_garbage_collector()
    else:
        from ui.mainwindow import MainWindow

        keep = MainWindow(services, settings)
        app.aboutToQuit.connect(keep.shutdown)
        keep.show()
        _when_ready(keep, lambda _w: settle_garbage_collector())
        if on_ready is not None:
            _when_ready(keep, on_ready)
    code = app.exec()
    from ui.bridge import wait_for_tasks

    wait_for_tasks()
    del keep
    services.close()
    return int(code)
