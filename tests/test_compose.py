"""app.compose: every built message is parsed back twice, by the stdlib (policy.default,
no defects) and by storage.mime, and must say what the draft said."""

from __future__ import annotations

import email
import os
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.compose import (
    FORWARD_SEPARATOR,
    AttachmentSpec,
    Built,
    ComposeError,
    Draft,
    Identity,
    build,
    forward,
    load_attachment,
    parse_recipients,
    reply,
)
from app.errors import TidingsError
from storage.mime import (
    Address,
    extract_content,
    html_to_text,
    normalize_subject,
    parse_envelope,
    part_bytes,
)
from tests.mailmaker import mail

ME = Identity("me@example.com", "Mé Myself", aliases=("Me.Alias@Example.org",))
NOW = datetime(2026, 11, 30, 12, 34, 56, tzinfo=timezone(timedelta(hours=1)))
PROPS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- helpers


def clean(raw: bytes, *, utf8_headers: bool = False) -> EmailMessage:
    """Parse ``raw`` with the stdlib and storage.mime; assert both find nothing wrong.

    ``utf8_headers``: the message is SMTPUTF8 (RFC 6532). Python 3.11's parser does not
    implement RFC 6532 and flags raw UTF-8 in address headers; only those header
    defects are allowed then.
    """
    assert raw.endswith(b"\r\n")
    rest = raw.replace(b"\r\n", b"")
    assert b"\n" not in rest, "bare LF"
    assert b"\r" not in rest, "bare CR"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    if not utf8_headers:
        assert raw.isascii() or b"8bit" in raw
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    for part in msg.walk():
        assert part.defects == []
        for name, value in part.items():
            defects = getattr(value, "defects", ())
            if utf8_headers and name.lower() in ("from", "to", "cc", "reply-to"):
                assert all(
                    type(d).__name__ in ("UndecodableBytesDefect", "NonASCIILocalPartDefect")
                    for d in defects
                )
            else:
                assert defects == (), (name, value, defects)
    assert parse_envelope(raw).defects == ()
    assert extract_content(raw).defects == ()
    return msg


