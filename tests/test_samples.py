"""Tests for app.samples: the deterministic demo mailbox and synthetic benchmark mail."""

from __future__ import annotations

import base64
import collections
import email
import email.policy
import hashlib
import inspect
import itertools
import re
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import samples

ROOT = Path(__file__).resolve().parent.parent
LEGACY = {"iso-8859-1", "windows-1252", "koi8-r", "iso-2022-jp"}


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> Iterator[EmailMessage]:
    for part in msg.walk():
        assert isinstance(part, EmailMessage)
        yield part


def problems(raw: bytes, msg: EmailMessage | None = None, headers: bool = True) -> list[str]:
    """Everything wrong with one generated message (empty list: fine).

    ``headers=False`` skips parsing every header of every part (the slow part).
    """
    found: list[str] = []
    head, sep, _ = raw.partition(b"\r\n\r\n")
    if not sep:
        found.append("no header/body separator")
    if not head.isascii():
        found.append("non-ASCII header bytes")
    if b"\n" in raw.replace(b"\r\n", b"") or b"\r" in raw.replace(b"\r\n", b""):
        found.append("bare CR or LF")
    if max(len(line) for line in raw.split(b"\r\n")) > 998:
        found.append("line longer than 998 octets")
    msg = parse(raw) if msg is None else msg
    for name in ("Message-ID", "Date", "From", "Subject"):
        if msg[name] is None:
            found.append(f"no {name}")
    for part in parts(msg):
        if part.defects:
            found.append(f"{part.get_content_type()}: {part.defects}")
        for name, value in part.items() if headers else ():
            if getattr(value, "defects", None):
                found.append(f"header {name}: {value.defects}")
        if part.get_content_maintype() == "text" and not part.is_multipart():
            content = part.get_content()
            if "\ufffd" in content:
                found.append(f"undecodable {part.get_content_type()} {part.get_content_charset()}")
    return found


def thread_root(msg: EmailMessage) -> str:
    refs = str(msg.get("References", "")).split()
    return refs[0] if refs else str(msg["Message-ID"])


@pytest.fixture(scope="module")
def demo() -> list[samples.SampleMessage]:
    return list(samples.demo_messages())


@pytest.fixture(scope="module")
def demo_parsed(
    demo: list[samples.SampleMessage],
) -> list[tuple[samples.SampleMessage, EmailMessage]]:
    return [(m, parse(m.raw)) for m in demo]


@pytest.fixture(scope="module")
def synthetic() -> list[bytes]:
    return list(samples.synthetic_messages(2048, seed=3))


@pytest.fixture(scope="module")
def synthetic_parsed(synthetic: list[bytes]) -> list[EmailMessage]:
    return [parse(raw) for raw in synthetic]


# -- determinism ------------------------------------------------------------------------


def test_demo_is_byte_identical_between_runs(demo: list[samples.SampleMessage]) -> None:
    assert list(samples.demo_messages()) == demo


def test_synthetic_is_byte_identical_between_runs(synthetic: list[bytes]) -> None:
    assert list(samples.synthetic_messages(600, seed=3)) == synthetic[:600]


def test_synthetic_message_alone_equals_the_streamed_one(synthetic: list[bytes]) -> None:
    for i in (2047, 1500, 0, 513, 511, 1024, 77):  # any order, across blocks
        assert samples.synthetic_message(i, seed=3) == synthetic[i]


def test_different_seeds_give_different_mailboxes(synthetic: list[bytes]) -> None:
    other = list(samples.synthetic_messages(50, seed=4))
    assert sum(a == b for a, b in zip(other, synthetic, strict=False)) == 0
    assert samples.synthetic_message(0, seed=-3) != samples.synthetic_message(0, seed=3)


