"""The pure FETCH parser (sync/fetchparse.py), with byte tables and a round trip.

Inputs are what imaplib hands over: ``bytes`` lines and ``(text, literal)`` tuples.
Where it matters, the bytes are produced by feeding a server's raw response through a
real ``imaplib.IMAP4`` reader (:func:`imaplib_split`), so the framing under test is
imaplib's own, not our idea of it.
"""

from __future__ import annotations

import imaplib
import io
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.fetchparse import (
    FetchParseError,
    FetchResponse,
    flag_names,
    format_uid_sets,
    message_id_from_header,
    parse_esearch,
    parse_fetch_responses,
    parse_internal_date,
    parse_uid_set,
    parse_vanished,
)


class _Replay(imaplib.IMAP4):
    """imaplib's response reader over canned bytes (no socket, no greeting)."""

    def __init__(self, data: bytes) -> None:  # deliberately not calling super()
        self.debug = 0
        self.untagged_responses = {}
        self.tagged_commands = {}
        self._mode_ascii()
        self.tagre = re.compile(rb"(?P<tag>T\d+) (?P<type>[A-Z]+) (?P<data>.*)", re.ASCII)
        self._cmd_log_len = 10
        self._cmd_log_idx = 0
        self._cmd_log = {}
        self.file = io.BytesIO(data)  # type: ignore[assignment]
        self._end = len(data)

    def responses(self, name: str = "FETCH") -> list[object]:
        while self.file.tell() < self._end:
            self._get_response()
        return list(self.untagged_responses.get(name, []))


def imaplib_split(wire: bytes, name: str = "FETCH") -> list[object]:
    return _Replay(wire).responses(name)


