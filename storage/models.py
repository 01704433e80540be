"""The SQLite schema of a Tidings profile, as typed SQLAlchemy 2 models.

Why it is shaped this way:

- Raw RFC 822 bytes (``message_bodies``) are the source of truth; every other column
  about a message can be re-derived from them. Bodies live in their own table so that
  list queries never drag megabytes through the page cache.
- A message is stored once per account (unique ``content_hash``); where it lives is a
  ``message_uids`` row per (folder, uid). A Gmail label or a copy in two folders is one
  message with two locations. Imports, which have no server UID, get UIDs from the
  folder's ``uidnext`` and carry a ``source_key`` so that a re-run skips what is in.
- ``message_uids.date`` repeats the message date so that opening a folder of a million
  messages is one index range scan on (folder, date, id) — keyset paging, no sort.
- Times are stored as integer UTC epoch seconds (:class:`UTCTimestamp`): compact, fast
  to compare and sort, and they come back as aware UTC datetimes.
- Threading keeps JWZ's "containers" as ``thread_refs``: every Message-ID a message has
  or references maps to its thread, including ids of messages not (yet) seen, so a
  parent that arrives after its replies still joins them.
- ``actions`` and ``outbox`` are the local-first queues: a local edit and the row that
  replays it to the server are written in one transaction.

Schema changes go through Alembic (``migrations/``); ``tests/test_migrations.py`` fails
when these models and the migrations disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCTimestamp(TypeDecorator[datetime]):
    """An aware datetime stored as integer seconds since the epoch (UTC)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a timezone")
        return int(value.timestamp())

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.fromtimestamp(int(value), UTC)


intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
str_name = Annotated[str, mapped_column(String(255))]
bool_false = Annotated[bool, mapped_column(Boolean, default=False, server_default=text("0"))]
int_zero = Annotated[int, mapped_column(Integer, default=0, server_default=text("0"))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCTimestamp(), str: Text()}  # noqa: RUF012


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[intpk]
    name: Mapped[str_name] = mapped_column(unique=True)
    email: Mapped[str_name]
    display_name: Mapped[str] = mapped_column(default="", server_default="")
    # 'imap' for server accounts, 'local' for accounts that only hold imported mail.
    kind: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    imap_host: Mapped[str | None]
    imap_port: Mapped[int | None]
    imap_security: Mapped[str | None] = mapped_column(String(16))
    smtp_host: Mapped[str | None]
    smtp_port: Mapped[int | None]
    smtp_security: Mapped[str | None] = mapped_column(String(16))
    username: Mapped[str | None]
    auth: Mapped[str] = mapped_column(String(16), default="password", server_default="password")
    # Where the secret lives: 'keyring' (entry named by secret_ref), 'command' (a
    # password command), 'env' (an environment variable), or 'none'. Never the secret.
    secret_source: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    secret_ref: Mapped[str | None]
    ca_file: Mapped[str | None]
    server_files_sent: Mapped[bool_false]
    created_at: Mapped[datetime]


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # Decoded (modified UTF-7 undone) and '/'-separated is what users see; the
    # server's own delimiter is kept to build names back.
    name: Mapped[str]
    # The name as the server spells it (decoded, with its own delimiter), for
    # commands; None for local folders.
    remote_name: Mapped[str | None]
    delimiter: Mapped[str | None] = mapped_column(String(4))
    role: Mapped[str | None] = mapped_column(String(16))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uidnext: Mapped[int] = mapped_column(BigInteger, default=1, server_default=text("1"))
    highestmodseq: Mapped[int | None] = mapped_column(BigInteger)
    # 'initial' | 'synced' | 'uidinvalid' | 'error'
    sync_state: Mapped[str] = mapped_column(String(16), default="initial", server_default="initial")
    last_error: Mapped[str | None]
    next_retry: Mapped[datetime | None]
    last_synced: Mapped[datetime | None]


class Thread(Base):
    __tablename__ = "threads"
    __table_args__ = (Index(None, "account_id", "subject"),)

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    subject: Mapped[str]  # normalised (no Re:/Fwd:, casefolded)
    last_date: Mapped[datetime | None]
    message_count: Mapped[int_zero]


class ThreadRef(Base):
    """A Message-ID (seen or only referenced) and the thread it belongs to."""

    __tablename__ = "thread_refs"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    msgid: Mapped[str] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id", ondelete="CASCADE"), index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("account_id", "content_hash"),
        Index(None, "account_id", "message_id"),
        Index(None, "account_id", "date"),
        Index(None, "content_state", "date"),
        Index(None, "index_state", "date"),
    )

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(16))
    message_id: Mapped[str | None]
    date: Mapped[datetime | None]
    received_at: Mapped[datetime]
    size: Mapped[int]
    subject: Mapped[str] = mapped_column(default="", server_default="")
    from_name: Mapped[str] = mapped_column(default="", server_default="")
    from_email: Mapped[str] = mapped_column(default="", server_default="")
    # JSON lists of [name, email] pairs.
    to_addrs: Mapped[str] = mapped_column(default="[]", server_default="[]")
    cc_addrs: Mapped[str] = mapped_column(default="[]", server_default="[]")
    reply_to: Mapped[str] = mapped_column(default="[]", server_default="[]")
    in_reply_to: Mapped[str | None]
    references: Mapped[str | None]  # space-separated msg-ids, oldest first
    list_id: Mapped[str | None]
    list_unsubscribe: Mapped[str | None]
    list_unsubscribe_post: Mapped[str | None]
    content_type: Mapped[str] = mapped_column(String(255), default="text/plain")
    thread_id: Mapped[int | None] = mapped_column(
        ForeignKey("threads.id", ondelete="SET NULL"), index=True
    )
    snippet: Mapped[str] = mapped_column(default="", server_default="")
    has_attachments: Mapped[bool_false]
    # 0 = listable only (headers), 1 = content extracted (snippet, attachments).
    content_state: Mapped[int_zero]
    # 0 = waiting for the search index (fed newest first), 1 = indexed.
    index_state: Mapped[int_zero]
    malformed: Mapped[bool_false]
    defects: Mapped[str | None]