def stdlib_addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    header = msg[name]
    if header is None:
        return []
    assert isinstance(header, AddressHeader)
    return [(a.display_name, a.addr_spec) for a in header.addresses]


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def raw_header(raw: bytes, name: str) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    match = re.search(rf"(?im)^{name}:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head)
    return match.group(1) if match else ""


def stdlib_gh_128110(got: str, want: str, header: str) -> bool:
    """Python before 3.14 keeps the whitespace between adjacent encoded words of a
    display name, which RFC 2047 6.2 says to drop (CPython gh-128110). Our encoding is
    right (storage.mime reads it exactly); accept the stdlib's reading if extra spaces
    are the only difference."""
    adjacent = re.search(r"\?=\s+=\?", header) is not None
    return adjacent and len(got) > len(want) and got.replace(" ", "") == want.replace(" ", "")


def storage_reading(name: str) -> str:
    """storage.mime reads 'Name' and "Name" (quotes inside the name) as Name."""
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
        return name[1:-1].strip()
    return name


def make(draft: Draft, identity: Identity = ME, message_id: str | None = None) -> Built:
    return build(identity, draft, now=NOW, message_id=message_id)


def one_line(text: str) -> str:
    """What a single-line field becomes: controls to spaces, whitespace collapsed."""
    return " ".join(re.sub("[\x00-\x1f\x7f]", " ", text).split())


# --------------------------------------------------------------------------- build


def test_plain_message() -> None:
    draft = Draft(to=("Bob <bob@example.com>",), subject="Hello", text="Hi Bob,\n\nsee you.\n")
    built = make(draft)
    msg = clean(built.raw)

    assert built.sender == "me@example.com"
    assert built.recipients == ("bob@example.com",)
    assert built.smtputf8 is False
    assert built.eight_bit_mime is False
    assert msg["Subject"] == "Hello"
    assert stdlib_addresses(msg, "From") == [("Mé Myself", "me@example.com")]
    assert stdlib_addresses(msg, "To") == [("Bob", "bob@example.com")]
    assert msg["Date"].datetime == NOW
    assert msg["Date"].datetime.utcoffset() == timedelta(hours=1)
    assert msg["Message-ID"] == f"<{built.message_id}>"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "7bit"
    assert body_text(msg) == "Hi Bob,\n\nsee you.\n"
    assert "In-Reply-To" not in msg
    assert "References" not in msg
    assert "Bcc" not in msg

    env = parse_envelope(built.raw)
    assert env.subject == "Hello"
    assert env.from_ == (Address("Mé Myself", "me@example.com"),)
    assert env.to == (Address("Bob", "bob@example.com"),)
    assert env.message_id == built.message_id
    assert env.date == NOW
    assert extract_content(built.raw).text == "Hi Bob,\n\nsee you."


def test_unicode_names_and_subject_use_rfc2047() -> None:
    identity = Identity("zoe@example.com", "Zoë Ångström, PhD")
    draft = Draft(
        to=('"Dvořák, Antonín" <antonin@example.cz>', "Łukasz <lukasz@example.pl>"),
        cc=("山田太郎 <taro@example.jp>",),
        subject="Grüße — 日本語の件名 ✓",
        text="Ünïcödé body",
    )
    built = make(draft, identity)
    msg = clean(built.raw)
    head = built.raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?" in head

    assert msg["Subject"] == draft.subject
    assert stdlib_addresses(msg, "From") == [("Zoë Ångström, PhD", "zoe@example.com")]
    assert stdlib_addresses(msg, "To") == [
        ("Dvořák, Antonín", "antonin@example.cz"),
        ("Łukasz", "lukasz@example.pl"),
    ]
    assert stdlib_addresses(msg, "Cc") == [("山田太郎", "taro@example.jp")]
    env = parse_envelope(built.raw)
    assert env.subject == draft.subject
    assert env.from_ == (Address("Zoë Ångström, PhD", "zoe@example.com"),)
    assert env.to == (
        Address("Dvořák, Antonín", "antonin@example.cz"),
        Address("Łukasz", "lukasz@example.pl"),
    )
    assert env.cc == (Address("山田太郎", "taro@example.jp"),)
    assert extract_content(built.raw).text == "Ünïcödé body"
    assert body_text(msg) == "Ünïcödé body\n"


def test_literal_encoded_word_lookalikes_survive() -> None:
    subject = "How to write =?utf-8?q?caf=C3=A9?= by hand"
    name = "=?utf-8?q?Eve?= (not encoded)"
    built = make(Draft(to=(f'"{name}" <eve@example.com>',), subject=subject, text="x"))
    msg = clean(built.raw)
    assert msg["Subject"] == subject
    assert parse_envelope(built.raw).subject == subject
    assert stdlib_addresses(msg, "To") == [(name, "eve@example.com")]
    assert parse_envelope(built.raw).to == (Address(name, "eve@example.com"),)


def test_non_ascii_attachment_filename_uses_rfc2231() -> None:
    names = ["résumé – 2026.pdf", "отчёт.zip", "写真" * 40 + ".png"]
    attachments = tuple(AttachmentSpec(n, f"data {i}".encode()) for i, n in enumerate(names))
    built = make(Draft(to=("bob@example.com",), text="files", attachments=attachments))
    msg = clean(built.raw)
    assert b"filename*" in built.raw
    assert b"utf-8''" in built.raw
    assert [p.get_filename() for p in msg.iter_attachments()] == names
    content = extract_content(built.raw)
    assert [a.filename for a in content.attachments][:2] == names[:2]
    assert content.attachments[2].filename.endswith(".png")  # sanitize_filename caps bytes
    assert [a.content_type for a in content.attachments] == [
        "application/pdf",
        "application/zip",
        "image/png",
    ]


def test_binary_attachment_round_trip() -> None:
    data = bytes(range(256)) * 50 + os.urandom(10_000)
    spec = AttachmentSpec("scan.pdf", data)
    built = make(Draft(to=("bob@example.com",), text="the scan", attachments=(spec,)))
    msg = clean(built.raw)

    assert msg.get_content_type() == "multipart/mixed"
    (part,) = msg.iter_attachments()
    assert part.get_content_type() == "application/pdf"
    assert part["Content-Transfer-Encoding"] == "base64"
    assert part.get_content() == data
    content = extract_content(built.raw)
    (att,) = content.attachments
    assert (att.filename, att.content_type, att.size) == ("scan.pdf", "application/pdf", len(data))
    assert part_bytes(built.raw, att.part_id) == data
    assert content.text == "the scan"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (AttachmentSpec("photo.PNG", b"\x89PNG"), "image/png"),
        (AttachmentSpec("backup.tar.gz", b"\x1f\x8b"), "application/gzip"),
        (AttachmentSpec("mystery.zzqq", b"?"), "application/octet-stream"),
        (AttachmentSpec("noext", b"?"), "application/octet-stream"),
        (AttachmentSpec("data.bin", b"{}", "application/json"), "application/json"),
        (AttachmentSpec("C:\\Users\\me\\notes.txt", b"plain"), "text/plain"),
    ],
)
def test_attachment_content_types(spec: AttachmentSpec, expected: str) -> None:
    built = make(Draft(to=("bob@example.com",), attachments=(spec,)))
    msg = clean(built.raw)
    (part,) = msg.iter_attachments()
    assert part.get_content_type() == expected
    assert "\\" not in (part.get_filename() or "")
    assert extract_content(built.raw).attachments[0].content_type == expected


