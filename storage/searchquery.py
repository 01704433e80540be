"""The search query language: a string in, a small tree of frozen records out.

Mail users know Gmail's operators, so Tidings speaks them, with Gmail's meaning
wherever Gmail has the operator:

    words "exact phrases" from: to: cc: subject: filename: (field:(a OR b) groups)
    is:read|unread|starred|unstarred|flagged|unflagged|answered|draft
    in:inbox|sent|drafts|trash|spam|archive|anywhere|FOLDER   (label: is the same)
    has:attachment   account:NAME
    after:D before:D (YYYY-MM-DD, YYYY/MM/DD, MM/DD/YYYY or epoch seconds; older:/newer:)
    newer_than:7d older_than:1y (d, w, m, y)   larger:5M smaller:200K (size: = larger:)
    OR, AND (implied), -negation, ( parentheses )

This module is pure: no I/O, no whoosh, no database. ``now`` and the time zone are
injected, so date edges are tested in a pinned zone. The tokenizer that turns text
into searchable words lives here too, because the index and the query must cut text
into words the very same way (``storage.search`` indexes with :func:`tokenize`).

Decisions:

- **Words**: text is case-folded and accent-folded (NFKD, combining marks dropped,
  NFC again, so Hangul and kana stay whole); a word is a run of letters and digits
  (``_`` and punctuation separate words). CJK ideographs, kana and Hangul are one
  word per character, so text without spaces stays searchable; a query word that
  cuts into several words (``e-mail``, ``東京``, ``bob@example.com``) is a phrase.
  A word longer than :data:`MAX_WORD` characters is cut into pieces of that size
  (on both sides alike, so it is still found, as a phrase of its pieces).
- **Dates** (Gmail): ``after:D`` is on or after local midnight of D, ``before:D`` is
  before local midnight of D; ``newer_than:2d`` is after ``now`` minus two days
  (months and years are calendar months and years, the day clamped to the month's
  end). All dates become half-open UTC ranges ``[start, end)``.
- **Sizes** (Gmail): ``larger:N`` is strictly more than N bytes, ``smaller:N``
  strictly less; K, M and G are powers of 1024; ``size:N`` means ``larger:N``.
- **to:** matches To and Cc, as in Gmail (``cc:`` is Cc alone). A whole address
  (``from:bob@example.com``) is matched exactly, as one word; part of one
  (``from:bob``, ``from:example.com``) as words of the name and address.
- **Unknown operators** (``ticket:123``, ``12:30``, ``Re:``) are text, as in Gmail:
  an error for "form:" would also hit people searching for tax forms.
- **OR binds tighter than the implied AND**, as in Gmail: ``a b OR c`` is
  ``a (b OR c)``. A word with nothing searchable in it (punctuation) drops out.
- **No query can raise anything but** :class:`QueryError` **or hang**: the parser is
  one pass over at most :data:`MAX_QUERY` characters with bounded nesting
  (:data:`MAX_DEPTH`) and at most :data:`MAX_TERMS` terms; a hypothesis test fuzzes it.
- Error messages are one line, quote the bad part and give its column (1-based).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TypeAlias

from storage.errors import StorageError

__all__ = [
    "MAX_DEPTH",
    "MAX_QUERY",
    "MAX_TERMS",
    "MAX_WORD",
    "TEXT_FIELDS",
    "Account",
    "And",
    "DateRange",
    "Flag",
    "HasAttachment",
    "InFolder",
    "Node",
    "Not",
    "Or",
    "QueryError",
    "SizeRange",
    "Text",
    "address_word",
    "fold",
    "parse",
    "tokenize",
    "walk",
]

MAX_QUERY = 2000  # characters
MAX_DEPTH = 32  # nested parentheses and negations
MAX_TERMS = 200
MAX_WORD = 64  # characters of one indexed word

# Fields a text term can be limited to; None is "anywhere" (all of them).
TEXT_FIELDS = ("from", "to", "cc", "subject", "filename")

# --------------------------------------------------------------------------- words

# Scripts written without spaces: one word per character.
_CJK = (
    "\u1100-\u11ff\u3005-\u3007\u3040-\u30ff\u3100-\u312f\u3131-\u318e\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0002fa1f"
)
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]{{1,{MAX_WORD}}}")
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def fold(text: str) -> str:
    """Case- and accent-folded text (``"Ärger"`` -> ``"arger"``)."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.casefold())
    return unicodedata.normalize("NFC", _MARKS.sub("", text))


