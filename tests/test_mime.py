"""storage.mime: byte-table tests for each public function, plus property tests that feed
garbled messages to the parsers (they must never raise on message content)."""

from __future__ import annotations

import base64
import binascii
import os
import quopri
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import htmltext
from storage.mime import (
    Address,
    Attachment,
    Content,
    Envelope,
    decode_header_value,
    extract_content,
    html_to_text,
    normalize_subject,
    parse_envelope,
    part_bytes,
    sanitize_filename,
)

PROPS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def message(headers: str | bytes, body: str | bytes = "", eol: bytes = b"\r\n") -> bytes:
    """A message from a header block and a body written with \\n line ends."""
    head = headers.encode() if isinstance(headers, str) else headers
    data = body.encode() if isinstance(body, str) else body
    return (head.strip(b"\n") + b"\n\n" + data).replace(b"\n", eol)


def multipart(subtype: str, boundary: str, *parts: str, headers: str = "") -> str:
    body = "".join(f"--{boundary}\n{part}\n" for part in parts) + f"--{boundary}--\n"
    return f'{headers}Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n{body}'


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode()


# --------------------------------------------------------------------------- RFC 2047


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"),
        ("=?utf-8?b?w6k=?=", "é"),
        ("=?UTF-8?B?w6k?=", "é"),  # missing padding
        ("=?utf-8?q?hello_world?=", "hello world"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between adjacent words goes
        ("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"),  # also when folded
        ("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"),  # text between words stays
        ("=?utf-8?q?=E2=82?= =?utf-8?q?=AC?=", "€"),  # a character split across two words
        ("=?utf-8?b?4oKs?==?utf-8?b?4oKs?=", "€€"),  # glued words
        ("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
        ("=?gb2312?B?1tDOxNPKvP4=?=", "中文邮件"),
        ("=?ks_c_5601-1987?B?x9Gxub7u?=", "한국어"),
        ("=?koi8-r?B?89DJ08/LLmRvYw==?=", "Список.doc"),
        ("=?windows-1251?Q?=CF=F0=E8=E2=E5=F2?=", "Привет"),
        ("=?x-unknown?q?caf=C3=A9?=", "café"),  # unknown charset: UTF-8 ...
        ("=?utf-8-bogus?q?caf=E9?=", "café"),  # ... then windows-1252
        ("=?utf-8*en?q?hi?=", "hi"),  # RFC 2231 language suffix
        ('"=?utf-8?q?J=C3=B6rg?=" <j@example.com>', '"Jörg" <j@example.com>'),  # inside quotes
        ("no encoded words here", "no encoded words here"),
        ("=?utf-8?q?broken", "=?utf-8?q?broken"),
        ("", ""),
    ],
)
def test_decode_header_value_rfc2047(raw: str, expected: str) -> None:
    assert decode_header_value(raw) == expected
    assert decode_header_value(raw.encode()) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Caf\xc3\xa9", "Café"),  # raw UTF-8
        (b"Caf\xe9 cr\xe8me", "Café crème"),  # raw latin-1 / windows-1252
        (b"\x93quoted\x94", "\u201cquoted\u201d"),  # windows-1252 smart quotes
        (b"\x1b$BF|K\\8l\x1b(B", "日本語"),  # raw ISO-2022-JP
        (b"\x81\x8d", "\x81\x8d"),  # undefined in windows-1252: latin-1, no exception
    ],
)
def test_decode_header_value_raw_8bit(raw: bytes, expected: str) -> None:
    assert decode_header_value(raw) == expected


# --------------------------------------------------------------------------- addresses


def addresses(value: bytes) -> tuple[tuple[str, str], ...]:
    env = parse_envelope(b"To: " + value + b"\r\nSubject: x\r\n\r\nbody")
    return tuple((a.name, a.email) for a in env.to)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"John Doe <john@example.com>", (("John Doe", "john@example.com"),)),
        (b"john@example.com", (("", "john@example.com"),)),
        (b"<john@example.com>", (("", "john@example.com"),)),
        (b"  < john@example.com >  ", (("", "john@example.com"),)),
        (
            b'"Doe, John" <john@example.com>, jane@example.com',
            (("Doe, John", "john@example.com"), ("", "jane@example.com")),
        ),
        (b"john@example.com (John Doe)", (("John Doe", "john@example.com"),)),
        (b'"Escaped \\"Q\\" Name" <e@example.com>', (('Escaped "Q" Name', "e@example.com"),)),
        (b"'Single Quoted' <s@example.com>", (("Single Quoted", "s@example.com"),)),
        (b"=?utf-8?q?J=C3=B6rg?= <j@example.com>", (("Jörg", "j@example.com"),)),
        (b'"=?utf-8?q?J=C3=B6rg?=" <j@example.com>', (("Jörg", "j@example.com"),)),
        (b"=?utf-8?b?RG9lLCBKb2hu?= <j@example.com>", (("Doe, John", "j@example.com"),)),
        (b"J\xc3\xbcrgen <j@example.com>", (("Jürgen", "j@example.com"),)),
        (b"undisclosed-recipients:;", ()),
        (
            b"Team: a@example.com, B <b@example.com>;, c@example.com",
            (("", "a@example.com"), ("B", "b@example.com"), ("", "c@example.com")),
        ),
        (b"a@example.com,, ,b@example.com", (("", "a@example.com"), ("", "b@example.com"))),
        (b"Broken <j@example.com", (("Broken", "j@example.com"),)),
        (b"Name Only", (("Name Only", ""),)),
        (b"root", (("", "root"),)),
        (b"Joe <@relay.example:joe@example.com>", (("Joe", "joe@example.com"),)),
        (
            b"A <a@example.com>,\r\n\tB <b@example.com>",
            (("A", "a@example.com"), ("B", "b@example.com")),
        ),
        (b"", ()),
    ],
)
def test_address_lists(value: bytes, expected: tuple[tuple[str, str], ...]) -> None:
    assert addresses(value) == expected