def test_text_attachment_gets_a_charset_when_it_is_utf8() -> None:
    specs = (
        AttachmentSpec("notes.txt", "naïve café".encode()),
        AttachmentSpec("legacy.txt", "naïve".encode("latin-1"), "text/plain; charset=iso-8859-1"),
    )
    msg = clean(make(Draft(to=("bob@example.com",), attachments=specs)).raw)
    first, second = msg.iter_attachments()
    assert first.get_content_charset() == "utf-8"
    assert first.get_content() == "naïve café"
    assert second.get_content_charset() == "iso-8859-1"
    assert second.get_content() == "naïve"


def test_html_becomes_alternative_with_derived_text() -> None:
    html = "<html><body><h1>News</h1><p>Hello <b>world</b>.</p><ul><li>one</li></ul></body></html>"
    built = make(Draft(to=("bob@example.com",), subject="News", html=html))
    msg = clean(built.raw)
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert rich.get_content_type() == "text/html"
    assert plain.get_content().replace("\r\n", "\n") == html_to_text(html) + "\n"
    assert rich.get_content().replace("\r\n", "\n") == html + "\n"
    content = extract_content(built.raw)
    assert content.text == html_to_text(html)
    assert content.html is not None
    assert "<b>world</b>" in content.html


def test_html_with_own_text_and_attachment_is_mixed_alternative() -> None:
    spec = AttachmentSpec("a.pdf", b"%PDF-1.4")
    draft = Draft(
        to=("bob@example.com",), text="plain version", html="<p>rich</p>", attachments=(spec,)
    )
    msg = clean(make(draft).raw)
    assert msg.get_content_type() == "multipart/mixed"
    body, attachment = msg.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert attachment.get_filename() == "a.pdf"
    assert body_text(msg) == "plain version\n"


def test_bcc_is_in_recipients_not_in_headers() -> None:
    draft = Draft(
        to=("Bob <bob@example.com>",),
        cc=("carol@example.com", "BOB@example.com"),
        bcc=("secret@example.net", "Carol@Example.com"),
        text="x",
    )
    built = make(draft)
    msg = clean(built.raw)
    assert built.recipients == ("bob@example.com", "carol@example.com", "secret@example.net")
    assert b"secret" not in built.raw
    assert b"Bcc" not in built.raw
    assert "Bcc" not in msg
    assert parse_envelope(built.raw).bcc == ()


def test_bcc_only_message_is_allowed() -> None:
    built = make(Draft(bcc=("list@example.com",), text="x"))
    msg = clean(built.raw)
    assert built.recipients == ("list@example.com",)
    assert "To" not in msg
    assert b"list@" not in built.raw


@pytest.mark.slow
def test_message_id_unique_and_on_the_accounts_domain() -> None:
    identity = Identity("someone@mail.example.org")
    draft = Draft(to=("bob@example.com",), text="x")
    ids = [build(identity, draft, now=NOW).message_id for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    pattern = re.compile(r"20261130\.113456\.[0-9a-f]{16}@mail\.example\.org")
    assert all(pattern.fullmatch(mid) for mid in ids)


def test_message_id_for_idn_domain_and_given_id() -> None:
    built = build(Identity("me@bücher.de"), Draft(to=("bob@example.com",)), now=NOW)
    assert built.message_id.endswith("@xn--bcher-kva.de")
    assert built.sender == "me@xn--bcher-kva.de"
    again = build(ME, Draft(to=("bob@example.com",)), now=NOW, message_id="<kept.1@example.com>")
    assert again.message_id == "kept.1@example.com"
    assert parse_envelope(again.raw).message_id == "kept.1@example.com"


def test_date_defaults_to_now_and_naive_means_local() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    built = build(ME, Draft(to=("bob@example.com",)))
    stamp = clean(built.raw)["Date"].datetime
    assert stamp.tzinfo is not None
    assert stamp >= before
    naive = build(ME, Draft(to=("bob@example.com",)), now=datetime(2026, 1, 2, 3, 4, 5))
    parsed = clean(naive.raw)["Date"].datetime
    assert parsed == datetime(2026, 1, 2, 3, 4, 5).astimezone()


def test_long_lines_stay_under_998_octets() -> None:
    line = "".join(chr(ord("a") + i % 26) for i in range(5_000))
    long_id = "AM0PR07MB1234567890ABCDEF1234567890ABCDEF@AM0PR07MB1234.eurprd07.prod.outlook.com"
    draft = Draft(
        to=(f"{'N' * 300} <bob@example.com>",),
        subject="S" * 1_200,
        text=line,
        html=f"<p>{line}</p>",
        in_reply_to=long_id,
        references=(*tuple(f"{i}.{long_id}" for i in range(30)), long_id),
        extra_headers=(("X-Long", "z" * 2_000),),
    )
    built = make(draft)
    msg = clean(built.raw)
    assert max(len(x) for x in built.raw.split(b"\r\n")) <= 998
    assert body_text(msg) == line + "\n"
    assert extract_content(built.raw).text == line
    assert msg["Subject"] == "S" * 1_200
    ((name, addr),) = stdlib_addresses(msg, "To")
    assert addr == "bob@example.com"
    assert name == "N" * 300 or stdlib_gh_128110(name, "N" * 300, raw_header(built.raw, "To"))
    env = parse_envelope(built.raw)
    assert env.to == (Address("N" * 300, "bob@example.com"),)
    assert env.in_reply_to == (long_id,)  # long ids are folded between ids, never encoded
    assert env.references[-1] == long_id
    assert len(env.references) == 31
    assert b"=?utf-8?q?=3CAM0" not in built.raw


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii\n",
        "Ünïcödé with a few accents, mostly ASCII " * 20,
        "Русский текст " * 50,
        "日本語のテキスト" * 200,
        "trailing spaces   \nand\ttabs\t\n",
        "NUL\x00and\x0bvertical\x1cseparators\u2028and\u0085NEL",
        "",
        "\n\n",
        ".\n.leading dot\nFrom the start\n",
    ],
)
def test_text_bodies_round_trip(text: str) -> None:
    built = make(Draft(to=("bob@example.com",), text=text))
    msg = clean(built.raw)
    assert msg["Content-Transfer-Encoding"] in ("7bit", "quoted-printable", "base64")
    assert body_text(msg) == (text if text.endswith("\n") else text + "\n")
    expected = text.replace("\x00", "").strip("\n")
    assert extract_content(built.raw).text == ("" if expected.isspace() else expected)


