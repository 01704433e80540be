"""Offline search: the Whoosh index of a profile and the evaluation of queries.

The only module of Tidings that imports whoosh. The query language itself is
``storage.searchquery`` (pure); this module indexes messages and answers parsed
queries with message ids, newest first (or by relevance).

It talks to SQLite through plain ``sqlite3`` connections, not SQLAlchemy: ``tidings
search`` must answer in well under 300 ms including the process start, and
importing SQLAlchemy alone costs about that on a small machine. The app hands in
connections (the engine's, or a bare one for the command line's fast path).

What is in the index, and what is not
-------------------------------------
Whoosh cannot change one field of a document without rewriting it, and re-indexing
is the expensive part, so the index holds only what never changes about a message:
subject, from/to/cc (names and addresses), body text (the first :data:`TEXT_CAP`
characters; words that only an HTML alternative has are added), attachment file
names, the account, whether it has attachments, the size, and the message id and
date as columns (read whole into arrays, once per segment). Mutable state — flags,
folders, whether a message still exists — is answered by SQLite, so a flag change,
a move or an expunge costs nothing here and search reflects it at once. Thread ids
are not indexed: threads merge when a missing parent arrives, and no operator needs
them.

Evaluating a query
------------------
The tree is split at its top-level AND into text parts, which Whoosh answers, and
the rest (flags, folders, dates, attachment, size, account), which SQLite answers:
checking a candidate there costs microseconds, intersecting long posting lists in
Whoosh far more. A part that mixes both (``from:bob OR is:starred``) is SQL with its
text materialised into an id set by Whoosh. Then one of:

- **pure SQL** (no text): SQLite walks each account's (account, date) index — or
  each named folder's (folder, date, id) index, the smallest folder set when there
  are several — newest first, filtering as it goes; the streams are merged by date.
  Keyset order, no sort, no OFFSET.
- **Whoosh first** (the usual case), newest first a window of dates at a time: the
  first window holds about :data:`_WINDOW_PAGES` pages of hits by the estimated
  match count (term statistics), each next one is four times bigger. Within a
  window, Whoosh either walks the matches of the query (when there are fewer of
  them than documents in the window: a rare word is one walk over everything) or
  tests just the window's documents — found through each segment's documents in
  date order, cheap to sort because segments are written newest first — by
  skipping the query's matcher to them. Hits are sorted by exact date and filtered
  by SQLite in chunks until the page is full. Top-level date ranges bound the
  windows.
- **SQL first**, when SQLite turns out to be the selective side (Whoosh candidates
  mostly rejected, e.g. ``meeting in:drafts``): if at most :data:`_SQL_FIRST_MAX`
  messages pass the SQL side, SQLite lists them newest first and Whoosh tests each.
- **relevance** (``sort="relevance"``): Whoosh's BM25F top hits (subject weighs
  double), filtered by SQLite, fetching four times more while too many drop out.

Whoosh candidates must also have ``messages.index_state = 1``, so a document left
behind by a deleted message can never name a newer message that re-used its id;
such documents are purged when the live document count disagrees with SQLite.

Indexing
--------
The queue is ``messages.index_state`` (0 = waiting), taken newest first, and only
messages whose content stage is done (``content_state = 1``). One owner writes:
:meth:`SearchIndex.update` holds ``index.lock`` (an OS file lock, released by the
kernel when the process dies) for the whole run, so the sync worker or the command
line — never both — writes. Each batch is one Whoosh commit (a new segment, made
visible by an atomic rename of the table of contents), and only after it the batch
is marked indexed in SQLite. A kill at any moment leaves messages either unmarked
(indexed again next time: their documents are replaced by id, never added twice) or
done.

Speed (the issue asks for 300 messages/s on two small cores, where a plain Whoosh
writer manages 130-245): the text field computes its postings in one pass over a
regex tokenizer (no token objects, no filter chain; positions of words seen once
come from a table); postings are pooled per term as they arrive, so a commit sorts
distinct terms, not postings, and hands each term's list to the codec at once; the
codec skips per-block length statistics (BM25 still gets each document's field
lengths) and keeps posting lists of fewer than :data:`_INLINE` documents in the term
entry (Whoosh 2.7.4 misspells the call that does it). A block's ids, weights and
positions are compressed apart, so skipping through a block never unpickles its
positions. Batches grow from :data:`FIRST_BATCH` (the newest mail is searchable
within seconds) to :data:`BATCH`; segments merge in tiers of :data:`MERGE_FACTOR` by
joining posting lists block by block, not posting by posting, merged segments newest
first and before the new documents, so that a segment of an index written newest
first is in date order (its date order then costs one C-level sort check).

On the query side Whoosh's Or/And/Term matchers are replaced by leaner ones (no
per-term size estimates or BM25 scorers for unscored matching), the intersection is
stepped with ``next()`` (its ``all_ids()`` walks both sides whole), a block is
searched by bisection (Whoosh steps through it posting by posting), and the index is
read without mmap (Whoosh copies each memory-mapped part it opens into a BytesIO:
the whole index, at every open). Whoosh's NumericRange is wrong for ranges that
start at zero, so ranges use our own trie cover. A whole email address is also
indexed as one word, so ``from:bob@example.com`` is one term, not a phrase.

A missing, damaged or outdated (:data:`SCHEMA_VERSION`) index is rebuilt by the
owner: the folder is replaced and every message queued again, newest first, with a
notice (:attr:`SearchIndex.notices`). A reader that finds the index unreadable
leaves a mark for the owner and raises :class:`SearchUnavailable`.
"""

from __future__ import annotations

# ruff: noqa: E402 - whoosh is imported after _load_whoosh_lean() prepares its way
import bisect
import contextlib
import heapq
import html
import json
import math
import re
import shutil
import sqlite3
import sys
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, groupby, pairwise
from operator import itemgetter
from pathlib import Path
from pickle import dumps, loads
from typing import Any


