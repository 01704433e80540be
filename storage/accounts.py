"""Accounts and folders: creating, finding and removing them.

Lookups by name are how users and scripts address things (``--account work
--folder "Projekte/Übersicht"``), so they are forgiving where it is safe: INBOX in
any case, and a role name (``sent``, ``trash``) finds the folder with that role.
Removing an account removes its folders, messages and queues with it (foreign keys
cascade) in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from storage.dto import AccountInfo
from storage.errors import NotFound, StorageError
from storage.models import Account, Folder, Message, Thread, ThreadRef

ROLES = ("inbox", "drafts", "sent", "archive", "trash", "junk", "all", "flagged")

_ROLE_NAMES = {
    "inbox": "inbox",
    "sent": "sent",
    "sent items": "sent",
    "sent mail": "sent",
    "sent messages": "sent",
    "gesendet": "sent",
    "drafts": "drafts",
    "draft": "drafts",
    "entwürfe": "drafts",
    "trash": "trash",
    "deleted items": "trash",
    "deleted messages": "trash",
    "bin": "trash",
    "papierkorb": "trash",
    "junk": "junk",
    "spam": "junk",
    "junk e-mail": "junk",
    "archive": "archive",
    "archives": "archive",
    "archiv": "archive",
    "all mail": "all",
}


class AccountExists(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class NewAccount:
    name: str
    email: str
    display_name: str = ""
    imap_host: str | None = None
    imap_port: int | None = None
    imap_security: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None
    username: str | None = None
    auth: str = "password"
    secret_source: str = "none"
    secret_ref: str | None = None
    ca_file: str | None = None
    server_files_sent: bool = False


def guess_role(name: str) -> str | None:
    """A role for a folder that has no SPECIAL-USE attribute, from its name."""
    leaf = name.rsplit("/", 1)[-1].strip().casefold()
    if name.casefold() == "inbox":
        return "inbox"
    if "/" in name and name.split("/", 1)[0].casefold() == "[gmail]":
        return _ROLE_NAMES.get(leaf)
    if "/" in name and name.split("/", 1)[0].casefold() != "inbox":
        return None
    return _ROLE_NAMES.get(leaf)


def to_info(a: Account) -> AccountInfo:
    return AccountInfo(
        id=a.id,
        name=a.name,
        email=a.email,
        display_name=a.display_name,
        kind=a.kind,
        imap_host=a.imap_host,
        imap_port=a.imap_port,
        imap_security=a.imap_security,
        smtp_host=a.smtp_host,
        smtp_port=a.smtp_port,
        smtp_security=a.smtp_security,
        username=a.username,
        auth=a.auth,
        secret_source=a.secret_source,
        secret_ref=a.secret_ref,
        ca_file=a.ca_file,
        server_files_sent=a.server_files_sent,
    )


def add_account(session: Session, new: NewAccount) -> AccountInfo:
    if session.scalar(select(Account.id).where(Account.name == new.name)) is not None:
        raise AccountExists(f"an account named {new.name!r} exists already")
    account = Account(
        name=new.name,
        email=new.email,
        display_name=new.display_name,
        kind="imap" if new.imap_host else "local",
        imap_host=new.imap_host,
        imap_port=new.imap_port,
        imap_security=new.imap_security,
        smtp_host=new.smtp_host,
        smtp_port=new.smtp_port,
        smtp_security=new.smtp_security,
        username=new.username,
        auth=new.auth,
        secret_source=new.secret_source,
        secret_ref=new.secret_ref,
        ca_file=new.ca_file,
        server_files_sent=new.server_files_sent,
        created_at=datetime.now(UTC),
    )
    session.add(account)
    session.flush()
    return to_info(account)


def list_accounts(session: Session) -> list[AccountInfo]:
    return [to_info(a) for a in session.scalars(select(Account).order_by(Account.name))]


def get_account(session: Session, name: str) -> AccountInfo:
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None:
        names = ", ".join(session.scalars(select(Account.name).order_by(Account.name)))
        hint = f" (accounts: {names})" if names else " (there are no accounts yet)"
        raise NotFound(f"no account named {name!r}{hint}")
    return to_info(account)


def account_by_id(session: Session, account_id: int) -> AccountInfo:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"the account (id {account_id}) was removed")
    return to_info(account)


def remove_account(session: Session, name: str) -> None:
    info = get_account(session, name)
    # Order matters little with cascades, but threads and refs go first so that
    # SQLite does not re-check each message's thread on the way out.
    session.execute(delete(ThreadRef).where(ThreadRef.account_id == info.id))
    session.execute(delete(Message).where(Message.account_id == info.id))
    session.execute(delete(Thread).where(Thread.account_id == info.id))
    session.execute(delete(Account).where(Account.id == info.id))


def ensure_folder(
    session: Session,
    account_id: int,
    name: str,
    *,
    role: str | None = None,
    delimiter: str | None = "/",
) -> int:
    """The id of folder ``name`` in the account, creating it when needed."""
    folder_id = session.scalar(
        select(Folder.id).where(Folder.account_id == account_id, Folder.name == name)
    )
    if folder_id is not None:
        return folder_id
    folder = Folder(
        account_id=account_id,
        name=name,
        delimiter=delimiter,
        role=role if role is not None else guess_role(name),
    )
    session.add(folder)
    session.flush()
    return folder.id


def find_folder(session: Session, account_id: int | None, name: str) -> list[int]:
    """Folder ids named ``name`` (exact, then INBOX/role, then case-insensitive)."""
    base = select(Folder.id)
    if account_id is not None:
        base = base.where(Folder.account_id == account_id)
    for cond in (
        Folder.name == name,
        Folder.role == name.casefold(),
        func.lower(Folder.name) == name.casefold(),
    ):
        ids = list(session.scalars(base.where(cond)))
        if ids:
            return ids
    raise NotFound(f"no folder named {name!r}")