def lit(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


# ------------------------------------------------------------------ byte tables


def test_imaplib_framing_is_what_the_parser_expects() -> None:
    wire = (
        b"* 1 FETCH (UID 5 BODY[] " + lit(b"abc") + b" FLAGS (\\Seen))\r\n"
        b"* 2 FETCH (UID 6 FLAGS ())\r\n"
        b"* 3 FETCH (UID 7 BODY[HEADER] " + lit(b"h") + b" BODY[TEXT] " + lit(b"t") + b")\r\n"
    )
    assert imaplib_split(wire) == [
        (b"1 (UID 5 BODY[] {3}", b"abc"),
        b" FLAGS (\\Seen))",
        b"2 (UID 6 FLAGS ())",
        (b"3 (UID 7 BODY[HEADER] {1}", b"h"),
        (b" BODY[TEXT] {1}", b"t"),
        b")",
    ]


def test_several_messages_in_server_order() -> None:
    body1 = b"Subject: one\r\n\r\nfirst\r\n"
    body2 = b"Subject: two\r\n\r\nsecond\r\n"
    wire = (
        b'* 2 FETCH (UID 9 FLAGS (\\Seen) INTERNALDATE "30-Nov-2026 13:38:06 +0000" '
        b"RFC822.SIZE 24 MODSEQ (12) BODY[] " + lit(body1) + b")\r\n"
        b'* 1 FETCH (UID 4 FLAGS () INTERNALDATE "01-Jan-2020 00:00:00 +0100" '
        b"RFC822.SIZE 25 MODSEQ (3) BODY[] " + lit(body2) + b")\r\n"
    )
    got = parse_fetch_responses(imaplib_split(wire))
    assert [r.uid for r in got] == [9, 4]
    assert got[0] == FetchResponse(
        seq=2,
        uid=9,
        flags=("\\Seen",),
        internal_date=datetime(2026, 11, 30, 13, 38, 6, tzinfo=UTC),
        modseq=12,
        size=24,
        sections={"": body1},
    )
    assert got[1].sections[""] == body2
    assert got[1].flags == ()
    assert got[1].internal_date == datetime(2019, 12, 31, 23, 0, tzinfo=UTC)


def test_literal_containing_parentheses_braces_and_fake_responses() -> None:
    body = b'Subject: )\r\n\r\n{12}\r\n) "quoted\r\n* 3 FETCH (UID 1)\r\nA1 OK\r\n'
    wire = b"* 1 FETCH (UID 2 BODY[] " + lit(body) + b" FLAGS (\\Answered))\r\n"
    (r,) = parse_fetch_responses(imaplib_split(wire))
    assert r.sections[""] == body
    assert r.uid == 2
    assert r.flags == ("\\Answered",)


def test_literal_is_not_copied() -> None:
    body = b"x" * 100_000
    (r,) = parse_fetch_responses([(b"1 (UID 1 BODY[] {100000}", body), b")"])
    assert r.sections[""] is body


def test_zero_byte_literal_and_nil_body() -> None:
    wire = (
        b"* 1 FETCH (UID 1 BODY[] {0}\r\n)\r\n"
        b"* 2 FETCH (UID 2 BODY[] NIL)\r\n"
        b'* 3 FETCH (UID 3 BODY[] "inline body")\r\n'
        b'* 4 FETCH (UID 4 BODY[] "with \\"escapes\\" \\\\ here")\r\n'
    )
    got = parse_fetch_responses(imaplib_split(wire))
    assert [r.sections for r in got] == [
        {"": b""},
        {"": None},
        {"": b"inline body"},
        {"": b'with "escapes" \\ here'},
    ]


def test_flags_with_keywords_and_recent() -> None:
    (r,) = parse_fetch_responses(
        [b"7 (FLAGS (\\Seen \\Recent $Forwarded Junk \\Flagged $MDNSent) UID 70)"]
    )
    assert r.flags == ("\\Seen", "\\Recent", "$Forwarded", "Junk", "\\Flagged", "$MDNSent")
    assert flag_names(r.flags) == (
        frozenset({"seen", "flagged"}),
        ("$Forwarded", "Junk", "$MDNSent"),
    )


def test_missing_fields_are_none() -> None:
    (r,) = parse_fetch_responses([b"3 (FLAGS (\\Deleted))"])
    assert r == FetchResponse(seq=3, flags=("\\Deleted",))
    assert (r.uid, r.modseq, r.internal_date, r.size) == (None, None, None, None)
    (r,) = parse_fetch_responses([b"3 ()"])
    assert r == FetchResponse(seq=3)


def test_unknown_items_are_skipped_even_with_nested_lists() -> None:
    line = (
        b'12 (X-GM-LABELS ("\\\\Important" foo) ENVELOPE ("date" NIL (("a" NIL "b" "c")) NIL) '
        b"UID 44 x-gm-msgid 123)"
    )
    (r,) = parse_fetch_responses([line])
    assert (r.seq, r.uid) == (12, 44)


def test_item_names_are_case_insensitive_and_sections_normalised() -> None:
    head = b"Message-ID: <a@b>\r\n\r\n"
    data = [
        (b"1 (uid 8 rfc822.size 77 body[header.fields  (message-id)] {%d}" % len(head), head),
        b" modseq (5))",
    ]
    (r,) = parse_fetch_responses(data)
    assert (r.uid, r.size, r.modseq) == (8, 77, 5)
    assert r.sections == {"HEADER.FIELDS (MESSAGE-ID)": head}


def test_partial_body_and_rfc822_names() -> None:
    data = [(b"1 (UID 1 BODY[]<0> {2}", b"ab"), b" RFC822 {1}", b")"]
    with pytest.raises(FetchParseError):  # a bytes item always ends a response
        parse_fetch_responses(data)
    data = [(b"1 (UID 1 BODY[]<0> {2}", b"ab"), (b" RFC822 {1}", b"c"), b")"]
    (r,) = parse_fetch_responses(data)
    assert r.sections == {"": b"c"}  # RFC822 and BODY[] are the same section


def test_none_items_are_skipped() -> None:
    assert parse_fetch_responses([None]) == []
    assert parse_fetch_responses([]) == []


@pytest.mark.parametrize(
    "data",
    [
        [b"x (UID 1)"],  # not a message number
        [b"1 UID 1"],  # no list
        [b"1 (UID)"],  # odd item count
        [b"1 (UID abc)"],
        [b"1 (UID 1"],  # unbalanced
        [b"1 (UID 1))"],
        [b"1 (FLAGS \\Seen)"],
        [b"1 (FLAGS (NIL))"],
        [b"1 (MODSEQ 5)"],
        [b"1 (MODSEQ (a))"],
        [b"1 (RFC822.SIZE -1)"],
        [b"1 (INTERNALDATE (x))"],
        [b"1 (BODY[] (x))"],
        [b"1 (UID {3} 1)"],  # a literal marker that is not at the end
        [b"1 (UID 1 BODY[] {3})"],  # a marker without a literal
        [(b"1 (UID 1 BODY[] {3}", b"ab"), b")"],  # wrong size
        [(b"1 (UID 1 BODY[] x", b"ab"), b")"],  # literal without marker
        [(b"1 (UID 1 BODY[] {2}", b"ab")],  # ends inside the response
        [b"1 (UID 1 [x)"],
        ["1 (UID 1)"],  # str, not bytes
        [(b"1 (BODY[] {1}", "x"), b")"],
    ],
)
def test_malformed_responses_raise(data: list[object]) -> None:
    with pytest.raises(FetchParseError):
        parse_fetch_responses(data)


# --------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"30-Nov-2026 13:38:06 +0000", datetime(2026, 11, 30, 13, 38, 6, tzinfo=UTC)),
        (b" 1-Dec-2026 00:30:00 +0200", datetime(2026, 11, 30, 22, 30, tzinfo=UTC)),
        (b"17-Jul-1996 02:44:25 -0700", datetime(1996, 7, 17, 9, 44, 25, tzinfo=UTC)),
        (b"17-jul-1996 02:44:25 -0730", datetime(1996, 7, 17, 10, 14, 25, tzinfo=UTC)),
        (b"31-Feb-2026 00:00:00 +0000", None),  # no such day
        (b"17-Foo-1996 02:44:25 -0700", None),
        (b"17-Jul-1996 02:44:25", None),
        (b"", None),
    ],
)
def test_internal_date(raw: bytes, expected: datetime | None) -> None:
    got = parse_internal_date(raw)
    assert got == expected
    if got is not None:
        assert got.tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "system", "keywords"),
    [
        ([], set(), ()),
        ([b"\\Seen"], {"seen"}, ()),
        ([b"\\SEEN", b"\\flagged", b"\\Answered"], {"seen", "flagged", "answered"}, ()),
        ([b"\\Draft", b"\\Deleted", b"\\Recent"], {"draft", "deleted"}, ()),
        ([b"$Forwarded", b"Junk", b"$label1"], set(), ("$Forwarded", "Junk", "$label1")),
        ([b"NonJunk", b"nonjunk", b"NONJUNK"], set(), ("NonJunk",)),
        (["\\Seen", "$Phishing"], {"seen"}, ("$Phishing",)),  # str too
        ([b"\\Unknown"], set(), ("\\Unknown",)),
        ([b"$\xc3\xa9t\xc3\xa9"], set(), ("$été",)),
    ],
)
def test_flag_names(raw: list[bytes | str], system: set[str], keywords: tuple[str, ...]) -> None:
    assert flag_names(raw) == (frozenset(system), keywords)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (b"Message-ID: <abc@example.com>\r\n\r\n", "abc@example.com"),
        (b"message-id:   <x@y>  \r\n\r\n", "x@y"),
        (b"Message-ID:\r\n <folded@example.com>\r\n\r\n", "folded@example.com"),
        (b"Message-ID: no-brackets@example.com\r\n\r\n", "no-brackets@example.com"),
        (b"Message-ID: <unterminated@x\r\n\r\n", "unterminated@x"),
        (b"Message-ID: <>\r\n\r\n", None),
        (b"\r\n", None),
        (b"", None),
        (None, None),
    ],
)
def test_message_id_from_header(block: bytes | None, expected: str | None) -> None:
    assert message_id_from_header(block) == expected