def test_crlf_and_cr_in_text_become_line_breaks() -> None:
    built = make(Draft(to=("bob@example.com",), text="one\r\ntwo\rthree"))
    assert body_text(clean(built.raw)) == "one\ntwo\nthree\n"


def test_threading_headers_and_extra_headers() -> None:
    draft = Draft(
        to=("bob@example.com",),
        in_reply_to="<parent@example.com>",
        references=("root@example.com", "parent@example.com"),
        extra_headers=(
            ("Reply-To", "Team <team@example.com>"),
            ("X-Tidings-Note", "ünïcode value"),
        ),
    )
    built = make(draft)
    msg = clean(built.raw)
    assert msg["In-Reply-To"] == "<parent@example.com>"
    assert msg["References"] == "<root@example.com> <parent@example.com>"
    assert stdlib_addresses(msg, "Reply-To") == [("Team", "team@example.com")]
    assert msg["X-Tidings-Note"] == "ünïcode value"
    env = parse_envelope(built.raw)
    assert env.in_reply_to == ("parent@example.com",)
    assert env.references == ("root@example.com", "parent@example.com")
    assert env.reply_to == (Address("Team", "team@example.com"),)


def test_extra_headers_stay_on_the_top_level_entity() -> None:
    draft = Draft(
        to=("bob@example.com",),
        text="x",
        html="<p>x</p>",
        attachments=(AttachmentSpec("a.pdf", b"%PDF"),),
        extra_headers=(("Content-Language", "de-CH"), ("Auto-Submitted", "auto-generated")),
    )
    msg = clean(make(draft).raw)
    assert msg["Content-Language"] == "de-CH"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert all("Content-Language" not in part for part in msg.iter_parts())


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["bob@example.com"], ("bob@example.com",)),
        (["Bob <bob@example.com>"], ("Bob <bob@example.com>",)),
        (["<bob@example.com>"], ("bob@example.com",)),
        (["a@x.com, Bob <b@y.com>; c@z.org"], ("a@x.com", "Bob <b@y.com>", "c@z.org")),
        (['"Smith, John" <j@x.com>, k@x.com'], ('"Smith, John" <j@x.com>', "k@x.com")),
        (["bob@example.com (Bob B)"], ("Bob B <bob@example.com>",)),
        (["mailto:bob@example.com"], ("bob@example.com",)),
        (["=?utf-8?q?J=C3=B6rg?= <j@x.com>"], ("Jörg <j@x.com>",)),
        (['"a, b"@x.com'], ('"a, b"@x.com',)),
        (["x@[192.0.2.1]", "y@[IPv6:2001:db8::1]"], ("x@[192.0.2.1]", "y@[IPv6:2001:db8::1]")),
        (["  Bob   Smith  <bob@example.com>  ,, "], ("Bob Smith <bob@example.com>",)),
        (["Ünï <u@bücher.de>"], ("Ünï <u@xn--bcher-kva.de>",)),
        (["jörg@example.com"], ("jörg@example.com",)),
        (['"Bob \\"B\\" Jones" <b@x.com>'], ('"Bob \\"B\\" Jones" <b@x.com>',)),
        ([], ()),
        ([""], ()),
    ],
)
def test_parse_recipients(values: list[str], expected: tuple[str, ...]) -> None:
    assert parse_recipients(values) == expected
    assert parse_recipients(expected) == expected  # the normalised form reads back as is


