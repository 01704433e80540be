"""Network failures in words a user can act on, shared by the IMAP and SMTP modules.

Both protocol modules translate socket, DNS and TLS errors into one-line messages
("connection refused", "host name not found"); the wording and the TLS setup (system
trust store plus an optional private CA, verification always on) live here once.
"""

from __future__ import annotations

import socket
import ssl

from sync.errors import TlsError

_NOT_FOUND = {
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)
}


def lower(text: str | None) -> str:
    """A library's message as part of our sentence: trimmed, first letter lowered."""
    text = (text or "").strip().rstrip(".")
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def os_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words."""
    if isinstance(exc, socket.gaierror):
        if exc.errno in _NOT_FOUND:
            return "host name not found"
        return f"host name lookup failed ({lower(exc.strerror)})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, BrokenPipeError):
        return "the server closed the connection"
    if isinstance(exc, ssl.SSLError):
        return exc.reason.lower().replace("_", " ") if exc.reason else lower(str(exc))
    if isinstance(exc, OSError) and exc.strerror:
        return lower(exc.strerror)
    return lower(str(exc)) or type(exc).__name__


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verifying TLS context: the system's CAs, plus ``ca_file`` for a private CA."""
    ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot use the CA file {ca_file}: {os_reason(exc)}") from exc
    return ctx
