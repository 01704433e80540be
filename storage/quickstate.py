"""Sync state read with the stdlib ``sqlite3`` driver alone, for the no-change path.

``tidings sync`` with nothing new on the server should cost what the network costs.
Importing SQLAlchemy alone takes 0.3-0.5 s on a small machine, more than the whole
budget, so the question "is everything already in sync?" is answered from here first:
accounts and folder states in plain records, and whether the store has unfinished
work (messages without extracted content). Only when something differs does the full
engine (and SQLAlchemy) load.

Read-only except :func:`touch`, which records that the folders were checked.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from storage.dto import AccountInfo

HEAD_REVISION = "0005"  # the newest Alembic revision; tests check it against migrations/


@dataclass(frozen=True, slots=True)
class QuickFolder:
    id: int
    name: str
    remote_name: str | None
    uidvalidity: int | None
    uidnext: int | None
    highestmodseq: int | None
    state: str
    count: int  # locations stored


@dataclass(frozen=True, slots=True)
class QuickAccount:
    info: AccountInfo
    folders: tuple[QuickFolder, ...]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    conn.execute("PRAGMA query_only = ON")
    return conn


def load(path: Path) -> list[QuickAccount] | None:
    """IMAP accounts and their folders, or None when the full path must run.

    None when the database is missing, not at the newest schema, or holds unfinished
    work (content not yet extracted, local changes due for replay, mail to send).
    """
    if not path.exists():
        return None
    try:
        conn = _connect(path)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if row is None or row[0] != HEAD_REVISION:
            return None
        if conn.execute("SELECT 1 FROM messages WHERE content_state = 0 LIMIT 1").fetchone():
            return None
        due = conn.execute(
            "SELECT 1 FROM actions WHERE state = 'pending'"
            " AND (next_attempt IS NULL OR next_attempt <= ?) LIMIT 1",
            (int(time.time()),),
        ).fetchone()
        if due:
            return None  # local changes to replay first
        outgoing = conn.execute(
            "SELECT 1 FROM outbox WHERE state IN ('sending', 'delivered')"
            " OR (state = 'queued' AND (next_attempt IS NULL OR next_attempt <= ?))"
            " OR (state = 'scheduled' AND send_at <= ?) LIMIT 1",
            (int(time.time()), int(time.time())),
        ).fetchone()
        if outgoing:
            return None  # mail to send
        accounts = []
        for a in conn.execute(
            "SELECT id, name, email, display_name, kind, imap_host, imap_port, imap_security,"
            " smtp_host, smtp_port, smtp_security, username, auth, secret_source, secret_ref,"
            " ca_file, server_files_sent FROM accounts WHERE kind = 'imap' ORDER BY name"
        ):
            info = AccountInfo(
                id=a[0],
                name=a[1],
                email=a[2],
                display_name=a[3],
                kind=a[4],
                imap_host=a[5],
                imap_port=a[6],
                imap_security=a[7],
                smtp_host=a[8],
                smtp_port=a[9],
                smtp_security=a[10],
                username=a[11],
                auth=a[12],
                secret_source=a[13],
                secret_ref=a[14],
                ca_file=a[15],
                server_files_sent=bool(a[16]),
            )
            folders = tuple(
                QuickFolder(*f)
                for f in conn.execute(
                    "SELECT f.id, f.name, f.remote_name, f.uidvalidity, f.uidnext,"
                    " f.highestmodseq, f.sync_state,"
                    " (SELECT count(*) FROM message_uids u WHERE u.folder_id = f.id)"
                    " FROM folders f WHERE f.account_id = ?",
                    (info.id,),
                )
            )
            accounts.append(QuickAccount(info, folders))
        return accounts
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def touch(path: Path, folder_ids: list[int], when: datetime) -> None:
    """Record that these folders were found in sync at ``when``."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        with conn:
            conn.executemany(
                "UPDATE folders SET last_synced = ?, last_error = NULL WHERE id = ?",
                [(int(when.timestamp()), fid) for fid in folder_ids],
            )
    finally:
        conn.close()