def _load_whoosh_lean() -> None:
    """Load whoosh without two imports it makes at start-up for features we never use:
    ``urllib.request`` in its compat module (and with it http.client, email, ssl and
    socket: 50 ms, a sixth of the command line's budget) and the English
    morphology tables of ``whoosh.lang.morph_en`` (for its Variations query, 15 ms).
    Each gets a stand-in only while whoosh loads; whoever needs the real module later
    imports it as usual (the stand-ins' functions do that, should they be called)."""
    import types

    if "whoosh.query" in sys.modules:
        return

    def stand_in(name: str, attr: str) -> types.ModuleType | None:
        if name in sys.modules:
            return None
        module = types.ModuleType(name)

        def real(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - never called
            if sys.modules.get(name) is module:
                del sys.modules[name]
            import importlib

            return getattr(importlib.import_module(name), attr)(*args, **kwargs)

        setattr(module, attr, real)
        sys.modules[name] = module
        return module

    stand_ins = {
        "urllib.request": stand_in("urllib.request", "urlretrieve"),
        "whoosh.lang.morph_en": stand_in("whoosh.lang.morph_en", "variations"),
    }
    try:
        import whoosh.compat
        import whoosh.query  # noqa: F401
    finally:
        for name, module in stand_ins.items():
            if module is not None and sys.modules.get(name) is module:
                del sys.modules[name]


_load_whoosh_lean()

from whoosh import analysis, fields, matching, query
from whoosh.codec.whoosh3 import W3Codec, W3FieldWriter, W3LeafMatcher, W3PostingsWriter
from whoosh.matching import ReadTooFar
from whoosh.reading import TermNotFound
from whoosh.system import pack_uint
from whoosh.util import make_binary_tree
from whoosh.util.filelock import FileLock
from whoosh.writing import SegmentWriter

from storage.bodies import unpack
from storage.dto import AddressInfo, MessageSummary
from storage.errors import NotFound, StorageError
from storage.searchquery import Account as AccountNode
from storage.searchquery import (
    And,
    DateRange,
    Flag,
    HasAttachment,
    InFolder,
    Node,
    Not,
    Or,
    QueryError,
    SizeRange,
    Text,
    address_word,
    fold,
    tokenize,
    walk,
)

__all__ = [
    "BATCH",
    "FIRST_BATCH",
    "SCHEMA_VERSION",
    "TEXT_CAP",
    "Connect",
    "IndexRun",
    "SavedSearchInfo",
    "SearchIndex",
    "SearchUnavailable",
    "account_ids",
    "delete_saved_search",
    "pending_count",
    "save_search",
    "saved_searches",
    "summaries",
]

SCHEMA_VERSION = 5  # bump when the fields or their analysis change: indexes are rebuilt
TEXT_CAP = 200_000  # characters of body text indexed per message
FIRST_BATCH = 250  # the newest mail is searchable after this many
BATCH = 4000  # at most this many messages per commit (batches grow 250, 1000, 4000)
MERGE_FACTOR = 8
_TIER_BASE = 1000

_VERSION_FILE = "tidings-index.json"
_DAMAGED_FILE = "damaged"  # left by a reader that found the index unreadable
_LOCK_FILE = "index.lock"
_CHUNK = 500  # ids per SQL filter query
_READ_CHUNK = 200  # messages read and parsed at a time while indexing
_FULL_LIMIT = 4000  # estimated matches up to which Whoosh evaluates all in one window
_WINDOW_MIN = 200  # documents in the first window of a date-ordered search
_WINDOW_PAGES = 3  # pages of hits the first window should hold (by the estimate)
_SQL_FIRST_MAX = 2000  # SQL-side rows up to which SQL-first is used
_REJECT_SWITCH = 3000  # rejected Whoosh candidates before SQL-first is tried

HIDDEN_ROLES = ("junk", "trash")
_ROLE_WORDS = {
    "inbox": "inbox",
    "sent": "sent",
    "drafts": "drafts",
    "draft": "drafts",
    "trash": "trash",
    "bin": "trash",
    "spam": "junk",
    "junk": "junk",
    "archive": "archive",
    "all": "all",
}
_ANYWHERE = "anywhere"
_FLAG_COLUMNS = frozenset({"seen", "flagged", "answered", "draft"})
_ALL_TEXT_FIELDS = ("subject", "from", "to", "cc", "body", "filename")
_ADDRESS_FIELDS = frozenset({"from", "to", "cc"})
_FIELD_MAP: dict[str | None, tuple[str, ...]] = {
    None: _ALL_TEXT_FIELDS,
    "from": ("from",),
    "to": ("to", "cc"),  # Gmail's to: covers Cc
    "cc": ("cc",),
    "subject": ("subject",),
    "filename": ("filename",),
}

# A function that opens a connection to the profile's database, as a context manager.
Connect = Callable[[], AbstractContextManager[sqlite3.Connection]]


class SearchUnavailable(StorageError):
    """The index cannot be read right now."""


# --------------------------------------------------------------------------- analysis


class MailAnalyzer(analysis.Tokenizer):  # type: ignore[misc]
    """Whoosh's view of :func:`storage.searchquery.tokenize` (for whoosh's own use;
    indexing goes through :meth:`MailText.index`, queries through our parser)."""

    def __call__(  # noqa: PLR0917 - whoosh's signature
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[analysis.Token]:
        token = analysis.Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        for i, word in enumerate(tokenize(value)):
            token.text = word
            token.boost = 1.0
            if positions:
                token.pos = start_pos + i
            yield token


_GAP = 8  # positions between the values of a multi-valued field (no phrase spans them)
_SINGLE_MAX = 4096
_single_table: list[bytes] = []


def _single() -> list[bytes]:
    """The encodings of "once, at position p" for small p (built on first use, so
    that a process that only searches does not pay for it)."""
    if not _single_table:
        _single_table.extend(bytes(pack_uint(1)) + dumps([p], 2) for p in range(_SINGLE_MAX))
    return _single_table  # one position, encoded


_INLINE = 4  # posting lists shorter than this live in the term's entry
_FIELD_TERM = itemgetter(0, 1)


class _Tokens(tuple[list[str], ...]):
    """A field value already cut into words: groups of words, kept :data:`_GAP`
    positions apart (the body's text, then words only its HTML part has)."""

    __slots__ = ()


class MailText(fields.TEXT):  # type: ignore[misc]
    """Text with positions, tokenized by :func:`tokenize`, postings in one pass.

    Takes a string, a list of strings (addresses, file names; kept :data:`_GAP`
    positions apart so that no phrase spans two) or :class:`_Tokens`. The posting
    values are exactly what ``whoosh.formats.Positions`` writes, so Whoosh's phrase
    matching reads them.
    """

    def __init__(self, field_boost: float = 1.0) -> None:
        super().__init__(analyzer=MailAnalyzer(), phrase=True, field_boost=field_boost)

    def positions(self, value: str | Sequence[str] | _Tokens) -> tuple[dict[str, list[int]], int]:
        """Each word's positions in ``value``, and the number of words."""
        if isinstance(value, str):
            groups: Sequence[list[str]] = (tokenize(value),)
        elif isinstance(value, _Tokens):
            groups = value
        else:
            groups = [tokenize(v) for v in value]
        positions: dict[str, list[int]] = {}
        get = positions.get
        base = length = 0
        for words in groups:
            for i, word in enumerate(words, base):
                p = get(word)
                if p is None:
                    positions[word] = [i]
                else:
                    p.append(i)
            base += len(words) + _GAP
            length += len(words)
        return positions, length

    def index(
        self, value: str | Sequence[str] | _Tokens, **kwargs: Any
    ) -> list[tuple[bytes, int, float, bytes]]:
        """Whoosh's interface: (word, frequency, weight, encoded positions) per word.
        (Our writer goes through :meth:`_TermPool.add_positions` instead.)"""
        positions, _length = self.positions(value)
        boost = self.format.field_boost
        return [
            (word.encode("utf-8"), len(poses), len(poses) * boost, _encode_positions(poses))
            for word, poses in positions.items()
        ]


def _encode_positions(poses: list[int]) -> bytes:
    """Positions as ``whoosh.formats.Positions`` encodes them."""
    if len(poses) == 1 and poses[0] < _SINGLE_MAX:
        return _single()[poses[0]]
    deltas = [poses[0]] + [b - a for a, b in pairwise(poses)]
    return bytes(pack_uint(len(poses))) + dumps(deltas, 2)


class _PostingsWriter(W3PostingsWriter):  # type: ignore[misc]
    def add_many(self, ids: list[int], weights: list[float], values: list[bytes]) -> None:
        """Add a term's postings (ascending ids) block by block, without the per-posting
        checks of ``add_posting``. Empty values (exact-match fields) are not stored."""
        limit = self._blocklimit
        i, n = 0, len(ids)
        while i < n:
            room = limit - len(self._ids)
            if room <= 0:
                self._write_block()
                continue
            part = weights[i : i + room]
            self._ids.extend(ids[i : i + room])
            self._weights.extend(part)
            self._values.extend(v for v in values[i : i + room] if v)
            self._maxweight = max(self._maxweight, *part)  # type: ignore[has-type]
            i += room

    # A block's ids, weights and positions are compressed apart (the block as a
    # whole is not): skipping through a block reads its ids without unpickling its
    # positions, and packed arrays are smaller than pickled numbers.

    def _mini_ids(self) -> Any:
        if self._byteids:  # pragma: no cover - term vectors, which we do not store
            return super()._mini_ids()
        ids = self._ids
        return _pack_ints(array("I", [ids[0]] + [b - a for a, b in pairwise(ids)]))

    def _mini_weights(self) -> Any:
        minified = super()._mini_weights()  # None (all 1.0) or one float for all
        if isinstance(minified, tuple):
            return _pack_floats(array("f", minified))
        return minified

    def _mini_values(self) -> Any:
        fixed = self._format.fixed_value_size()
        if fixed is None or fixed < 0:
            return zlib.compress(dumps(tuple(self._values), 2), 1)
        return super()._mini_values()

    # Whoosh 2.7.4 calls a misspelt method here (set_inline); the reader side of
    # inlined postings works. Inlining saves a compressed block per rare term.
    def finish_postings(self) -> Any:
        terminfo: Any = self._terminfo  # type: ignore[has-type]
        if not self.written() and len(self) < self._inlinelimit:
            terminfo.add_block(self)
            terminfo.set_inlined(self._ids, self._weights, self._values)
            self._terminfo = None
            return terminfo
        return super().finish_postings()


class _FieldWriter(W3FieldWriter):  # type: ignore[misc]
    def add_terms(self, schema: Any, terms: Iterable[_TermPostings]) -> None:
        """Write terms in (field, term) order; a term met in several sources (new
        documents, merged segments: in document order) is one posting list."""
        field = None
        for (fieldname, btext), group in groupby(terms, key=_FIELD_TERM):
            if fieldname != field:
                if field is not None:
                    self.finish_field()
                self.start_field(fieldname, schema[fieldname])
                field = fieldname
            self.start_term(btext)
            for _f, _t, _order, ids, weights, values in group:
                self._postwriter.add_many(ids, weights, values)
            self.finish_term()
        if field is not None:
            self.finish_field()


# (field, term, source order, document numbers, weights, values)
_TermPostings = tuple[str, bytes, int, list[int], list[float], list[bytes]]


def _segment_terms(
    reader: Any, order: int, base: int, docmap: dict[int, int] | None, schema: Any
) -> Iterator[_TermPostings]:
    """A segment's posting lists, renumbered for the segment being written: whole
    blocks at a time (already sorted, so a merge needs no sort), deleted documents
    dropped."""
    terms = reader._terms
    for (fieldname, btext), info in terms.items():
        if fieldname not in schema:
            continue
        matcher = terms._codec.postings_reader(terms._postfile, info, schema[fieldname].format)
        ids, weights, values = _read_postings(matcher)
        if docmap is None:
            ids = [base + d for d in ids]
        else:
            keep = [i for i, d in enumerate(ids) if d in docmap]
            if not keep:
                continue
            ids = [docmap[ids[i]] for i in keep]
            weights = [weights[i] for i in keep]
            values = [values[i] for i in keep]
        yield fieldname, btext, order, ids, weights, values


def _read_postings(m: Any) -> tuple[list[int], list[float], list[bytes]]:
    """All postings of a term's matcher: arrays straight from its blocks."""
    from whoosh.matching import ListMatcher

    ids: list[int] = []
    weights: list[float] = []
    values: list[bytes] = []
    if type(m) is ListMatcher:  # postings inlined in the term's entry
        ids = list(m._ids)
        n = len(ids)
        weights = list(m._weights) if m._weights else [1.0] * n
        values = list(m._values) if m._values and len(m._values) == n else [b""] * n
        return ids, weights, [v or b"" for v in values]
    if isinstance(m, W3LeafMatcher):
        while m.is_active():
            if m._ids is None:
                m._read_ids()
            if m._weights is None:
                m._read_weights()
            if m._values is None:
                m._read_values()
            ids.extend(m._ids)
            weights.extend(m._weights)
            values.extend(v or b"" for v in m._values)
            m._next_block()
        return ids, weights, values
    while m.is_active():  # any other matcher: one posting at a time
        ids.append(m.id())
        weights.append(m.weight())
        values.append(m.value() or b"")
        m.next()
    return ids, weights, values


def _pack_ints(values: array[int]) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover - stored little-endian everywhere
        values.byteswap()
    return zlib.compress(values.tobytes(), 1)


def _pack_floats(values: array[float]) -> bytes:
    if sys.byteorder == "big":  # pragma: no cover
        values.byteswap()
    return zlib.compress(values.tobytes(), 1)


def _unpack(data: bytes, typecode: str) -> Any:
    out = array(typecode)
    out.frombytes(zlib.decompress(data))
    if sys.byteorder == "big":  # pragma: no cover
        out.byteswap()
    return out


class _LeafMatcher(W3LeafMatcher):  # type: ignore[misc]
    """Whoosh's posting list reader with a binary search inside a block: its own
    ``skip_to`` steps through up to 128 postings one call at a time, which is most
    of the cost of intersecting a rare word with a common one."""

    _ids: tuple[int, ...] | None

    def _read_ids(self) -> None:
        if self._data is None:
            self._read_data()
        self._ids = tuple(accumulate(_unpack(self._data[0], "I")))  # deltas, decoded in C

    def _read_weights(self) -> None:
        if self._data is None:
            self._read_data()
        weights = self._data[1]
        if isinstance(weights, bytes):
            self._weights = _unpack(weights, "f")
        else:
            super()._read_weights()

    def _read_values(self) -> None:
        if self._data is None:
            self._read_data()
        values = self._data[2]
        if isinstance(values, bytes) and (self._fixedsize is None or self._fixedsize < 0):
            # Our own index files; Whoosh itself unpickles every block it reads.
            self._values = loads(zlib.decompress(values))  # noqa: S301
        else:
            super()._read_values()

    def skip_to(self, targetid: int) -> None:
        if not self.is_active():
            raise ReadTooFar
        if targetid <= self.id():
            return
        if targetid > self._maxid:
            self._skip_to_block(lambda: targetid > self._maxid)
            if not self.is_active():
                return
        ids = self._ids
        if ids is None:
            self._read_ids()
            ids = self._ids
            assert ids is not None
        self._i = bisect.bisect_left(ids, targetid, self._i)  # type: ignore[has-type]
        if self._i >= self._blocklength:  # pragma: no cover - targetid <= the block's last
            self._next_block()


class _Codec(W3Codec):  # type: ignore[misc]
    # Per-block min/max length statistics only speed up top-N scoring a little, and
    # gathering them costs a column read per posting at commit.
    length_stats = False

    def field_writer(self, storage: Any, segment: Any) -> Any:
        return _FieldWriter(self, storage, segment)

    def postings_reader(
        self, dbfile: Any, terminfo: Any, format_: Any, term: Any = None, scorer: Any = None
    ) -> Any:
        if terminfo.is_inlined():
            return super().postings_reader(dbfile, terminfo, format_, term=term, scorer=scorer)
        offset, length = terminfo.extent()
        return _LeafMatcher(dbfile, offset, length, format_, term=term, scorer=scorer)

    def postings_writer(self, dbfile: Any, byteids: bool = False) -> Any:
        return _PostingsWriter(
            dbfile,
            blocklimit=self._blocklimit,
            byteids=byteids,
            compression=self._compression,
            inlinelimit=self._inlinelimit,
        )


class _TermPool:
    """The new documents' postings, kept per field and term as they arrive (in
    document order), so a commit sorts only the distinct terms, never the postings;
    most postings share their weight and value objects, so memory stays small."""

    def __init__(self) -> None:
        self.fields: dict[str, dict[bytes, tuple[list[int], list[float], list[bytes]]]] = {}

    def add(
        self, fieldname: str, docnum: int, items: Iterable[tuple[bytes, int, float, bytes]]
    ) -> None:
        terms = self.fields.get(fieldname)
        if terms is None:
            terms = self.fields[fieldname] = {}
        get = terms.get
        for tbytes, _freq, weight, value in items:
            lists = get(tbytes)
            if lists is None:
                terms[tbytes] = ([docnum], [weight], [value or b""])
            else:
                lists[0].append(docnum)
                lists[1].append(weight)
                lists[2].append(value or b"")

    def add_positions(
        self, fieldname: str, docnum: int, positions: dict[str, list[int]], boost: float
    ) -> None:
        """A text field's words straight from their positions (no tuples between)."""
        terms = self.fields.get(fieldname)
        if terms is None:
            terms = self.fields[fieldname] = {}
        get = terms.get
        single, single_max = _single(), _SINGLE_MAX
        for word, poses in positions.items():
            key = word.encode("utf-8")
            if len(poses) == 1 and poses[0] < single_max:
                weight, value = boost, single[poses[0]]
            else:
                weight, value = len(poses) * boost, _encode_positions(poses)
            lists = get(key)
            if lists is None:
                terms[key] = ([docnum], [weight], [value])
            else:
                lists[0].append(docnum)
                lists[1].append(weight)
                lists[2].append(value)

    def terms(self, order: int) -> Iterator[_TermPostings]:
        for fieldname in sorted(self.fields):
            terms = self.fields[fieldname]
            for tbytes in sorted(terms):
                ids, weights, values = terms[tbytes]
                yield fieldname, tbytes, order, ids, weights, values

    def cleanup(self) -> None:
        self.fields.clear()


class _Writer(SegmentWriter):  # type: ignore[misc]
    """A segment writer with our codec and pool, whose merges copy posting lists: a
    merged segment's lists (already sorted) are read a block at a time and joined
    with the new documents' term by term, instead of going posting by posting
    through the pool and a sort (about five times faster, and memory stays flat)."""

    def __init__(self, ix: Any) -> None:
        # Blocks are not compressed as a whole: only their positions are (see
        # _PostingsWriter._mini_values); ids and weights pickle small anyway.
        super().__init__(ix, _lk=False, codec=_Codec(inlinelimit=_INLINE, compression=0))
        self.pool = _TermPool()
        self._merged: list[tuple[Any, int, dict[int, int] | None]] = []
        self._pool_base = -1  # the first new document's number (-1: none yet)

    def add_document(self, **values: Any) -> None:
        """As Whoosh's, for our schema: no boosts, spelling or vectors."""
        self._check_state()
        schema, docnum = self.schema, self.docnum
        if self._pool_base < 0:
            self._pool_base = docnum
        perdoc = self.perdocwriter
        pool = self.pool
        perdoc.start_doc(docnum)
        for name in sorted(values):
            value = values[name]
            if value is None:
                continue
            field = schema[name]
            length = 0
            if isinstance(field, MailText):
                positions, length = field.positions(value)
                pool.add_positions(name, docnum, positions, field.format.field_boost)
            elif field.indexed:
                items = list(field.index(value))
                if field.scorable:
                    length = sum(i[1] for i in items)
                pool.add(name, docnum, items)
            perdoc.add_field(name, field, value if field.stored else None, length)
            if field.column_type is not None:
                perdoc.add_column_value(name, field.column_type, field.to_column_value(value))
        perdoc.finish_doc()
        self._added = True
        self.docnum += 1

    def add_reader(self, reader: Any) -> None:
        self._check_state()
        basedoc = self.docnum
        names = {n for n in reader.indexed_field_names() if n in self.schema}
        docmap = self.write_per_doc(set(self.schema.names()) | names, reader)
        self._merged.append((reader, basedoc, docmap))
        self._added = True

    def _flush_segment(self) -> None:
        self.perdocwriter.close()
        # A term's postings from several sources are joined in document order: the
        # sources are ranked by the first document number they were given.
        starts = [(base, n) for n, (_r, base, _m) in enumerate(self._merged)]
        if self._pool_base >= 0:
            starts.append((self._pool_base, -1))  # -1: the new documents
        rank = {n: i for i, (_base, n) in enumerate(sorted(starts))}
        sources = [self.pool.terms(rank.get(-1, 0))]
        sources += [
            _segment_terms(reader, rank[n], base, docmap, self.schema)
            for n, (reader, base, docmap) in enumerate(self._merged)
        ]
        self.fieldwriter.add_terms(self.schema, heapq.merge(*sources))
        self.fieldwriter.close()

    def _close_segment(self) -> None:
        super()._close_segment()
        for reader, _base, _docmap in self._merged:
            reader.close()
        self._merged.clear()


def _schema() -> fields.Schema:
    return fields.Schema(
        mid=fields.NUMERIC(bits=64, signed=False, shift_step=0, unique=True),
        mid_col=fields.COLUMN(_int_column()),
        date_col=fields.COLUMN(_int_column()),
        size=_SIZE_FIELD,
        account=fields.ID(),
        attach=fields.BOOLEAN(),
        subject=MailText(field_boost=2.0),
        body=MailText(),
        filename=MailText(),
        cc=MailText(),
        to=MailText(),
        **{"from": MailText()},
    )


_SIZE_FIELD = fields.NUMERIC(bits=32, signed=False, shift_step=4)
_SIZE_MAX = (1 << 32) - 1


def _int_column() -> Any:
    from whoosh.columns import NumericColumn

    return NumericColumn("q", default=0)


# --------------------------------------------------------------------------- documents


def _documents(db: sqlite3.Connection, ids: Sequence[int]) -> list[_Doc]:
    """Index documents for the messages ``ids`` (re-parsing their stored bytes)."""
    from storage.mime import extract_content

    rows = db.execute(
        "SELECT m.id, m.account_id, m.date, m.size, m.subject, m.from_name, m.from_email,"
        " m.to_addrs, m.cc_addrs, m.has_attachments, m.content_hash, b.compression, b.raw"
        " FROM messages m LEFT JOIN message_bodies b ON b.message_id = m.id"
        " WHERE m.id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(ids)),),
    ).fetchall()
    place = {mid: n for n, mid in enumerate(ids)}
    rows.sort(key=lambda r: place[r[0]])  # in the order asked (newest first)
    docs = []
    for (mid, account, date, size, subject, from_name, from_email, to, cc, attach, digest,
         compression, raw) in rows:  # fmt: skip
        body = _Tokens()
        names: list[str] = []
        if raw is not None:
            content = extract_content(unpack(compression, raw))
            words = tokenize(content.text[:TEXT_CAP])
            body = _Tokens((words,))
            if content.html is not None:
                # In multipart/alternative the text comes from the plain part; words
                # only the HTML part has must be findable too.
                extra = tokenize(_html_words(content.html[: 4 * TEXT_CAP])[:TEXT_CAP])
                if extra and not set(extra) <= set(words):
                    body = _Tokens((words, extra))
            names = [a.filename for a in content.attachments if a.filename]
        epoch = int(date or 0)
        docs.append(
            _Doc(
                mid,
                digest,
                {
                    "mid": mid,
                    "mid_col": mid,
                    "date_col": epoch,
                    "size": min(max(int(size), 0), _SIZE_MAX),
                    "account": str(account),
                    "attach": bool(attach),
                    "subject": subject or "",
                    "from": _address_tokens([(from_name, from_email)]),
                    "to": _address_tokens(_pairs(to)),
                    "cc": _address_tokens(_pairs(cc)),
                    "body": body,
                    "filename": names,
                },
            )
        )
    return docs


_HTML_HIDDEN = re.compile(
    r"<(script|style|head|title|template|noscript)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S
)
_HTML_INLINE = re.compile(
    r"</?(?:a|abbr|b|big|code|em|font|i|mark|s|small|span|strike|strong|sub|sup|tt|u)\b[^>]*>",
    re.I,
)
_HTML_TAG = re.compile(r"<[^>]*>")


def _html_words(markup: str) -> str:
    """The text of an HTML part, for its words only: a regex pass is twenty times
    faster than a real parse (storage.htmltext, which the reader uses) and finds the
    same words: hidden parts dropped, inline tags joined, other tags split words."""
    text = _HTML_TAG.sub(" ", _HTML_INLINE.sub("", _HTML_HIDDEN.sub(" ", markup)))
    return html.unescape(text) if "&" in text else text


def _stream_documents(db: sqlite3.Connection, ids: Sequence[int]) -> Iterator[_Doc]:
    """Documents for ``ids``, read and parsed a few at a time (memory stays flat)."""
    for start in range(0, len(ids), _READ_CHUNK):
        yield from _documents(db, ids[start : start + _READ_CHUNK])


def _pairs(data: str) -> list[tuple[str, str]]:
    try:
        return [(str(n), str(e)) for n, e in json.loads(data)]
    except (ValueError, TypeError):
        return []


def _address_tokens(pairs: Sequence[tuple[str, str]]) -> _Tokens:
    """An address field's words: each mailbox's name and address as words, then the
    whole address as one word (``from:bob@example.com`` is one term, not a phrase)."""
    groups = []
    for name, email in pairs:
        words = tokenize(f"{name} {email}")
        if "@" in email:
            words.append(address_word(email))
        groups.append(words)
    return _Tokens(groups)


@dataclass(frozen=True, slots=True)
class _Doc:
    mid: int
    digest: bytes
    fields: dict[str, Any]


def _begin(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.commit()
    db.execute("BEGIN IMMEDIATE")


def _mark_indexed(db: sqlite3.Connection, docs: list[_Doc]) -> None:
    """Mark the batch indexed — only rows that still hold the message that was indexed
    (an id deleted and re-used meanwhile stays queued)."""
    if not docs:
        return
    _begin(db)
    try:
        db.executemany(
            "UPDATE messages SET index_state = 1 WHERE id = ? AND content_hash = ?",
            [(d.mid, d.digest) for d in docs],
        )
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _scalar(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    row = db.execute(sql, params).fetchone()
    return None if row is None else row[0]


def pending_count(connect: Connect) -> int:
    """Messages waiting for the index (content extracted, not yet indexed)."""
    with connect() as db:
        return _pending(db)


def _pending(db: sqlite3.Connection) -> int:
    return int(
        _scalar(db, "SELECT count(*) FROM messages WHERE index_state = 0 AND content_state = 1")
        or 0
    )


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True, slots=True)
class IndexRun:
    """What one :meth:`SearchIndex.update` did."""

    indexed: int  # documents written
    purged: int  # documents of messages that no longer exist, removed
    remaining: int  # messages still waiting (0 unless stopped early)
    busy: bool  # another process holds the index: nothing was done
    rebuilt: bool  # the index was missing or damaged and was started afresh


Progress = Callable[[int, int], None]  # (done, total)


class _Columns:
    """One segment's message ids and dates (read whole, once), and lazily its
    documents in date order: a search for "newest first" asks which documents fall
    in a range of dates. Segments are written newest first, so the sort meets long
    ordered runs and costs little."""

    __slots__ = ("_order", "_sorted", "dates", "mids", "newest", "oldest")

    def __init__(self, mids: array[int], dates: array[int]) -> None:
        self.mids = mids
        self.dates = dates
        self.oldest = min(dates, default=0)
        self.newest = max(dates, default=0)
        self._order: list[int] | None = None
        self._sorted: array[int] | None = None

    def sorted_dates(self) -> array[int]:
        if self._sorted is None:
            dates = self.dates
            ascending = array("q", sorted(dates))  # C speed: runs are found, not sorted
            if ascending == dates[::-1]:  # the usual bulk segment: newest first throughout
                self._order = list(range(len(dates) - 1, -1, -1))
            else:
                self._order = sorted(range(len(dates)), key=dates.__getitem__)
            self._sorted = ascending
        return self._sorted

    def between(self, lo: int, hi: int) -> list[int]:
        """Documents dated ``lo..hi``, in document order."""
        dates = self.sorted_dates()
        assert self._order is not None
        return sorted(self._order[bisect.bisect_left(dates, lo) : bisect.bisect_right(dates, hi)])


@dataclass(slots=True)
class _Leaf:
    """One segment's searcher, its first global document number, and its columns."""

    searcher: Any
    offset: int
    columns: _Columns

    @property
    def mids(self) -> array[int]:
        return self.columns.mids

    @property
    def dates(self) -> array[int]:
        return self.columns.dates

    @property
    def oldest(self) -> int:
        return self.columns.oldest

    @property
    def newest(self) -> int:
        return self.columns.newest

    def sorted_dates(self) -> array[int]:
        return self.columns.sorted_dates()

    def between(self, lo: int, hi: int) -> list[int]:
        return self.columns.between(lo, hi)

    def deleted(self, docnum: int) -> bool:
        reader = self.searcher.reader()
        return bool(reader.has_deletions() and reader.is_deleted(docnum))


class SearchIndex:
    """The search index of one profile, in the folder ``path``.

    Reading (:meth:`search`) works from any process and thread; writing
    (:meth:`update`, :meth:`rebuild`) is for the one owner and takes the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notices: list[str] = []
        self._ix: Any = None
        self._searcher: Any = None
        self._columns: dict[str, _Columns] = {}
        self._lock = threading.RLock()  # whoosh searchers are not thread-safe

    @property
    def lock_path(self) -> Path:
        return self.path.parent / _LOCK_FILE

    # -- opening ----------------------------------------------------------------------

    def _version_ok(self) -> bool:
        try:
            data = json.loads((self.path / _VERSION_FILE).read_text())
            return bool(data.get("version") == SCHEMA_VERSION)
        except (OSError, ValueError, AttributeError):
            return False

    def _open(self) -> Any:
        """The whoosh index, or None when missing, outdated or unreadable."""
        if self._ix is not None:
            return self._ix
        if not self._version_ok() or (self.path / _DAMAGED_FILE).exists():
            return None
        ix = None
        with _quiet_leaks():
            try:
                ix = _storage(self.path).open_index()
                ix.latest_generation()
            except Exception:  # no or an unreadable table of contents: missing or damaged
                ix = None
        if ix is None:
            _drop_leaked_files()
            return None
        self._ix = ix
        return ix

    def _create(self) -> Any:
        self.close()
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        ix = _storage(self.path).create_index(_schema())
        (self.path / _VERSION_FILE).write_text(json.dumps({"version": SCHEMA_VERSION}))
        self._ix = ix
        return ix

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None
            self._ix = None
            self._columns.clear()

    def readable(self) -> bool:
        """True when there is an index to search (possibly still being filled)."""
        with self._lock:
            return self._current() is not None

    def doc_count(self) -> int:
        """Live documents in the index."""
        with self._lock:
            s = self._current()
            return 0 if s is None else int(s.doc_count())

    # -- writing ----------------------------------------------------------------------

    def _acquire(self, wait: float) -> FileLock | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path))
        deadline = time.monotonic() + wait
        while not lock.acquire(blocking=False):
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return lock

    def update(
        self,
        connect: Connect,
        *,
        progress: Progress | None = None,
        stop: Callable[[], bool] | None = None,
        wait: float = 0.0,
    ) -> IndexRun:
        """Index every waiting message, newest first, one committed batch at a time.

        Returns at once with ``busy=True`` when another process holds the index (it
        is indexing); ``wait`` seconds are given to it first. ``stop`` is asked
        between batches.
        """
        lock = self._acquire(wait)
        if lock is None:
            return IndexRun(0, 0, pending_count(connect), True, False)
        try:
            with connect() as db:  # one connection for the run (one page cache)
                return self._update(db, progress, stop)
        finally:
            lock.release()

    def rebuild(
        self,
        connect: Connect,
        *,
        progress: Progress | None = None,
        stop: Callable[[], bool] | None = None,
        wait: float = 10.0,
    ) -> IndexRun:
        """Start the index afresh and index everything (``tidings reindex``)."""
        lock = self._acquire(wait)
        if lock is None:
            return IndexRun(0, 0, pending_count(connect), True, False)
        try:
            with connect() as db:
                self._reset(db)
                run = self._update(db, progress, stop)
            return IndexRun(run.indexed, run.purged, run.remaining, False, True)
        finally:
            lock.release()

    def _reset(self, db: sqlite3.Connection) -> None:
        _begin(db)
        db.execute("UPDATE messages SET index_state = 0 WHERE index_state != 0")
        db.commit()
        with self._lock:
            self._create()

    def _update(
        self, db: sqlite3.Connection, progress: Progress | None, stop: Callable[[], bool] | None
    ) -> IndexRun:
        rebuilt = False
        purged = 0
        with self._lock:
            ix = self._open()
        if ix is not None:
            with _quiet_leaks():
                try:
                    purged = self._purge(db, ix)
                except Exception:  # the index cannot be read: damaged
                    ix = None
            if ix is None:
                _drop_leaked_files()
        if ix is None:
            had_index = _scalar(db, "SELECT 1 FROM messages WHERE index_state = 1 LIMIT 1")
            if had_index is not None:
                self.notices.append(
                    "the search index was missing or damaged; rebuilding it (newest mail first)"
                )
                rebuilt = True
            self._reset(db)
            ix = self._ix
        total = _pending(db)
        done = 0
        size = FIRST_BATCH
        if progress is not None and total:
            progress(0, total)
        while not (stop is not None and stop()):
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM messages WHERE index_state = 0 AND content_state = 1"
                    " ORDER BY date DESC LIMIT ?",
                    (size,),
                )
            ]
            if not ids:
                break
            written = self._write(ix, ids, _stream_documents(db, ids))
            _mark_indexed(db, written)
            done += len(written)
            size = min(4 * size, BATCH)
            if progress is not None:
                progress(done, max(total, done))
        return IndexRun(done, purged, _pending(db), False, rebuilt)

    def _write(self, ix: Any, gone: Sequence[int], docs: Iterable[_Doc]) -> list[_Doc]:
        """One commit: delete the documents of ``gone``, add ``docs``; returns what
        was added (without the field values)."""
        from whoosh.reading import SegmentReader

        writer = _Writer(ix)
        added: list[_Doc] = []
        try:
            # Idempotence: a message indexed before a crash (but not marked) replaces
            # its document instead of adding a second one.
            with ix.searcher() as s:
                for start in range(0, len(gone), _CHUNK):
                    q = _or([_Term("mid", m) for m in gone[start : start + _CHUNK]])
                    writer.delete_by_query(q, searcher=s)
            # Merged segments go first, newest first, then the new documents: an index
            # written newest first stays in date order inside each segment, which
            # makes a segment's date order free to compute (see _Columns).
            merging = _merge_choice(writer.segments)
            readers = [SegmentReader(writer.storage, writer.schema, seg) for seg in merging]
            readers.sort(key=lambda r: -max(_load_column(r, "date_col"), default=0))
            for reader in readers:
                writer.add_reader(reader)  # the writer closes them
            for d in docs:
                writer.add_document(**d.fields)
                added.append(_Doc(d.mid, d.digest, {}))
            merged = {id(seg) for seg in merging}
            writer.commit(mergetype=lambda _w, segs: [x for x in segs if id(x) not in merged])
        except BaseException:
            if not writer.is_closed:
                writer.cancel()
            raise
        return added

    def _purge(self, db: sqlite3.Connection, ix: Any) -> int:
        """Remove documents of messages that are gone (or whose id was re-used by a
        message not indexed yet)."""
        with ix.searcher() as s:
            live = int(s.doc_count())
            indexed = _scalar(db, "SELECT count(*) FROM messages WHERE index_state = 1")
            if live == indexed:
                return 0
            keep = {r[0] for r in db.execute("SELECT id FROM messages WHERE index_state = 1")}
            stale = [
                mid
                for leaf in self._leaves(s)
                for docnum, mid in enumerate(leaf.mids)
                if mid not in keep and not leaf.deleted(docnum)
            ]
        if stale:
            self._write(ix, stale, ())
        return len(stale)

    # -- reading ----------------------------------------------------------------------

    def _current(self) -> Any:
        """An up-to-date searcher, or None when there is no readable index."""
        if self._searcher is not None:
            fresh = None
            with _quiet_leaks():
                try:
                    if self._searcher.up_to_date():
                        return self._searcher
                    fresh = self._searcher.refresh()
                except Exception:
                    fresh = None
            if fresh is None:
                self.close()
                return self._current()
            self._searcher = fresh
            live = {_segment_key(sub.reader()) for sub, _ in fresh.leaf_searchers()}
            for key in [k for k in self._columns if k not in live]:
                del self._columns[key]
            return fresh
        ix = self._open()
        if ix is None:
            return None
        with _quiet_leaks():
            try:
                self._searcher = ix.searcher()
            except Exception:  # the table of contents is fine, a segment is not
                self._searcher = None
        if self._searcher is None:
            self._damaged()
        return self._searcher

    def _damaged(self) -> None:
        """Forget the index and leave a mark for its owner, who rebuilds it."""
        self.close()
        _drop_leaked_files()
        with contextlib.suppress(OSError):
            (self.path / _DAMAGED_FILE).write_text("damaged\n")

    def _leaves(self, searcher: Any) -> list[_Leaf]:
        out = []
        for sub, offset in searcher.leaf_searchers():
            reader = sub.reader()
            key = _segment_key(reader)
            cols = self._columns.get(key)
            if cols is None:
                cols = _Columns(_load_column(reader, "mid_col"), _load_column(reader, "date_col"))
                self._columns[key] = cols
            out.append(_Leaf(sub, offset, cols))
        return out

    def search(
        self,
        db: sqlite3.Connection,
        node: Node,
        *,
        account_ids: Sequence[int] | None = None,
        limit: int = 50,
        sort: str = "date",
    ) -> list[int]:
        """Message ids matching ``node``, newest first (or most relevant first).

        Only messages that exist with a location not flagged deleted are named;
        messages that live only in Trash or Junk are left out unless the query asks
        for those folders (or ``in:anywhere``), as in Gmail. Messages not indexed
        yet are not found by words (flags, folders, dates and sizes still find them).
        """
        if limit <= 0:
            return []
        with self._lock:
            damaged = False
            try:
                return _Evaluation(
                    self, db, node, accounts=account_ids, limit=limit, sort=sort
                ).run()
            except (StorageError, sqlite3.Error, AttributeError, TypeError, NameError):
                raise  # ours, the database's, or a bug: not the index's fault
            except Exception:  # whoosh reading a damaged file
                damaged = True
            finally:
                if damaged:
                    self._damaged()
        raise SearchUnavailable(
            "the search index is damaged; it is being rebuilt (or run 'tidings reindex')"
        )


@contextlib.contextmanager
def _quiet_leaks() -> Iterator[None]:
    """Whoosh leaves files open when it fails half way through opening a damaged
    segment, and they close (with a ResourceWarning) while it handles the error:
    around opening, such warnings are expected and kept quiet."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


def _storage(path: Path) -> Any:
    """The index folder, read without mmap: Whoosh copies every part of a memory-mapped
    segment it opens into a BytesIO (all of a 100,000-message index, at every open),
    while plain reads fetch just the blocks a query needs."""
    from whoosh.filedb.filestore import FileStorage

    return FileStorage(str(path), supports_mmap=False)


def _drop_leaked_files() -> None:
    """Collect what a failed open left behind now, quietly."""
    import gc

    with _quiet_leaks():
        gc.collect()


def _segment_key(reader: Any) -> str:
    try:
        return str(reader.segment().segment_id())
    except Exception:
        return str(id(reader))


def _load_column(reader: Any, name: str) -> array[int]:
    """A whole integer column of one segment as an array (one read, no per-doc calls)."""
    n = reader.doc_count_all()
    out = array("q")
    if not reader.has_column(name):
        out.frombytes(bytes(8 * n))
        return out
    col = reader.column_reader(name, translate=False)
    try:
        out.frombytes(col._dbfile.get(col._basepos, col._count * col._fixedlen))
        if sys.byteorder == "little":  # stored big-endian
            out.byteswap()
    except AttributeError:  # a whoosh without these internals: the slow way
        out = array("q", (col[i] for i in range(n)))
    if len(out) < n:
        out.frombytes(bytes(8 * (n - len(out))))
    return out


def _merge_choice(segments: list[Any]) -> list[Any]:
    """Segments to merge into the next one: eight of one size tier (fewer than
    1000·8^k documents), and any that is more than a third deleted documents."""
    tiers: dict[int, list[Any]] = {}
    merge: list[Any] = []
    for seg in segments:
        total = seg.doc_count_all()
        if total and seg.deleted_count() * 3 > total:
            merge.append(seg)
            continue
        tier = 0 if total < _TIER_BASE else int(math.log(total / _TIER_BASE, MERGE_FACTOR)) + 1
        tiers.setdefault(tier, []).append(seg)
    for tier in sorted(tiers):
        group = tiers[tier]
        if len(group) >= MERGE_FACTOR:
            merge.extend(group)
            break
    return merge


class _Term(query.Term):  # type: ignore[misc]
    """A term whose unscored matcher is just the posting list: Whoosh's own first
    asks whether the term exists, then builds a BM25 scorer nobody will use."""

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        if context is None or context.weighting is not None:
            return super().matcher(searcher, context)
        fld = searcher.schema[self.fieldname]
        try:
            return searcher.reader().postings(self.fieldname, fld.to_bytes(self.text))
        except (TermNotFound, KeyError, ValueError):
            return matching.NullMatcher()


class _Or(query.Or):  # type: ignore[misc]
    """OR as a plain binary tree of union matchers.

    Whoosh's own Or estimates every sub-query's size to balance the tree (a term
    lookup each), or, on small indexes, pre-reads blocks of 2,048 documents into an
    array: both cost more than they save for the handful of terms a mail query has.
    """

    def _matcher(self, subs: list[Any], searcher: Any, context: Any) -> Any:
        ms = [q.matcher(searcher, context) for q in subs]
        ms = [m for m in ms if m.is_active()] or ms[:1]
        return make_binary_tree(matching.UnionMatcher, ms)


class _And(query.And):  # type: ignore[misc]
    """AND as a binary tree of intersections; negated parts become one AND-NOT."""

    def _matcher(self, subs: list[Any], searcher: Any, context: Any) -> Any:
        pos = [q for q in subs if not isinstance(q, query.Not)]
        neg = [q.query for q in subs if isinstance(q, query.Not)]
        if not pos:
            return super()._matcher(subs, searcher, context)
        m = make_binary_tree(
            matching.IntersectionMatcher, [q.matcher(searcher, context) for q in pos]
        )
        if neg and m.is_active():
            m = matching.AndNotMatcher(m, _or(neg).matcher(searcher, context))
        return m


def _and(parts: list[Any]) -> Any:
    parts = [p for p in parts if p is not None]
    if len(parts) == 1:
        return parts[0]
    return _And(parts)


def _or(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    return _Or(parts)


def _numeric_range(name: str, fld: Any, lo: int, hi: int) -> Any:
    """``lo <= value <= hi`` for an unsigned NUMERIC field, as the few trie terms that
    cover the range: the ends at full precision, the middle in coarse blocks.

    Whoosh's own NumericRange (``whoosh.util.numeric.split_ranges``) is wrong for
    ranges that start at zero (``smaller:50K`` matched everything), so this is ours.
    """
    top = (1 << fld.bits) - 1
    lo, hi = max(lo, 0), min(hi, top)
    terms = [_Term(name, fld.sortable_to_bytes(v << shift, shift)) for v, shift in
             _trie_cover(lo, hi, fld.bits, fld.shift_step)]  # fmt: skip
    return _or(terms) if terms else query.NullQuery


def _trie_cover(lo: int, hi: int, bits: int, step: int) -> list[tuple[int, int]]:
    """Trie terms ``(value >> shift, shift)`` that together cover ``lo..hi`` exactly."""
    out: list[tuple[int, int]] = []
    shift = 0
    while lo <= hi:
        up = shift + step
        if up >= bits:
            out += [(v, shift) for v in range(lo >> shift, (hi >> shift) + 1)]
            break
        block = 1 << up
        inner_lo = -(-lo // block) * block  # lo rounded up to a whole block
        inner_hi = (hi + 1) // block * block - 1  # hi rounded down
        if inner_lo > inner_hi:
            out += [(v, shift) for v in range(lo >> shift, (hi >> shift) + 1)]
            break
        out += [(v, shift) for v in range(lo >> shift, inner_lo >> shift)]
        out += [(v, shift) for v in range((inner_hi + 1) >> shift, (hi >> shift) + 1)]
        lo, hi, shift = inner_lo, inner_hi, up
    return out


# --------------------------------------------------------------------------- evaluation

_Sql = tuple[str, list[Any]]
_TRUE: _Sql = ("1", [])
_FALSE: _Sql = ("0", [])
_VISIBLE = (
    "EXISTS (SELECT 1 FROM message_uids vu JOIN folders vf ON vf.id = vu.folder_id"
    " WHERE vu.message_id = m.id AND vu.deleted = 0"
    " AND (vf.role IS NULL OR vf.role NOT IN ('junk', 'trash')))"
)
_EXISTING = "EXISTS (SELECT 1 FROM message_uids vu WHERE vu.message_id = m.id AND vu.deleted = 0)"


def _all(parts: Iterable[_Sql]) -> _Sql:
    kept = [p for p in parts if p[0] != "1"]
    if not kept:
        return _TRUE
    if len(kept) == 1:
        return kept[0]
    return "(" + " AND ".join(p[0] for p in kept) + ")", [x for p in kept for x in p[1]]


def _any(parts: Iterable[_Sql]) -> _Sql:
    kept = list(parts)
    if len(kept) == 1:
        return kept[0]
    return "(" + " OR ".join(p[0] for p in kept) + ")", [x for p in kept for x in p[1]]


def _marks(n: int) -> str:
    return ",".join("?" * n)


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    date: int
    key: int


class _Evaluation:
    """One query run: the plan, the SQL side, the Whoosh candidates."""

    def __init__(
        self,
        ix: SearchIndex,
        db: sqlite3.Connection,
        node: Node,
        *,
        accounts: Sequence[int] | None,
        limit: int,
        sort: str,
    ) -> None:
        self.ix = ix
        self.db = db
        self.node = node
        self.limit = limit
        self.sort = sort
        self.account_ids = (
            list(accounts)
            if accounts is not None
            else [r[0] for r in db.execute("SELECT id FROM accounts ORDER BY id")]
        )
        self._searcher: Any = None
        self._leaves_cache: list[_Leaf] | None = None
        self._folders: dict[str, list[int] | None] = {}
        self._folder_rows: list[tuple[int, str, str | None]] | None = None
        self.lifted = any(self._reveals_hidden(n) for n in _positive(node))

    # -- the plan ---------------------------------------------------------------------

    def run(self) -> list[int]:
        if not self.account_ids:
            return []
        parts = list(self.node.parts) if isinstance(self.node, And) else [self.node]
        whoosh_parts: list[Node] = []
        sql_parts: list[Node] = []
        start: int | None = None
        end: int | None = None
        for part in parts:
            kinds = {type(n) for n in walk(part)}
            if isinstance(part, DateRange):
                s, e = _epoch_range(part)
                if s is not None:
                    start = s if start is None else max(start, s)
                if e is not None:
                    end = e if end is None else min(end, e)
                sql_parts.append(part)
            elif Text in kinds and not kinds & {Flag, InFolder, DateRange}:
                whoosh_parts.append(part)
            else:
                # Flags, folders, and also attachment, size and account: SQLite checks
                # a candidate for those in microseconds, where intersecting their long
                # posting lists in Whoosh costs far more.
                sql_parts.append(part)
        if not whoosh_parts:
            rows = self._ordered(self._where(parts), self.limit, parts)
            return [r.id for r in rows]
        if self.searcher() is None:
            return []
        wq = _and([self._whoosh(p) for p in whoosh_parts])
        where = self._where([p for p in sql_parts if not isinstance(p, DateRange)])
        if self.sort == "relevance":
            return self._by_relevance(wq, where, start, end)
        return self._by_date(wq, where, start=start, end=end, parts=parts, text_parts=whoosh_parts)

    def searcher(self) -> Any:
        if self._searcher is None:
            self._searcher = self.ix._current()
        return self._searcher

    def leaves(self) -> list[_Leaf]:
        if self._leaves_cache is None:
            s = self.searcher()
            self._leaves_cache = [] if s is None else self.ix._leaves(s)
        return self._leaves_cache

    # -- SQL side ---------------------------------------------------------------------

    def _reveals_hidden(self, node: Node) -> bool:
        if not isinstance(node, InFolder):
            return False
        ids = self._folder_ids(node)
        if ids is None:
            return True  # in:anywhere
        roles = {role for fid, _name, role in self._folder_rows or () if fid in ids}
        return bool(roles & set(HIDDEN_ROLES))

    def _folder_ids(self, node: InFolder) -> list[int] | None:
        """Folder ids for ``in:NAME`` (None for ``in:anywhere``): a role word finds the
        folders with that role; else the name, exact, then ignoring case and accents,
        then as the last part of a nested name (``in:ubersicht`` finds
        ``Projekte/Übersicht``)."""
        if node.name in self._folders:
            return self._folders[node.name]
        name = node.name.strip()
        low = fold(name)
        if self._folder_rows is None:
            self._folder_rows = list(
                self.db.execute(
                    f"SELECT id, name, role FROM folders WHERE account_id IN "
                    f"({_marks(len(self.account_ids))})",
                    self.account_ids,
                )
            )
        rows = self._folder_rows
        ids: list[int] | None
        if low == _ANYWHERE:
            ids = None
        elif low in _ROLE_WORDS:
            role = _ROLE_WORDS[low]
            ids = [i for i, n, r in rows if r == role or (r is None and fold(n) == low)]
        else:
            ids = []
            tests: list[Callable[[str], bool]] = [
                lambda n: n == name,
                lambda n: fold(n) == low,
                lambda n: fold(n).rsplit("/", 1)[-1] == low,
            ]
            for test in tests:
                ids = [i for i, n, _r in rows if test(n)]
                if ids:
                    break
            if not ids:
                where = f" at column {node.column}" if node.column else ""
                raise QueryError(f"no folder named {name!r} (in:{name}{where})", node.column)
        self._folders[node.name] = ids
        return ids

    def _accounts_named(self, node: AccountNode) -> list[int]:
        rows = list(self.db.execute("SELECT id, name FROM accounts ORDER BY name"))
        ids = [i for i, n in rows if n == node.name] or [
            i for i, n in rows if n.casefold() == node.name.casefold()
        ]
        if not ids:
            names = ", ".join(n for _i, n in rows) or "none"
            where = f" at column {node.column}" if node.column else ""
            raise QueryError(
                f"no account named {node.name!r} (account:{node.name}{where}; accounts: {names})",
                node.column,
            )
        return ids

    def _visible(self) -> str:
        return _EXISTING if self.lifted else _VISIBLE

    def _where(self, parts: Iterable[Node]) -> _Sql:
        return _all(self._sql(p) for p in parts)

    def _sql(self, node: Node) -> _Sql:
        if isinstance(node, Text):
            return self._materialized(node)
        if isinstance(node, Flag):
            if node.name not in _FLAG_COLUMNS:  # pragma: no cover - the parser's names
                raise QueryError(f"unknown flag {node.name!r}")
            has = (
                "EXISTS (SELECT 1 FROM message_uids su WHERE su.message_id = m.id"
                f" AND su.{node.name} = 1)"
            )
            return (has, []) if node.value else (f"NOT {has}", [])
        if isinstance(node, InFolder):
            ids = self._folder_ids(node)
            if ids is None:
                return _EXISTING, []
            if not ids:
                return _FALSE
            return (
                "EXISTS (SELECT 1 FROM message_uids su WHERE su.message_id = m.id"
                f" AND su.deleted = 0 AND su.folder_id IN ({_marks(len(ids))}))",
                list(ids),
            )
        if isinstance(node, HasAttachment):
            return "m.has_attachments = 1", []
        if isinstance(node, DateRange):
            start, end = _epoch_range(node)
            conds: list[_Sql] = []
            if start is not None:
                conds.append(("m.date >= ?", [start]))
            if end is not None:
                conds.append(("m.date < ?", [end]))
            return _all(conds)
        if isinstance(node, SizeRange):
            conds = []
            if node.low is not None:
                conds.append(("m.size >= ?", [node.low]))
            if node.high is not None:
                conds.append(("m.size < ?", [node.high]))
            return _all(conds)
        if isinstance(node, AccountNode):
            ids = self._accounts_named(node)
            return f"m.account_id IN ({_marks(len(ids))})", list(ids)
        if isinstance(node, And | Or):
            kinds = {type(n) for n in walk(node)}
            if Text in kinds and not kinds & {Flag, InFolder, DateRange}:
                return self._materialized(node)  # all of it in one Whoosh query
            subs = [self._sql(p) for p in node.parts]
            return _all(subs) if isinstance(node, And) else _any(subs)
        assert isinstance(node, Not)
        inner, params = self._sql(node.part)
        return f"NOT {inner}", params

    def _materialized(self, node: Node) -> _Sql:
        """``m.id IN (...)`` for a text-only subtree, evaluated in Whoosh."""
        if self.searcher() is None:
            return _FALSE
        q = self._whoosh(node)  # other accounts' ids are filtered by the outer query
        mids = [leaf.mids[d] for leaf in self.leaves() for d in _all_ids(q, leaf)]
        return "m.id IN (SELECT value FROM json_each(?))", [json.dumps(mids)]

    def _ordered(self, where: _Sql, limit: int, parts: Sequence[Node]) -> list[_Row]:
        """Up to ``limit`` distinct messages passing ``where``, newest first (pure SQL)."""
        folder_sets = [
            ids
            for p in parts
            if isinstance(p, InFolder) and (ids := self._folder_ids(p)) is not None
        ]
        if folder_sets:
            smallest = min(folder_sets, key=self._locations_in)
            streams = [self._stream(where, limit, folder=fid) for fid in smallest]
        else:
            streams = [self._stream(where, limit, account=aid) for aid in self.account_ids]
        out: list[_Row] = []
        seen: set[int] = set()
        for row in heapq.merge(*streams, key=lambda r: (r.date, r.key), reverse=True):
            if row.id not in seen:
                seen.add(row.id)
                out.append(row)
                if len(out) >= limit:
                    break
        return out

    def _locations_in(self, folder_ids: list[int]) -> int:
        if not folder_ids:
            return 0
        return int(
            _scalar(
                self.db,
                f"SELECT count(*) FROM message_uids WHERE folder_id IN ({_marks(len(folder_ids))})",
                folder_ids,
            )
        )

    def _stream(
        self, where: _Sql, limit: int, *, account: int | None = None, folder: int | None = None
    ) -> Iterator[_Row]:
        """Messages passing ``where`` newest first, read a page at a time, from one
        account's (account, date) index or one folder's (folder, date, id) index."""
        cond, params = where
        if folder is not None:
            sql = (
                "SELECT u.message_id, u.date, u.id FROM message_uids u"
                " JOIN messages m ON m.id = u.message_id"
                f" WHERE u.folder_id = ? AND u.deleted = 0 AND {cond} AND {self._visible()}"
                " {keyset} ORDER BY u.date DESC, u.id DESC LIMIT ?"
            )
            keyset = "AND (u.date < ? OR (u.date = ? AND u.id < ?))"
            first: list[Any] = [folder]
        else:
            sql = (
                "SELECT m.id, m.date, m.id FROM messages m"
                f" WHERE m.account_id = ? AND {cond} AND {self._visible()}"
                " {keyset} ORDER BY m.date DESC, m.id DESC LIMIT ?"
            )
            keyset = "AND (m.date < ? OR (m.date = ? AND m.id < ?))"
            first = [account]
        page = limit + 10
        last: tuple[int, int] | None = None
        while True:
            if last is None:
                rows = self.db.execute(sql.format(keyset=""), [*first, *params, page]).fetchall()
            else:
                d, k = last
                rows = self.db.execute(
                    sql.format(keyset=keyset), [*first, *params, d, d, k, page]
                ).fetchall()
            for mid, date, key in rows:
                yield _Row(mid, int(date or 0), key)
            if len(rows) < page or rows[-1][1] is None:
                return
            last = (rows[-1][1], rows[-1][2])
            page = min(page * 4, 5000)

    def _passing(self, ids: Sequence[int], where: _Sql) -> set[int]:
        """Which of ``ids`` (Whoosh candidates) pass the SQL side."""
        cond, params = where
        sql = (
            # '+' keeps SQLite from walking an index of those columns instead of
            # looking the few candidate ids up by rowid (20 ms instead of 2).
            "SELECT m.id FROM messages m WHERE m.id IN (SELECT value FROM json_each(?))"
            f" AND +m.index_state = 1 AND +m.account_id IN ({_marks(len(self.account_ids))})"
            f" AND {cond} AND {self._visible()}"
        )
        ok: set[int] = set()
        for begin in range(0, len(ids), _CHUNK):
            chunk = list(ids[begin : begin + _CHUNK])
            ok.update(
                r[0] for r in self.db.execute(sql, [json.dumps(chunk), *self.account_ids, *params])
            )
        return ok

    # -- Whoosh side ------------------------------------------------------------------

    def _whoosh(self, node: Node) -> Any:
        if isinstance(node, Text):
            subs = []
            for fld in _FIELD_MAP[node.field]:
                if node.address is not None and fld in _ADDRESS_FIELDS:
                    subs.append(_Term(fld, node.address))
                elif len(node.words) == 1:
                    subs.append(_Term(fld, node.words[0]))
                else:
                    subs.append(query.Phrase(fld, list(node.words)))
            return _or(subs)
        if isinstance(node, HasAttachment):
            return _Term("attach", True)
        if isinstance(node, SizeRange):
            low = 0 if node.low is None else node.low
            high = _SIZE_MAX if node.high is None else node.high - 1
            return _numeric_range("size", _SIZE_FIELD, low, high)
        if isinstance(node, AccountNode):
            return _or([_Term("account", str(a)) for a in self._accounts_named(node)])
        if isinstance(node, And):
            return _and([self._whoosh(p) for p in node.parts])
        if isinstance(node, Or):
            return _or([self._whoosh(p) for p in node.parts])
        if isinstance(node, Not):
            return query.Not(self._whoosh(node.part))
        raise AssertionError(f"not a Whoosh part: {node!r}")  # pragma: no cover

    def _estimate(self, node: Node) -> int:
        """An upper bound of the documents a text node matches (term statistics)."""
        reader = self.searcher().reader()
        total = int(reader.doc_count_all())
        if isinstance(node, Text):
            est = 0
            for fld in _FIELD_MAP[node.field]:
                if node.address is not None and fld in _ADDRESS_FIELDS:
                    est += int(reader.doc_frequency(fld, node.address))
                else:
                    est += min(int(reader.doc_frequency(fld, w)) for w in node.words)
            return min(est, total)
        if isinstance(node, And):
            return min(self._estimate(p) for p in node.parts)
        if isinstance(node, Or):
            return min(sum(self._estimate(p) for p in node.parts), total)
        return total

    def _hits(self, q: Any, lo: int, hi: int, *, everything: bool) -> list[tuple[int, int]]:
        """(date, id) of the documents dated ``lo..hi`` (inclusive) that ``q`` matches,
        newest first. ``everything``: walk all matches of ``q`` and keep those in the
        range; else test only the documents of the range (found through each
        segment's date order), skipping ``q``'s matcher to them."""
        hits: list[tuple[int, int]] = []
        context = None
        for leaf in self.leaves():
            dates, mids = leaf.dates, leaf.mids
            if everything:
                for d in _all_ids(q, leaf):
                    t = dates[d]
                    if lo <= t <= hi:
                        hits.append((t, mids[d]))
                continue
            docs = leaf.between(lo, hi)
            if not docs:
                continue
            context = context or leaf.searcher.boolean_context()
            m = q.matcher(leaf.searcher, context)
            for d in docs:
                if not m.is_active():
                    break
                if m.id() < d:
                    m.skip_to(d)
                    if not m.is_active():
                        break
                if m.id() == d:
                    hits.append((dates[d], mids[d]))
        hits.sort(reverse=True)
        return hits

    def _by_date(
        self,
        q: Any,
        where: _Sql,
        *,
        start: int | None,
        end: int | None,
        parts: Sequence[Node],
        text_parts: Sequence[Node],
    ) -> list[int]:
        leaves = [leaf for leaf in self.leaves() if len(leaf.dates)]
        if not leaves:
            return []
        hi = max(leaf.newest for leaf in leaves)
        lo = min(leaf.oldest for leaf in leaves)
        if end is not None:
            hi = min(hi, end - 1)
        if start is not None:
            lo = max(lo, start)
        if hi < lo:
            return []
        total = sum(len(leaf.dates) for leaf in leaves)
        in_range = _count_between(leaves, lo, hi)
        estimate = min(self._estimate(p) for p in text_parts)
        if estimate <= _FULL_LIMIT or in_range <= _WINDOW_MIN:
            size = in_range  # one window: everything in the range
        else:
            # A window that should hold three pages of hits; four times wider after
            # each window that did not fill the page.
            size = max(_WINDOW_MIN, math.ceil(_WINDOW_PAGES * self.limit * total / estimate))
        out: list[int] = []
        rejected = 0
        while hi >= lo:
            first = _window_start(leaves, lo, hi, size)
            # Walk the matches of q when there are fewer of them than documents in
            # the window; else test the window's documents one by one.
            walk_matches = estimate <= _count_between(leaves, first, hi)
            hits = self._hits(q, first, hi, everything=walk_matches)
            ids = [mid for _t, mid in hits]
            for begin in range(0, len(ids), _CHUNK):
                chunk = ids[begin : begin + _CHUNK]
                ok = self._passing(chunk, where)
                out.extend(i for i in chunk if i in ok)
                rejected += len(chunk) - len(ok)
                if len(out) >= self.limit:
                    return out[: self.limit]
            hi = first - 1
            if hi < lo:
                break
            if rejected > _REJECT_SWITCH:
                # Whoosh finds plenty that SQLite rejects: perhaps the SQL side is the
                # selective one. Ask it (bounded) about the rest of the date range.
                older = self._sql_first(q, where, lo, hi + 1, parts)
                if older is not None:
                    return (out + older)[: self.limit]
                rejected = -(1 << 62)  # it is not: stay with Whoosh
            size *= 4
        return out[: self.limit]

    def _sql_first(
        self, q: Any, where: _Sql, start: int | None, end: int | None, parts: Sequence[Node]
    ) -> list[int] | None:
        """If at most :data:`_SQL_FIRST_MAX` messages dated in ``[start, end)`` pass the
        SQL side, those of them that ``q`` matches, newest first; else None."""
        conds = [where, ("+m.index_state = 1", [])]
        if start is not None:
            conds.append(("m.date >= ?", [start]))
        if end is not None:
            conds.append(("m.date < ?", [end]))
        rows = self._ordered(_all(conds), _SQL_FIRST_MAX + 1, parts)
        if len(rows) > _SQL_FIRST_MAX:
            return None
        wanted = {r.id for r in rows}
        found: set[int] = set()
        for leaf in self.leaves():
            targets = [
                d for d, mid in enumerate(leaf.mids) if mid in wanted and not leaf.deleted(d)
            ]
            if not targets:
                continue
            matcher = q.matcher(leaf.searcher, leaf.searcher.boolean_context())
            for d in targets:
                if not matcher.is_active():
                    break
                if matcher.id() < d:
                    matcher.skip_to(d)
                if matcher.is_active() and matcher.id() == d:
                    found.add(leaf.mids[d])
        return [r.id for r in rows if r.id in found][: self.limit]

    def _by_relevance(self, q: Any, where: _Sql, start: int | None, end: int | None) -> list[int]:
        s = self.searcher()
        leaves = self.leaves()
        offsets = [leaf.offset for leaf in leaves]
        k = max(2 * self.limit, 50)
        done = 0
        out: list[int] = []
        while True:
            results = s.search(q, limit=k, terms=False)
            ids = []
            for hit in list(results)[done:]:
                leaf = leaves[bisect.bisect_right(offsets, hit.docnum) - 1]
                local = hit.docnum - leaf.offset
                t = leaf.dates[local]
                if (start is None or t >= start) and (end is None or t < end):
                    ids.append(leaf.mids[local])
            ok = self._passing(ids, where)
            out.extend(i for i in ids if i in ok)
            if len(out) >= self.limit or len(results) < k:
                return out[: self.limit]
            done = len(results)
            k *= 4


def _count_between(leaves: Sequence[_Leaf], lo: int, hi: int) -> int:
    """Documents dated ``lo..hi`` in all segments."""
    return sum(
        bisect.bisect_right(leaf.sorted_dates(), hi) - bisect.bisect_left(leaf.sorted_dates(), lo)
        for leaf in leaves
    )


def _window_start(leaves: Sequence[_Leaf], lo: int, hi: int, size: int) -> int:
    """The earliest date ``t >= lo`` such that ``t..hi`` holds at least ``size``
    documents (or ``lo`` when the whole range holds fewer): a binary search."""
    if _count_between(leaves, lo, hi) <= size:
        return lo
    a, b = lo, hi  # count(b..hi) < size <= count(a..hi)
    while a < b:
        mid = (a + b + 1) // 2
        if _count_between(leaves, mid, hi) >= size:
            a = mid
        else:
            b = mid - 1
    return a


def _all_ids(q: Any, leaf: _Leaf) -> Iterator[int]:
    """The documents of one segment that ``q`` matches, in order.

    Not ``Matcher.all_ids()``: Whoosh's intersection builds a set of *each* side
    there, which for "this word, in these few days" walks every posting of the word.
    Stepping with ``next()`` lets the intersection skip through the posting blocks.
    """
    m = q.matcher(leaf.searcher, leaf.searcher.boolean_context())
    steps = 0
    while m.is_active():
        yield m.id()
        m.next()
        steps += 1
        if steps == 64:  # drop exhausted branches of the matcher tree now and then
            m = m.replace()
            steps = 0


def _positive(node: Node) -> list[Node]:
    """The nodes not under an odd number of negations."""
    out: list[Node] = []
    stack: list[tuple[Node, bool]] = [(node, True)]
    while stack:
        n, pos = stack.pop()
        if pos:
            out.append(n)
        if isinstance(n, And | Or):
            stack.extend((p, pos) for p in n.parts)
        elif isinstance(n, Not):
            stack.append((n.part, not pos))
    return out


def _epoch_range(node: DateRange) -> tuple[int | None, int | None]:
    """Whole seconds: ``date >= start`` and ``date < end`` hold for stored (integer)
    dates exactly when they hold for these."""
    start = None if node.start is None else math.ceil(node.start.timestamp())
    end = None if node.end is None else math.ceil(node.end.timestamp())
    return start, end


# --------------------------------------------------------------------------- results


def account_ids(db: sqlite3.Connection, name: str | None) -> list[int] | None:
    """The ids of account ``name`` (None: all accounts); NotFound with the names."""
    if name is None:
        return None
    rows = list(db.execute("SELECT id, name FROM accounts ORDER BY name"))
    ids = [i for i, n in rows if n == name]
    if not ids:
        names = ", ".join(n for _i, n in rows)
        hint = f" (accounts: {names})" if names else " (there are no accounts yet)"
        raise NotFound(f"no account named {name!r}{hint}")
    return ids


def summaries(db: sqlite3.Connection, ids: Sequence[int]) -> list[MessageSummary]:
    """The same records as ``storage.queries.summaries`` (a test holds them equal),
    read with plain ``sqlite3``: in the order of ``ids``, missing ids skipped."""
    if not ids:
        return []
    param = json.dumps(list(ids))
    msgs = {
        r[0]: r
        for r in db.execute(
            "SELECT m.id, a.name, m.date, m.from_name, m.from_email, m.to_addrs, m.subject,"
            " m.has_attachments, m.snippet, m.thread_id, m.size, m.malformed"
            " FROM messages m JOIN accounts a ON a.id = m.account_id"
            " WHERE m.id IN (SELECT value FROM json_each(?))",
            (param,),
        )
    }
    locs: dict[int, list[tuple[Any, ...]]] = {}
    for r in db.execute(
        "SELECT u.message_id, f.name, u.seen, u.flagged, u.answered, u.draft, u.deleted,"
        " u.keywords FROM message_uids u JOIN folders f ON f.id = u.folder_id"
        " WHERE u.message_id IN (SELECT value FROM json_each(?)) ORDER BY f.name",
        (param,),
    ):
        locs.setdefault(r[0], []).append(r)
    out = []
    for mid in ids:
        row = msgs.get(mid)
        if row is None:
            continue
        here = locs.get(mid, [])
        names = ("seen", "flagged", "answered", "draft", "deleted")
        flags = [n for i, n in enumerate(names) if any(loc[2 + i] for loc in here)]
        keywords = dict.fromkeys(k.lower() for loc in here for k in (loc[7] or "").split() if k)
        out.append(
            MessageSummary(
                id=row[0],
                account=row[1],
                date=None if row[2] is None else datetime.fromtimestamp(int(row[2]), UTC),
                sender=AddressInfo(row[3], row[4]),
                to=_address_infos(row[5]),
                subject=row[6],
                folders=tuple(dict.fromkeys(loc[1] for loc in here)),
                flags=tuple(flags) + tuple(k for k in keywords if k not in flags),
                has_attachments=bool(row[7]),
                snippet=row[8],
                thread_id=row[9],
                size=row[10],
                malformed=bool(row[11]),
            )
        )
    return out


def _address_infos(data: str) -> tuple[AddressInfo, ...]:
    try:
        return tuple(AddressInfo(str(n), str(e)) for n, e in json.loads(data))
    except (ValueError, TypeError):
        return ()


# --------------------------------------------------------------------------- saved searches


@dataclass(frozen=True, slots=True)
class SavedSearchInfo:
    """A named query, shown as a smart folder."""

    name: str
    query: str
    created_at: datetime


def saved_searches(db: sqlite3.Connection) -> list[SavedSearchInfo]:
    return [
        SavedSearchInfo(name, q, datetime.fromtimestamp(int(created), UTC))
        for name, q, created in db.execute(
            "SELECT name, query, created_at FROM saved_searches ORDER BY name COLLATE NOCASE, name"
        )
    ]


def save_search(db: sqlite3.Connection, name: str, q: str, *, now: datetime) -> SavedSearchInfo:
    """Save (or replace the query of) the search ``name``."""
    _begin(db)
    try:
        db.execute(
            "INSERT INTO saved_searches (name, query, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET query = excluded.query",
            (name, q, int(now.timestamp())),
        )
        row = db.execute(
            "SELECT name, query, created_at FROM saved_searches WHERE name = ?", (name,)
        ).fetchone()
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return SavedSearchInfo(row[0], row[1], datetime.fromtimestamp(int(row[2]), UTC))


def delete_saved_search(db: sqlite3.Connection, name: str) -> None:
    _begin(db)
    gone = db.execute("DELETE FROM saved_searches WHERE name = ?", (name,)).rowcount
    db.commit()
    if not gone:
        names = ", ".join(s.name for s in saved_searches(db))
        hint = f" (saved searches: {names})" if names else " (there are none)"
        raise NotFound(f"no saved search named {name!r}{hint}")