def tokenize(text: str) -> list[str]:
    """The searchable words of ``text``, in order (the index and queries use this)."""
    return _WORD.findall(fold(text))


# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True, slots=True)
class Text:
    """Words to find, in order and adjacent when there are several (a phrase).

    ``field`` is one of :data:`TEXT_FIELDS`, or None for anywhere (subject,
    addresses, body text, attachment names).
    """

    words: tuple[str, ...]
    field: str | None = None
    quoted: bool = False
    # A whole email address as typed (folded): address fields match it exactly, as
    # one word, where the words alone would be a phrase.
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    """``is:``: a flag (seen, flagged, answered, draft) set or not set."""

    name: str
    value: bool


@dataclass(frozen=True, slots=True)
class InFolder:
    """``in:``: a role (inbox, sent, drafts, trash, junk, archive), ``anywhere``, or a
    folder name. Resolved against the store when the query runs."""

    name: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class HasAttachment:
    pass


@dataclass(frozen=True, slots=True)
class DateRange:
    """Messages dated in ``[start, end)``; None is open-ended. Aware UTC datetimes."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class SizeRange:
    """Messages of ``low <= size < high`` bytes; None is open-ended."""

    low: int | None = None
    high: int | None = None


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Node


Node: TypeAlias = (
    Text | Flag | InFolder | HasAttachment | DateRange | SizeRange | Account | And | Or | Not
)


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children."""
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        if isinstance(n, And | Or):
            stack.extend(reversed(n.parts))
        elif isinstance(n, Not):
            stack.append(n.part)
    return out