def test_output_does_not_depend_on_the_process() -> None:
    """Another interpreter with another hash seed makes the same bytes (no hash(), clock...)."""
    code = (
        "import hashlib\nfrom app import samples\nh = hashlib.sha256()\n"
        "for m in samples.demo_messages():\n    h.update(m.folder.encode() + m.raw)\n"
        "for raw in samples.synthetic_messages(300, seed=11):\n    h.update(raw)\n"
        "print(h.hexdigest())\n"
    )
    expected = hashlib.sha256()
    for m in samples.demo_messages():
        expected.update(m.folder.encode() + m.raw)
    for raw in samples.synthetic_messages(300, seed=11):
        expected.update(raw)
    for hash_seed in ("1", "4242"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={"PYTHONHASHSEED": hash_seed, "PATH": "", "TZ": "Pacific/Auckland"},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == expected.hexdigest()


# -- every message is well formed -------------------------------------------------------


def test_every_demo_message_parses_without_defects(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    bad = {k: found for k, (m, msg) in enumerate(demo_parsed) if (found := problems(m.raw, msg))}
    assert bad == {}


def test_every_synthetic_message_parses_without_defects(
    synthetic: list[bytes], synthetic_parsed: list[EmailMessage]
) -> None:
    bad = {
        i: found
        for i, (raw, msg) in enumerate(zip(synthetic, synthetic_parsed, strict=True))
        if (found := problems(raw, msg, headers=i < 600))
    }
    assert bad == {}


@settings(max_examples=25, deadline=None)
@given(i=st.integers(min_value=0, max_value=5_000_000), seed=st.integers(-5, 5))
def test_any_synthetic_message_is_well_formed_and_stable(i: int, seed: int) -> None:
    raw = samples.synthetic_message(i, seed)
    assert problems(raw) == []
    assert samples.synthetic_message(i, seed) == raw


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(
        st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12),
        min_size=1,
        max_size=12,
    ),
    charset=st.sampled_from(
        ["utf-8", "iso-8859-1", "windows-1252", "koi8-r", "iso-2022-jp", "gb2312"]
    ),
    mode=st.sampled_from(["B", "Q"]),
)
def test_encoded_headers_round_trip(words: list[str], charset: str, mode: str) -> None:
    text = " ".join(words)
    if text.isascii() or "=?" in text:  # only RFC 2047 words are under test
        return
    value = samples._unstructured(text, charset, mode)
    assert value.isascii()
    assert all(len(word) <= 75 for word in value.split(" ") if word.startswith("=?"))
    msg = parse((samples._fold("Subject", value) + "\r\n").encode("ascii"))
    assert str(msg["Subject"]) == text


def test_message_ids_are_unique(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
    synthetic_parsed: list[EmailMessage],
) -> None:
    demo_ids = [str(msg["Message-ID"]) for _, msg in demo_parsed]
    assert len(set(demo_ids)) == len(demo_ids)
    synthetic_ids = [str(msg["Message-ID"]) for msg in synthetic_parsed]
    assert len(set(synthetic_ids)) == len(synthetic_ids)


# -- the demo mailbox -------------------------------------------------------------------


def test_demo_constants() -> None:
    assert samples.DEMO_ACCOUNT == "demo"
    assert samples.DEMO_ADDRESS.endswith(".example")


def test_demo_size_folders_and_flags(demo: list[samples.SampleMessage]) -> None:
    assert 150 <= len(demo) <= 400
    folders = collections.Counter(m.folder for m in demo)
    assert set(folders) == set(samples.DEMO_FOLDERS)
    assert "Projekte/Übersicht" in folders
    assert folders["INBOX"] >= 50
    assert folders["Trash"] >= 2
    assert folders["Junk"] >= 3
    for m in demo:
        assert m.flags <= samples.FLAGS
        assert ("draft" in m.flags) == (m.folder == "Drafts")
    inbox = [m for m in demo if m.folder == "INBOX"]
    assert any("seen" not in m.flags for m in inbox)
    assert any("seen" in m.flags for m in inbox)
    assert any("flagged" in m.flags for m in inbox)
    assert any("answered" in m.flags for m in inbox)


def test_demo_is_generated_quickly() -> None:
    start = time.perf_counter()
    assert sum(1 for _ in samples.demo_messages()) > 0
    assert time.perf_counter() - start < 2.0