def test_address_headers_repeated_and_all_fields() -> None:
    raw = message(
        "From: Ann <ann@example.com>\n"
        "To: b@example.com\nTo: c@example.com\n"
        "Cc: D <d@example.com>\nBcc: e@example.com\nReply-To: list@example.com\n"
        "Subject: x"
    )
    env = parse_envelope(raw)
    assert env.from_ == (Address("Ann", "ann@example.com"),)
    assert [a.email for a in env.to] == ["b@example.com", "c@example.com"]
    assert env.cc == (Address("D", "d@example.com"),)
    assert env.bcc == (Address("", "e@example.com"),)
    assert env.reply_to == (Address("", "list@example.com"),)


# --------------------------------------------------------------------------- dates


def date_of(value: str) -> tuple[datetime | None, tuple[str, ...]]:
    env = parse_envelope(message(f"Date: {value}\nSubject: x"))
    return env.date, env.defects


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 14 Nov 2017 10:00:00 +0100", datetime(2017, 11, 14, 9, 0, tzinfo=UTC)),
        ("14 Nov 2017 10:00:00 -0500", datetime(2017, 11, 14, 15, 0, tzinfo=UTC)),
        ("Mon,  6 Nov 2017 16:41:07 +0000 (UTC)", datetime(2017, 11, 6, 16, 41, 7, tzinfo=UTC)),
        ("Tue, 14 Nov 2017 10:00 EST", datetime(2017, 11, 14, 15, 0, tzinfo=UTC)),
        ("Tue, 14 Nov 17 10:00:00 PDT", datetime(2017, 11, 14, 17, 0, tzinfo=UTC)),
        ("Tue, 14 Nov 2017 10:00:00 GMT", datetime(2017, 11, 14, 10, 0, tzinfo=UTC)),
        ("Tue, 14 Nov 2017 10:00:00 -0000", datetime(2017, 11, 14, 10, 0, tzinfo=UTC)),
        ("Tue, 14 Nov 2017 10:00:00 A", datetime(2017, 11, 14, 10, 0, tzinfo=UTC)),  # military
        ("Tue, 14 Nov 2017 10:00:00", datetime(2017, 11, 14, 10, 0, tzinfo=UTC)),  # no zone
        ("tue, 14 nov 2017 10:00:00 +0100", datetime(2017, 11, 14, 9, 0, tzinfo=UTC)),
        ("Sat, 1 Jan 2000 23:59:60 +0000", datetime(2000, 1, 1, 23, 59, 59, tzinfo=UTC)),
        ("Mon Jan  1 10:00:00 2001", datetime(2001, 1, 1, 10, 0, tzinfo=UTC)),  # asctime
        ("2017-11-14T10:00:00+01:00", datetime(2017, 11, 14, 9, 0, tzinfo=UTC)),  # ISO 8601
        ("Thu, 1 Jan 99 00:00:00 +0000", datetime(1999, 1, 1, tzinfo=UTC)),
    ],
)
def test_dates(value: str, expected: datetime) -> None:
    date, defects = date_of(value)
    assert date == expected
    assert date is not None
    assert date.utcoffset() == timedelta(0)
    assert "bad date" not in defects


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 15 Dec 2010    59:10 -0500",
        "Pn, 29 paX 2007 21:13:00 +0100",
        "Tue, 31 Feb 2017 10:00:00 +0000",
        "Whenever",
        "Tue, 14 Nov 99999 10:00:00 +0000",
    ],
)
def test_bad_dates(value: str) -> None:
    date, defects = date_of(value)
    assert date is None
    assert "bad date" in defects


def test_missing_or_empty_date_is_not_a_defect() -> None:
    assert parse_envelope(message("Subject: x")).date is None
    env = parse_envelope(message("Date: \nSubject: x"))
    assert env.date is None
    assert env.defects == ()


# --------------------------------------------------------------------------- msg-ids


