"""Search for the desktop app and the command line: queries, index upkeep, saved searches.

The services here wrap ``storage.search`` (the Whoosh index and the evaluation) and
``storage.searchquery`` (the language) for one profile:

- :func:`search` parses a query in the user's time zone (``after:2026-03-01`` starts
  at local midnight) and returns the same :class:`MessageSummary` rows as the message
  list, newest first; a query that cannot be understood raises
  :class:`~storage.searchquery.QueryError` (a known, one-line error).
- Who writes the index: the sync worker (``tidings sync --watch``) after it has
  extracted content (:func:`update_index`), or the command line when no worker runs
  (:func:`catch_up`, before ``tidings search`` answers; import and demo index what
  they stored). The desktop process never writes it. The index's own file lock makes
  a second writer wait or skip, so a mistake costs time, never a damaged index.
- :func:`quick_search` answers ``tidings search`` without SQLAlchemy (it costs about
  as much to import as the whole search budget): only ``sqlite3`` and whoosh, when
  the database is at the current schema and nothing waits for the index (or a worker
  is indexing it). Anything else takes the full path, with the same answer.
- A big import indexes while it stores (:class:`BackgroundIndexer`): a child process
  (``python -m app.search follow PROFILE``) owns the index meanwhile and uses the
  second core; it ends when the import closes its input, or dies with it.
- Saved searches are named queries; ``tidings folders`` and the desktop app list them
  as smart folders. Saving checks that the query parses.
- A reader that finds the index damaged raises ``SearchUnavailable`` (known, one
  line) and leaves a mark; the owner rebuilds it, with a notice (``tidings search``
  does so at once and answers).

This module imports neither SQLAlchemy nor whoosh at import time.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import TidingsError, UsageError

if TYPE_CHECKING:
    from app.services import Services
    from storage.dto import MessageSummary
    from storage.search import IndexRun, SavedSearchInfo, SearchIndex
    from storage.searchquery import Node

__all__ = [
    "SORTS",
    "BackgroundIndexer",
    "IndexBusy",
    "catch_up",
    "delete_saved_search",
    "parse",
    "quick_search",
    "reindex",
    "save_search",
    "saved_searches",
    "search",
    "start_background_indexer",
    "update_index",
    "worker_running",
]

SORTS = ("date", "relevance")
WORKER_PID = "worker.pid"  # as app.services.WORKER_PID (a test holds them equal)
MAX_NAME = 200

Emit = Callable[[dict[str, Any]], None]
Progress = Callable[[int, int], None]


class IndexBusy(TidingsError):
    """Another process is writing the search index."""


# --------------------------------------------------------------------------- parsing


def parse(query: str, *, now: datetime | None = None, tz: tzinfo | None = None) -> Node:
    """The tree of ``query``; QueryError (one line, with the column) when it is bad."""
    from app.timezone import user_zone
    from storage.searchquery import parse as parse_query

    return parse_query(query, now=now or datetime.now(UTC), tz=tz or user_zone())


# --------------------------------------------------------------------------- plumbing


_indexes: weakref.WeakKeyDictionary[Services, SearchIndex] = weakref.WeakKeyDictionary()


_indexes_lock = threading.Lock()


def index_of(svc: Services) -> SearchIndex:
    """The profile's search index, opened once per :class:`Services` (the desktop app
    searches from a thread pool)."""
    with _indexes_lock:
        found = _indexes.get(svc)
        if found is None:
            from storage.search import SearchIndex

            found = _indexes[svc] = SearchIndex(svc.profile.index_dir)
            weakref.finalize(svc, found.close)
        return found


@contextmanager
def _engine_db(svc: Services) -> Iterator[sqlite3.Connection]:
    """A connection of the profile's engine (pragmas set, upgraded schema), raw."""
    raw = svc.engine.raw_connection()
    try:
        db = raw.driver_connection
        assert isinstance(db, sqlite3.Connection)
        yield db
    finally:
        raw.close()


def _connector(svc: Services) -> Callable[[], Any]:
    return lambda: _engine_db(svc)


def worker_running(home: Path) -> bool:
    """True when a sync worker of this profile other than this process is alive (it
    owns the index then)."""
    try:
        pid = int((home / WORKER_PID).read_text().strip())
    except (OSError, ValueError):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- searching


