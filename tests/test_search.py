"""Search end to end: a corpus with known answers, indexed, queried through the services.

Every operator and the combinations users write, date edges in a pinned time zone
(Europe/Berlin, across the March DST switch), non-ASCII names and subjects, a word
that only the HTML part has, an attachment's file name; flags, moves and expunges
(local, and synced from a real Dovecot) show at once without re-indexing; a kill -9
while indexing loses nothing and duplicates nothing; a damaged index is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from app import search
from app.profile import Profile
from app.services import Services
from storage import accounts as acc
from storage.ingest import Incoming, extract_all, ingest_batch
from storage.models import Message
from storage.search import pending_count
from storage.searchquery import QueryError, parse
from tests.conftest import PASSWORD_ENV
from tests.mailmaker import mail
from tests.servers.dovecot import Dovecot

BERLIN = ZoneInfo("Europe/Berlin")
ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Spec:
    key: str
    date: datetime
    subject: str
    body: str = ""
    sender: str = "Alice Smith <alice@example.com>"
    to: str = "Me <me@example.com>"
    cc: str | None = None
    folders: tuple[str, ...] = ("INBOX",)
    flags: frozenset[str] = frozenset({"seen"})
    account: str = "work"
    html: str | None = None
    attachment: tuple[str, bytes] | None = None


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


SEEN = frozenset({"seen"})
CORPUS = [
    Spec("report", utc(2026, 3, 10, 9), "Quarterly report draft",
         "Please review the quarterly report before Friday.", flags=frozenset()),
    Spec("lunch", utc(2026, 3, 12, 12), "Lunch on Thursday?", "Shall we try the new place?",
         sender="Bob Jones <bob@example.org>", cc="Carol White <carol@example.net>",
         flags=frozenset({"seen", "flagged"})),
    Spec("html", utc(2026, 3, 15, 8), "Spring sale", "Spring sale now on.",
         sender="Shop News <news@shop.example>",
         html="<html><head><style>.zorblax{color:red}</style></head><body>"
              "<p>Spring sale now on.</p><p>Exclusive: <b>zanzibarite</b> gems</p></body></html>"),
    Spec("invoice", utc(2026, 3, 20, 7), "Invoice March", "Your invoice is attached.",
         sender="Fabrikam Billing <billing@fabrikam.example>",
         attachment=("Rechnung_März-2026.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 600)),
    Spec("zoe", utc(2026, 3, 25, 16), "Übersicht der Straßenarbeiten", "Grüße aus München",
         sender="Zoë Müller <zoe@example.de>", folders=("Projekte/Übersicht",)),
    Spec("cjk", utc(2026, 3, 26, 1), "東京での会議", "来週の打ち合わせについて",
         sender="山田太郎 <yamada@example.jp>"),
    Spec("sent", utc(2026, 3, 27, 18), "Re: Quarterly report draft",
         "Looks good; quarterly numbers follow.", sender="Me <me@example.com>",
         to="Alice Smith <alice@example.com>", folders=("Sent",)),
    Spec("trash", utc(2026, 3, 28, 10), "Old newsletter", "trashword report",
         sender="Old News <old@news.example>", folders=("Trash",)),
    Spec("junk", utc(2026, 3, 28, 11), "Win a prize", "junkword", sender="Prize <win@spam.example>",
         folders=("Junk",), flags=frozenset()),
    Spec("archive", utc(2026, 2, 1, 10), "Archived plans", "An old report for the archive.",
         folders=("Archive",)),
    Spec("both", utc(2026, 3, 5, 10), "Shared label", "twofolders",
         sender="Carol White <carol@example.net>", folders=("INBOX", "Archive")),
    Spec("answered", utc(2026, 3, 8, 10), "Question", "Can you help?",
         sender="Dave <dave@example.com>", flags=frozenset({"seen", "answered"})),
    Spec("draft", utc(2026, 3, 29, 10), "Ideas", "draftword", sender="Me <me@example.com>",
         folders=("Drafts",), flags=frozenset({"seen", "draft"})),
    # Local midnight in Berlin: 23:00 UTC in winter, 22:00 UTC in summer (DST from 29 March).
    Spec("dst_before", utc(2026, 3, 28, 22, 59, 59), "edge one", "edgeword"),
    Spec("dst_after", utc(2026, 3, 28, 23, 0, 0), "edge two", "edgeword"),
    Spec("summer_before", utc(2026, 7, 14, 21, 59, 59), "edge three", "edgeword"),
    Spec("summer_after", utc(2026, 7, 14, 22, 0, 0), "edge four", "edgeword"),
    # Relevance: same word, different weight.
    Spec("nebula_subject", utc(2026, 1, 5, 10), "Nebula photos", "The nebula came out well."),
    Spec("nebula_once", utc(2026, 1, 20, 10), "Camera notes",
         "Lens, tripod, filters, weather, " * 30 + "and one nebula."),
    Spec("home", utc(2026, 3, 11, 19), "Family dinner", "Bring the report card.",
         sender="Eve <eve@example.com>", account="home", flags=frozenset()),
]  # fmt: skip


def build(spec: Spec) -> bytes:
    msg = EmailMessage()
    msg["From"] = spec.sender
    msg["To"] = spec.to
    if spec.cc:
        msg["Cc"] = spec.cc
    msg["Subject"] = spec.subject
    msg["Date"] = format_datetime(spec.date)
    msg["Message-ID"] = f"<{spec.key}@test.example>"
    msg.set_content(spec.body or " ")
    if spec.html:
        msg.add_alternative(spec.html, subtype="html")
    if spec.attachment:
        name, data = spec.attachment
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return bytes(msg)


ROLES = {"INBOX": "inbox", "Sent": "sent", "Drafts": "drafts", "Trash": "trash",
         "Junk": "junk", "Archive": "archive"}  # fmt: skip


def load(services: Services, specs: list[Spec]) -> dict[str, int]:
    """Store the specs (listable, then content) and return key -> message id."""
    from storage.errors import NotFound

    with services.session() as s:
        accounts: dict[str, int] = {}
        for spec in specs:
            if spec.account not in accounts:
                try:
                    accounts[spec.account] = acc.get_account(s, spec.account).id
                except NotFound:
                    accounts[spec.account] = acc.add_account(
                        s, acc.NewAccount(spec.account, f"me@{spec.account}.example")
                    ).id
        for spec in specs:
            for folder in spec.folders:
                fid = acc.ensure_folder(s, accounts[spec.account], folder, role=ROLES.get(folder))
                ingest_batch(
                    s, accounts[spec.account], fid, [Incoming(build(spec), flags=spec.flags)]
                )
    for account_id in accounts.values():
        extract_all(services.factory, account_id)
    with services.session() as s:
        rows = s.execute(select(Message.message_id, Message.id)).all()
    return {mid.split("@")[0]: i for mid, i in rows}


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, template_db: Path
) -> Iterator[tuple[Services, dict[str, int]]]:
    home = tmp_path_factory.mktemp("corpus")
    shutil.copyfile(template_db, home / "tidings.db")
    services = Services(Profile.open(home))
    ids = load(services, CORPUS)
    run = search.catch_up(services)
    assert run is not None
    assert run.indexed == len(ids)
    yield services, ids
    services.close()


@pytest.fixture(autouse=True)
def berlin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")


NOW = utc(2026, 7, 20, 12)


def find(
    corpus: tuple[Services, dict[str, int]],
    query: str,
    *,
    account: str | None = None,
    sort: str = "date",
    limit: int = 50,
    now: datetime = NOW,
) -> list[str]:
    """Keys of the messages a query finds, in order (``now`` pinned)."""
    services, ids = corpus
    keys = {v: k for k, v in ids.items()}
    from storage.search import account_ids

    node = parse(query, now=now, tz=BERLIN)
    with search._engine_db(services) as db:
        found = search.index_of(services).search(
            db, node, account_ids=account_ids(db, account), limit=limit, sort=sort
        )
    via_services = [
        keys[m.id] for m in services.search(query, account=account, sort=sort, limit=limit)
    ]
    result = [keys[i] for i in found]
    if "newer_than" not in query and "older_than" not in query:
        assert via_services == result  # the app's API gives the same answer
    return result


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Words, anywhere; Trash and Junk are left out (Gmail); newest first.
        ("report", ["sent", "home", "report", "archive"]),
        ("REPORT", ["sent", "home", "report", "archive"]),
        ("zanzibarite", ["html"]),  # only in the HTML alternative
        ("zorblax", []),  # CSS is not text
        ("Grüße", ["zoe"]),
        ("GRUSSE", ["zoe"]),
        ("muller", ["zoe"]),
        ("Zoë", ["zoe"]),
        ("strassenarbeiten", ["zoe"]),
        ("東京", ["cjk"]),
        ("打ち合わせ", ["cjk"]),
        ("京で", ["cjk"]),  # any run of CJK characters
        ("京会", []),
        # Phrases.
        ('"quarterly report"', ["sent", "report"]),
        ('"report quarterly"', []),
        ('"quarterly numbers"', ["sent"]),
        # Address fields: names and addresses; Gmail's to: covers Cc.
        ("from:alice", ["summer_after", "summer_before", "dst_after", "dst_before", "report",
                        "archive", "nebula_once", "nebula_subject"]),
        ("from:bob@example.org", ["lunch"]),
        ("from:example.com", ["summer_after", "summer_before", "draft", "dst_after",
                              "dst_before", "sent", "home", "report", "answered", "archive",
                              "nebula_once", "nebula_subject"]),
        ("from:山田太郎", ["cjk"]),
        ("to:carol", ["lunch"]),
        ("cc:carol", ["lunch"]),
        ("cc:me", []),
        ("to:alice", ["sent"]),
        ("subject:lunch", ["lunch"]),
        ("subject:(lunch OR invoice)", ["invoice", "lunch"]),
        ("subject:report", ["sent", "report"]),
        # Attachments.
        ("filename:pdf", ["invoice"]),
        ("filename:rechnung", ["invoice"]),
        ("filename:märz", ["invoice"]),
        ("has:attachment", ["invoice"]),
        ("larger:50K", ["invoice"]),
        ("larger:50K has:attachment invoice", ["invoice"]),
        ("smaller:50K invoice", []),
        # Flags.
        ("is:unread", ["home", "report"]),
        ("is:starred", ["lunch"]),
        ("is:answered", ["answered"]),
        ("is:draft", ["draft"]),
        ("is:unstarred lunch", []),
        ("is:read report", ["sent", "archive"]),
        # Folders by role and by name.
        ("in:sent", ["sent"]),
        ("in:drafts", ["draft"]),
        ("in:trash", ["trash"]),
        ("in:spam", ["junk"]),
        ("in:archive", ["both", "archive"]),
        ("label:archive", ["both", "archive"]),
        ("in:Übersicht", ["zoe"]),
        ("in:ubersicht", ["zoe"]),
        ('in:"Projekte/Übersicht"', ["zoe"]),
        ("trashword", []),
        ("trashword in:trash", ["trash"]),
        ("trashword in:anywhere", ["trash"]),
        ("junkword", []),
        ("is:unread in:anywhere", ["junk", "home", "report"]),
        ("twofolders in:archive", ["both"]),
        ("twofolders -in:archive", []),
        ("twofolders in:inbox", ["both"]),
        # Accounts.
        ("account:home", ["home"]),
        ("account:home report", ["home"]),
        ("account:work is:unread", ["report"]),
        # Combinations.
        ("from:alice is:unread", ["report"]),
        ("report -is:read", ["home", "report"]),
        ("(lunch OR invoice) -from:bob", ["invoice"]),
        ("lunch OR invoice -from:bob", ["invoice"]),
        ("from:bob OR is:unread", ["lunch", "home", "report"]),  # mixed: text OR flag
        ("report OR after:2026-07-15", ["summer_after", "sent", "home", "report", "archive"]),
        ("-in:inbox report", ["sent", "archive"]),
        ("in:inbox has:attachment", ["invoice"]),
        ("in:inbox is:unread has:attachment", []),
        ("-report -edgeword -nebula in:inbox is:read", ["cjk", "invoice", "html", "lunch",
                                                        "answered", "both"]),
        ("report -(from:alice OR from:me)", ["home"]),
    ],
)  # fmt: skip
def test_operators(
    corpus: tuple[Services, dict[str, int]], query: str, expected: list[str]
) -> None:
    assert find(corpus, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("after:2026-03-29 edgeword", ["summer_after", "summer_before", "dst_after"]),
        ("before:2026-03-29 edgeword", ["dst_before"]),
        ("after:2026-07-15 edgeword", ["summer_after"]),
        ("before:2026-07-15 edgeword", ["summer_before", "dst_after", "dst_before"]),
        ("after:2026-03-28 before:2026-03-29", ["dst_before"]),  # pure SQL: 28 March, local
        ("after:2026-03-29 before:2026-03-30", ["draft", "dst_after"]),
        ("after:2026-07-15", ["summer_after"]),
        ("before:2026-01-06", ["nebula_subject"]),
        ("after:2026/07/14 before:2026/07/15", ["summer_before"]),
        ("newer_than:7d", ["summer_after", "summer_before"]),  # now: 20 July 12:00 UTC
        ("newer_than:1m edgeword", ["summer_after", "summer_before"]),
        ("older_than:3m edgeword", ["dst_after", "dst_before"]),
        ("older_than:6m", ["nebula_once", "nebula_subject"]),
        ("newer_than:2w older_than:5d", ["summer_after", "summer_before"]),
    ],
)
def test_dates_in_the_users_zone(
    corpus: tuple[Services, dict[str, int]], query: str, expected: list[str]
) -> None:
    assert find(corpus, query) == expected


PLANS = {
    # date windows of a document or two
    "windows": {"_FULL_LIMIT": 0, "_WINDOW_MIN": 1, "_WINDOW_PAGES": 0},
    "sql-first": {"_FULL_LIMIT": 0, "_WINDOW_MIN": 1, "_WINDOW_PAGES": 0, "_REJECT_SWITCH": 0},
    "sql-first-refused": {"_FULL_LIMIT": 0, "_WINDOW_MIN": 1, "_WINDOW_PAGES": 0,
                          "_REJECT_SWITCH": 0, "_SQL_FIRST_MAX": 0},
    "tiny-chunks": {"_CHUNK": 1},
}  # fmt: skip


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_plan_gives_the_same_answers(
    corpus: tuple[Services, dict[str, int]], monkeypatch: pytest.MonkeyPatch, plan: str
) -> None:
    """The evaluation strategies (one pass, date windows, SQL first, small chunks) are
    only about speed: forced onto the corpus, each gives the expected answers."""
    from storage import search as storage_search

    queries = [
        ("report", ["sent", "home", "report", "archive"]),
        ("edgeword", ["summer_after", "summer_before", "dst_after", "dst_before"]),
        ("edgeword after:2026-03-29", ["summer_after", "summer_before", "dst_after"]),
        ("from:alice -edgeword", ["report", "archive", "nebula_once", "nebula_subject"]),
        ("from:alice is:unread", ["report"]),
        ("report in:archive", ["archive"]),
        ("report -is:read", ["home", "report"]),
        ('"quarterly report" in:sent', ["sent"]),
        ("nebula OR invoice", ["invoice", "nebula_once", "nebula_subject"]),
        ("from:alice has:attachment", []),
        ("invoice larger:50K", ["invoice"]),
    ]
    for name, value in PLANS[plan].items():
        monkeypatch.setattr(storage_search, name, value)
    seen: list[str] = []
    real_hits, real_sql_first = (
        storage_search._Evaluation._hits,
        storage_search._Evaluation._sql_first,
    )

    def hits(self, q, lo, hi, *, everything):  # type: ignore[no-untyped-def]
        seen.append("walk" if everything else "window")
        return real_hits(self, q, lo, hi, everything=everything)

    def sql_first(self, *args):  # type: ignore[no-untyped-def]
        found = real_sql_first(self, *args)
        seen.append("sql-first" if found is not None else "sql-first-refused")
        return found

    monkeypatch.setattr(storage_search._Evaluation, "_hits", hits)
    monkeypatch.setattr(storage_search._Evaluation, "_sql_first", sql_first)
    for query, expected in queries:
        assert find(corpus, query) == expected, query
        assert find(corpus, query, limit=2) == expected[:2], query
        relevance = find(corpus, query, sort="relevance")
        assert sorted(relevance) == sorted(expected), query
    expected_path = {"windows": "window", "tiny-chunks": "walk"}.get(plan, plan)
    assert expected_path in seen  # the plan under test did run


def test_account_scope_and_limit(corpus: tuple[Services, dict[str, int]]) -> None:
    assert find(corpus, "report", account="work") == ["sent", "report", "archive"]
    assert find(corpus, "report", account="home") == ["home"]
    assert find(corpus, "report", limit=2) == ["sent", "home"]
    assert find(corpus, "edgeword", limit=1) == ["summer_after"]
    services, _ = corpus
    with pytest.raises(Exception, match="no account named 'nobody'"):
        services.search("report", account="nobody")


def test_relevance_order(corpus: tuple[Services, dict[str, int]]) -> None:
    assert find(corpus, "nebula") == ["nebula_once", "nebula_subject"]
    assert find(corpus, "nebula", sort="relevance") == ["nebula_subject", "nebula_once"]
    assert find(corpus, "nebula after:2026-01-10", sort="relevance") == ["nebula_once"]
    # Without text, relevance is date order.
    assert find(corpus, "is:unread", sort="relevance") == ["home", "report"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("in:nosuchfolder", "no folder named 'nosuchfolder' (in:nosuchfolder at column 1)"),
        ("x account:nobody", "no account named 'nobody'"),
        ("after:2026-13-01", "not a date: 'after:2026-13-01' at column 1"),
        ('"unclosed', "never closed"),
    ],
)
def test_bad_queries_raise_one_line(
    corpus: tuple[Services, dict[str, int]], query: str, message: str
) -> None:
    services, _ = corpus
    with pytest.raises(QueryError) as info:
        services.search(query)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_summaries_match_the_message_list(corpus: tuple[Services, dict[str, int]]) -> None:
    """storage.search reads list rows with plain sqlite3; they equal the ORM's."""
    from storage import queries
    from storage.search import summaries

    services, ids = corpus
    order = [*sorted(ids.values(), reverse=True), 999_999]
    with search._engine_db(services) as db:
        raw = summaries(db, order)
    with services.session() as s:
        orm = queries.summaries(s, order)
    assert raw == orm
    assert len(raw) == len(ids)