@pytest.mark.parametrize(
    ("headers", "message_id", "in_reply_to", "references"),
    [
        (
            "Message-ID: <m1@example.com>\nIn-Reply-To: <p@example.com>\n"
            "References: <a@example.com> <b@example.com>\n <p@example.com>",
            "m1@example.com",
            ("p@example.com",),
            ("a@example.com", "b@example.com", "p@example.com"),
        ),
        (
            "Message-Id:  m2@example.com \nReferences: <a@x> <b@x> <a@x>",
            "m2@example.com",
            (),
            ("a@x", "b@x"),
        ),
        (
            'In-Reply-To: <id@x> (John\'s message of "Mon, 1 Jan 2024")\nReferences: a@x b@x',
            None,
            ("id@x",),
            ("a@x", "b@x"),
        ),
        ("Message-ID: <>\nReferences:", None, (), ()),
        ("Message-ID: <abc\n @example.com>", "abc@example.com", (), ()),
        ("MESSAGE-ID: <upper@example.com>", "upper@example.com", (), ()),
    ],
)
def test_message_ids(
    headers: str, message_id: str | None, in_reply_to: tuple[str, ...], references: tuple[str, ...]
) -> None:
    env = parse_envelope(message(headers + "\nSubject: x"))
    assert env.message_id == message_id
    assert env.in_reply_to == in_reply_to
    assert env.references == references


def test_list_headers() -> None:
    env = parse_envelope(
        message(
            'List-Id: "Maven Developers List" <dev.maven.apache.org>\n'
            "List-Unsubscribe: <mailto:dev-unsubscribe@maven.apache.org>,\n"
            "  <https://example.org/unsub?x=1>\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
        )
    )
    assert env.list_id == "dev.maven.apache.org"
    assert env.list_unsubscribe == (
        "<mailto:dev-unsubscribe@maven.apache.org>, <https://example.org/unsub?x=1>"
    )
    assert env.list_unsubscribe_post == "List-Unsubscribe=One-Click"
    bare = parse_envelope(message("List-Id: plain.list.example\nSubject: x"))
    assert bare.list_id == "plain.list.example"
    none = parse_envelope(message("Subject: x"))
    assert none.list_id is none.list_unsubscribe is none.list_unsubscribe_post is None


# --------------------------------------------------------------------------- subjects


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Subject: Hello", "Hello"),
        (b"Subject: =?utf-8?q?Hello?=\r\n =?utf-8?q?_World?=", "Hello World"),
        (b"Subject: a\t  b\r\n   c  ", "a b c"),
        (b"Subject: Caf\xc3\xa9 and Caf\xe9", None),  # mixed 8-bit: must not raise
        (b"Subject: \x1b$BF|K\\8l\x1b(B", "日本語"),
        (b"Subject: nul\x00byte", "nul byte"),
        (b"Subject:", ""),
        (b"X-Other: 1", ""),
    ],
)
def test_envelope_subject(raw: bytes, expected: str | None) -> None:
    env = parse_envelope(raw + b"\r\nFrom: a@example.com\r\n\r\nbody")
    if expected is not None:
        assert env.subject == expected
    assert "\n" not in env.subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("Re: Re: Fwd: Hello", "hello"),
        ("RE[2]: Hello", "hello"),
        ("Re(3): Hello", "hello"),
        ("Re^2: Hello", "hello"),
        ("AW: WG: Antw: SV: VS: Fw: FWD: Hello", "hello"),
        ("Re:Re:Hello", "hello"),
        ("[dev] Re: [PATCH 1/2] Hello", "hello"),
        ("Fwd: Re: [list] RE: Hello", "hello"),
        ("回复：你好", "你好"),
        ("Re:   Multiple   spaces\t here ", "multiple spaces here"),
        ("Rebuild the index", "rebuild the index"),
        ("Area 51", "area 51"),
        ("Hello (fwd)", "hello"),
        ("Re: ", ""),
        ("", ""),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


