"""Pure parsers for the IMAP responses the sync engine reads in bulk.

Why this exists: a full sync is one long ``UID FETCH (UID FLAGS INTERNALDATE
BODY.PEEK[] MODSEQ)``. imapclient's generic response parser costs about eight times
the network read for it (it lexes every header token in Python and copies literals),
so ``sync/imap.py`` issues bulk FETCHes through the stdlib ``imaplib`` object and hands
the raw result to :func:`parse_fetch_responses`. imaplib has already split the stream:
each response is either one ``bytes`` line (no literal), or ``(text, literal)`` tuples
-- one per literal, ``text`` ending in ``{n}`` -- followed by the ``bytes`` trailer
after the last literal (``b")"`` or more items). So a ``bytes`` item always ends a
response, and a tuple never does: that rule is all the framing there is.

The non-literal text is tokenised with one regular expression and folded into nested
lists; literal bodies are put in place *as the same objects* imaplib read (a 25 MB
message is never copied here). NIL becomes None, quoted strings are unescaped, atoms
stay bytes; section names such as ``BODY[HEADER.FIELDS (MESSAGE-ID)]`` are one atom.

Also pure and here because they belong with the wire format: flag mapping
(:func:`flag_names`), UID sets (:func:`format_uid_sets`, :func:`parse_uid_set`),
INTERNALDATE, VANISHED and ESEARCH data, and the Message-ID of a header block.

Nothing here does I/O or knows about servers; errors are :class:`FetchParseError`
(a ``ValueError``), which the connection turns into ``sync.errors.ProtocolError``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = [
    "FetchParseError",
    "FetchResponse",
    "flag_names",
    "format_uid_sets",
    "message_id_from_header",
    "parse_esearch",
    "parse_fetch_responses",
    "parse_internal_date",
    "parse_uid_set",
    "parse_vanished",
]

Value = bytes | None | list["Value"]

SYSTEM_FLAGS: Mapping[str, str] = {
    "\\seen": "seen",
    "\\flagged": "flagged",
    "\\answered": "answered",
    "\\draft": "draft",
    "\\deleted": "deleted",
}
# Session-only: never stored, never a keyword.
_IGNORED_FLAGS = frozenset({"\\recent"})

_MONTHS = {
    m: i
    for i, m in enumerate(
        b"JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(),
        1,
    )
}
_INTERNALDATE = re.compile(
    rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\Z"
)
# Zone offsets ("+0200") seen so far; there are only so many.
_OFFSETS: dict[bytes, timedelta] = {}
# Small memo tables for the hot path, cleared when full. Mailboxes repeat a handful of
# flag combinations, and bulk-delivered or migrated mail shares INTERNALDATEs.
_CACHE_MAX = 4096
_FLAG_TEXTS: dict[bytes, tuple[str, ...]] = {}
_DATES: dict[bytes, datetime | None] = {}

# One token of the text between literals. Atoms may carry a bracketed section with
# spaces and parentheses inside (BODY[HEADER.FIELDS (MESSAGE-ID)]<0>); a literal
# marker is only legal at the very end of the text that precedes a literal.
_TOKEN = re.compile(
    rb"""[ ]*(?:
        (?P<open>\()
      | (?P<close>\))
      | "(?P<quoted>(?:[^"\\]|\\.)*)"
      | \{(?P<literal>\d+)\}\Z
      | (?P<atom>[^ ()"{\[]+(?:\[[^\]]*\][^ ()"{\[]*)*)
      | (?P<bad>.)
    )""",
    re.VERBOSE | re.DOTALL,
)
_FAST_HEAD = re.compile(rb"(\d+) \(")
_FAST_ITEM = re.compile(
    rb"""[ ]?(?:
        UID\ (\d+)
      | FLAGS\ \(([^()"{\[]*)\)
      | INTERNALDATE\ "([^"\\]*)"
      | MODSEQ\ \((\d+)\)
      | RFC822\.SIZE\ (\d+)
      | BODY\[([^\]]*)\](?:<\d+>)?\ (?:(NIL)|\{(\d+)\}\Z)
    )(?=\ |\Z)""",
    re.VERBOSE | re.IGNORECASE,
)
_QUOTED_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_SEQUENCE = re.compile(rb"\d+\Z")
_EARLIER = re.compile(rb"\s*\(EARLIER\)\s*", re.IGNORECASE)
# More UIDs than any mailbox holds: a set this large is a server bug, not data.
_MAX_SET_SIZE = 50_000_000


class FetchParseError(ValueError):
    """A FETCH (or related) response that does not follow RFC 3501 syntax."""


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """One ``* n FETCH (...)`` response; fields the server did not send are None.

    ``sections`` maps a body section to its content: ``""`` for ``BODY[]`` (and
    ``RFC822``), ``"HEADER.FIELDS (MESSAGE-ID)"`` etc. upper-cased with single spaces;
    the value is None when the server sent NIL.
    """

    seq: int
    uid: int | None = None
    flags: tuple[str, ...] | None = None
    internal_date: datetime | None = None
    modseq: int | None = None
    size: int | None = None
    sections: Mapping[str, bytes | None] = field(default_factory=dict)


# ------------------------------------------------------------------------- FETCH


def parse_fetch_responses(data: Iterable[object]) -> list[FetchResponse]:
    """Parse imaplib's FETCH data (``bytes`` lines and ``(text, literal)`` tuples).

    ``None`` items (imaplib's "no such response") are skipped. Responses come back
    in the order the server sent them.
    """
    out: list[FetchResponse] = []
    pieces: list[tuple[bytes, bytes | None]] = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            if len(item) != 2 or not isinstance(item[0], bytes) or not isinstance(item[1], bytes):
                raise FetchParseError(f"unexpected item in FETCH data: {_short(item)}")
            pieces.append((item[0], item[1]))
            continue
        if not isinstance(item, bytes):
            raise FetchParseError(f"unexpected item in FETCH data: {_short(item)}")
        pieces.append((item, None))
        out.append(_response(pieces))
        pieces = []
    if pieces:
        raise FetchParseError("FETCH data ends inside a response (after a literal)")
    return out


def _response(pieces: list[tuple[bytes, bytes | None]]) -> FetchResponse:
    return _fast_response(pieces) or _general_response(pieces)


def _fast_response(pieces: list[tuple[bytes, bytes | None]]) -> FetchResponse | None:
    """The common shapes (UID, FLAGS, INTERNALDATE, MODSEQ, RFC822.SIZE, BODY[...] as a
    literal or NIL), one regular expression match per item; None for anything else,
    which the general parser then reads (and judges)."""
    head = _FAST_HEAD.match(pieces[0][0])
    if head is None:
        return None
    uid = modseq = size = None
    flags: tuple[str, ...] | None = None
    internal_date: datetime | None = None
    sections: dict[str, bytes | None] = {}
    last = len(pieces) - 1
    pos = head.end()
    for i, (text, announced) in enumerate(pieces):
        literal = announced
        end = len(text)
        if i == last:
            if not text.endswith(b")"):
                return None
            end -= 1
        while pos < end:
            m = _FAST_ITEM.match(text, pos, end)
            if m is None:
                return None
            pos = m.end()
            kind = m.lastindex
            if kind == 1:
                uid = int(m.group(1))
            elif kind == 2:
                flags = _flag_text(m.group(2))
                if flags is None:
                    return None
            elif kind == 3:
                internal_date = parse_internal_date(m.group(3))
            elif kind == 4:
                modseq = int(m.group(4))
            elif kind == 5:
                size = int(m.group(5))
            elif kind == 7:
                sections[_fast_section(m.group(6))] = None
            elif literal is None or int(m.group(8)) != len(literal) or pos != len(text):
                return None
            else:
                sections[_fast_section(m.group(6))] = literal
                literal = None
        if literal is not None:  # a literal the text did not announce
            return None
        pos = 0
    return FetchResponse(
        seq=int(head.group(1)),
        uid=uid,
        flags=flags,
        internal_date=internal_date,
        modseq=modseq,
        size=size,
        sections=sections,
    )


def _flag_text(text: bytes) -> tuple[str, ...] | None:
    flags = _FLAG_TEXTS.get(text)
    if flags is None:
        if b"NIL" in text.upper():
            return None  # NIL is not a flag; the general parser judges
        flags = tuple(f.decode("utf-8", "replace") for f in text.split())
        if len(_FLAG_TEXTS) >= _CACHE_MAX:
            _FLAG_TEXTS.clear()
        _FLAG_TEXTS[text] = flags
    return flags


def _fast_section(section: bytes) -> str:
    return " ".join(section.decode("ascii", "replace").upper().split()) if section else ""


def _general_response(pieces: list[tuple[bytes, bytes | None]]) -> FetchResponse:
    tree = _tokens(pieces)
    seq_token = tree[0] if tree else None
    items = tree[1] if len(tree) == 2 else None
    if not isinstance(seq_token, bytes) or not isinstance(items, list):
        raise FetchParseError(f"not a FETCH response: {_short(pieces[0][0])}")
    if not _SEQUENCE.match(seq_token):
        raise FetchParseError(f"bad message number in FETCH response: {_short(seq_token)}")
    if len(items) % 2:
        raise FetchParseError(f"odd number of FETCH items: {_short(pieces[0][0])}")
    uid = modseq = size = None
    flags: tuple[str, ...] | None = None
    internal_date: datetime | None = None
    sections: dict[str, bytes | None] = {}
    for i in range(0, len(items), 2):
        key, value = items[i], items[i + 1]
        if not isinstance(key, bytes):
            raise FetchParseError(f"bad FETCH item name: {_short(key)}")
        name = key.upper()
        if name == b"UID":
            uid = _number(value, "UID")
        elif name == b"FLAGS":
            if not isinstance(value, list) or not all(isinstance(f, bytes) for f in value):
                raise FetchParseError(f"bad FLAGS: {_short(value)}")
            flags = tuple(f.decode("utf-8", "replace") for f in value if isinstance(f, bytes))
        elif name == b"MODSEQ":
            if not isinstance(value, list) or len(value) != 1:
                raise FetchParseError(f"bad MODSEQ: {_short(value)}")
            modseq = _number(value[0], "MODSEQ")
        elif name == b"RFC822.SIZE":
            size = _number(value, "RFC822.SIZE")
        elif name == b"INTERNALDATE":
            if not isinstance(value, bytes):
                raise FetchParseError(f"bad INTERNALDATE: {_short(value)}")
            internal_date = parse_internal_date(value)
        elif name.startswith((b"BODY[", b"BINARY[")) or name in (b"RFC822", b"RFC822.TEXT"):
            if isinstance(value, list):
                raise FetchParseError(f"bad body section value: {_short(value)}")
            sections[_section_name(name)] = value
        # Anything else (ENVELOPE, BODYSTRUCTURE, X-GM-*) is not ours to read.
    return FetchResponse(
        seq=int(seq_token),
        uid=uid,
        flags=flags,
        internal_date=internal_date,
        modseq=modseq,
        size=size,
        sections=sections,
    )


def _tokens(pieces: list[tuple[bytes, bytes | None]]) -> list[Value]:
    root: list[Value] = []
    stack: list[list[Value]] = [root]
    cur = root
    for text, literal in pieces:
        wants_literal = literal is not None
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "atom":
                atom = m.group("atom")
                cur.append(None if atom.upper() == b"NIL" else atom)
            elif kind == "open":
                new: list[Value] = []
                cur.append(new)
                stack.append(new)
                cur = new
            elif kind == "close":
                stack.pop()
                if not stack:
                    raise FetchParseError(f"unbalanced ')' in {_short(text)}")
                cur = stack[-1]
            elif kind == "quoted":
                quoted = m.group("quoted")
                cur.append(_QUOTED_ESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
            elif kind == "literal":
                if literal is None:
                    raise FetchParseError(f"literal announced but missing: {_short(text)}")
                if int(m.group("literal")) != len(literal):
                    raise FetchParseError(
                        f"literal of {len(literal)} bytes announced as {m.group('literal')!r}"
                    )
                cur.append(literal)
                wants_literal = False
            else:
                raise FetchParseError(f"unexpected {m.group()!r} in {_short(text)}")
        if wants_literal:
            raise FetchParseError(f"literal without a {{n}} marker after {_short(text)}")
    if len(stack) != 1:
        raise FetchParseError("unbalanced '(' in FETCH response")
    return root


def _number(value: Value, what: str) -> int:
    if isinstance(value, bytes) and value.isdigit():
        return int(value)
    raise FetchParseError(f"bad {what}: {_short(value)}")


def _section_name(item: bytes) -> str:
    if item in (b"RFC822",):
        return ""
    if item == b"RFC822.TEXT":
        return "TEXT"
    start, end = item.index(b"["), item.rindex(b"]")
    return " ".join(item[start + 1 : end].decode("ascii", "replace").split())


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------- fields


def parse_internal_date(value: bytes) -> datetime | None:
    """``"17-Jul-1996 02:44:25 -0700"`` -> aware UTC datetime; None when unreadable.

    Lenient on purpose: a server's odd date must not stop a sync (the message's own
    Date header is the better date anyway).
    """
    if value in _DATES:
        return _DATES[value]
    if len(_DATES) >= _CACHE_MAX:
        _DATES.clear()
    _DATES[value] = parsed = _parse_internal_date(value)
    return parsed


def _parse_internal_date(value: bytes) -> datetime | None:
    m = _INTERNALDATE.match(value)
    if m is None:
        return None
    day, mon, year, hh, mm, ss, zone = m.groups()
    month = _MONTHS.get(mon.upper())
    if month is None:
        return None
    offset = _OFFSETS.get(zone)
    if offset is None:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        if zone.startswith(b"-"):
            offset = -offset
        _OFFSETS[zone] = offset
    try:
        return datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=UTC) - offset
    except (ValueError, OverflowError):
        return None


def flag_names(raw_flags: Iterable[bytes | str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Split server flags into system flags we store as booleans, and keywords.

    ``\\Seen \\Flagged \\Answered \\Draft \\Deleted`` (any case) become
    ``{"seen", "flagged", "answered", "draft", "deleted"}``; ``\\Recent`` is dropped
    (it belongs to one session); everything else is a keyword, kept as the server
    spells it, in order, without case-insensitive duplicates.
    """
    return _flag_names(tuple(raw_flags))


