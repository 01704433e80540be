"""The query language (storage/searchquery.py): pure, so tested without any store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.errors import StorageError
from storage.searchquery import (
    MAX_DEPTH,
    MAX_QUERY,
    MAX_TERMS,
    MAX_WORD,
    Account,
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
    fold,
    parse,
    tokenize,
    walk,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)  # a Tuesday, CEST (+2) since Sunday


def p(query: str, now: datetime = NOW) -> Node:
    return parse(query, now=now, tz=BERLIN)


def t(
    *words: str, field: str | None = None, quoted: bool = False, address: str | None = None
) -> Text:
    return Text(tuple(words), field, quoted, address)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


# --------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("Ärger über Straße", ["arger", "uber", "strasse"]),
        ("ÉCOLE naïve façade", ["ecole", "naive", "facade"]),
        ("Zoë Müller", ["zoe", "muller"]),
        ("ﬁle ＡＢＣ", ["file", "abc"]),  # compatibility forms fold too
        ("e-mail foo_bar 3.14", ["e", "mail", "foo", "bar", "3", "14"]),
        ("bob@example.com", ["bob", "example", "com"]),
        ("東京タワー", ["東", "京", "タ", "ワ", "ー"]),
        ("ガイド", ["ガ", "イ", "ド"]),  # dakuten survive the accent folding
        ("ｶﾞｲﾄﾞ", ["ガ", "イ", "ド"]),  # half-width kana: the same words
        ("회의는 내일", ["회", "의", "는", "내", "일"]),  # Hangul stays composed
        ("Привет, мир", ["привет", "мир"]),
        ("", []),
        ("... --- !!!", []),
    ],
)
def test_tokenize(text: str, words: list[str]) -> None:
    assert tokenize(text) == words


def test_fold_is_case_and_accent_insensitive() -> None:
    assert fold("ÅNGSTRÖM") == fold("angstrom") == "angstrom"
    assert fold("ascii Only") == "ascii only"


def test_long_words_are_cut_into_pieces_on_both_sides() -> None:
    word = "x" * (MAX_WORD + 10)
    assert tokenize(word) == ["x" * MAX_WORD, "x" * 10]
    assert p(word) == t("x" * MAX_WORD, "x" * 10)


# --------------------------------------------------------------------------- structure


def test_words_and_phrases() -> None:
    assert p("hello") == t("hello")
    assert p("Hello World") == And((t("hello"), t("world")))
    assert p('"quarterly report"') == t("quarterly", "report", quoted=True)
    assert p("e-mail") == t("e", "mail")  # a word that cuts in two is a phrase
    assert p("東京") == t("東", "京")
    assert p("hello hello") == t("hello")  # duplicates in an AND collapse


def test_or_binds_tighter_than_and_as_in_gmail() -> None:
    assert p("a b OR c") == And((t("a"), Or((t("b"), t("c")))))
    assert p("a OR b c") == And((Or((t("a"), t("b"))), t("c")))
    assert p("(a b) OR c") == Or((And((t("a"), t("b"))), t("c")))
    assert p("a OR b OR c") == Or((t("a"), t("b"), t("c")))
    assert p("a | b") == Or((t("a"), t("b")))
    assert p("a AND b") == And((t("a"), t("b")))
    assert p("a or b") == And((t("a"), t("or"), t("b")))  # lower-case 'or' is a word


def test_negation_and_parentheses() -> None:
    assert p("-spam") == Not(t("spam"))
    assert p("--spam") == t("spam")
    assert p("report -(draft OR old)") == And((t("report"), Not(Or((t("draft"), t("old"))))))
    assert p("a-b") == t("a", "b")  # '-' inside a word is not negation
    assert p("x -") == t("x")  # a lone '-' has nothing to negate: punctuation
    assert p("((a))") == t("a")


def test_field_operators() -> None:
    assert p("from:alice") == t("alice", field="from")
    assert p("FROM:Alice") == t("alice", field="from")
    assert p("from:Alice@Example.com") == t(
        "alice", "example", "com", field="from", address="alice@example.com"
    )
    assert p("from:example.com") == t("example", "com", field="from")
    assert p("bob@x.org") == t("bob", "x", "org", address="bob@x.org")
    assert p('to:"Bob Jones"') == t("bob", "jones", field="to", quoted=True)
    assert p("cc:carol subject:lunch filename:pdf") == And(
        (t("carol", field="cc"), t("lunch", field="subject"), t("pdf", field="filename"))
    )
    assert p("subject:(dinner OR movie)") == Or(
        (t("dinner", field="subject"), t("movie", field="subject"))
    )
    assert p('subject:(dinner "late movie")') == And(
        (t("dinner", field="subject"), t("late", "movie", field="subject", quoted=True))
    )


def test_unknown_operators_are_text_as_in_gmail() -> None:
    assert p("ticket:1234") == t("ticket", "1234")
    assert p("12:30") == t("12", "30")
    assert p("Re: meeting") == And((t("re"), t("meeting")))
    assert p("https://example.com/x") == t("https", "example", "com", "x")


def test_flags_folders_and_has() -> None:
    assert p("is:unread") == Flag("seen", False)
    assert p("is:read") == Flag("seen", True)
    assert p("is:starred") == Flag("flagged", True)
    assert p("IS:Unstarred") == Flag("flagged", False)
    assert p("is:answered") == Flag("answered", True)
    assert p("is:draft") == Flag("draft", True)
    assert p("in:inbox") == InFolder("inbox")
    assert p('in:"Sent Items"') == InFolder("Sent Items")
    assert p("label:Projekte/Übersicht") == InFolder("Projekte/Übersicht")
    assert p("has:attachment") == HasAttachment()
    assert p("account:work") == Account("work")
    assert p("-is:read has:attachment") == And((Not(Flag("seen", True)), HasAttachment()))


def test_columns_are_kept_for_later_errors_but_not_compared() -> None:
    node = p("x in:Archive")
    assert isinstance(node, And)
    folder = node.parts[1]
    assert isinstance(folder, InFolder)
    assert folder.column == 3
    assert folder == InFolder("Archive")


# --------------------------------------------------------------------------- dates and sizes


def test_after_and_before_are_local_midnight() -> None:
    # Europe/Berlin: +1 in winter, +2 from 2026-03-29 02:00 (DST).
    assert p("after:2026-03-28") == DateRange(start=datetime(2026, 3, 27, 23, 0, tzinfo=UTC))
    assert p("after:2026-03-30") == DateRange(start=datetime(2026, 3, 29, 22, 0, tzinfo=UTC))
    assert p("before:2026-07-15") == DateRange(end=datetime(2026, 7, 14, 22, 0, tzinfo=UTC))
    # The DST day itself starts at midnight +1.
    assert p("after:2026-03-29") == DateRange(start=local(2026, 3, 29))
    assert local(2026, 3, 29) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["2026-03-05", "2026/03/05", "2026/3/5", "2026-3-5", "2026.03.05", "03/05/2026"]
)
def test_date_forms(value: str) -> None:
    assert p(f"after:{value}") == DateRange(start=local(2026, 3, 5))


def test_epoch_seconds_and_synonyms() -> None:
    assert p("after:1774000000") == DateRange(start=datetime.fromtimestamp(1774000000, UTC))
    assert p("newer:2026-01-02") == p("after:2026-01-02")
    assert p("older:2026-01-02") == p("before:2026-01-02")


def test_relative_dates() -> None:
    assert p("newer_than:2d") == DateRange(start=NOW - timedelta(days=2))
    assert p("older_than:3w") == DateRange(end=NOW - timedelta(weeks=3))
    # Months and years are calendar months in local time; the day is clamped.
    assert p("newer_than:1m") == DateRange(start=local(2026, 2, 28, 12, 0))  # 31 Mar - 1m
    assert p("older_than:1y", now=datetime(2028, 2, 29, 12, tzinfo=UTC)) == DateRange(
        end=local(2027, 2, 28, 13, 0)
    )
    assert p("newer_than:13m") == DateRange(start=local(2025, 2, 28, 12, 0))
    assert p("NEWER_THAN:7D") == DateRange(start=NOW - timedelta(days=7))


@pytest.mark.parametrize(
    ("query", "node"),
    [
        ("larger:5M", SizeRange(low=5 * 1024 * 1024 + 1)),
        ("larger:200K", SizeRange(low=200 * 1024 + 1)),
        ("larger:1.5m", SizeRange(low=1572864 + 1)),
        ("larger:10MB", SizeRange(low=10 * 1024 * 1024 + 1)),
        ("size:1000", SizeRange(low=1001)),
        ("smaller:2k", SizeRange(high=2048)),
        ("smaller:1G", SizeRange(high=1 << 30)),
        ("smaller:300", SizeRange(high=300)),
    ],
)
def test_sizes(query: str, node: Node) -> None:
    assert p(query) == node


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("query", "column", "fragment"),
    [
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ('from:x "open phrase', 8, "quote at column 8 is never closed"),
        ("(a OR b", 1, "'(' at column 1 is never closed"),
        ("a)", 2, "')' at column 2 has no matching '('"),
        ("()", 2, "empty parentheses"),
        ("OR a", 1, "OR at column 1 has nothing before it"),
        ("a OR", 3, "OR at column 3 has nothing after it"),
        ("a AND", 3, "AND at column 3 needs something on each side"),
        ("x after:2026-13-01", 3, "not a date: 'after:2026-13-01' at column 3"),
        ("before:yesterday", 1, "not a date"),
        ("after:2026-02-30", 1, "not a date"),
        ("is:bogus", 1, "unknown 'is:bogus' at column 1"),
        ("has:drive", 1, "unknown 'has:drive'"),
        ("larger:big", 1, "not a size: 'larger:big'"),
        ("newer_than:3x", 1, "not a time span"),
        ("older_than:999999y", 1, "too far back"),
        ("from:", 1, "'from:' at column 1 needs a value"),
        ("a in:", 3, "'in:' at column 3 needs a value"),
        ("in:(inbox sent)", 1, "takes one value, not a group"),
        ('from:"!!"', 1, "nothing searchable in 'from:\"!!\"'"),
        ("subject:(...)", 1, "nothing searchable in subject:(...)"),
        ("- !", 0, "nothing to search for in '- !'"),
        ("-!", 1, "nothing searchable after '-' at column 1"),
    ],
)
def test_errors_say_where_and_why(query: str, column: int, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        p(query)
    assert fragment in str(info.value)
    assert info.value.column == column
    assert "\n" not in str(info.value)
    assert isinstance(info.value, StorageError)


def test_limits() -> None:
    with pytest.raises(QueryError, match="too long"):
        p("a" * (MAX_QUERY + 1))
    with pytest.raises(QueryError, match="too deeply nested"):
        p("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(QueryError, match="too deeply nested"):
        p("-(" * (MAX_DEPTH // 2 + 1) + "a" + ")" * (MAX_DEPTH // 2 + 1))
    with pytest.raises(QueryError, match="too many terms"):
        p(" ".join(f"w{i}" for i in range(MAX_TERMS + 1)))
    p(" ".join(f"w{i}" for i in range(MAX_TERMS)))  # exactly the limit is fine


def test_long_values_are_cut_short_in_messages() -> None:
    with pytest.raises(QueryError) as info:
        p("larger:" + "9" * 400)
    assert len(str(info.value)) < 120
    assert "…" in str(info.value)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse("x", now=datetime(2026, 1, 1), tz=BERLIN)


def test_walk_lists_every_node() -> None:
    tree = p("a (b OR -c) is:unread")
    kinds = [type(n).__name__ for n in walk(tree)]
    assert kinds == ["And", "Text", "Or", "Text", "Not", "Text", "Flag"]


# --------------------------------------------------------------------------- fuzzing

_PIECES = st.sampled_from(
    [
        "from:", "to:", "cc:", "subject:", "filename:", "in:", "label:", "is:", "has:",
        "after:", "before:", "newer_than:", "older_than:", "larger:", "smaller:", "size:",
        "account:", "OR", "AND", "|", "(", ")", "-", '"', "\u201c", "\u201d", ":", " ",
        "unread", "starred", "attachment", "2026-03-05", "7d", "5M", "x", "Übersicht",
        "東京", "a@b.c", "\x00", "\t", "\u200b", "9" * 30,
    ]
)  # fmt: skip


def _check(query: str) -> None:
    error: QueryError | None = None
    try:
        node = parse(query, now=NOW, tz=BERLIN)
    except QueryError as exc:
        error = exc
    if error is not None:
        assert "\n" not in str(error)
        assert 0 <= error.column <= len(query) + 1
        return
    assert walk(node)  # a tree came back


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_any_text(query: str) -> None:
    _check(query)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_fuzz_operator_soup(query: str) -> None:
    _check(query)


@settings(max_examples=50, deadline=None)
@given(st.lists(_PIECES, min_size=200, max_size=400).map("".join))
def test_fuzz_long_soup_stays_fast(query: str) -> None:
    import time

    start = time.perf_counter()
    _check(query[:MAX_QUERY])
    assert time.perf_counter() - start < 0.5
