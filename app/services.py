"""The facade that the CLI and the desktop app use: one object per open profile.

Every method is one short unit of work on its own session and returns plain records
(``storage.dto``), so callers never hold a session or an ORM object. Names are
resolved here, with one-line errors for the user (unknown account, unknown folder).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.profile import Profile
from storage import accounts as acc
from storage import queries
from storage.db import open_database, session_factory, session_scope
from storage.dto import AccountInfo, FolderInfo, MessageDetail, MessageSummary


class Services:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = open_database(self.profile.db_path)
            self._factory = session_factory(self._engine)
        return self._engine

    @property
    def factory(self) -> sessionmaker[Session]:
        """The session factory, for code that runs its own units of work (sync)."""
        self.engine  # noqa: B018 - opens (and upgrades) the database on first use
        assert self._factory is not None
        return self._factory

    @contextmanager
    def session(self) -> Iterator[Session]:
        self.engine  # noqa: B018 - opens (and upgrades) the database on first use
        assert self._factory is not None
        with session_scope(self._factory) as session:
            yield session

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- accounts -------------------------------------------------------------------

    def add_account(self, new: acc.NewAccount) -> AccountInfo:
        with self.session() as s:
            return acc.add_account(s, new)

    def accounts(self) -> list[AccountInfo]:
        with self.session() as s:
            return acc.list_accounts(s)

    def account(self, name: str) -> AccountInfo:
        with self.session() as s:
            return acc.get_account(s, name)

    def remove_account(self, name: str) -> AccountInfo:
        with self.session() as s:
            info = acc.get_account(s, name)
            acc.remove_account(s, name)
            return info

    # -- folders and messages ---------------------------------------------------------

    def folders(self, account: str | None = None) -> list[FolderInfo]:
        with self.session() as s:
            account_id = acc.get_account(s, account).id if account else None
            return queries.folder_infos(s, account_id)

    def list_messages(
        self,
        *,
        account: str | None = None,
        folder: str | None = None,
        limit: int = 50,
        unread_only: bool = False,
    ) -> list[MessageSummary]:
        with self.session() as s:
            account_id = acc.get_account(s, account).id if account else None
            folder_ids = acc.find_folder(s, account_id, folder) if folder else None
            return queries.list_messages(
                s,
                queries.ListQuery(
                    account_ids=None if account_id is None else [account_id],
                    folder_ids=folder_ids,
                    unread_only=unread_only,
                    limit=limit,
                ),
            )

    def message(self, message_id: int) -> MessageDetail:
        with self.session() as s:
            return queries.message_detail(s, message_id)

    def raw(self, message_id: int) -> bytes:
        with self.session() as s:
            return queries.raw_message(s, message_id)

    def text(self, message_id: int) -> str:
        """The readable text of a message (the HTML part turned into text if need be)."""
        from storage.mime import extract_content

        return extract_content(self.raw(message_id)).text