def test_parse_recipients_accepts_a_bare_string() -> None:
    assert parse_recipients("a@x.com, b@y.com") == ("a@x.com", "b@y.com")


@pytest.mark.parametrize(
    "bad",
    [
        "bob@",
        "bob",
        "@example.com",
        "a@b@c",
        "a b@x.com",
        "a@x..com",
        "a@-x.com",
        "a@x_y.com",
        "a..b@x.com",
        "Bob <bob@example.com",
        "Bob <bob@example.com> trailing",
        "<>",
        "x@[999.1.1.1]",
        "a@x.com b@y.com",
        "Group: a@x.com",
    ],
)
def test_bad_addresses_raise(bad: str) -> None:
    with pytest.raises(ComposeError) as info:
        parse_recipients([f"ok@example.com, {bad}"])
    assert str(info.value) in (
        f"not an email address: {bad.strip()!r}",
        f"not an email address: {bad.rsplit(',', maxsplit=1)[-1].strip()!r}",
    )
    assert "\n" not in str(info.value)
    with pytest.raises(ComposeError):
        build(ME, Draft(to=(bad,)))


def test_error_messages_are_one_line_and_known() -> None:
    with pytest.raises(ComposeError, match=r"^not an email address: 'bob@'$"):
        build(ME, Draft(to=("bob@",)))
    with pytest.raises(ComposeError, match=r"^no recipients$"):
        build(ME, Draft(subject="hello", text="nobody"))
    with pytest.raises(ComposeError, match=r"^no recipients$"):
        build(ME, Draft(to=("", " , ")))
    with pytest.raises(ComposeError, match=r"^attachment without a name$"):
        build(ME, Draft(to=("b@x.com",), attachments=(AttachmentSpec("", b"x"),)))
    with pytest.raises(ComposeError, match=r"^attachment without a name$"):
        build(ME, Draft(to=("b@x.com",), attachments=(AttachmentSpec(" / ", b"x"),)))
    with pytest.raises(ComposeError, match="not an email address"):
        build(Identity("me@"), Draft(to=("b@x.com",)))
    assert issubclass(ComposeError, TidingsError)


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        (Draft(to=("b@x.com",), extra_headers=(("X-Evil", "a\r\nBcc: c@x.com"),)), "line break"),
        (Draft(to=("b@x.com",), extra_headers=(("Bcc", "c@x.com"),)), "cannot set header"),
        (Draft(to=("b@x.com",), extra_headers=(("Bad Name", "v"),)), "cannot set header"),
        (Draft(to=("b@x.com",), extra_headers=(("Reply-To", "nobody@"),)), "not an email"),
        (Draft(to=("b@x.com",), in_reply_to="has space@x"), "not a message id"),
        (Draft(to=("b@x.com",), references=("<a@b> <c@d>",)), "not a message id"),
        (
            Draft(to=("b@x.com",), attachments=(AttachmentSpec("a", b"", "notatype"),)),
            "bad content type",
        ),
        (
            Draft(to=("b@x.com",), attachments=(AttachmentSpec("a", b"", "multipart/mixed"),)),
            "bad content type",
        ),
    ],
)
def test_bad_drafts_raise(draft: Draft, message: str) -> None:
    with pytest.raises(ComposeError, match=message):
        build(ME, draft)


def test_bad_message_id_argument() -> None:
    with pytest.raises(ComposeError, match="not a message id"):
        build(ME, Draft(to=("b@x.com",)), message_id="two words@x")


def test_load_attachment(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF")
    assert load_attachment(path) == AttachmentSpec("report.pdf", b"%PDF")
    with pytest.raises(ComposeError, match=r"^cannot read attachment gone\.pdf: no such file"):
        load_attachment(tmp_path / "gone.pdf")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ComposeError, match=r"^cannot read attachment sub: is a directory$"):
        load_attachment(tmp_path / "sub")


def test_smtputf8_only_for_a_non_ascii_local_part() -> None:
    idn = make(Draft(to=("Ünï <u@bücher.de>",), text="x"))
    assert idn.smtputf8 is False
    assert idn.recipients == ("u@xn--bcher-kva.de",)
    clean(idn.raw)
    assert parse_envelope(idn.raw).to == (Address("Ünï", "u@xn--bcher-kva.de"),)

    built = make(Draft(to=("Jörg <jörg@example.de>", "bob@example.com"), subject="Grüße", text="x"))
    assert built.smtputf8 is True
    assert built.eight_bit_mime is True
    assert built.recipients == ("jörg@example.de", "bob@example.com")
    assert "jörg@example.de".encode() in built.raw
    msg = clean(built.raw, utf8_headers=True)
    assert body_text(msg) == "x\n"
    env = parse_envelope(built.raw)
    assert env.to == (Address("Jörg", "jörg@example.de"), Address("", "bob@example.com"))
    assert env.subject == "Grüße"

    sender = build(Identity("jörg@example.de", "Jörg"), Draft(to=("bob@example.com",)), now=NOW)
    assert sender.smtputf8 is True
    assert sender.sender == "jörg@example.de"
    # IDNA 2003 would turn 'faß.de' into 'fass.de', another domain: sent as UTF-8 instead.
    eszett = make(Draft(to=("info@faß.de",)))
    assert eszett.smtputf8 is True
    assert eszett.recipients == ("info@faß.de",)