def search(
    svc: Services,
    query: str,
    *,
    account: str | None = None,
    limit: int = 50,
    sort: str = "date",
) -> list[MessageSummary]:
    """Messages matching ``query``, newest first (or by relevance), as list rows."""
    from storage.search import account_ids, summaries

    if sort not in SORTS:
        raise UsageError(f"unknown sort {sort!r} (use date or relevance)")
    node = parse(query)
    index = index_of(svc)
    with _engine_db(svc) as db:
        ids = index.search(db, node, account_ids=account_ids(db, account), limit=limit, sort=sort)
        rows = summaries(db, ids)
        if db.in_transaction:
            db.rollback()
        return rows


def quick_search(
    home: Path,
    query: str,
    *,
    account: str | None = None,
    limit: int = 50,
    sort: str = "date",
    index: SearchIndex | None = None,
) -> list[MessageSummary] | None:
    """``tidings search`` without SQLAlchemy; None when the full path must answer
    (no database yet, an older schema, index work to do here, no readable index).
    ``index``: one kept open by the caller (the search server), else opened here."""
    from storage.quickstate import HEAD_REVISION

    path = home / "tidings.db"
    if not path.exists() or sort not in SORTS:
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    with closing(db):
        try:
            db.execute("PRAGMA query_only = ON")
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            if row is None or row[0] != HEAD_REVISION:
                return None
            waiting = db.execute(
                "SELECT 1 FROM messages WHERE index_state = 0 AND content_state = 1 LIMIT 1"
            ).fetchone()
        except sqlite3.Error:
            return None
        if waiting is not None and not worker_running(home):
            return None  # catch up first (full path)
        from storage.search import SearchIndex, SearchUnavailable, account_ids, summaries

        node = parse(query)
        own = index is None
        ix = SearchIndex(home / "index") if index is None else index
        try:
            if not ix.readable():
                return None
            ids = ix.search(db, node, account_ids=account_ids(db, account), limit=limit, sort=sort)
            return summaries(db, ids)
        except SearchUnavailable:
            if not own:
                raise  # the server tells the command to rebuild it
            return None  # damaged: the full path rebuilds it first
        finally:
            if own:
                ix.close()


# --------------------------------------------------------------------------- indexing


def catch_up(
    svc: Services, *, progress: Progress | None = None, notice: Callable[[str], None] | None = None
) -> IndexRun | None:
    """Index what waits, newest first, unless a sync worker runs (it does that).

    Returns None when the worker owns the index, else what was done (``busy`` when
    another process holds the lock right now: searching what is there is right then).
    """
    if worker_running(svc.profile.home):
        return None
    index = index_of(svc)
    run = index.update(_connector(svc), progress=progress)
    _flush_notices(index, notice)
    return run


