"""Real-world mail ($TIDINGS_CORPUS), imported and indexed: every message is findable
by a word of its subject."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from app.importer import import_path
from app.services import Services
from storage.models import Message
from storage.searchquery import tokenize
from tests.conftest import corpus_dir

pytestmark = pytest.mark.corpus


def test_every_message_is_found_by_a_word_of_its_subject(services: Services) -> None:
    corpus = corpus_dir()
    import_path(services, corpus, folder="corpus")
    for box in sorted((corpus / "mbox").glob("*.mbox")):
        import_path(services, box, folder=f"mbox/{box.stem}")
    with services.session() as s:
        rows = s.execute(select(Message.id, Message.subject, Message.index_state)).all()
    assert rows
    assert all(state == 1 for _id, _subject, state in rows)  # import indexed everything

    words = {mid: set(tokenize(subject)) for mid, subject, _state in rows}
    df = Counter(w for ws in words.values() for w in ws)
    checked = skipped = 0
    missing = []
    for mid, ws in words.items():
        if not ws:
            skipped += 1  # no subject, or nothing searchable in it
            continue
        word = min(ws, key=lambda w: (df[w], w))  # its rarest subject word
        found = services.search(f'subject:"{word}"', limit=df[word] + 10)
        if mid not in {m.id for m in found}:
            missing.append((mid, word))
        checked += 1
    print(f"\ncorpus: {checked} messages found by a subject word, {skipped} without one")
    assert missing == []
    assert checked > 500
