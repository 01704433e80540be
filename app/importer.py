"""``tidings import``: mbox files, Maildirs and folders of .eml files into an account.

The import goes through the same ingest as sync (one code path), a batch at a time,
each batch committed, so that an interrupted import keeps what it did and a re-run
skips it. A message's place in the import is its ``source_key``: the hash of its
bytes plus the how-many-th time those bytes occur in this mailbox. That survives
edits elsewhere in the file, yet keeps a message that a mailbox really holds twice
as two copies.

After the messages are listable, content (snippets, attachment lists) is extracted
for everything not yet done, newest first, and the search index takes it. A big
import (32 MB and more) indexes while it stores, in a second process: content is then
extracted batch by batch, so that the first messages are searchable within seconds
and the import as a whole takes about as long as the slower of the two. The summary
counts what was imported, skipped (already there) and flagged as malformed.
"""

from __future__ import annotations

import getpass
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from app.errors import ImportError_
from app.services import Services
from storage import accounts as acc
from storage.errors import NotFound
from storage.ingest import Incoming, content_hash, extract_all, ingest_batch
from storage.mailfiles import FileMessage, detect, iter_emldir, iter_maildir, iter_mbox
from storage.models import Message

BATCH_COUNT = 500
BATCH_BYTES = 32 * 1024 * 1024
BACKGROUND_INDEX_BYTES = 32 * 1024 * 1024  # from this size on, index while importing
DEFAULT_ACCOUNT = "local"

Progress = Callable[[str, int, int | None], None]  # (stage, done, total)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    account: str
    kind: str
    imported: int
    skipped: int
    malformed: int
    folders: tuple[str, ...]


def _messages(path: Path, kind: str) -> Iterator[FileMessage]:
    if kind == "mbox":
        for raw in iter_mbox(path):
            yield FileMessage("", raw, frozenset())
    elif kind == "maildir":
        yield from iter_maildir(path)
    elif kind == "emldir":
        for raw in iter_emldir(path):
            yield FileMessage("", raw, frozenset())
    else:
        yield FileMessage("", path.read_bytes(), frozenset())


def _default_folder(path: Path, kind: str) -> str:
    if kind == "maildir":
        return "INBOX"
    name = path.stem if kind in ("mbox", "eml") else path.name
    return name or "Imported"


def _total_bytes(path: Path) -> int | None:
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return None


def import_path(
    services: Services,
    path: Path,
    *,
    account: str | None = None,
    folder: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    kind = detect(path)  # raises MailboxFormatError before anything is written
    root = folder or _default_folder(path, kind)
    account_name = account or DEFAULT_ACCOUNT
    with services.session() as s:
        try:
            info = acc.get_account(s, account_name)
        except NotFound:
            if account is not None:
                raise
            info = acc.add_account(
                s, acc.NewAccount(DEFAULT_ACCOUNT, f"{getpass.getuser()}@localhost")
            )
    total = _total_bytes(path)
    # A big import indexes as it goes, in a second process (app/search.py): content
    # is then extracted batch by batch, so the indexer has work from the start.
    indexer = None
    if total is not None and total >= BACKGROUND_INDEX_BYTES:
        from app.search import start_background_indexer

        indexer = start_background_indexer(services)
    occurrences: Counter[tuple[str, bytes]] = Counter()
    batch: list[tuple[str, Incoming]] = []
    batch_bytes = 0
    imported = skipped = 0
    imported_ids: list[int] = []
    folders: dict[str, None] = {}
    done_bytes = 0

    def flush() -> None:
        nonlocal imported, skipped, batch, batch_bytes
        by_folder: dict[str, list[Incoming]] = {}
        for name, item in batch:
            by_folder.setdefault(name, []).append(item)
        with services.session() as s:
            for name, items in by_folder.items():
                folder_id = acc.ensure_folder(s, info.id, name)
                for r in ingest_batch(s, info.id, folder_id, items):
                    if r.new_location:
                        imported += 1
                        imported_ids.append(r.message_id)
                    else:
                        skipped += 1
        batch, batch_bytes = [], 0
        if indexer is not None:
            extract_all(services.factory, info.id)
        if progress:
            progress("import", done_bytes, total)

    try:
        for fm in _messages(path, kind):
            name = f"{root}/{fm.folder}" if fm.folder else root
            folders[name] = None
            digest = content_hash(fm.raw)
            occurrences[(name, digest)] += 1
            key = f"{digest.hex()}#{occurrences[(name, digest)]}"
            batch.append((name, Incoming(fm.raw, flags=fm.flags, source_key=key)))
            batch_bytes += len(fm.raw)
            done_bytes += len(fm.raw)
            if len(batch) >= BATCH_COUNT or batch_bytes >= BATCH_BYTES:
                flush()
        if batch:
            flush()
    except BaseException as exc:
        if indexer is not None:
            indexer.stop()  # the index stays whole; what is left waits for the next run
        if isinstance(exc, OSError):
            where = exc.filename or path
            raise ImportError_(
                f"import stopped reading {where}: {exc.strerror or exc} "
                f"({imported} messages imported so far are kept; run again to continue)"
            ) from exc
        raise

    try:
        finish_content(services, info.id, progress)
        if indexer is not None:
            report = None if progress is None else (lambda d, t: progress("indexing", d, t))
            indexer.finish(report)
    except BaseException:
        if indexer is not None:
            indexer.stop()
        raise
    index_new(services, progress)
    malformed = _count_malformed(services, imported_ids)
    return ImportSummary(info.name, kind, imported, skipped, malformed, tuple(folders))


def finish_content(services: Services, account_id: int, progress: Progress | None = None) -> int:
    """Extract content of every listable-only message of the account, newest first."""
    with services.session() as s:
        todo = s.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.account_id == account_id, Message.content_state == 0)
        )

    def report(done: int) -> None:
        if progress:
            progress("content", done, todo)

    return extract_all(services.factory, account_id, report)


def index_new(services: Services, progress: Progress | None = None) -> None:
    """Make what was stored searchable (unless the sync worker runs: it does that)."""
    from app.search import catch_up

    report = None if progress is None else (lambda d, t: progress("indexing", d, t))
    catch_up(services, progress=report)


def _count_malformed(services: Services, ids: list[int]) -> int:
    """Malformed among the imported locations (a message imported twice counts twice)."""
    unique = sorted(set(ids))
    bad: set[int] = set()
    with services.session() as s:
        for i in range(0, len(unique), 500):
            bad.update(
                s.scalars(
                    select(Message.id).where(
                        Message.id.in_(unique[i : i + 500]), Message.malformed.is_(True)
                    )
                )
            )
    return sum(1 for i in ids if i in bad)
