"""What QtWebEngine needs before the QApplication exists, without loading QtWebEngine's
widgets: the ``tidings:`` URL scheme and the shared OpenGL contexts.

Why a module of its own: the reader (``ui.reader``) imports QtWebEngineWidgets and the
rich-message widgets, which cost a few hundred milliseconds of start-up. The main
window builds the reader after its first rows are painted, so start-up imports only
this (QtWebEngineCore, for the scheme registry, which must be filled before the
application object is created).
"""

from __future__ import annotations

__all__ = ["prepare_web_engine", "register_scheme"]


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


def prepare_web_engine() -> None:
    """The scheme, and the OpenGL context sharing QtWebEngine asks for when it is
    loaded after the application object (it warns otherwise)."""
    from PySide6.QtCore import QCoreApplication, Qt

    register_scheme()
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