# --------------------------------------------------------------------------- reply


def original_mail(**kw: str) -> bytes:
    defaults = {
        "msgid": "orig.1@example.com",
        "subject": "Quarterly numbers",
        "sender": "Alice Example <alice@example.com>",
        "to": "Me <me@example.com>, Bob <bob@example.com>",
        "cc": "Carol <carol@example.com>, ME.ALIAS@example.org, bob@EXAMPLE.com",
        "date": "Tue, 03 Nov 2026 09:15:00 +0100",
        "body": "Here are the numbers.\n\n> earlier quote\nThanks,\nAlice\n",
    }
    defaults.update(kw)
    msgid = defaults.pop("msgid")
    subject = defaults.pop("subject")
    return mail(msgid, subject, **defaults)


def test_reply_goes_to_reply_to_and_quotes_with_attribution() -> None:
    original = original_mail(extra="Reply-To: Sales Team <sales@example.com>")
    draft = reply(ME, original, text="Thanks!")
    assert draft.to == ("Sales Team <sales@example.com>",)
    assert draft.cc == ()
    assert draft.subject == "Re: Quarterly numbers"
    assert draft.in_reply_to == "orig.1@example.com"
    assert draft.references == ("orig.1@example.com",)
    assert draft.text == (
        "Thanks!\n\n"
        "On Tue, 3 Nov 2026 at 09:15 +0100, Alice Example wrote:\n"
        "> Here are the numbers.\n"
        ">\n"
        ">> earlier quote\n"
        "> Thanks,\n"
        "> Alice\n"
    )
    assert draft.html is None

    built = make(draft)
    msg = clean(built.raw)
    assert msg["In-Reply-To"] == "<orig.1@example.com>"
    assert msg["References"] == "<orig.1@example.com>"
    env = parse_envelope(built.raw)
    assert env.to == (Address("Sales Team", "sales@example.com"),)
    assert env.subject == "Re: Quarterly numbers"
    assert extract_content(built.raw).text == draft.text.strip("\n")


def test_reply_without_reply_to_goes_to_from() -> None:
    draft = reply(ME, original_mail())
    assert draft.to == ("Alice Example <alice@example.com>",)
    assert draft.text is not None
    assert draft.text.startswith("\n\nOn Tue, 3 Nov 2026")


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quarterly numbers", "Re: Quarterly numbers"),
        ("Re: Quarterly numbers", "Re: Quarterly numbers"),
        ("RE: Re: re: Quarterly numbers", "Re: Quarterly numbers"),
        ("AW: Quarterly numbers", "Re: Quarterly numbers"),
        ("Re[2]: Quarterly numbers", "Re: Quarterly numbers"),
        ("回复：Quarterly numbers", "Re: Quarterly numbers"),
        ("[team] Re: Quarterly numbers", "[team] Re: Quarterly numbers"),
        ("[team] Quarterly numbers", "Re: [team] Quarterly numbers"),
        ("Fwd: Quarterly numbers", "Re: Fwd: Quarterly numbers"),
        ("Reorganisation: plans", "Re: Reorganisation: plans"),
        ("", "Re:"),
    ],
)
def test_reply_subject_is_not_stacked(subject: str, expected: str) -> None:
    draft = reply(ME, original_mail(subject=subject))
    assert draft.subject == expected
    assert normalize_subject(draft.subject) == normalize_subject(subject)


def test_reply_references_follow_rfc5322() -> None:
    refs = " ".join(f"<r{i}@example.com>" for i in range(30))
    draft = reply(ME, original_mail(refs=refs))
    assert len(draft.references) == 20
    assert draft.references[0] == "r0@example.com"
    assert draft.references[1:] == (
        *(f"r{i}@example.com" for i in range(12, 30)),
        "orig.1@example.com",
    )
    # No References: the parent's single In-Reply-To, then its Message-ID.
    draft = reply(ME, original_mail(in_reply_to="<parent@example.com>"))
    assert draft.references == ("parent@example.com", "orig.1@example.com")
    # No Message-ID at all: nothing to point at.
    draft = reply(ME, mail(None))
    assert draft.in_reply_to is None
    assert draft.references == ()
    clean(make(draft).raw)