# ------------------------------------------------------------------- UID sets


@pytest.mark.parametrize(
    ("uids", "expected"),
    [
        ([], []),
        ([5], ["5"]),
        ([3, 1, 2, 2], ["1:3"]),
        ([1, 2, 3, 7, 9, 10], ["1:3,7,9:10"]),
    ],
)
def test_format_uid_sets(uids: list[int], expected: list[str]) -> None:
    assert format_uid_sets(uids) == expected


def test_format_uid_sets_splits_long_sets() -> None:
    uids = list(range(1, 20_000, 2))
    sets = format_uid_sets(uids, max_length=1000)
    assert len(sets) > 1
    assert all(len(s) <= 1000 for s in sets)
    assert [u for s in sets for u in parse_uid_set(s)] == uids
    with pytest.raises(ValueError, match="UIDs start at 1"):
        format_uid_sets([0, 1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"1", [1]),
        (b"1:3,7", [1, 2, 3, 7]),
        ("9:7,1", [1, 7, 8, 9]),
        (b"2,2,1:2", [1, 2]),
    ],
)
def test_parse_uid_set(text: bytes | str, expected: list[int]) -> None:
    assert parse_uid_set(text) == expected


@pytest.mark.parametrize("text", [b"", b"1:*", b"a", b"1,,2", b"0:3", b"1:99999999999"])
def test_parse_uid_set_rejects(text: bytes) -> None:
    with pytest.raises(FetchParseError):
        parse_uid_set(text)


