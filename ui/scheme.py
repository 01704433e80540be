"""What QtWebEngine needs before the QApplication exists, without loading QtWebEngine's
widgets: the ``tidings:`` URL scheme, the shared OpenGL contexts and Chromium's flags.

Why a module of its own: the reader (``ui.reader``) imports QtWebEngineWidgets and the
rich-message widgets, which cost a few hundred milliseconds of start-up. The main
window builds the reader after its first rows are painted, so start-up imports only
this (QtWebEngineCore, for the scheme registry, which must be filled before the
application object is created).
"""

from __future__ import annotations

import os
import sys

__all__ = ["chromium_flags", "prepare_web_engine", "register_scheme"]

FLAGS_ENV = "QTWEBENGINE_CHROMIUM_FLAGS"
NO_SANDBOX_ENV = "QTWEBENGINE_DISABLE_SANDBOX"


def register_scheme() -> None:
    """Declare the ``tidings:`` scheme; must run before the QApplication exists."""
    from PySide6.QtWebEngineCore import QWebEngineUrlScheme

    from app.mailbox import SCHEME

    if QWebEngineUrlScheme.schemeByName(SCHEME.encode()).name():
        return
    scheme = QWebEngineUrlScheme(SCHEME.encode())
    scheme.setSyntax(QWebEngineUrlScheme.Syntax.Host)
    scheme.setFlags(
        QWebEngineUrlScheme.Flag.SecureScheme
        | QWebEngineUrlScheme.Flag.ContentSecurityPolicyIgnored
    )
    QWebEngineUrlScheme.registerScheme(scheme)


def chromium_flags(flags: str, *, root: bool, sandbox_off: bool = False) -> tuple[str, bool]:
    """Chromium's command line for the reader, and whether its sandbox had to be
    turned off here (Chromium refuses to start as root with it: the reader would die).

    Without the sandbox the zygote is off too: it exists to start sandboxed renderers,
    and Chromium starts it synchronously on the GUI thread when the reader first
    loads (a 90-130 ms freeze on this machine); renderers are then started by
    Chromium's launcher thread instead.
    """
    words = flags.split()
    no_sandbox = sandbox_off or "--no-sandbox" in words
    turned_off = root and not no_sandbox
    if turned_off:
        words.append("--no-sandbox")
        no_sandbox = True
    if no_sandbox and "--no-zygote" not in words:
        words.append("--no-zygote")
    return " ".join(words), turned_off


def prepare_web_engine() -> None:
    """The scheme, the OpenGL context sharing QtWebEngine asks for when it is loaded
    after the application object (it warns otherwise), and Chromium's flags (read
    when QtWebEngine starts, so they must be in the environment before)."""
    from PySide6.QtCore import QCoreApplication, Qt

    flags, turned_off = chromium_flags(
        os.environ.get(FLAGS_ENV, ""),
        root=hasattr(os, "geteuid") and os.geteuid() == 0,
        sandbox_off=os.environ.get(NO_SANDBOX_ENV, "") not in ("", "0"),
    )
    os.environ[FLAGS_ENV] = flags
    if turned_off:
        sys.stderr.write(
            "tidings: running as root: messages are shown without Chromium's sandbox\n"
        )
    register_scheme()
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