def test_demo_dates_span_three_months_before_the_base_date(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    dates = [parsedate_to_datetime(str(msg["Date"])) for _, msg in demo_parsed]
    assert max(dates) <= samples.BASE_DATE
    assert min(dates) >= samples.BASE_DATE - timedelta(days=100)
    assert max(dates) - min(dates) >= timedelta(days=80)
    # yielded oldest first, so UIDs grow with dates within a folder
    assert dates == sorted(dates)


def test_demo_uses_reserved_domains_only(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    allowed = re.compile(r"(^|\.)(example\.com|example\.org|[a-z0-9-]+\.example)$")
    for _, msg in demo_parsed:
        for name in ("From", "To", "Cc", "Reply-To"):
            for _, address in getaddresses([str(v) for v in msg.get_all(name, [])]):
                assert allowed.search(address.rpartition("@")[2]), address
        for part in parts(msg):
            if part.get_content_maintype() == "text" and not part.is_multipart():
                for host in re.findall(r"https?://([^/\s\"'<>?]+)", part.get_content()):
                    assert allowed.search(host), host


def test_demo_people_have_non_ascii_names(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    names = {msg["From"].addresses[0].display_name for _, msg in demo_parsed}
    assert {"Zoë Müller", "José García", "山田太郎", "Дмитрий Иванов", "Chloé Dubois"} <= names


def test_demo_threads_and_replies(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    by_id = {str(msg["Message-ID"]): (m, msg) for m, msg in demo_parsed}
    threads: collections.Counter[str] = collections.Counter()
    for _, msg in demo_parsed:
        refs = str(msg.get("References", "")).split()
        if refs:
            assert str(msg["In-Reply-To"]) == refs[-1]
            assert all(r in by_id for r in refs), refs
            parent = by_id[refs[-1]][1]
            assert str(parent.get("References", "")).split() == refs[:-1]
        threads[thread_root(msg)] += 1
    assert max(threads.values()) >= 40
    assert sum(1 for count in threads.values() if count >= 3) >= 8
    # the user's replies are in Sent, their parents in INBOX flagged as answered
    answered = [
        by_id[str(msg["In-Reply-To"])][0]
        for m, msg in demo_parsed
        if m.folder == "Sent" and msg["In-Reply-To"]
    ]
    assert len(answered) >= 5
    assert all("answered" in parent.flags for parent in answered if parent.folder != "Sent")
    assert any(parent.folder == "INBOX" for parent in answered)


def test_demo_long_thread_quotes_grow(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    roots = collections.Counter(thread_root(msg) for _, msg in demo_parsed)
    longest = roots.most_common(1)[0][0]
    thread = [msg for _, msg in demo_parsed if thread_root(msg) == longest]
    senders = {msg["From"].addresses[0].addr_spec for msg in thread}
    assert len(senders) >= 8
    sizes = [len(msg.get_body(("plain",)).get_content()) for msg in thread]  # type: ignore[union-attr]
    assert max(sizes) > 5 * sizes[0]
    assert any(">>>>" in msg.get_body(("plain",)).get_content() for msg in thread)  # type: ignore[union-attr]


def _find(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]], header: str
) -> list[EmailMessage]:
    return [msg for _, msg in demo_parsed if msg[header] is not None]


def test_demo_newsletter(demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]]) -> None:
    letters = _find(demo_parsed, "List-Unsubscribe-Post")
    assert letters
    for msg in letters:
        assert msg.get_content_type() == "multipart/alternative"
        assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert msg["List-Id"]
        unsubscribe = str(msg["List-Unsubscribe"])
        assert "<mailto:" in unsubscribe
        assert "<https://" in unsubscribe
        text = msg.get_body(("plain",))
        page = msg.get_body(("html",))
        assert text is not None
        assert page is not None
        source = page.get_content()
        assert "<table" in source
        assert re.search(r'<img src="https://[^"]+"', source)
        assert re.search(r'<img src="https://[^"]+" width="1" height="1"', source)


def _png_pixels(data: bytes) -> tuple[int, int]:
    """Check a PNG (signature, chunk CRCs, IDAT size) and return its size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + body) == crc
        if tag == b"IHDR":
            size = struct.unpack(">II", body[:8])
        if tag == b"IDAT":
            idat += body
        pos += 12 + length
    width, height = size
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


def test_demo_inline_images_resolve(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    found = 0
    for _, msg in demo_parsed:
        for related in parts(msg):
            if related.get_content_type() != "multipart/related":
                continue
            by_cid = {
                str(p["Content-ID"]).strip("<>"): p for p in parts(related) if p["Content-ID"]
            }
            html_part = related.get_body(("html",))
            assert html_part is not None
            cids = re.findall(r'src="cid:([^"]+)"', html_part.get_content())
            assert cids
            for cid in cids:
                image = by_cid[cid]
                assert image.get_content_type() == "image/png"
                payload = image.get_content()
                assert isinstance(payload, bytes)
                assert _png_pixels(payload) >= (1, 1)
                found += 1
    assert found >= 2


def _attachments(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> list[EmailMessage]:
    return [
        part
        for _, msg in demo_parsed
        for part in parts(msg)
        if part.get_content_disposition() == "attachment"
    ]


def test_demo_attachments(demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]]) -> None:
    attachments = _attachments(demo_parsed)
    types = {part.get_content_type() for part in attachments}
    assert {"application/pdf", "text/plain", "text/csv", "image/png"} <= types
    names = [part.get_filename() or "" for part in attachments]
    assert any(name.endswith(".txt") for name in names)
    assert any(name.endswith(".csv") for name in names)
    assert any(not name.isascii() for name in names)
    for part in attachments:
        if part.get_content_type() == "application/pdf":
            pdf = part.get_content()
            assert isinstance(pdf, bytes)
            assert pdf.startswith(b"%PDF-1.4")
            assert pdf.rstrip().endswith(b"%%EOF")
            startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
            assert pdf[startxref:].startswith(b"xref")
            count = int(pdf[startxref:].split(b"\n")[1].split()[1])
            table = pdf[startxref:].split(b"\n")[3 : 3 + count - 1]
            for number, entry in enumerate(table, start=1):
                offset = int(entry.split()[0])
                assert pdf[offset:].startswith(b"%d 0 obj" % number)
        if part.get_content_type() == "image/png":
            payload = part.get_content()
            assert isinstance(payload, bytes)
            _png_pixels(payload)


def test_demo_non_ascii_filename_uses_rfc2231(demo: list[samples.SampleMessage]) -> None:
    raw = next(m.raw for m in demo if b"filename*=utf-8''" in m.raw)
    msg = parse(raw)
    names = [p.get_filename() for p in parts(msg) if p.get_filename()]
    assert "Übersicht Q4 – Zoë Müller.pdf" in names


def test_demo_calendar_invite_and_cancellation(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    calendars = [
        part
        for _, msg in demo_parsed
        for part in parts(msg)
        if part.get_content_type() == "text/calendar"
    ]
    methods = {str(part.get_param("method")) for part in calendars}
    assert {"REQUEST", "CANCEL"} <= methods
    request = next(p.get_content() for p in calendars if "RRULE:" in p.get_content())
    assert "METHOD:REQUEST" in request
    assert "BEGIN:VTIMEZONE" in request
    assert "RRULE:FREQ=WEEKLY" in request
    assert "ORGANIZER;" in request
    unfolded = request.replace("\r\n ", "").replace("\n ", "")
    assert f"mailto:{samples.DEMO_ADDRESS}" in unfolded
    assert unfolded.count("ATTENDEE;") >= 3
    assert all(len(line.encode()) <= 75 for line in request.splitlines())
    cancel = next(p.get_content() for p in calendars if "METHOD:CANCEL" in p.get_content())
    assert "STATUS:CANCELLED" in cancel


def test_demo_legacy_charsets_and_encoded_headers(
    demo: list[samples.SampleMessage],
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    charsets = {
        part.get_content_charset()
        for _, msg in demo_parsed
        for part in parts(msg)
        if part.get_content_maintype() == "text"
    }
    assert charsets >= LEGACY
    heads = b"\n".join(m.raw.partition(b"\r\n\r\n")[0].lower() for m in demo)
    for charset in LEGACY:
        assert f"=?{charset}?".encode() in heads, charset
    subjects = {str(msg["Subject"]) for _, msg in demo_parsed}
    assert {
        "Отчёт за октябрь",
        "来週の打ち合わせについて",
        "Réunion d’équipe – ordre du jour",
    } <= subjects
    russian = next(msg for _, msg in demo_parsed if str(msg["Subject"]) == "Отчёт за октябрь")
    body = russian.get_body(("plain",))
    assert body is not None
    assert body.get_content_charset() == "koi8-r"
    assert "Привет" in body.get_content()


def test_demo_draft_junk_and_trash(
    demo_parsed: list[tuple[samples.SampleMessage, EmailMessage]],
) -> None:
    drafts = [msg for m, msg in demo_parsed if m.folder == "Drafts"]
    assert drafts
    assert all(msg["From"].addresses[0].addr_spec == samples.DEMO_ADDRESS for msg in drafts)
    junk = [msg for m, msg in demo_parsed if m.folder == "Junk"]
    assert all(str(msg["X-Spam-Flag"]) == "YES" for msg in junk)


# -- synthetic mailboxes ----------------------------------------------------------------


def test_synthetic_messages_streams() -> None:
    stream = samples.synthetic_messages(10**12, seed=1)
    assert inspect.isgenerator(stream)
    first = next(stream)
    assert first == samples.synthetic_message(0, seed=1)
    assert next(stream) == samples.synthetic_message(1, seed=1)
    assert list(samples.synthetic_messages(0)) == []


def test_synthetic_rejects_negative_arguments() -> None:
    with pytest.raises(ValueError, match="index"):
        samples.synthetic_message(-1)
    with pytest.raises(ValueError, match="n must be"):
        next(samples.synthetic_messages(-1))


def classify(msg: EmailMessage) -> str:
    if msg["List-Id"]:
        return "list"
    return {
        "text/plain": "plain",
        "multipart/alternative": "alternative",
        "multipart/mixed": "mixed",
    }[msg.get_content_type()]


def test_synthetic_mix_of_structures(synthetic_parsed: list[EmailMessage]) -> None:
    kinds = collections.Counter(classify(msg) for msg in synthetic_parsed)
    share = {kind: count / len(synthetic_parsed) for kind, count in kinds.items()}
    assert share["plain"] == pytest.approx(0.55, abs=0.06)
    assert share["alternative"] == pytest.approx(0.30, abs=0.06)
    assert share["mixed"] == pytest.approx(0.12, abs=0.04)
    assert share["list"] == pytest.approx(0.03, abs=0.02)
    for msg in synthetic_parsed:
        if classify(msg) == "mixed":
            assert any(p.get_content_disposition() == "attachment" for p in parts(msg))


def test_synthetic_charsets(synthetic: list[bytes], synthetic_parsed: list[EmailMessage]) -> None:
    legacy = 0
    seen: set[str] = set()
    for msg in synthetic_parsed:
        charsets = {p.get_content_charset() or "" for p in parts(msg)} - {""}
        seen |= charsets
        legacy += bool(charsets - {"utf-8", "us-ascii"})
    assert legacy / len(synthetic_parsed) == pytest.approx(0.15, abs=0.06)
    assert seen >= LEGACY | {"gb2312", "utf-8"}
    heads = b"\n".join(raw.partition(b"\r\n\r\n")[0].lower() for raw in synthetic)
    for charset in LEGACY | {"gb2312"}:
        assert f"=?{charset}?".encode() in heads


def test_synthetic_threads(synthetic_parsed: list[EmailMessage]) -> None:
    ids = {str(msg["Message-ID"]): msg for msg in synthetic_parsed}
    threads = collections.Counter(thread_root(msg) for msg in synthetic_parsed)
    in_threads = sum(count for count in threads.values() if count >= 2)
    assert in_threads / len(synthetic_parsed) >= 0.7
    assert max(threads.values()) <= 30
    replies = 0
    for msg in synthetic_parsed:
        refs = str(msg.get("References", "")).split()
        if not refs:
            assert msg["In-Reply-To"] is None
            continue
        replies += 1
        assert str(msg["In-Reply-To"]) == refs[-1]
        # 2048 is a whole number of layout blocks, so every parent is in the mailbox
        parent = ids[refs[-1]]
        assert str(parent.get("References", "")).split() == refs[:-1]
        assert str(msg["Subject"]).endswith(str(ids[refs[0]]["Subject"]))
        assert parsedate_to_datetime(str(msg["Date"])) > parsedate_to_datetime(str(parent["Date"]))
    assert replies > len(synthetic_parsed) / 2


def test_synthetic_newest_first(synthetic_parsed: list[EmailMessage]) -> None:
    dates = [parsedate_to_datetime(str(msg["Date"])) for msg in synthetic_parsed]
    assert dates[0] <= samples.BASE_DATE
    assert all(a > b for a, b in itertools.pairwise(dates))


def test_synthetic_sizes(synthetic: list[bytes], synthetic_parsed: list[EmailMessage]) -> None:
    sizes = sorted(len(raw) for raw in synthetic)
    median = sizes[len(sizes) // 2]
    mean = sum(sizes) / len(sizes)
    assert 4_000 <= median <= 12_000
    assert 12_000 <= mean <= 45_000
    big = sum(size > 1_000_000 for size in sizes)
    assert 2 <= big <= 30  # about 1 in 200
    assert sizes[-1] <= 4_300_000
    attachment_sizes = sorted(
        len(part.get_content())
        for msg in synthetic_parsed
        for part in parts(msg)
        if part.get_content_disposition() == "attachment" and part.get_content_maintype() != "text"
    )
    middle = attachment_sizes[len(attachment_sizes) // 2]
    assert 20_000 <= middle <= 300_000


def test_synthetic_attachment_bytes_look_like_files(synthetic_parsed: list[EmailMessage]) -> None:
    magic = {
        "application/pdf": b"%PDF-",
        "image/jpeg": b"\xff\xd8\xff",
        "image/png": b"\x89PNG\r\n\x1a\n",
        "application/zip": b"PK\x03\x04",
    }
    checked = 0
    for msg in synthetic_parsed[:600]:
        for part in parts(msg):
            expected = magic.get(part.get_content_type())
            if expected and part.get_content_disposition() == "attachment":
                payload = part.get_content()
                assert isinstance(payload, bytes)
                assert payload.startswith(expected)
                checked += 1
    assert checked > 10


def test_synthetic_base64_lines_are_76_characters(synthetic: list[bytes]) -> None:
    raw = next(r for r in synthetic if len(r) > 200_000)
    msg = parse(raw)
    part = next(p for p in parts(msg) if p.get_content_disposition() == "attachment")
    body = part.get_payload(decode=False)
    assert isinstance(body, str)
    lines = body.strip().split("\n")
    assert {len(line.rstrip("\r")) for line in lines[:-1]} == {76}
    assert base64.b64decode(body) == part.get_content()


def test_synthetic_vocabulary_has_common_and_rare_words(
    synthetic_parsed: list[EmailMessage],
) -> None:
    document_frequency: collections.Counter[str] = collections.Counter()
    english = 0
    for msg in synthetic_parsed:
        body = msg.get_body(("plain",))
        if body is None or body.get_content_charset() != "utf-8":
            continue
        text = body.get_content()
        if not text.isascii():
            continue
        english += 1
        document_frequency.update(set(re.findall(r"[a-z]{3,}", text.lower())))
    assert english > 500
    frequencies = sorted(document_frequency.values(), reverse=True)
    assert frequencies[0] / english > 0.5  # "the" and friends
    assert len(document_frequency) > 1500  # a big vocabulary
    rare = sum(1 for count in frequencies if count / english < 0.01)
    assert rare > 150  # words a search finds in a handful of messages


def test_synthetic_generation_is_fast() -> None:
    """A smoke check against pathological slowness (the real number is a benchmark)."""
    samples.synthetic_message(0, seed=8)  # build the fixed pools first
    start = time.perf_counter()
    size = sum(len(raw) for raw in samples.synthetic_messages(1500, seed=8))
    elapsed = time.perf_counter() - start
    assert size > 0
    assert elapsed < 5.0, f"{1500 / elapsed:.0f} messages/s"