def test_vanished_and_esearch() -> None:
    wire = b"* VANISHED (EARLIER) 1:3,9\r\n* VANISHED 12\r\n"
    assert parse_vanished(imaplib_split(wire, "VANISHED")) == [1, 2, 3, 9, 12]
    assert parse_vanished([None, b""]) == []
    wire = b'* ESEARCH (TAG "A1") UID ALL 4:6,10\r\n'
    assert parse_esearch(imaplib_split(wire, "ESEARCH")) == [4, 5, 6, 10]
    assert parse_esearch([b'(TAG "A2") UID']) == []
    with pytest.raises(FetchParseError):
        parse_vanished([(b"x", b"y")])  # type: ignore[list-item]


# ----------------------------------------------------------------- round trip

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ATOM = st.text(
    alphabet=st.characters(
        min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='()"{}[]%*\\'
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s.upper() not in {"NIL"})
_FLAG = st.one_of(
    st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "\\Recent"]),
    _ATOM,
)
_DATE = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(None)
).map(lambda d: d.replace(microsecond=0))
_OFFSET = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


@st.composite
def _message(draw: st.DrawFn) -> dict[str, object]:
    fields: dict[str, object] = {}
    if draw(st.booleans()):
        fields["uid"] = draw(st.integers(min_value=1, max_value=2**32 - 1))
    if draw(st.booleans()):
        fields["flags"] = tuple(draw(st.lists(_FLAG, max_size=6)))
    if draw(st.booleans()):
        fields["internal_date"] = (draw(_DATE), draw(_OFFSET))
    if draw(st.booleans()):
        fields["modseq"] = draw(st.integers(min_value=1, max_value=2**63 - 1))
    if draw(st.booleans()):
        fields["size"] = draw(st.integers(min_value=0, max_value=2**31))
    if draw(st.booleans()):
        fields["body"] = draw(st.one_of(st.none(), st.binary(max_size=300)))
    return fields


def _wire(seq: int, fields: dict[str, object], order: list[int]) -> bytes:
    items: list[bytes] = []
    if "uid" in fields:
        items.append(b"UID %d" % fields["uid"])  # type: ignore[str-bytes-safe]
    if "flags" in fields:
        items.append(b"FLAGS (%s)" % " ".join(fields["flags"]).encode())  # type: ignore[arg-type]
    if "internal_date" in fields:
        local, offset = fields["internal_date"]  # type: ignore[misc]
        minutes = int(offset.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        month = _MONTHS[local.month - 1]
        text = (
            f"{local.day:2d}-{month}-{local.year} {local:%H:%M:%S} "
            f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        )
        items.append(b'INTERNALDATE "%s"' % text.encode())
    if "modseq" in fields:
        items.append(b"MODSEQ (%d)" % fields["modseq"])  # type: ignore[str-bytes-safe]
    if "size" in fields:
        items.append(b"RFC822.SIZE %d" % fields["size"])  # type: ignore[str-bytes-safe]
    if "body" in fields:
        body = fields["body"]
        items.append(b"BODY[] NIL" if body is None else b"BODY[] " + lit(body))  # type: ignore[arg-type]
    # Servers may send the items in any order: permute them as hypothesis says.
    ordered = [items[i] for i in sorted(range(len(items)), key=lambda i: (order[i], i))]
    return b"* %d FETCH (" % seq + b" ".join(ordered) + b")\r\n"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_message(), max_size=6),
    st.lists(st.integers(min_value=0, max_value=100), min_size=6, max_size=6),
)
def test_round_trip(messages: list[dict[str, object]], order: list[int]) -> None:
    wire = b"".join(_wire(i + 1, m, order) for i, m in enumerate(messages))
    got = parse_fetch_responses(imaplib_split(wire))
    assert len(got) == len(messages)
    for i, (r, m) in enumerate(zip(got, messages, strict=True)):
        assert r.seq == i + 1
        assert r.uid == m.get("uid")
        assert r.flags == m.get("flags")
        assert r.modseq == m.get("modseq")
        assert r.size == m.get("size")
        if "internal_date" in m:
            local, offset = m["internal_date"]  # type: ignore[misc]
            assert r.internal_date == local.replace(tzinfo=timezone(offset)).astimezone(UTC)
        else:
            assert r.internal_date is None
        assert r.sections == ({"": m["body"]} if "body" in m else {})