class _Runs:
    """Index runs of one profile in this process: account threads of the worker
    call :func:`update_index` at any time; one runs, the others ask it to go again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = False
        self.again = False


_runs: weakref.WeakKeyDictionary[Services, _Runs] = weakref.WeakKeyDictionary()
_runs_lock = threading.Lock()


def update_index(svc: Services, emit: Emit, *, stop: Callable[[], bool] | None = None) -> int:
    """Index what waits, after content extraction (the sync worker and ``tidings
    sync``); events ``indexed`` (per batch) and ``notice`` (the index was rebuilt).

    Never blocks on another thread of this process: if one is indexing, it is asked
    to run once more (so nothing is left waiting) and this call returns. A sync
    worker of another process owns the index: then nothing is done here.
    """
    if worker_running(svc.profile.home):
        return 0
    with _runs_lock:
        runs = _runs.get(svc)
        if runs is None:
            runs = _runs[svc] = _Runs()
    with runs.lock:
        if runs.running:
            runs.again = True
            return 0
        runs.running = True
    index = index_of(svc)

    def report(done: int, todo: int) -> None:
        if done:
            emit({"event": "indexed", "count": done, "remaining": max(todo - done, 0)})

    total = 0
    try:
        while True:
            run = index.update(_connector(svc), progress=report, stop=stop, wait=5.0)
            total += run.indexed
            _flush_notices(index, lambda text: emit({"event": "notice", "message": text}))
            with runs.lock:
                if not runs.again or (stop is not None and stop()):
                    runs.running = runs.again = False
                    return total
                runs.again = False
    except BaseException:
        with runs.lock:
            runs.running = runs.again = False
        raise


def reindex(svc: Services, *, progress: Progress | None = None) -> IndexRun:
    """Build the index afresh from the database (``tidings reindex``)."""
    index = index_of(svc)
    run = index.rebuild(_connector(svc), progress=progress, wait=10.0)
    if run.busy:
        raise IndexBusy(
            "the search index is in use by another process (the sync worker is "
            "indexing); try again when it is done"
        )
    index.notices.clear()
    return run


def _flush_notices(index: SearchIndex, notice: Callable[[str], None] | None) -> None:
    if notice is not None:
        for text in index.notices:
            notice(text)
    index.notices.clear()


# --------------------------------------------------------------------------- saved searches


def saved_searches(svc: Services) -> list[SavedSearchInfo]:
    from storage.search import saved_searches as stored

    with _engine_db(svc) as db:
        return stored(db)


def save_search(svc: Services, name: str, query: str) -> SavedSearchInfo:
    """Save ``query`` as ``name`` (replacing a search of that name); it must parse."""
    from storage.search import save_search as store

    name = " ".join(name.split())
    if not name:
        raise UsageError("a saved search needs a name")
    if len(name) > MAX_NAME:
        raise UsageError(f"the name is too long (at most {MAX_NAME} characters)")
    parse(query)
    with _engine_db(svc) as db:
        return store(db, name, query.strip(), now=datetime.now(UTC))


def delete_saved_search(svc: Services, name: str) -> None:
    from storage.search import delete_saved_search as remove

    with _engine_db(svc) as db:
        remove(db, " ".join(name.split()))


# --------------------------------------------------------------------------- background indexing


class BackgroundIndexer:
    """A child process that indexes while a big import is still storing mail.

    It uses the second core: the import parses and stores, the child indexes what
    has its content, newest first, as it comes. It holds the index lock; it stops when
    its standard input closes (``finish``, or the importing process died) and nothing
    waits any more. Only ``sqlite3`` and whoosh are loaded in it, so it starts fast.
    """

    def __init__(self, home: Path) -> None:
        import subprocess
        import sys

        self.home = home
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "app.search", "follow", str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self, progress: Progress | None = None) -> None:
        """Let it index what is left, and wait for it."""
        import subprocess

        proc = self._proc
        if proc is None:
            return
        self._proc = None
        assert proc.stdin is not None
        proc.stdin.close()
        connect = _sqlite_connector(self.home / "tidings.db")
        from storage.search import pending_count

        total = 0
        while proc.returncode is None:
            if progress is not None:
                left = pending_count(connect)
                total = max(total, left)
                progress(total - left, total)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
        assert proc.stderr is not None
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.stderr.close()
        if proc.returncode:
            # What was stored stays; the index catches up on the next search.
            last = err.splitlines()[-1] if err else f"exit status {proc.returncode}"
            raise TidingsError(f"background indexing stopped: {last}")

    def stop(self) -> None:
        """End it now (the import failed or was interrupted); the index stays whole."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stderr):
            if stream is not None:
                stream.close()


def start_background_indexer(svc: Services) -> BackgroundIndexer | None:
    """A :class:`BackgroundIndexer` for the profile, unless a sync worker owns the index."""
    if worker_running(svc.profile.home):
        return None
    svc.engine  # noqa: B018 - the schema must be current before the child reads it
    return BackgroundIndexer(svc.profile.home)


def _sqlite_connector(path: Path) -> Callable[[], Any]:
    @contextmanager
    def connect() -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            yield db
        finally:
            db.close()

    return connect


def _follow(home: Path) -> int:
    """The child's loop: index until stdin closes and nothing waits."""
    import select
    import sys
    import time

    from storage.search import SearchIndex, pending_count

    connect = _sqlite_connector(home / "tidings.db")
    index = SearchIndex(home / "index")
    open_input = True
    try:
        while True:
            run = index.update(connect, wait=30.0)
            if run.busy:
                return 0  # someone else indexes (a worker started meanwhile)
            if open_input:
                ready, _, _ = select.select([sys.stdin], [], [], 0.0 if run.indexed else 0.3)
                if ready and not os.read(sys.stdin.fileno(), 4096):
                    open_input = False
            elif pending_count(connect) == 0:
                return 0
            else:
                time.sleep(0.05)
    finally:
        index.close()


if __name__ == "__main__":  # pragma: no cover - the child process of BackgroundIndexer
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "follow":
        sys.exit(_follow(Path(sys.argv[2])))
    sys.exit("usage: python -m app.search follow PROFILE")
