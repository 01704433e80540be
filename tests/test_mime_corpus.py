"""storage.mime against the development corpus of real (often broken) mail.

Runs when TIDINGS_CORPUS names the folder of ``*.eml`` files and its ``MANIFEST.tsv``
(``/work/shared/corpus``); skipped otherwise. Every message must parse with both stages,
and tagged messages must show what their tag promises, for the large majority.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.mime import Content, Envelope, extract_content, parse_envelope, part_bytes

pytestmark = pytest.mark.corpus


@dataclass(frozen=True)
class Parsed:
    name: str
    raw: bytes
    tags: frozenset[str]
    envelope: Envelope
    content: Content


@pytest.fixture(scope="module")
def corpus() -> list[Parsed]:
    folder = os.environ.get("TIDINGS_CORPUS")
    if not folder:
        pytest.skip("TIDINGS_CORPUS is not set")
    root = Path(folder)
    tags: dict[str, frozenset[str]] = {}
    manifest = root / "MANIFEST.tsv"
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) >= 6:
                tags[cols[0]] = frozenset(t.strip() for t in cols[5].split(";"))
    parsed = []
    for path in sorted(root.glob("*.eml")):
        raw = path.read_bytes()
        parsed.append(
            Parsed(
                path.name,
                raw,
                tags.get(path.name, frozenset()),
                parse_envelope(raw),
                extract_content(raw),
            )
        )
    if not parsed:
        pytest.skip(f"no .eml files in {root}")
    return parsed


def share(items: list[Parsed], ok: Callable[[Parsed], bool]) -> tuple[int, int]:
    return sum(1 for item in items if ok(item)), len(items)


def tagged(corpus: list[Parsed], tag: str) -> list[Parsed]:
    return [item for item in corpus if tag in item.tags]


def test_every_message_parses(corpus: list[Parsed]) -> None:
    internal = [
        (item.name, defect)
        for item in corpus
        for defect in item.envelope.defects + item.content.defects
        if defect.startswith("internal error")
    ]
    assert internal == []
    for item in corpus:
        assert isinstance(item.envelope, Envelope)
        assert isinstance(item.content, Content)
        assert item.envelope.date is None or item.envelope.date.utcoffset() is not None
        assert len(item.content.snippet) <= 200
    with_defects = sum(1 for item in corpus if item.envelope.defects or item.content.defects)
    print(f"\n{len(corpus)} messages, {with_defects} with defects")


def test_rfc2047_subjects_are_decoded(corpus: list[Parsed]) -> None:
    items = tagged(corpus, "rfc2047")
    good, total = share(items, lambda item: "=?" not in item.envelope.subject)
    print(f"\nrfc2047: {good}/{total} subjects without leftover encoded words")
    assert total >= 50
    assert good >= 0.95 * total


def test_iso_2022_jp_leaves_no_escape_sequences(corpus: list[Parsed]) -> None:
    items = tagged(corpus, "charset:iso-2022-jp")
    good, total = share(items, lambda item: "\x1b" not in item.envelope.subject + item.content.text)
    print(f"\niso-2022-jp: {good}/{total} without escape sequences")
    assert total >= 10
    assert good >= 0.9 * total


def test_mailing_list_messages_have_list_id(corpus: list[Parsed]) -> None:
    items = tagged(corpus, "mailing-list")
    good, total = share(items, lambda item: item.envelope.list_id is not None)
    assert total >= 100
    assert good >= 0.95 * total


def test_leading_from_line_is_skipped(corpus: list[Parsed]) -> None:
    items = tagged(corpus, "leading-From_-line")
    good, total = share(
        items,
        lambda item: (
            "no header block" not in item.envelope.defects
            and bool(item.envelope.from_ or item.envelope.subject)
        ),
    )
    assert total >= 10
    assert good >= 0.9 * total


def test_html_messages_have_html_or_text(corpus: list[Parsed]) -> None:
    items = tagged(corpus, "html")
    good, total = share(items, lambda item: item.content.html is not None)
    texts, _ = share(items, lambda item: bool(item.content.text.strip()))
    print(f"\nhtml: {good}/{total} with html, {texts}/{total} with text")
    assert good >= 0.85 * total
    assert texts >= 0.85 * total


def test_cid_references_mark_inline_parts(corpus: list[Parsed]) -> None:
    items = tagged(corpus, "cid-ref")
    good, total = share(
        items, lambda item: any(a.inline and a.content_id for a in item.content.attachments)
    )
    print(f"\ncid-ref: {good}/{total} with an inline part that has a Content-ID")
    assert total >= 10
    assert good >= 0.8 * total


def test_attached_messages_are_listed(corpus: list[Parsed]) -> None:
    items = tagged(corpus, "message-rfc822")
    good, total = share(
        items,
        lambda item: any(a.content_type == "message/rfc822" for a in item.content.attachments),
    )
    assert total >= 30
    assert good >= 0.8 * total


def test_part_bytes_matches_every_attachment(corpus: list[Parsed]) -> None:
    checked = mismatched = 0
    for item in corpus:
        for attachment in item.content.attachments:
            data = part_bytes(item.raw, attachment.part_id)
            assert data is not None, (item.name, attachment.part_id)
            checked += 1
            mismatched += len(data) != attachment.size
    print(f"\npart_bytes: {checked} attachments, {mismatched} with a different size")
    assert checked >= 500
    assert mismatched <= 0.01 * checked


def test_most_messages_have_readable_text(corpus: list[Parsed]) -> None:
    plain = [
        item
        for item in corpus
        if not item.tags & {"smime", "pgp"} and item.envelope.content_type.startswith("text/")
    ]
    good, total = share(plain, lambda item: bool(item.content.snippet))
    assert good >= 0.9 * total