def test_api_shape_for_the_desktop_app() -> None:
    import inspect

    sig = inspect.signature(Services.search)
    assert list(sig.parameters) == ["self", "query", "account", "limit", "sort"]
    assert sig.parameters["limit"].default == 50
    assert sig.parameters["sort"].default == "date"
    from app.services import WORKER_PID

    assert search.WORKER_PID == WORKER_PID


# --------------------------------------------------------------------------- changes show at once


@pytest.fixture
def small(services: Services) -> dict[str, int]:
    specs = [s for s in CORPUS if s.key in {"report", "lunch", "invoice", "archive", "zoe"}]
    ids = load(services, specs)
    with services.session() as s:
        acc.ensure_folder(s, acc.get_account(s, "work").id, "Trash", role="trash")
    search.catch_up(services)
    return ids


def keys_of(services: Services, ids: dict[str, int], query: str) -> list[str]:
    names = {v: k for k, v in ids.items()}
    return [names[m.id] for m in services.search(query)]


def generation(services: Services) -> int:
    from whoosh import index

    return int(index.open_dir(str(services.profile.index_dir)).latest_generation())


def test_local_changes_show_without_touching_the_index(
    services: Services, small: dict[str, int]
) -> None:
    gen = generation(services)
    assert keys_of(services, small, "is:unread") == ["report"]
    services.mark([small["report"]], "seen", True)
    assert keys_of(services, small, "is:unread") == []
    services.mark([small["lunch"]], "flagged", False)
    assert keys_of(services, small, "is:starred") == []

    assert keys_of(services, small, "in:archive") == ["archive"]
    services.move([small["invoice"]], "Archive")
    assert keys_of(services, small, "in:archive") == ["invoice", "archive"]
    assert keys_of(services, small, "invoice in:inbox") == []

    services.delete([small["lunch"]])  # to Trash
    assert keys_of(services, small, "lunch") == []
    assert keys_of(services, small, "lunch in:trash") == ["lunch"]
    services.delete([small["lunch"]])  # in Trash: for good
    assert keys_of(services, small, "lunch in:anywhere") == []

    assert generation(services) == gen  # none of this re-indexed anything
    with services.session() as s:
        assert s.scalar(select(func.count()).where(Message.index_state == 0)) == 0


