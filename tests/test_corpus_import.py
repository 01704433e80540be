"""Real-world mail ($TIDINGS_CORPUS): everything is imported and comes back byte for byte."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.importer import import_path
from app.services import Services
from storage import queries
from storage.ingest import content_hash
from storage.mailfiles import iter_mbox
from storage.models import Message, MessageUid
from tests.conftest import corpus_dir

pytestmark = pytest.mark.corpus


def test_whole_corpus_imports_and_round_trips(services: Services) -> None:
    corpus = corpus_dir()
    files = sorted(corpus.glob("*.eml"))
    assert len(files) > 500
    summary = import_path(services, corpus, account=None, folder="corpus")
    assert summary.imported == len(files)
    assert summary.skipped == 0

    mboxes = sorted((corpus / "mbox").glob("*.mbox"))
    expected = 0
    for box in mboxes:
        n = sum(1 for _ in iter_mbox(box))
        s = import_path(services, box, folder=f"mbox/{box.stem}")
        assert s.imported == n, box
        expected += n
    print(
        f"\ncorpus: {len(files)} files + {expected} mbox messages imported, "
        f"{summary.malformed} flagged as malformed"
    )

    with services.session() as s:
        locations = s.scalar(select(func.count()).select_from(MessageUid))
        assert locations == len(files) + expected
        pending = s.scalar(
            select(func.count()).select_from(Message).where(Message.content_state == 0)
        )
        assert pending == 0  # content extraction ran for every message
        rows = s.execute(select(Message.content_hash, Message.id)).all()
        by_hash = {row[0]: row[1] for row in rows}
        for f in files:
            data = f.read_bytes()
            mid = by_hash[content_hash(data)]
            assert queries.raw_message(s, mid) == data, f.name

    # A re-run adds nothing.
    again = import_path(services, corpus, folder="corpus")
    assert (again.imported, again.skipped) == (0, len(files))


def test_corpus_messages_show_through_the_cli(cli, services: Services) -> None:
    corpus = corpus_dir()
    import_path(services, corpus, folder="corpus")
    with services.session() as s:
        ids = list(s.scalars(select(Message.id).order_by(Message.id)))
    failures = []
    for mid in ids[:: max(1, len(ids) // 60)]:
        for mode in ((), ("--json",), ("--text",)):
            r = cli("show", str(mid), *mode)
            if r.code != 0:
                failures.append((mid, mode, r.err))
    assert failures == []