# --------------------------------------------------------------------------- filenames


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("", ""),
        ("../../.bashrc", "bashrc"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("/etc/passwd", "passwd"),
        ("dir/", "dir"),
        ("..", ""),
        ("...", ""),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1.tar.gz", "_com1.tar.gz"),
        ("LPT9", "_LPT9"),
        ("console.txt", "console.txt"),
        ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("tab\tnew\nline\x00.txt", "tabnew line.txt"),  # a newline unfolds to a space
        ("  spaced   out  .txt  ", "spaced out .txt"),
        ("file.", "file"),
        ("=?utf-8?q?na=C3=AFve.txt?=", "naïve.txt"),
        ("=?UTF-8?B?0J7RgtGH0ZHRgi5wZGY=?=", "Отчёт.pdf"),
        ("UTF-8''na%C3%AFve%20file.txt", "naïve file.txt"),
        ("iso-8859-1'en'caf%E9.txt", "café.txt"),
        ("cafe\u0301.txt", "café.txt"),  # NFD -> NFC
    ],
)
def test_sanitize_filename(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize("name", ["a" * 300 + ".pdf", "é" * 150 + ".txt", "日本" * 80 + ".tar"])
def test_sanitize_filename_keeps_extension_when_truncating(name: str) -> None:
    result = sanitize_filename(name)
    assert len(result.encode("utf-8")) <= 200
    assert result.endswith(name.rsplit(".", 1)[1])
    assert result.startswith(name[0])


def test_sanitize_filename_long_without_extension() -> None:
    result = sanitize_filename("x" * 500)
    assert result == "x" * 200


# --------------------------------------------------------------------------- html_to_text


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("", ""),
        ("plain words", "plain words"),
        ("<p>a</p><p>b</p>", "a\n\nb"),
        ("<div>a</div><div>b</div>", "a\nb"),
        ("a<br>b<br/><br>c", "a\nb\n\nc"),
        ("a \n\n   b\t c", "a b c"),
        (
            "<html><head><title>T</title><style>p{color:red}</style></head>"
            "<body><script>alert(1)</script><p>visible</p><noscript>no</noscript></body></html>",
            "visible",
        ),
        ("&amp; &lt;tag&gt; &eacute; &#8364; &#x263A; &nbsp;x", "& <tag> é € ☺ x"),
        ('<a href="http://example.com/x">click here</a> now', "click here now"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("<table><tr><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>", "1 2\n3"),
        ("<p>reply</p><blockquote><p>quoted</p></blockquote>", "reply\n\n> quoted"),
        ("<pre>x  y\n  z</pre>", "x  y\n  z"),
        ("<p>unclosed <b>bold", "unclosed bold"),
        ("pre\u200bheader\u200c&zwnj;text\u00ad", "preheadertext"),
        ("<h1>Title</h1>body", "Title\n\nbody"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_to_text_falls_back_when_the_parser_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(html: str) -> None:
        raise RuntimeError("parser exploded")

    monkeypatch.setattr(htmltext, "LexborHTMLParser", broken)
    html = "<p>a &amp; b</p><script>x()</script><div>next</div>"
    assert html_to_text(html) == "a & b\nnext"


# --------------------------------------------------------------------------- content

ALT = multipart(
    "alternative",
    "alt-1",
    "Content-Type: text/plain; charset=utf-8\n\nPlain version.",
    "Content-Type: text/html; charset=utf-8\n\n<p>HTML <b>version</b>.</p>",
    headers="From: a@example.com\nSubject: alt\n",
)


def test_alternative_prefers_plain_text_and_keeps_html() -> None:
    content = extract_content(message(ALT))
    assert content.text == "Plain version."
    assert content.html is not None
    assert "<b>version</b>" in content.html
    assert content.attachments == ()
    assert content.defects == ()


def test_alternative_with_blank_plain_part_uses_html() -> None:
    raw = message(
        multipart(
            "alternative",
            "b",
            "Content-Type: text/plain\n\n   \n",
            "Content-Type: text/html\n\n<p>Only <i>HTML</i> here</p>",
        )
    )
    assert extract_content(raw).text == "Only HTML here"


def test_html_only_message() -> None:
    raw = message(
        "Content-Type: text/html; charset=iso-8859-1",
        b"<html><body><p>Caf\xe9 &amp; cr\xe8me</p><script>x()</script></body></html>",
    )
    content = extract_content(raw)
    assert content.text == "Café & crème"
    assert content.html is not None
    assert "Café" in content.html
    assert content.snippet == "Café & crème"


def test_html_charset_from_meta_tag() -> None:
    raw = message(
        "Content-Type: text/html",
        b'<html><head><meta charset="windows-1251"></head><body>'
        + "Привет".encode("cp1251")
        + b"</body></html>",
    )
    assert extract_content(raw).text == "Привет"


def test_mixed_keeps_every_inline_text_part_in_order() -> None:
    raw = message(
        multipart(
            "mixed",
            "m",
            ALT.split("\n", 2)[2],
            "Content-Type: text/plain\n\n-- \nlist footer",
        )
    )
    content = extract_content(raw)
    assert content.text == "Plain version.\n\n-- \nlist footer"
    assert content.html is not None
    assert "list footer" in content.html  # shown under the HTML part in the reader


def test_cid_inline_image_in_related() -> None:
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
    raw = message(
        multipart(
            "related",
            "rel",
            'Content-Type: text/html\n\n<p>Logo: <img src="cid:logo@example.com"></p>',
            "Content-Type: image/png; name=logo.png\nContent-Transfer-Encoding: base64\n"
            "Content-ID: <logo@example.com>\n\n" + b64(png),
            "Content-Type: image/gif\nContent-Transfer-Encoding: base64\n"
            "Content-ID: <unused@example.com>\n\n" + b64(b"GIF89a"),
        )
    )
    content = extract_content(raw)
    assert content.text == "Logo:"
    logo, unused = content.attachments
    assert logo == Attachment(
        part_id="2",
        filename="logo.png",
        content_type="image/png",
        size=len(png),
        content_id="logo@example.com",
        inline=True,
    )
    assert unused.inline is False
    assert unused.content_id == "unused@example.com"
    assert part_bytes(raw, "2") == png


def test_attachment_filenames_rfc2231() -> None:
    raw = message(
        multipart(
            "mixed",
            "m",
            "Content-Type: text/plain\n\nSee attached.",
            "Content-Type: application/pdf\n"
            "Content-Disposition: attachment; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.pdf",
            "Content-Type: application/octet-stream\n"
            "Content-Disposition: attachment;\n"
            " filename*0*=UTF-8''%E6%97%A5%E6%9C;\n filename*1*=%AC.txt",
            'Content-Type: text/plain; name="long"\n'
            'Content-Disposition: attachment; filename*0="very"; filename*1="long.txt"',
            'Content-Type: image/png; name="=?utf-8?q?=C3=BCber.png?="',
            "Content-Type: application/x-sh\n"
            'Content-Disposition: attachment; filename="../../.bashrc"',
        )
    )
    content = extract_content(raw)
    assert content.text == "See attached."
    assert [a.filename for a in content.attachments] == [
        "naïve résumé.pdf",
        "日本.txt",
        "verylong.txt",
        "über.png",
        "bashrc",
    ]
    assert [a.part_id for a in content.attachments] == ["2", "3", "4", "5", "6"]


NESTED = multipart(
    "mixed",
    "outer",
    multipart(
        "alternative",
        "alt",
        "Content-Type: text/plain\n\nHello plain",
        multipart(
            "related",
            "rel",
            '<html><img src="cid:i1"></html>'.join(["Content-Type: text/html\n\n", ""]),
            "Content-Type: image/gif\nContent-ID: <i1>\nContent-Transfer-Encoding: base64\n\n"
            + b64(b"GIF89a-image"),
        ),
    ),
    "Content-Type: application/pdf; name=doc.pdf\nContent-Transfer-Encoding: base64\n\n"
    + b64(b"%PDF-1.4 fake"),
    "Content-Type: message/rfc822\n\n"
    + multipart(
        "mixed",
        "inner",
        "Content-Type: text/plain\n\nInner text",
        "Content-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n"
        + b64(b"PK\x03\x04zip"),
        headers="From: inner@example.com\nSubject: inner\n",
    ),
    headers="From: outer@example.com\nSubject: outer\n",
)


def test_imap_part_numbers_and_message_rfc822() -> None:
    raw = message(NESTED)
    content = extract_content(raw)
    assert content.text == "Hello plain"
    assert [(a.part_id, a.content_type) for a in content.attachments] == [
        ("1.2.2", "image/gif"),
        ("2", "application/pdf"),
        ("3", "message/rfc822"),
    ]
    assert content.attachments[0].inline is True
    assert part_bytes(raw, "1.1") == b"Hello plain"
    assert part_bytes(raw, "1.2.2") == b"GIF89a-image"
    assert part_bytes(raw, "2") == b"%PDF-1.4 fake"
    embedded = part_bytes(raw, "3")
    assert embedded is not None
    assert parse_envelope(embedded).subject == "inner"
    assert part_bytes(raw, "3.1") == b"Inner text"
    assert part_bytes(raw, "3.2") == b"PK\x03\x04zip"
    for missing in ("4", "1.3", "3.3", "2.1", "1.1.1", "0", "", "1.", "x", "3.1.1"):
        assert part_bytes(raw, missing) is None, missing


def test_message_without_own_text_shows_the_forwarded_one() -> None:
    raw = message(
        "Subject: fwd\nContent-Type: message/rfc822",
        message("From: x@example.com\nSubject: original", "Forwarded words.", eol=b"\n"),
    )
    content = extract_content(raw)
    assert content.text == "Forwarded words."
    assert [a.content_type for a in content.attachments] == ["message/rfc822"]
    assert part_bytes(raw, "1.1") == b"Forwarded words."


def test_single_part_numbering() -> None:
    raw = message("Content-Type: application/pdf\nContent-Transfer-Encoding: base64", b64(b"%PDF"))
    content = extract_content(raw)
    assert [(a.part_id, a.size) for a in content.attachments] == [("1", 4)]
    assert part_bytes(raw, "1") == b"%PDF"
    assert part_bytes(raw, "2") is None


@pytest.mark.parametrize("size", [0, 1, 2, 3, 57, 58, 1000, 100_001])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_part_bytes_round_trip_and_exact_size(size: int, eol: bytes) -> None:
    payload = os.urandom(size)
    text_payload = payload.replace(b"\r", b"").replace(b"\n", b"")  # QP line ends are CRLF
    raw = message(
        multipart(
            "mixed",
            "----=_Part_1_2.3",
            "Content-Type: text/plain\n\nhi",
            "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
            + b64(payload),
            "Content-Type: application/octet-stream\nContent-Transfer-Encoding: quoted-printable"
            "\n\n" + quopri.encodestring(text_payload).decode("latin-1"),
        ).encode("latin-1"),
        eol=eol,
    )
    content = extract_content(raw)
    assert [a.size for a in content.attachments] == [size, len(text_payload)]
    assert part_bytes(raw, "2") == payload
    assert part_bytes(raw, "3") == text_payload


def test_uuencode() -> None:
    data = b"hello uuencoded world\n" * 3
    lines = "".join(binascii.b2a_uu(data[i : i + 45]).decode() for i in range(0, len(data), 45))
    uu = f"begin 644 hello.txt\n{lines}`\nend\n"
    raw = message(
        multipart(
            "mixed",
            "b",
            f"Content-Type: text/plain\n\nSee below.\n\n{uu}\nBye.",
            "Content-Type: application/octet-stream; name=hello.txt\n"
            f"Content-Transfer-Encoding: x-uuencode\n\n{uu}",
        )
    )
    content = extract_content(raw)
    assert content.text == "See below.\n\n[uuencoded file: hello.txt]\n\nBye."
    assert part_bytes(raw, "2") == data
    assert content.attachments[0].size == len(data)


@pytest.mark.parametrize(
    ("charset", "body", "expected"),
    [
        ("utf-8", "Grüße €".encode(), "Grüße €"),
        ("iso-8859-1", b"Gr\xfc\xdfe \x93q\x94", "Grüße \u201cq\u201d"),  # really windows-1252
        ("windows-1252", b"\x80 5", "€ 5"),
        ("koi8-r", "Привет".encode("koi8-r"), "Привет"),
        ("iso-2022-jp", "日本語のメール".encode("iso2022_jp"), "日本語のメール"),
        ("gb2312", "中文邮件".encode("gb18030"), "中文邮件"),
        ("ks_c_5601-1987", "한국어".encode("cp949"), "한국어"),
        ("shift_jis", "日本語".encode("cp932"), "日本語"),
        ("x-unknown", "Grüße".encode(), "Grüße"),
        ("utf-8-bogus", b"Gr\xfc\xdfe", "Grüße"),
        ('"UTF-8"', "Grüße".encode(), "Grüße"),
        ("3Dutf-8", "Grüße".encode(), "Grüße"),  # QP damage: charset=3Dutf-8
        ("us-ascii", "Grüße".encode(), "Grüße"),  # lies about 8-bit content
        ("utf-8", b"ok \xc3\xa9 broken \xff end", "ok é broken \ufffd end"),
    ],
)
def test_body_charsets(charset: str, body: bytes, expected: str) -> None:
    raw = message(f"Content-Type: text/plain; charset={charset}", body)
    assert extract_content(raw).text == expected


def test_iso_2022_jp_without_charset_and_with_vendor_emoji() -> None:
    undeclared = message("Subject: x", "日本語".encode("iso2022_jp"))
    assert extract_content(undeclared).text == "日本語"
    emoji = message(
        "Content-Type: text/plain; charset=iso-2022-jp",
        b'\x1b$B$"$1$^$7$F!*y_\x1b(B',  # KDDI emoji in the JIS range: replaced
    )
    assert extract_content(emoji).text == "あけまして！\ufffd"


def test_8bit_headers_use_the_body_charset_as_a_hint() -> None:
    raw = message(
        b"Subject: " + "中文邮件".encode("gb18030") + b"\nContent-Type: text/plain; charset=gb2312",
        "body",
    )
    assert parse_envelope(raw).subject == "中文邮件"


def test_quoted_printable_and_base64_bodies() -> None:
    qp = message(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable",
        "Caf=C3=A9 with a soft=\nbreak and =3D sign",
    )
    assert extract_content(qp).text == "Café with a softbreak and = sign"
    bad_padding = message(
        "Content-Type: text/plain\nContent-Transfer-Encoding: base64", "SGVsbG8gd29ybGQ"
    )
    assert extract_content(bad_padding).text == "Hello world"
    typo = message("Content-Transfer-Encoding: Quoted/Printable", "a=3Db")
    assert extract_content(typo).text == "a=b"


def test_text_is_capped() -> None:
    raw = message("Content-Type: text/plain", ("x" * 99 + "\n") * 3000)
    assert len(extract_content(raw).text) == 200_000


# --------------------------------------------------------------------------- snippet


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Sounds good, ship it.\n\nOn Mon, Jan 1, 2024 at 10:00 AM Jane <jane@example.com> "
            "wrote:\n> Shall we ship?\n> -- \n> Jane\n",
            "Sounds good, ship it.",
        ),
        (
            "On Tue 28 Nov 2017 at 07:25, Stephen Connolly <\nstephen@example.com> wrote:\n\n"
            "> quoted\n\nMy answer.\n",
            "My answer.",
        ),
        ("Am 15.11.2017 um 23:05 schrieb Hervé:\n> alt\n\nNeu.\n", "Neu."),
        ("Le 1 janv. 2024 à 10:00, Marie a écrit :\n> x\nOui.", "Oui."),
        ("Top post.\n\n-- \nSignature\nMore sig", "Top post."),
        ("Reply.\n\n-----Original Message-----\nFrom: x\n\nold", "Reply."),
        (
            "Body text.\n\n---------------------------------------------------------------------\n"
            "To unsubscribe, e-mail: dev-unsubscribe@example.org",
            "Body text.",
        ),
        ("> only\n> quoted\n", "only quoted"),
        ("   lots   of\n\n\n white\tspace  ", "lots of white space"),
        ("", ""),
    ],
)
def test_snippet(body: str, expected: str) -> None:
    raw = message("Content-Type: text/plain; charset=utf-8", body)
    assert extract_content(raw).snippet == expected