@functools.lru_cache(maxsize=4096)  # a mailbox repeats a few flag combinations
def _flag_names(raw_flags: tuple[bytes | str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    system: set[str] = set()
    keywords: list[str] = []
    seen: set[str] = set()
    for raw in raw_flags:
        flag = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        folded = flag.lower()
        mapped = SYSTEM_FLAGS.get(folded)
        if mapped is not None:
            system.add(mapped)
        elif folded not in _IGNORED_FLAGS and flag and folded not in seen:
            seen.add(folded)
            keywords.append(flag)
    return frozenset(system), tuple(keywords)


def message_id_from_header(block: bytes | None) -> str | None:
    """The Message-ID (without ``<>``) from a header block such as
    ``BODY[HEADER.FIELDS (MESSAGE-ID)]``; None when there is none."""
    if not block:
        return None
    text = re.sub(r"\r?\n[ \t]+", " ", block.decode("utf-8", "replace"))
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "message-id":
            value = value.strip()
            start = value.find("<")
            if start >= 0:
                end = value.find(">", start)
                value = value[start + 1 : end if end >= 0 else len(value)]
            value = value.strip()
            return value or None
    return None


# ------------------------------------------------------------------- UID sets


def format_uid_sets(uids: Iterable[int], max_length: int = 8000) -> list[str]:
    """Compact IMAP UID sets (``1:3,7,9:10``), split so that none is longer than
    ``max_length`` characters (servers limit the command line; 8000 is safe)."""
    ordered = sorted(set(uids))
    if ordered and ordered[0] < 1:
        raise ValueError(f"UIDs start at 1, not {ordered[0]}")
    sets: list[str] = []
    parts: list[str] = []
    length = 0
    i = 0
    while i < len(ordered):
        start = end = ordered[i]
        i += 1
        while i < len(ordered) and ordered[i] == end + 1:
            end = ordered[i]
            i += 1
        part = str(start) if start == end else f"{start}:{end}"
        if parts and length + 1 + len(part) > max_length:
            sets.append(",".join(parts))
            parts, length = [], 0
        length += len(part) + (1 if parts else 0)
        parts.append(part)
    if parts:
        sets.append(",".join(parts))
    return sets


def parse_uid_set(text: bytes | str) -> list[int]:
    """``"1:3,7,9:8"`` -> ``[1, 2, 3, 7, 8, 9]`` (sorted, unique). ``*`` is not allowed:
    servers only send concrete UIDs in VANISHED and ESEARCH responses."""
    raw = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    out: set[int] = set()
    for part in raw.strip().split(","):
        lo, sep, hi = part.partition(":")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise FetchParseError(f"bad UID set: {_short(raw)}")
        a = int(lo)
        b = int(hi) if sep else a
        if a > b:
            a, b = b, a
        if a < 1 or b - a + len(out) > _MAX_SET_SIZE:
            raise FetchParseError(f"unusable UID set: {_short(raw)}")
        out.update(range(a, b + 1))
    return sorted(out)


def parse_vanished(data: Iterable[bytes | None]) -> list[int]:
    """UIDs of ``* VANISHED [(EARLIER)] set`` responses (imaplib's data after the name)."""
    out: set[int] = set()
    for item in data:
        if not item:
            continue
        if not isinstance(item, bytes):
            raise FetchParseError(f"bad VANISHED response: {_short(item)}")
        m = _EARLIER.match(item)
        out.update(parse_uid_set(item[m.end() :] if m else item))
    return sorted(out)


def parse_esearch(data: Iterable[bytes | None]) -> list[int]:
    """UIDs from ``* ESEARCH (TAG "x") UID ALL set`` (RFC 4731); empty when no ALL."""
    out: set[int] = set()
    for item in data:
        if not item:
            continue
        if not isinstance(item, bytes):
            raise FetchParseError(f"bad ESEARCH response: {_short(item)}")
        words = re.sub(rb"^\s*\([^)]*\)", b"", item).split()
        for i, word in enumerate(words[:-1]):
            if word.upper() == b"ALL":
                out.update(parse_uid_set(words[i + 1]))
    return sorted(out)