def test_deleted_messages_are_purged_and_reused_ids_never_match(
    services: Services, small: dict[str, int]
) -> None:
    index = search.index_of(services)
    assert index.doc_count() == 5
    newest = max(small.values())
    gone = next(k for k, v in small.items() if v == newest)
    with services.session() as s:
        s.execute(delete(Message).where(Message.id == newest))
    # SQLite gives the next message the same id; until it is indexed, the old
    # document (whose words are still in the index) must not name it.
    [spec] = [s for s in CORPUS if s.key == "nebula_subject"]
    reused = load(services, [spec])["nebula_subject"]
    assert reused == newest
    old_word = {"zoe": "grusse", "invoice": "rechnung", "lunch": "thursday"}.get(gone, gone)
    assert [m.id for m in services.search(old_word)] == []
    run = search.catch_up(services)
    assert run is not None
    assert (run.purged, run.indexed) == (1, 1)
    assert [m.id for m in services.search("nebula")] == [reused]
    assert [m.id for m in services.search(old_word)] == []
    assert index.doc_count() == 5


def test_messages_wait_for_their_content_stage(services: Services) -> None:
    raw = mail("late@x", "Late content", body="latecomer\n")
    with services.session() as s:
        a = acc.add_account(s, acc.NewAccount("w", "me@w.example")).id
        f = acc.ensure_folder(s, a, "INBOX")
        ingest_batch(s, a, f, [Incoming(raw)])
    connect = search._connector(services)
    assert pending_count(connect) == 0  # listable only: not yet for the index
    assert search.catch_up(services) is not None
    assert services.search("latecomer") == []
    assert [m.subject for m in services.search("is:unread")] == ["Late content"]  # SQL-only
    extract_all(services.factory, a)
    assert pending_count(connect) == 1
    search.catch_up(services)
    assert [m.subject for m in services.search("latecomer")] == ["Late content"]