class QueryError(StorageError, ValueError):
    """A query that cannot be understood; ``str(exc)`` says where and why."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.column = column


# --------------------------------------------------------------------------- lexer


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # 'word', 'phrase', 'op', 'lparen', 'rparen', 'not', 'or', 'and', 'end'
    text: str  # the word, the phrase's content, or the operator name
    col: int  # 1-based column of the token's first character
    value: str = ""  # 'op': the value ('' when a quote or a parenthesis follows)
    value_kind: str = ""  # 'op': 'word', 'phrase' or 'group'
    source: str = ""  # the token as typed, for messages


_OPERATORS = {
    "from": "text",
    "to": "text",
    "cc": "text",
    "subject": "text",
    "filename": "text",
    "is": "is",
    "in": "in",
    "label": "in",
    "has": "has",
    "after": "after",
    "newer": "after",
    "before": "before",
    "older": "before",
    "newer_than": "newer_than",
    "older_than": "older_than",
    "larger": "larger",
    "size": "larger",
    "smaller": "smaller",
    "account": "account",
}
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c"}
_CLOSE_QUOTES = {'"', "\u201d", "\u201c"}
_STOP = frozenset("()") | frozenset(_QUOTES)


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        col = i + 1
        if ch == "(":
            toks.append(_Tok("lparen", "(", col))
            i += 1
        elif ch == ")":
            toks.append(_Tok("rparen", ")", col))
            i += 1
        elif ch in _QUOTES:
            text, i = _quoted(query, i)
            toks.append(_Tok("phrase", text, col, source=query[col - 1 : i]))
        elif ch == "-" and i + 1 < n and not query[i + 1].isspace() and query[i + 1] != ")":
            toks.append(_Tok("not", "-", col))
            i += 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in _STOP:
                j += 1
            word = query[i:j]
            name, colon, value = word.partition(":")
            key = name.lower()
            if colon and key in _OPERATORS:
                if value:
                    toks.append(_Tok("op", key, col, value, "word", word))
                    i = j
                elif j < n and query[j] in _QUOTES:
                    text, end = _quoted(query, j)
                    toks.append(_Tok("op", key, col, text, "phrase", query[i:end]))
                    i = end
                elif j < n and query[j] == "(":
                    toks.append(_Tok("op", key, col, "", "group", word))
                    i = j
                else:
                    raise QueryError(f"{_q(word)} at column {col} needs a value after ':'", col)
                continue
            if word in {"OR", "|"}:
                toks.append(_Tok("or", word, col))
            elif word == "AND":
                toks.append(_Tok("and", word, col))
            else:
                toks.append(_Tok("word", word, col, source=word))
            i = j
    toks.append(_Tok("end", "", n + 1))
    return toks


def _quoted(query: str, start: int) -> tuple[str, int]:
    """The text between the quote at ``start`` and its closing quote, and the index
    after the closing quote."""
    for j in range(start + 1, len(query)):
        if query[j] in _CLOSE_QUOTES:
            return query[start + 1 : j], j + 1
    raise QueryError(f"the quote at column {start + 1} is never closed", start + 1)


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent. As in Gmail (and Google search), OR binds tighter than the
    implied AND: ``a b OR c`` is ``a (b OR c)``."""

    def __init__(self, toks: list[_Tok], now: datetime, tz: tzinfo) -> None:
        self.toks = toks
        self.pos = 0
        self.now = now
        self.tz = tz
        self.depth = 0
        self.groups = 0  # open parentheses
        self.terms = 0

    def peek(self) -> _Tok:
        return self.toks[self.pos]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Node | None:
        node = self.and_expr(None)
        tok = self.peek()
        if tok.kind == "rparen":
            raise QueryError(f"')' at column {tok.col} has no matching '('", tok.col)
        assert tok.kind == "end", tok
        return node

    def and_expr(self, fld: str | None) -> Node | None:
        parts: list[Node | None] = []
        while True:
            tok = self.peek()
            if tok.kind == "rparen" and not self.groups:
                raise QueryError(f"')' at column {tok.col} has no matching '('", tok.col)
            if tok.kind in ("end", "rparen"):
                break
            if tok.kind == "and":
                self.take()
                if not parts or self.peek().kind in ("end", "rparen", "or", "and"):
                    raise QueryError(
                        f"AND at column {tok.col} needs something on each side", tok.col
                    )
                continue
            if tok.kind == "or":
                raise QueryError(f"OR at column {tok.col} has nothing before it", tok.col)
            parts.append(self.or_expr(fld))
        if not parts:
            tok = self.peek()
            if tok.kind == "rparen":
                raise QueryError(f"empty parentheses before column {tok.col}", tok.col)
            raise QueryError("nothing to search for", tok.col)
        return _make(And, [p for p in parts if p is not None])

    def or_expr(self, fld: str | None) -> Node | None:
        parts = [self.unary(fld)]
        while self.peek().kind == "or":
            tok = self.take()
            if self.peek().kind in ("end", "rparen", "or", "and"):
                raise QueryError(f"OR at column {tok.col} has nothing after it", tok.col)
            parts.append(self.unary(fld))
        # A side with nothing searchable in it ("a OR ...") drops out.
        return _make(Or, [p for p in parts if p is not None])

    def unary(self, fld: str | None) -> Node | None:
        tok = self.peek()
        if tok.kind != "not":
            return self.primary(fld)
        self.take()
        self.enter(tok)
        inner = self.unary(fld)
        self.depth -= 1
        if inner is None:
            raise QueryError(f"nothing searchable after '-' at column {tok.col}", tok.col)
        if isinstance(inner, Not):
            return inner.part
        return Not(inner)

    def enter(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(
                f"too deeply nested at column {tok.col} (at most {MAX_DEPTH} levels)", tok.col
            )

    def count(self, tok: _Tok) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QueryError(
                f"too many terms: at most {MAX_TERMS} (column {tok.col} is one too many)",
                tok.col,
            )

    def group(self, tok: _Tok, fld: str | None) -> Node | None:
        self.enter(tok)
        if self.peek().kind == "end":
            raise QueryError(f"the '(' at column {tok.col} is never closed", tok.col)
        self.groups += 1
        inner = self.and_expr(fld)
        if self.peek().kind != "rparen":
            raise QueryError(f"the '(' at column {tok.col} is never closed", tok.col)
        self.take()
        self.groups -= 1
        self.depth -= 1
        return inner

    def primary(self, fld: str | None) -> Node | None:
        tok = self.take()
        if tok.kind == "lparen":
            return self.group(tok, fld)
        if tok.kind in ("rparen", "end", "or", "and", "not"):  # pragma: no cover - callers check
            raise QueryError(f"unexpected {tok.text!r} at column {tok.col}", tok.col)
        self.count(tok)
        if tok.kind == "word":
            return _text(tok.text, fld, quoted=False)
        if tok.kind == "phrase":
            return _text(tok.text, fld, quoted=True)
        return self.operator(tok)

    def operator(self, tok: _Tok) -> Node | None:
        kind = _OPERATORS[tok.text]
        if kind == "text":
            if tok.value_kind == "group":
                lparen = self.take()
                inner = self.group(lparen, tok.text)
                if inner is None:
                    raise QueryError(
                        f"nothing searchable in {tok.source}(...) at column {tok.col}", tok.col
                    )
                return inner
            node = _text(tok.value, tok.text, quoted=tok.value_kind == "phrase")
            if node is None:
                raise QueryError(
                    f"nothing searchable in {_q(tok.source)} at column {tok.col}", tok.col
                )
            return node
        if tok.value_kind == "group":
            raise QueryError(
                f"{_q(tok.source)} at column {tok.col} takes one value, not a group", tok.col
            )
        value = tok.value.strip()
        if not value:
            raise QueryError(f"{_q(tok.source)} at column {tok.col} needs a value", tok.col)
        return _OPERATOR_PARSERS[kind](self, tok, value)


def _q(text: str) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text if len(text) <= 40 else text[:39] + "…")