def test_snippet_length_and_html_quotes() -> None:
    long = message("Content-Type: text/plain", "word " * 500)
    snippet = extract_content(long).snippet
    assert 150 <= len(snippet) <= 200
    assert snippet.endswith("word")
    html = message(
        "Content-Type: text/html",
        "<div>New text</div><div class=gmail_quote>On Mon, Bob wrote:"
        "<blockquote>old text</blockquote></div>",
    )
    assert extract_content(html).snippet == "New text"


# --------------------------------------------------------------------------- broken mail


def test_no_header_block() -> None:
    raw = b"Hello world,\nthis message has no headers.\n"
    env = parse_envelope(raw)
    assert env.defects == ("no header block",)
    assert env.subject == ""
    assert env.content_type == "text/plain"
    content = extract_content(raw)
    assert content.text == "Hello world,\nthis message has no headers."


def test_leading_blank_line_without_headers() -> None:
    raw = b"\r\n<html><body>Not really html</body></html>\r\n"
    assert "no header block" in parse_envelope(raw).defects
    assert "Not really html" in extract_content(raw).text


def test_mbox_from_line_and_leading_whitespace() -> None:
    raw = b"From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: hi\nFrom: a@b.c\n\nbody\n"
    env = parse_envelope(raw)
    assert env.subject == "hi"
    assert env.from_ == (Address("", "a@b.c"),)
    assert extract_content(raw).text == "body"
    spaced = b"     \nSubject: hi\n\nbody"
    assert parse_envelope(spaced).subject == "hi"


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    raw = message(ALT, eol=eol)
    assert parse_envelope(raw).subject == "alt"
    content = extract_content(raw)
    assert content.text == "Plain version."
    assert content.html is not None