def test_worker_threads_never_index_twice(services: Services) -> None:
    ids = load(services, CORPUS[:12])
    events: list[dict[str, object]] = []
    threads = [
        threading.Thread(target=search.update_index, args=(services, events.append))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert search.index_of(services).doc_count() == len(ids)
    assert sum(int(str(e["count"])) for e in events if e["event"] == "indexed") >= len(ids)


def test_another_processs_worker_owns_the_index(services: Services) -> None:
    load(services, CORPUS[:3])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (services.profile.home / search.WORKER_PID).write_text(f"{sleeper.pid}\n")
        assert search.catch_up(services) is None
        assert search.update_index(services, lambda e: None) == 0
        assert pending_count(search._connector(services)) == 3
    finally:
        sleeper.kill()
        sleeper.wait()
    assert search.catch_up(services) is not None  # the worker is gone: we index
    assert pending_count(search._connector(services)) == 0


# --------------------------------------------------------------------------- damage


def test_missing_or_damaged_index_is_rebuilt_with_a_notice(
    services: Services, small: dict[str, int]
) -> None:
    notices: list[str] = []
    index_dir = services.profile.index_dir
    search.index_of(services).close()
    for damage in ("toc", "segment", "version", "missing"):
        if damage == "toc":
            toc = next(index_dir.glob("_MAIN_*.toc"))
            toc.write_bytes(b"\x00garbage" * 10)
        elif damage == "segment":
            for seg in index_dir.glob("*.seg"):
                seg.write_bytes(b"not a segment")
        elif damage == "version":
            (index_dir / "tidings-index.json").write_text('{"version": 0}')
        else:
            shutil.rmtree(index_dir)
        search.index_of(services).close()
        # Reading a damaged index never raises: text search finds nothing meanwhile.
        assert isinstance(services.search("report"), list)
        run = search.catch_up(services, notice=notices.append)
        assert run is not None
        assert run.rebuilt, damage
        assert run.indexed == len(small)
        assert notices[-1].startswith("the search index was missing or damaged"), damage
        assert keys_of(services, small, "report") == ["report", "archive"], damage


def test_reindex_starts_afresh(services: Services, small: dict[str, int]) -> None:
    run = search.reindex(services)
    assert (run.indexed, run.rebuilt) == (len(small), True)
    assert keys_of(services, small, "grusse") == ["zoe"]
    assert search.index_of(services).doc_count() == len(small)
    again = search.reindex(services)
    assert again.indexed == len(small)
    assert search.index_of(services).doc_count() == len(small)


# --------------------------------------------------------------------------- kill -9

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {root!r})
    import storage.search as ss
    ss.FIRST_BATCH, ss.BATCH, ss._READ_CHUNK = 20, 40, 7
    mode = sys.argv[2]
    if mode == "after-commit":  # the segment is committed, the queue not yet marked
        real, calls = ss._mark_indexed, []
        def mark(connect, docs):
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            real(connect, docs)
        ss._mark_indexed = mark
    elif mode == "in-commit":  # while the segment's postings are being written
        real_terms, calls = ss._FieldWriter.add_terms, []
        def add_terms(self, schema, terms):
            calls.append(1)
            if len(calls) == 2:
                for n, term in enumerate(terms):
                    if n == 50:
                        os.kill(os.getpid(), signal.SIGKILL)
            real_terms(self, schema, terms)
        ss._FieldWriter.add_terms = add_terms
    from app.profile import Profile
    from app.services import Services
    from app.search import catch_up
    svc = Services(Profile.open(sys.argv[1]))
    catch_up(svc, progress=lambda done, total: print(done, flush=True))
    print("done", flush=True)
    """
)


@pytest.fixture
def many(services: Services) -> dict[str, int]:
    """240 messages, each with a word of its own."""
    with services.session() as s:
        a = acc.add_account(s, acc.NewAccount("k", "me@k.example")).id
        f = acc.ensure_folder(s, a, "INBOX", role="inbox")
        items = [
            Incoming(
                mail(
                    f"k{i}@x",
                    f"Note {i} uniq{i:04d}q",
                    date=format_datetime(utc(2026, 1, 1).replace(hour=i % 24, minute=i % 60)),
                    body=("lorem ipsum dolor sit amet " * 20) + f"\nmark{i:04d}z\n",
                ),
                flags=SEEN,
            )
            for i in range(240)
        ]
        ingest_batch(s, a, f, items)
    extract_all(services.factory, a)
    with services.session() as s:
        rows = s.execute(select(Message.message_id, Message.id)).all()
    return {mid.split("@")[0]: i for mid, i in rows}


def run_child(home: Path, mode: str) -> subprocess.Popen[str]:
    script = CHILD.format(root=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", script, str(home), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def assert_whole(services: Services, many: dict[str, int]) -> None:
    """Every message findable by its own word, exactly once; no duplicate documents."""
    search.index_of(services).close()
    run = search.catch_up(services)
    assert run is not None
    assert not run.busy
    for key, mid in many.items():
        n = int(key[1:])
        assert [m.id for m in services.search(f"uniq{n:04d}q")] == [mid], key
    index = search.index_of(services)
    assert index.doc_count() == len(many)
    searcher = index._current()
    mids = [m for leaf in index._leaves(searcher) for d, m in enumerate(leaf.mids)
            if not leaf.deleted(d)]  # fmt: skip
    assert sorted(mids) == sorted(many.values())
    with services.session() as s:
        assert s.scalar(select(func.count()).where(Message.index_state == 0)) == 0


@pytest.mark.parametrize("mode", ["after-commit", "in-commit"])
def test_kill_at_the_worst_moments(services: Services, many: dict[str, int], mode: str) -> None:
    child = run_child(services.profile.home, mode)
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    assert "done" not in out
    with services.session() as s:
        indexed = s.scalar(select(func.count()).where(Message.index_state == 1))
    assert 0 < indexed < len(many)  # it died part way
    assert_whole(services, many)


@pytest.mark.slow
def test_kill_at_random_moments(services: Services, many: dict[str, int]) -> None:
    import random

    rng = random.Random(7)
    for _ in range(4):
        child = run_child(services.profile.home, "plain")
        time.sleep(rng.uniform(0.8, 2.5))
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    assert_whole(services, many)


# --------------------------------------------------------------------------- synced changes


@pytest.fixture
def work(cli: Callable[..., object], dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Dovecot:
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    r = cli(
        "account", "add", "work", "--email", "alice@example.com",
        "--imap-host", dovecot.host, "--imap-port", str(dovecot.port),
        "--imap-security", "none", "--username", "alice", "--password-env", PASSWORD_ENV,
    )  # fmt: skip
    assert getattr(r, "code", 1) == 0
    return dovecot


def found(cli: Callable[..., object], query: str) -> list[str]:
    import json

    r = cli("search", "--json", query)
    assert getattr(r, "code", 1) == 0, getattr(r, "err", "")
    return [json.loads(line)["subject"] for line in str(getattr(r, "out", "")).splitlines()]


@pytest.mark.usefixtures("dovecot_available")
def test_synced_flag_move_and_expunge_show_at_once(
    cli: Callable[..., object], services: Services, work: Dovecot
) -> None:
    for i, subject in enumerate(["Alpha memo", "Beta memo", "Gamma memo"]):
        work.deliver(
            mail(f"s{i}@x", subject, date=f"Mon, 0{i + 2} Nov 2026 10:00:00 +0000",
                 body="syncword\n"),
            flags="" if i else "S",
        )  # fmt: skip
    assert getattr(cli("sync"), "code", 1) == 0
    # sync indexed what it fetched: the search needs no catching up.
    assert pending_count(search._connector(services)) == 0
    assert found(cli, "syncword") == ["Gamma memo", "Beta memo", "Alpha memo"]
    assert found(cli, "syncword is:unread") == ["Gamma memo", "Beta memo"]
    gen = generation(services)

    work.set_flags("INBOX", "2", "\\Seen \\Flagged")  # Beta
    assert getattr(cli("sync"), "code", 1) == 0
    assert found(cli, "syncword is:unread") == ["Gamma memo"]
    assert found(cli, "is:starred") == ["Beta memo"]
    assert generation(services) == gen  # flags cost nothing in the index

    # A move on the server: a copy in Archive, the original expunged.
    work.deliver(mail("s2@x", "Gamma memo", date="Mon, 04 Nov 2026 10:00:00 +0000",
                      body="syncword\n"), folder="Archive")  # fmt: skip
    work.expunge("INBOX", "3")
    assert getattr(cli("sync"), "code", 1) == 0
    assert found(cli, "syncword in:archive") == ["Gamma memo"]
    assert found(cli, "syncword in:inbox") == ["Beta memo", "Alpha memo"]

    work.expunge("INBOX", "1")  # Alpha, gone for good
    assert getattr(cli("sync"), "code", 1) == 0
    assert found(cli, "syncword") == ["Gamma memo", "Beta memo"]
    assert found(cli, "alpha in:anywhere") == []


def test_merges_keep_every_posting_in_order(
    services: Services, many: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small commits merged again and again (tiers of two): every message is still
    found by its own word and by a phrase, once; segments stay in date order."""
    from storage import search as storage_search

    monkeypatch.setattr(storage_search, "FIRST_BATCH", 7)
    monkeypatch.setattr(storage_search, "BATCH", 7)
    monkeypatch.setattr(storage_search, "MERGE_FACTOR", 2)
    monkeypatch.setattr(storage_search, "_TIER_BASE", 7)
    run = search.catch_up(services)
    assert run is not None
    assert run.indexed == len(many)
    index = search.index_of(services)
    searcher = index._current()
    leaves = index._leaves(searcher)
    assert len(leaves) < 10  # merged, not 35 segments
    for leaf in leaves:  # newest first within each segment
        dates = list(leaf.dates)
        assert dates == sorted(dates, reverse=True)
    for key, mid in many.items():
        n = int(key[1:])
        assert [m.id for m in services.search(f"uniq{n:04d}q")] == [mid], key
        assert [m.id for m in services.search(f'"note {n} uniq{n:04d}q"')] == [mid], key
    assert index.doc_count() == len(many)
    assert len(services.search("lorem ipsum", limit=500)) == len(many)