def _make(kind: type[And] | type[Or], parts: list[Node]) -> Node | None:
    flat: list[Node] = []
    for p in parts:
        if isinstance(p, kind):
            flat.extend(p.parts)
        else:
            flat.append(p)
    unique = list(dict.fromkeys(flat))
    if not unique:
        return None
    if len(unique) == 1:
        return unique[0]
    return kind(tuple(unique))


def _text(value: str, fld: str | None, *, quoted: bool) -> Text | None:
    words = tokenize(value)
    if not words:
        return None  # punctuation only: nothing to search for (Gmail ignores it too)
    value = value.strip()
    address = address_word(value) if _ADDRESS.fullmatch(value) else None
    return Text(tuple(words), fld, quoted, address)


_ADDRESS = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\".]+")


def address_word(email: str) -> str:
    """The one word an email address is also indexed as (in from/to/cc): folded, and
    with an ``@`` that no word of text can contain."""
    return fold(email.strip())


# --------------------------------------------------------------------------- operators

_IS = {
    "read": ("seen", True),
    "seen": ("seen", True),
    "unread": ("seen", False),
    "unseen": ("seen", False),
    "starred": ("flagged", True),
    "flagged": ("flagged", True),
    "unstarred": ("flagged", False),
    "unflagged": ("flagged", False),
    "answered": ("answered", True),
    "replied": ("answered", True),
    "unanswered": ("answered", False),
    "draft": ("draft", True),
}
_HAS = ("attachment", "attachments")
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([kmg]?)i?b?", re.IGNORECASE)
_MAX_SIZE = 1 << 50
_RELATIVE = re.compile(r"(\d{1,6})\s*([dwmy])", re.IGNORECASE)


def _is(p: _Parser, tok: _Tok, value: str) -> Node:
    found = _IS.get(value.lower())
    if found is None:
        raise QueryError(
            f"unknown {_q(tok.source)} at column {tok.col} "
            "(is: takes read, unread, starred, unstarred, answered or draft)",
            tok.col,
        )
    return Flag(*found)


def _in(p: _Parser, tok: _Tok, value: str) -> Node:
    return InFolder(value, tok.col)


def _has(p: _Parser, tok: _Tok, value: str) -> Node:
    if value.lower() not in _HAS:
        raise QueryError(
            f"unknown {_q(tok.source)} at column {tok.col} (has: takes attachment)", tok.col
        )
    return HasAttachment()


def _account(p: _Parser, tok: _Tok, value: str) -> Node:
    return Account(value, tok.col)