def test_missing_header_body_separator() -> None:
    raw = b"Subject: hi\nFrom: a@example.com\nThis line starts the body\nmore body\n\npara 2\n"
    env = parse_envelope(raw)
    assert env.subject == "hi"
    assert "missing header/body separator" in env.defects
    assert extract_content(raw).text.startswith("This line starts the body")


def test_broken_multiparts() -> None:
    no_boundary_param = message(
        "Content-Type: multipart/mixed", "--xyz\nContent-Type: text/plain\n\nguessed\n--xyz--\n"
    )
    content = extract_content(no_boundary_param)
    assert content.text == "guessed"
    assert any("boundary" in d for d in content.defects)

    no_close = message(
        "Content-Type: multipart/mixed; boundary=b",
        "--b\nContent-Type: text/plain\n\none\n--b\nContent-Type: text/plain\n\ntwo\n",
    )
    content = extract_content(no_close)
    assert content.text == "one\n\ntwo"
    assert "missing closing boundary" in content.defects

    wrong = message("Content-Type: multipart/mixed; boundary=nope", "just text")
    content = extract_content(wrong)
    assert content.text == "just text"
    assert "boundary not found" in content.defects


def test_deep_nesting_is_bounded() -> None:
    body = "Content-Type: text/plain\n\ndeep"
    for level in range(200):
        body = multipart("mixed", f"b{level}", body)
    content = extract_content(message(body))
    assert "nesting too deep" in content.defects
    assert isinstance(content.text, str)