class MessageUid(Base):
    """Where a message lives: one row per (folder, uid), with that copy's flags."""

    __tablename__ = "message_uids"
    __table_args__ = (
        UniqueConstraint("folder_id", "uid"),
        UniqueConstraint("folder_id", "source_key"),
        Index(None, "folder_id", "date", "id"),
    )

    id: Mapped[intpk]
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    uid: Mapped[int] = mapped_column(BigInteger)
    modseq: Mapped[int | None] = mapped_column(BigInteger)
    date: Mapped[datetime | None]
    seen: Mapped[bool_false]
    flagged: Mapped[bool_false]
    answered: Mapped[bool_false]
    draft: Mapped[bool_false]
    deleted: Mapped[bool_false]
    keywords: Mapped[str] = mapped_column(default="", server_default="")  # space-separated
    source_key: Mapped[str | None]


class MessageBody(Base):
    __tablename__ = "message_bodies"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    compression: Mapped[str] = mapped_column(String(8))  # 'zstd' or 'none'
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[intpk]
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    part_id: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(default="", server_default="")
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    content_id: Mapped[str | None]
    inline: Mapped[bool_false]


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(unique=True)  # lower-case
    name: Mapped[str] = mapped_column(default="", server_default="")
    seen_count: Mapped[int_zero]  # messages received from them
    sent_count: Mapped[int_zero]  # messages the user sent to them (ranks higher)
    last_seen: Mapped[datetime | None]


class Action(Base):
    """A local change waiting to be replayed on the server (local-first queue)."""

    __tablename__ = "actions"
    __table_args__ = (Index(None, "state", "next_attempt"),)

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(default="{}", server_default="{}")  # JSON
    # 'pending' | 'running' | 'done' | 'failed' | 'dropped'
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int_zero]
    next_attempt: Mapped[datetime | None]
    last_error: Mapped[str | None]
    created_at: Mapped[datetime]
    undo_of: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"))


class UndoEntry(Base):
    """One user operation that can be undone, with what undoing it means.

    Apart from ``actions`` on purpose: actions are merged and replayed (read then
    unread is no action at all), while undo walks back what the user did. Undoing
    applies ``inverse`` as a new operation, which queues its own actions.
    """

    __tablename__ = "undo_log"

    id: Mapped[intpk]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    description: Mapped[str]
    inverse: Mapped[str | None]  # JSON operation, None when it cannot be undone
    undone: Mapped[bool_false]
    created_at: Mapped[datetime]


class Outbox(Base):
    """An outgoing message and its sending state machine."""

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "state", "next_attempt"),)

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    message_id_header: Mapped[str]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sender: Mapped[str]
    recipients: Mapped[str]  # JSON list of envelope recipients (incl. Bcc)
    subject: Mapped[str] = mapped_column(default="", server_default="")
    # 'scheduled' | 'queued' | 'sending' | 'sent' | 'failed' | 'cancelled'
    state: Mapped[str] = mapped_column(String(16), default="scheduled", server_default="scheduled")
    send_at: Mapped[datetime | None]
    attempts: Mapped[int_zero]
    next_attempt: Mapped[datetime | None]
    last_error: Mapped[str | None]
    last_reply: Mapped[str | None]
    refused: Mapped[str] = mapped_column(default="{}", server_default="{}")  # JSON
    reply_to_message: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed as one (for multi-row Core statements)."""
    t = model.__table__
    assert isinstance(t, Table)
    return t


class SavedSearch(Base):
    """A search the user named; listed with the folders as a smart folder."""

    __tablename__ = "saved_searches"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(unique=True)
    query: Mapped[str]
    created_at: Mapped[datetime]


class RsvpRecord(Base):
    """An answer the user gave to a calendar invitation (app/invites.py).

    Written in the same transaction as the outbox row carrying the iMIP REPLY, so the
    invitation card shows the answer at once; an answer whose mail was cancelled in
    the undo window does not count. Keyed by the event (UID, occurrence) as well as by
    message, because updates of one invitation arrive as new messages.
    """

    __tablename__ = "rsvps"
    __table_args__ = (Index(None, "account_id", "uid"),)

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    uid: Mapped[str]
    recurrence_id: Mapped[str | None]  # iCalendar text; None answers the whole series
    sequence: Mapped[int_zero]
    partstat: Mapped[str] = mapped_column(String(16))  # ACCEPTED | TENTATIVE | DECLINED
    comment: Mapped[str | None]
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]


class UnsubscribeRecord(Base):
    """A successful unsubscribe from a mailing list (app/unsubscribe.py).

    ``method``: 'one-click' (RFC 8058 POST), 'mailto' (a message in the outbox) or
    'browser' (an https link handed to the browser); ``outcome``: 'done', 'queued'
    or 'opened'; ``detail``: the HTTP status line, or the outbox id. Failures are not
    recorded: they change nothing and are shown to the user.
    """

    __tablename__ = "unsubscribes"
    __table_args__ = (Index(None, "account_id", "list_id"),)

    id: Mapped[intpk]
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    list_id: Mapped[str | None]
    method: Mapped[str] = mapped_column(String(16))
    target: Mapped[str]  # the URL or the address used
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None]
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