def _day(p: _Parser, tok: _Tok, value: str) -> datetime:
    """Local midnight (in the injected zone) of the day ``value`` names, as UTC."""
    bad = QueryError(f"not a date: {_q(tok.source)} at column {tok.col} (use YYYY-MM-DD)", tok.col)
    if value.isdigit() and len(value) >= 9:  # epoch seconds, as Gmail accepts
        try:
            return datetime.fromtimestamp(int(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise bad from None
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", value)
    if m:
        y, mo, d = (int(g) for g in m.groups())
    else:
        m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value)  # Gmail's US form
        if not m:
            raise bad
        mo, d, y = (int(g) for g in m.groups())
    try:
        local = datetime(y, mo, d, tzinfo=p.tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad from None


def _after(p: _Parser, tok: _Tok, value: str) -> Node:
    return DateRange(start=_day(p, tok, value))


def _before(p: _Parser, tok: _Tok, value: str) -> Node:
    return DateRange(end=_day(p, tok, value))


def _ago(p: _Parser, tok: _Tok, value: str) -> datetime:
    m = _RELATIVE.fullmatch(value)
    if not m:
        raise QueryError(
            f"not a time span: {_q(tok.source)} at column {tok.col} (use e.g. 7d, 2w, 6m or 1y)",
            tok.col,
        )
    n, unit = int(m.group(1)), m.group(2).lower()
    try:
        if unit == "d":
            return p.now - timedelta(days=n)
        if unit == "w":
            return p.now - timedelta(weeks=n)
        months = n if unit == "m" else 12 * n
        local = p.now.astimezone(p.tz)
        total = local.year * 12 + (local.month - 1) - months
        year, month = divmod(total, 12)
        day = min(local.day, calendar.monthrange(year, month + 1)[1])
        return local.replace(year=year, month=month + 1, day=day).astimezone(UTC)
    except (ValueError, OverflowError):
        raise QueryError(f"{_q(tok.source)} at column {tok.col} is too far back", tok.col) from None


def _newer_than(p: _Parser, tok: _Tok, value: str) -> Node:
    return DateRange(start=_ago(p, tok, value))


def _older_than(p: _Parser, tok: _Tok, value: str) -> Node:
    return DateRange(end=_ago(p, tok, value))


def _bytes(tok: _Tok, value: str) -> int:
    m = _SIZE.fullmatch(value)
    if not m:
        raise QueryError(
            f"not a size: {_q(tok.source)} at column {tok.col} (use e.g. 200K, 5M or 1G)", tok.col
        )
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    number = float(m.group(1)) * scale
    if not number <= _MAX_SIZE:  # also inf, from hundreds of digits
        raise QueryError(f"{_q(tok.source)} at column {tok.col} is too large", tok.col)
    n = int(number)
    if n > _MAX_SIZE:
        raise QueryError(f"{_q(tok.source)} at column {tok.col} is too large", tok.col)
    return n


def _larger(p: _Parser, tok: _Tok, value: str) -> Node:
    return SizeRange(low=_bytes(tok, value) + 1)


def _smaller(p: _Parser, tok: _Tok, value: str) -> Node:
    return SizeRange(high=_bytes(tok, value))


_OPERATOR_PARSERS = {
    "is": _is,
    "in": _in,
    "has": _has,
    "account": _account,
    "after": _after,
    "before": _before,
    "newer_than": _newer_than,
    "older_than": _older_than,
    "larger": _larger,
    "smaller": _smaller,
}


# --------------------------------------------------------------------------- entry


def parse(query: str, *, now: datetime, tz: tzinfo) -> Node:
    """The tree for ``query``; :class:`QueryError` when it cannot be understood.

    ``now`` (aware) anchors ``newer_than:``/``older_than:``; ``tz`` is the user's
    zone, in which ``after:``/``before:`` days start at midnight.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if len(query) > MAX_QUERY:
        raise QueryError(
            f"the query is too long ({len(query)} characters, at most {MAX_QUERY})",
            MAX_QUERY + 1,
        )
    if not query.strip():
        raise QueryError("the query is empty")
    node = _Parser(_lex(query), now, tz).parse()
    if node is None:
        raise QueryError(f"nothing to search for in {_q(query.strip())} (only punctuation)")
    return node
