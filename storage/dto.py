"""Plain frozen records that leave ``storage`` — never live ORM objects.

The UI and the CLI hold these; a Qt model can keep thousands of them without a
session, lazy loads or surprises in ``data()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "AccountInfo",
    "AddressInfo",
    "AttachmentInfo",
    "ContactInfo",
    "FolderInfo",
    "ListRow",
    "MessageDetail",
    "MessageSummary",
]


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: int
    name: str
    email: str
    display_name: str
    kind: str  # 'imap' or 'local'
    imap_host: str | None
    imap_port: int | None
    imap_security: str | None
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: str | None
    username: str | None
    auth: str
    secret_source: str
    secret_ref: str | None
    ca_file: str | None
    server_files_sent: bool


@dataclass(frozen=True, slots=True)
class FolderInfo:
    id: int
    account_id: int
    account: str
    name: str
    role: str | None
    total: int
    unread: int
    sync_state: str
    last_error: str | None
    next_retry: datetime | None


@dataclass(frozen=True, slots=True)
class AddressInfo:
    name: str
    email: str

    def display(self) -> str:
        if self.name and self.email:
            return f"{self.name} <{self.email}>"
        return self.name or self.email


@dataclass(frozen=True, slots=True)
class MessageSummary:
    id: int
    account: str
    date: datetime | None
    sender: AddressInfo
    to: tuple[AddressInfo, ...]
    subject: str
    folders: tuple[str, ...]
    flags: tuple[str, ...]  # seen, flagged, answered, draft, deleted, then keywords
    has_attachments: bool
    snippet: str
    thread_id: int | None
    size: int
    malformed: bool


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A part that is not body text: a real attachment or an inline resource.

    The parser (``storage.mime``, as ``Attachment``) and the store list the same record.
    """

    part_id: str  # IMAP BODY section number, e.g. '2' or '1.3'
    filename: str  # sanitised; '' when the part has no name
    content_type: str  # lower-case
    size: int  # decoded size in bytes
    content_id: str | None  # without <>
    inline: bool  # Content-Disposition inline, or referenced by a cid: URL


@dataclass(frozen=True, slots=True)
class MessageDetail:
    summary: MessageSummary
    cc: tuple[AddressInfo, ...]
    reply_to: tuple[AddressInfo, ...]
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    list_id: str | None
    list_unsubscribe: str | None
    list_unsubscribe_post: str | None
    content_type: str
    attachments: tuple[AttachmentInfo, ...]
    defects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListRow:
    """One row of the desktop message list: a message, or a conversation led by one.

    ``date`` and ``key`` are the keyset position of the row (newest first); the list
    asks for the next page "before (date, key)". ``key`` is the location row id
    (``message_uids.id``) when the list is a set of folders. In conversation mode the
    row is the newest message of its thread within the listed folders, and
    ``thread_count``/``thread_unread`` describe the whole conversation.
    """

    summary: MessageSummary
    date: datetime | None
    key: int
    thread_count: int = 1
    thread_unread: int = 0


@dataclass(frozen=True, slots=True)
class ContactInfo:
    """An address for autocomplete, ranked by how often the user wrote to / heard from it."""

    name: str
    email: str
    sent_count: int
    seen_count: int

    def display(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email
