"""The no-change fast path of ``tidings sync --once``.

A sync that finds nothing new should cost a login and one STATUS per folder, not the
half second it takes to import SQLAlchemy and the ingest machinery. So before the
full engine loads, this asks the server, per folder, for UIDVALIDITY, UIDNEXT,
HIGHESTMODSEQ and MESSAGES and compares them with what the last completed sync
stored (read with plain ``sqlite3``, ``storage/quickstate.py``). All equal means
nothing was added (UIDNEXT), changed (HIGHESTMODSEQ, so CONDSTORE is required) or
expunged (MESSAGES cannot drop without an expunge when UIDNEXT stayed), and the
folder list is the same. Anything else, any doubt or any error: the full engine
runs, and reports errors itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app import secrets
from app.errors import TidingsError
from storage import quickstate
from storage.dto import AccountInfo
from sync.errors import SyncError
from sync.imap import ImapConnection, ServerConfig
from sync.smtp import SmtpConfig

Emit = Callable[[dict[str, Any]], None]


def server_config(account: AccountInfo) -> ServerConfig:
    if not account.imap_host or not account.imap_port:
        raise TidingsError(f"account {account.name} has no IMAP server (a local account)")
    return ServerConfig(
        host=account.imap_host,
        port=account.imap_port,
        security=account.imap_security or "ssl",
        username=account.username or account.email,
        secret=secrets.get_secret(account),
        auth=account.auth,
        ca_file=account.ca_file,
    )


def smtp_config(account: AccountInfo) -> SmtpConfig:
    if not account.smtp_host or not account.smtp_port:
        raise TidingsError(f"account {account.name} has no SMTP server to send with")
    needs_login = account.secret_source != "none"
    return SmtpConfig(
        host=account.smtp_host,
        port=account.smtp_port,
        security=account.smtp_security or "ssl",
        username=(account.username or account.email) if needs_login else None,
        secret=secrets.get_secret(account) if needs_login else None,
        auth=account.auth,
        ca_file=account.ca_file,
    )


def _unchanged(conn: ImapConnection, acct: quickstate.QuickAccount, folder: str | None) -> bool:
    if not conn.has_condstore:
        return False
    listed = {e.name for e in conn.list_folders() if e.selectable}
    stored = {f.remote_name: f for f in acct.folders}
    if listed != set(stored):
        return False
    for f in acct.folders:
        if folder is not None and f.name != folder:
            continue
        if f.state != "synced" or f.remote_name is None:
            return False
        st = conn.status(f.remote_name)
        now = (st.uidvalidity, st.uidnext, st.highestmodseq, st.messages)
        if now != (f.uidvalidity, f.uidnext, f.highestmodseq, f.count):
            return False
    return True


def nothing_changed(db_path: Path, account: str | None, folder: str | None, emit: Emit) -> bool:
    """True when every chosen folder is already equal to the server's (then touched)."""
    accounts = quickstate.load(db_path)
    if not accounts:
        return False
    if account is not None:
        accounts = [a for a in accounts if a.info.name == account]
        if not accounts:
            return False
    try:
        for acct in accounts:
            with ImapConnection.connect(server_config(acct.info), account=acct.info.name) as conn:
                if not _unchanged(conn, acct, folder):
                    return False
    except (SyncError, TidingsError):
        return False
    now = datetime.now(UTC)
    for acct in accounts:
        chosen = [f for f in acct.folders if folder is None or f.name == folder]
        quickstate.touch(db_path, [f.id for f in chosen], now)
        for f in chosen:
            emit(
                {
                    "event": "folder_synced",
                    "account": acct.info.name,
                    "folder": f.name,
                    "added": 0,
                    "matched": 0,
                    "removed": 0,
                    "flags_changed": 0,
                }
            )
        emit({"event": "listable", "account": acct.info.name, "added": 0})
        emit({"event": "state", "account": acct.info.name, "state": "synced"})
        emit({"event": "summary", "account": acct.info.name, "folders": len(chosen)})
    return True