def test_nul_bytes_and_8bit_garbage() -> None:
    raw = (
        b"Subject: a\x00b\xff\xfe\r\nFrom: \xff <x@y.z>\r\n"
        b"Content-Type: text/plain\r\n\r\n\x00hi\xff"
    )
    env = parse_envelope(raw)
    assert env.subject == "a bÿþ"  # NUL is a control character; the bytes are windows-1252
    assert env.from_[0].email == "x@y.z"
    assert extract_content(raw).text == "hiÿ"


def test_huge_header_is_fine() -> None:
    raw = b"Subject: " + b"x" * 200_000 + b"\r\nTo: " + b"a@example.com, " * 5_000 + b"\r\n\r\nb"
    env = parse_envelope(raw)
    assert len(env.subject) == 200_000
    assert len(env.to) == 5_000


def test_empty_message() -> None:
    assert parse_envelope(b"").defects == ("empty message",)
    assert extract_content(b"").text == ""


def test_content_type_of_envelope() -> None:
    assert parse_envelope(message(ALT)).content_type == "multipart/alternative"
    assert parse_envelope(message("Subject: x")).content_type == "text/plain"
    bad = parse_envelope(message("Content-Type: garbage\nSubject: x"))
    assert bad.content_type == "text/plain"
    assert "bad content-type" in bad.defects
    folded = parse_envelope(message('Content-Type: Multipart/Mixed;\n boundary="x"'))
    assert folded.content_type == "multipart/mixed"