def test_reply_all_drops_own_addresses_and_duplicates() -> None:
    draft = reply(ME, original_mail(), reply_all=True)
    assert draft.to == ("Alice Example <alice@example.com>", "Bob <bob@example.com>")
    assert draft.cc == ("Carol <carol@example.com>",)
    built = make(draft)
    assert built.recipients == ("alice@example.com", "bob@example.com", "carol@example.com")
    clean(built.raw)


def test_reply_all_with_reply_to_and_plain_reply_do_not_add_others() -> None:
    original = original_mail(extra="Reply-To: list@example.com")
    assert reply(ME, original).cc == ()
    draft = reply(ME, original, reply_all=True)
    assert draft.to == ("list@example.com", "Bob <bob@example.com>")
    assert draft.cc == ("Carol <carol@example.com>",)


def test_reply_to_own_message_goes_to_its_recipients() -> None:
    original = original_mail(sender="Me <ME@example.com>", to="Bob <bob@example.com>", cc="")
    draft = reply(ME, original)
    assert draft.to == ("Bob <bob@example.com>",)
    note = original_mail(sender="me@example.com", to="me@example.com", cc="")
    assert reply(ME, note).to == ("me@example.com",)  # a note to self stays one


def test_reply_dates_use_the_original_zone() -> None:
    draft = reply(ME, original_mail(date="Sat, 31 Oct 2026 23:30:00 -0700"))
    assert draft.text is not None
    assert "On Sat, 31 Oct 2026 at 23:30 -0700, Alice" in draft.text
    no_date = reply(ME, mail("x@y", date=""))
    assert no_date.text is not None
    assert "\n\nAlice wrote:\n> Hi there." in no_date.text


