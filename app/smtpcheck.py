"""Asking the SMTP server before a message is queued: will it take one this big?

A 30 MB attachment to a server that takes 25 MB should be refused while the user is
still composing, not after the undo window in a failed outbox entry. The limit is
the server's SIZE (RFC 1870), which it announces in its greeting, so finding it out
costs a connection and an EHLO -- no login, no mail. It is asked only for messages
over ``PROBE_OVER`` (no server limits mail below that), and never blocks sending:
when the server cannot be reached the message is queued as usual, and the outbox
refuses it with the same words if it really is too big.

This is network I/O: the desktop app calls it off the GUI thread.
"""

from __future__ import annotations

from app.compose import ComposeError
from storage.dto import AccountInfo
from sync.errors import SyncError
from sync.smtp import SmtpConfig, SmtpSession, too_big

PROBE_OVER = 1024 * 1024  # bytes; the smallest limits in the wild are a few MB


def size_limit(account: AccountInfo, *, timeout: float = 10.0) -> int | None:
    """The server's SIZE limit in bytes; None when it names none or can't be asked."""
    if not account.smtp_host or not account.smtp_port:
        return None
    cfg = SmtpConfig(
        host=account.smtp_host,
        port=account.smtp_port,
        security=account.smtp_security or "ssl",
        username=None,  # no login: no secret needed
        secret=None,
        auth=account.auth,
        ca_file=account.ca_file,
        timeout=timeout,
    )
    try:
        with SmtpSession.open(cfg, account=account.name, login=False) as session:
            return session.max_size
    except SyncError:
        return None


def check_size(account: AccountInfo, size: int) -> None:
    """Raise ComposeError when the account's server will refuse ``size`` bytes."""
    if size <= PROBE_OVER:
        return
    limit = size_limit(account)
    if limit is not None and size > limit:
        host = account.smtp_host or "the server"
        raise ComposeError(f"{too_big(size, limit, host)}: nothing was queued")