# --------------------------------------------------------------------------- properties

SEEDS = [
    message(ALT),
    message(NESTED),
    message(
        'From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\nTo: a@b.c, "X, Y" <x@y.z>\n'
        "Subject: =?iso-2022-jp?B?GyRCRnxLXDhsGyhC?=\nDate: Tue, 14 Nov 2017 10:00:00 +0100\n"
        "Message-ID: <1@x>\nReferences: <0@x>\nContent-Type: text/plain; charset=koi8-r\n"
        "Content-Transfer-Encoding: quoted-printable",
        "=F0=D2=C9=D7=C5=D4\n> quoted\n-- \nsig",
    ),
]
_TOKENS = [b"\r", b"\n", b"\r\n", b"--", b"--alt-1", b"=?", b"?=", b":", b";", b"<", b">", b'"']
_TOKENS += [b"\x00", b"\xff", b"boundary=", b"Content-Type: multipart/mixed; boundary=x\n"]
_TOKENS += [b"Content-Transfer-Encoding: base64\n", b"charset=x-bogus", b"=?utf-8?b?", b"begin "]


@st.composite
def garbled(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.integers(0, 4))
        if action == 0:
            data[pos] = draw(st.integers(0, 255))
        elif action == 1:
            del data[pos : pos + draw(st.integers(1, 64))]
        elif action == 2:
            data[pos:pos] = draw(st.sampled_from(_TOKENS))
        elif action == 3:
            data[pos:pos] = draw(st.binary(max_size=16))
        else:
            del data[pos:]
    return bytes(data)


def check_envelope(env: Envelope) -> None:
    assert isinstance(env, Envelope)
    assert isinstance(env.subject, str)
    assert "\n" not in env.subject
    for group in (env.from_, env.to, env.cc, env.bcc, env.reply_to):
        assert all(isinstance(a, Address) for a in group)
    assert env.date is None or env.date.tzinfo is not None
    assert all(isinstance(i, str) and i for i in env.references + env.in_reply_to)
    assert len(set(env.references)) == len(env.references)
    assert "/" in env.content_type
    assert env.content_type == env.content_type.lower()
    assert not any(d.startswith("internal error") for d in env.defects), env.defects


def check_content(raw: bytes, content: Content) -> None:
    assert isinstance(content, Content)
    assert isinstance(content.text, str)
    assert len(content.text) <= 200_000
    assert content.html is None or isinstance(content.html, str)
    assert len(content.snippet) <= 200
    assert not any(d.startswith("internal error") for d in content.defects), content.defects
    for attachment in content.attachments:
        assert isinstance(attachment, Attachment)
        assert attachment.size >= 0
        assert attachment.content_type == attachment.content_type.lower()
        assert "/" not in attachment.filename
        assert part_bytes(raw, attachment.part_id) is not None


@PROPS
@given(garbled())
def test_garbled_messages_never_raise(raw: bytes) -> None:
    check_envelope(parse_envelope(raw))
    check_content(raw, extract_content(raw))


@PROPS
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    check_envelope(parse_envelope(raw))
    check_content(raw, extract_content(raw))


@PROPS
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_decode_header_value_never_raises(value: str | bytes) -> None:
    assert isinstance(decode_header_value(value), str)


@PROPS
@given(st.text(max_size=300))
def test_sanitize_filename_properties(name: str) -> None:
    result = sanitize_filename(name)
    assert "/" not in result
    assert "\\" not in result
    assert not result.startswith((".", " "))
    assert len(result.encode("utf-8")) <= 200
    assert not any(unicodedata.category(ch) == "Cc" for ch in result)
    assert sanitize_filename(result) == result


@PROPS
@given(st.text(max_size=200))
def test_normalize_subject_is_idempotent(subject: str) -> None:
    once = normalize_subject(subject)
    assert normalize_subject(once) == once


@PROPS
@given(st.text(max_size=500))
def test_html_to_text_never_raises(html: str) -> None:
    assert isinstance(html_to_text(html), str)


@PROPS
@given(st.sampled_from(SEEDS), st.text(alphabet="0123456789.", max_size=12))
def test_part_bytes_never_raises(raw: bytes, part_id: str) -> None:
    result = part_bytes(raw, part_id)
    assert result is None or isinstance(result, bytes)