def test_html_reply_quotes_escaped_text() -> None:
    original = original_mail(body="a < b & c\n")
    draft = reply(ME, original, text="ok", html="<p>ok</p>")
    assert draft.html is not None
    assert draft.html.startswith("<p>ok</p>")
    assert "a &lt; b &amp; c" in draft.html
    assert "<blockquote" in draft.html
    msg = clean(make(draft).raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert "> a < b & c" in body_text(msg)


def test_reply_to_html_only_mail_quotes_its_text() -> None:
    original = original_mail(body="<p>Hello <b>there</b></p><p>Second</p>").replace(
        b"Content-Type: text/plain", b"Content-Type: text/html"
    )
    draft = reply(ME, original)
    assert draft.text is not None
    assert "> Hello there\n>\n> Second" in draft.text


# --------------------------------------------------------------------------- forward


def original_with_attachments() -> bytes:
    draft = Draft(
        to=("Me <me@example.com>",),
        cc=("Carol <carol@example.com>",),
        subject="Photos from Zürich",
        text="See attached.\n",
        attachments=(
            AttachmentSpec("Zürich.jpg", bytes(range(256)) * 4),
            AttachmentSpec("notes.txt", "Grüße\n".encode()),
        ),
    )
    return build(Identity("alice@example.com", "Alice"), draft, now=NOW).raw


def test_forward_inline_keeps_text_and_attachments() -> None:
    original = original_with_attachments()
    draft = forward(ME, original, text="FYI")
    assert draft.subject == "Fwd: Photos from Zürich"
    assert draft.to == ()
    assert draft.in_reply_to is None
    assert draft.text == (
        "FYI\n\n"
        f"{FORWARD_SEPARATOR}\n"
        "From: Alice <alice@example.com>\n"
        "Date: Mon, 30 Nov 2026 at 12:34 +0100\n"
        "Subject: Photos from Zürich\n"
        "To: Me <me@example.com>\n"
        "Cc: Carol <carol@example.com>\n"
        "\n"
        "See attached.\n"
    )
    assert [(a.filename, a.data, a.content_type) for a in draft.attachments] == [
        ("Zürich.jpg", bytes(range(256)) * 4, "image/jpeg"),
        ("notes.txt", "Grüße\n".encode(), "text/plain"),
    ]

    built = make(
        Draft(
            to=("dave@example.com",),
            subject=draft.subject,
            text=draft.text,
            attachments=draft.attachments,
        )
    )
    msg = clean(built.raw)
    assert [p.get_filename() for p in msg.iter_attachments()] == ["Zürich.jpg", "notes.txt"]
    content = extract_content(built.raw)
    assert content.text == draft.text.strip("\n")
    assert part_bytes(built.raw, content.attachments[0].part_id) == bytes(range(256)) * 4


def test_forward_subject_is_not_stacked() -> None:
    assert forward(ME, original_mail(subject="Fwd: hello")).subject == "Fwd: hello"
    assert forward(ME, original_mail(subject="WG: hallo")).subject == "WG: hallo"
    assert forward(ME, original_mail(subject="Re: hello")).subject == "Fwd: Re: hello"


def test_forward_as_attachment_is_message_rfc822() -> None:
    original = original_with_attachments()
    draft = forward(ME, original, as_attachment=True, text="see the original")
    (spec,) = draft.attachments
    assert spec == AttachmentSpec("Photos from Zürich.eml", original, "message/rfc822")

    built = make(
        Draft(
            to=("dave@example.com",),
            subject=draft.subject,
            text=draft.text,
            attachments=draft.attachments,
        )
    )
    assert built.eight_bit_mime is False
    msg = clean(built.raw)
    (part,) = msg.iter_attachments()
    assert part.get_content_type() == "message/rfc822"
    assert part["Content-Transfer-Encoding"] == "7bit"
    assert part.get_filename() == "Photos from Zürich.eml"
    inner = part.get_content()
    assert isinstance(inner, EmailMessage)
    assert inner["Subject"] == "Photos from Zürich"
    content = extract_content(built.raw)
    assert content.text == "see the original"
    (att,) = content.attachments
    assert att.content_type == "message/rfc822"
    assert part_bytes(built.raw, att.part_id) == original  # byte for byte


def test_forward_as_attachment_of_8bit_and_lf_originals() -> None:
    eight = mail("8@x", "Grüße", body="Grüße aus Köln\n").replace(
        b"Subject: Gr\xc3\xbc\xc3\x9fe", b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?="
    )
    built = make(
        Draft(to=("b@x.com",), attachments=forward(ME, eight, as_attachment=True).attachments)
    )
    assert built.eight_bit_mime is True
    assert built.smtputf8 is False
    msg = clean(built.raw)
    (part,) = msg.iter_attachments()
    assert part["Content-Transfer-Encoding"] == "8bit"
    assert part.get_filename() == "Grüße.eml"
    assert part_bytes(built.raw, "2") == eight

    lf_only = eight.replace(b"\r\n", b"\n")
    built = make(Draft(to=("b@x.com",), attachments=(AttachmentSpec("x.eml", lf_only),)))
    (part,) = clean(built.raw).iter_attachments()
    assert part.get_content_type() == "message/rfc822"  # guessed from '.eml'
    assert part_bytes(built.raw, "2") == eight  # line ends made CRLF, nothing else

    long_line = mail("long@x", body="y" * 2_000 + "\n")
    built = make(
        Draft(to=("b@x.com",), attachments=forward(ME, long_line, as_attachment=True).attachments)
    )
    (part,) = clean(built.raw).iter_attachments()
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_content() == long_line


def test_forward_inline_of_a_forward_as_attachment() -> None:
    inner = original_mail()
    outer = make(
        Draft(
            to=("me@example.com",),
            subject="fw",
            text="look",
            attachments=(AttachmentSpec("x.eml", inner, "message/rfc822"),),
        )
    ).raw
    draft = forward(ME, outer)
    assert [(a.filename, a.content_type) for a in draft.attachments] == [
        ("x.eml", "message/rfc822")
    ]
    assert draft.attachments[0].data == inner
    clean(make(Draft(to=("b@x.com",), attachments=draft.attachments)).raw)


# --------------------------------------------------------------------------- properties

_TEXT = st.characters(blacklist_categories=["Cs"]) | st.sampled_from(
    list("\"\\()<>[],;:@.=?_' \tqQbB-é日\r\n\x00")  # the characters that headers care about
)


@PROPS
@given(
    subject=st.text(_TEXT, max_size=120),
    name=st.text(_TEXT, max_size=40),
    to_name=st.text(_TEXT, max_size=40),
    body=st.text(_TEXT, max_size=1_500),
)
def test_random_unicode_builds_and_parses_back(
    subject: str, name: str, to_name: str, body: str
) -> None:
    identity = Identity("sender@example.com", name)
    to = '"' + to_name.replace("\\", "\\\\").replace('"', '\\"') + '" <rcpt@example.org>'
    built = build(identity, Draft(to=(to,), subject=subject, text=body), now=NOW)
    msg = clean(built.raw)

    want_subject, want_from, want_to = one_line(subject), one_line(name), one_line(to_name)
    assert msg["Subject"] == want_subject
    for header, want, addr in (
        ("From", want_from, "sender@example.com"),
        ("To", want_to, "rcpt@example.org"),
    ):
        ((got, got_addr),) = stdlib_addresses(msg, header)
        assert got_addr == addr
        assert got == want or stdlib_gh_128110(got, want, raw_header(built.raw, header))
    norm = body.replace("\r\n", "\n").replace("\r", "\n")
    assert body_text(msg) == (norm if norm.endswith("\n") else norm + "\n")

    env = parse_envelope(built.raw)
    assert env.subject == want_subject
    for got, want in ((env.from_[0].name, want_from), (env.to[0].name, want_to)):
        assert got == storage_reading(want)
    assert env.from_[0].email == "sender@example.com"
    assert env.to[0].email == "rcpt@example.org"
    text = norm.replace("\x00", "").strip("\n")
    assert extract_content(built.raw).text == ("" if not text or text.isspace() else text)
