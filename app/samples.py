"""Deterministic sample mail: the demo mailbox and synthetic mailboxes for benchmarks.

Why this exists: a newcomer running ``tidings demo`` should open a mailbox that looks
like real mail (threads, newsletters, invites, attachments, legacy charsets, junk), and
the benchmarks (``bench/ingest.py``, later sync and search) need mailboxes of any size
with a realistic mix of structures and sizes. Both come from here, as code, so that
they are the same on every machine and every run.

Determinism: the same arguments give byte-identical output in every process, on every
machine (a test runs another interpreter with another hash seed and time zone).

* Every random choice comes from a ``random.Random`` seeded with a string or an int,
  never from ``hash()``, the clock, the locale or ``os.urandom``. Dates count back
  from the fixed ``BASE_DATE`` and are formatted by hand. Message-IDs are derived from
  the seeds.
* MIME is written by hand (the small byte-level writer below) instead of with
  ``email.generator``: the generator invents random boundaries, folds headers
  differently between Python versions and writes RFC 2047 words only in UTF-8, while
  real mail (and so this generator) also uses koi8-r, iso-2022-jp, gb2312... in
  headers. Boundaries are numbered per message, fixed width (so none is a prefix of
  another) and contain ``=_``, which appears in neither base64 nor quoted-printable.
* PNGs use *stored* deflate blocks written by hand, because ``zlib.compress`` output
  may differ between zlib builds (zlib, zlib-ng); PDFs are written by hand too.

``demo_messages()`` yields about two hundred hand-written messages, oldest first (so a
folder's UIDs grow with dates) across INBOX, Sent, Drafts, Archive, Trash, Junk and
the nested, non-ASCII ``Projekte/Übersicht``. The user is ``DEMO_NAME``
<``DEMO_ADDRESS``>; all other addresses and links use example.com, example.org or
.example domains.

``synthetic_messages(n, seed)`` streams ``synthetic_message(i, seed)`` for ``i in
range(n)``, holding at most a few blocks of state (memory stays flat, ~65 MB RSS).
Decisions:

* Index 0 is the *newest* message (at ``BASE_DATE``); larger indexes go back in time,
  15 minutes apart on average, strictly decreasing. A message's bytes do not depend on
  ``n``: ``range(n)`` is "the newest n messages", the order a sync fetches in.
* Threads are laid out in blocks of 512 consecutive indexes: 3% of messages are list
  mail (HTML newsletters with List-Unsubscribe and one-click unsubscribe, or MIME
  digests of a mailing list), about 7 in 8 of the others belong to threads of 2-30
  messages with correct In-Reply-To/References and growing, nested quotes (up to three
  generations). A reply always has a smaller index than its parent, so ingesting in
  index order sees replies before their parents (as a newest-first sync does); when
  ``n`` is not a multiple of 512, replies in the oldest, partial block may reference
  parents outside ``range(n)``.
* Structure: ~55% text/plain, ~30% multipart/alternative (Gmail, Outlook or Apple
  Mail style HTML), ~12% multipart/mixed with 1-3 attachments (PDF, JPEG, PNG, Office,
  zip, CSV, text, iCalendar); ~15% of messages use iso-8859-1, windows-1252, koi8-r,
  iso-2022-jp or gb2312 bodies with RFC 2047 headers in the same charset.
* Sizes (seed 0, 10,000 messages): median ~6 KB, mean ~24 KB. Headers carry realistic
  trace fields (Received chains, DKIM, ARC). Binary attachments are 2-20 KB (a quarter)
  or 20-300 KB (median ~28 KB); one message in 200 has an attachment of 1-4 MB as
  stored in the message (base64; 0.7-2.9 MB decoded), which alone adds ~11 KB to the
  mean. Attachment bytes are pseudo-random (only each file type's magic bytes are
  real), sliced from a base64 pool built once per process, so generation costs little.
* Text: a fixed vocabulary of ~2,400 words (real English words first, then
  pseudo-words) drawn by Zipf's law, so searches find words in nearly every message
  and words in a handful; smaller word lists for German, French, Spanish, Russian,
  Japanese and Chinese threads. Vocabulary, people (~300 senders) and paragraph pools
  are fixed; the seed picks the layout, the text and the bytes.
"""

from __future__ import annotations

import binascii
import bisect
import hashlib
import html
import random
import re
import struct
import time
import unicodedata
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

__all__ = [
    "BASE_DATE",
    "DEMO_ACCOUNT",
    "DEMO_ADDRESS",
    "DEMO_FOLDERS",
    "DEMO_NAME",
    "FLAGS",
    "SampleMessage",
    "demo_messages",
    "synthetic_message",
    "synthetic_messages",
]

DEMO_ACCOUNT = "demo"
DEMO_ADDRESS = "you@tidings.example"
DEMO_NAME = "Alex Rivera"
BASE_DATE = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
FLAGS = frozenset({"seen", "flagged", "answered", "draft"})
DEMO_FOLDERS = ("INBOX", "Sent", "Drafts", "Archive", "Trash", "Junk", "Projekte/Übersicht")


@dataclass(frozen=True, slots=True)
class SampleMessage:
    """One message of the demo mailbox and where it lives."""

    folder: str  # as a user sees it, '/'-separated hierarchy
    flags: frozenset[str]  # subset of FLAGS
    raw: bytes  # complete RFC 5322 message, CRLF line endings


# ---------------------------------------------------------------------------------------
# MIME writer: headers (RFC 5322 folding, RFC 2047 words, RFC 2231 parameters) and parts.
# A part is (header lines, body bytes); bodies always end with CRLF.

Part = tuple[str, bytes]

_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_PHRASE_SPECIALS = frozenset('()<>[]:;@\\,."')
_ATTR_SAFE = "!#$&+-.^_`|~"


def _q_encode(data: bytes) -> str:
    return "".join(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in data)


def _encoded_word(text: str, charset: str, mode: str) -> str:
    data = text.encode(charset)
    if mode == "B":
        payload = binascii.b2a_base64(data, newline=False).decode("ascii")
    else:
        payload = _q_encode(data)
    return f"=?{charset}?{mode}?{payload}?="


def _payload_len(text: str, charset: str, mode: str) -> int:
    data = text.encode(charset)
    if mode == "B":
        return (len(data) + 2) // 3 * 4
    return len(_q_encode(data))


@lru_cache(maxsize=4096)
def _mailbox(name: str, address: str, charset: str = "utf-8", mode: str = "B") -> str:
    """``Name <address>``, the name quoted or RFC 2047-encoded as needed."""
    if not name:
        return address
    if name.isascii():
        if any(c in _PHRASE_SPECIALS for c in name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{address}>"
    return f"{_encode_words(name, _usable_charset(name, charset), mode)} <{address}>"


@lru_cache(maxsize=4096)
def _encode_words(text: str, charset: str, mode: str) -> str:
    """RFC 2047 encoded words for ``text``, space separated, each at most ~75 chars.

    Words are split between characters, never inside one (RFC 2047 section 5).
    """
    limit = 64 - len(charset)
    words: list[str] = []
    start = 0
    if charset == "iso-2022-jp":  # stateful: every word must switch back to ASCII itself
        for end in range(1, len(text) + 1):
            if end - 1 > start and _payload_len(text[start:end], charset, mode) > limit:
                words.append(_encoded_word(text[start : end - 1], charset, mode))
                start = end - 1
    else:
        size = 0  # bytes so far (B) or encoded length so far (Q)
        for end, ch in enumerate(text):
            data = ch.encode(charset)
            cost = len(data) if mode == "B" else len(_q_encode(data))
            total = (size + cost + 2) // 3 * 4 if mode == "B" else size + cost
            if end > start and total > limit:
                words.append(_encoded_word(text[start:end], charset, mode))
                start, size = end, cost
            else:
                size += cost
    words.append(_encoded_word(text[start:], charset, mode))
    return " ".join(words)


def _usable_charset(text: str, charset: str) -> str:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return "utf-8"
    return charset


def _unstructured(text: str, charset: str = "utf-8", mode: str = "B") -> str:
    """Header text: ASCII stays as is; from the first non-ASCII word on, RFC 2047."""
    if text.isascii():
        return text
    words = text.split(" ")
    k = 0
    while words[k].isascii():
        k += 1
    rest = " ".join(words[k:])
    encoded = _encode_words(rest, _usable_charset(rest, charset), mode)
    return " ".join([*words[:k], encoded])


def _fold_tokens(value: str) -> list[str]:
    if '"' not in value:
        return value.split(" ")
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for ch in value:
        if ch == " " and not quoted:
            tokens.append("".join(current))
            current = []
            continue
        current.append(ch)
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
    tokens.append("".join(current))
    return tokens


def _fold(name: str, value: str) -> str:
    """One header field, folded at spaces (outside quoted strings) to 78 columns."""
    line = f"{name}: {value}"
    if len(line) <= 78:
        return line + "\r\n"
    lines: list[str] = []
    current = f"{name}:"
    first = True
    for token in _fold_tokens(value):
        if not first and token and len(current) + 1 + len(token) > 78:
            lines.append(current)
            current = " " + token
        else:
            current += " " + token
        first = False
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def _b64(data: bytes) -> bytes:
    """Base64 body, 76-character lines, CRLF."""
    enc = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join([enc[k : k + 76] for k in range(0, len(enc), 76)]) + b"\r\n"


def _transfer_encode(data: bytes, cte: str) -> tuple[str, bytes]:
    """Encode ``data`` (CRLF lines) with ``cte``; 7bit/8bit fall back when not valid."""
    if cte in ("7bit", "8bit"):
        if (cte == "7bit" and not data.isascii()) or max(map(len, data.split(b"\r\n"))) > 998:
            cte = "quoted-printable"
        else:
            return cte, data
    if cte == "quoted-printable":
        return cte, binascii.b2a_qp(data, istext=True)
    return "base64", _b64(data)


def _encode_text(text: str, charset: str) -> tuple[str, bytes]:
    """``text`` (\\n line ends) as CRLF bytes in ``charset``, or in UTF-8 if it cannot be."""
    text = text.replace("\n", "\r\n")
    try:
        return charset, text.encode(charset)
    except UnicodeEncodeError:
        return "utf-8", text.encode("utf-8")


def _text_part(
    text: str,
    subtype: str = "plain",
    charset: str = "utf-8",
    cte: str | None = None,
    params: str = "",
) -> Part:
    """A text/* leaf; ``text`` uses \\n line ends."""
    if not text.endswith("\n"):
        text += "\n"
    charset, data = _encode_text(text, charset)
    if cte is None:
        cte = "7bit" if data.isascii() else "quoted-printable"
    cte, body = _transfer_encode(data, cte)
    head = (
        _fold("Content-Type", f"text/{subtype}; charset={_charset_label(charset)}{params}")
        + f"Content-Transfer-Encoding: {cte}\r\n"
    )
    return head, body


def _charset_label(charset: str) -> str:
    return charset.upper() if charset in ("iso-2022-jp", "koi8-r") else charset


def _filename_params(param: str, filename: str) -> str:
    if filename.isascii() and not any(c in filename for c in '"\\'):
        return f'{param}="{filename}"'
    pct = urllib.parse.quote(filename, safe=_ATTR_SAFE)
    return f"{param}*=utf-8''{pct}"


def _file_part(
    body_b64: bytes,
    mimetype: str,
    filename: str | None,
    *,
    inline: bool = False,
    cid: str | None = None,
    ct_params: str = "",
) -> Part:
    """A base64 leaf (``body_b64`` is already encoded, see ``_b64``)."""
    ctype = mimetype + ct_params
    if filename:
        ctype += "; " + _filename_params("name", filename)
    head = _fold("Content-Type", ctype)
    if filename or not inline:
        disp = "inline" if inline else "attachment"
        if filename:
            disp += "; " + _filename_params("filename", filename)
        head += _fold("Content-Disposition", disp)
    if cid:
        head += f"Content-ID: <{cid}>\r\n"
    head += "Content-Transfer-Encoding: base64\r\n"
    return head, body_b64


def _multipart_chunks(
    subtype: str, boundary: str, parts: Sequence[Part], params: str, preamble: bool
) -> tuple[str, list[bytes]]:
    head = _fold("Content-Type", f'multipart/{subtype};{params} boundary="{boundary}"')
    delim = b"--" + boundary.encode("ascii") + b"\r\n"
    chunks = [b"This is a multi-part message in MIME format.\r\n"] if preamble else []
    for part_head, part_body in parts:
        chunks += (delim, part_head.encode("ascii"), b"\r\n", part_body)
    chunks.append(b"--" + boundary.encode("ascii") + b"--\r\n")
    return head, chunks


def _multipart(
    subtype: str, boundary: str, parts: Sequence[Part], params: str = "", preamble: bool = False
) -> Part:
    head, chunks = _multipart_chunks(subtype, boundary, parts, params, preamble)
    return head, b"".join(chunks)


def _render_multipart(
    head: str, subtype: str, boundary: str, parts: Sequence[Part], preamble: bool = False
) -> bytes:
    """A whole multipart message, joined once (parts may be megabytes)."""
    ctype, chunks = _multipart_chunks(subtype, boundary, parts, "", preamble)
    top = (head + "MIME-Version: 1.0\r\n" + ctype + "\r\n").encode("ascii")
    return b"".join([top, *chunks])


def _message_part(raw: bytes) -> Part:
    return "Content-Type: message/rfc822\r\n", raw


def _render(headers: Sequence[tuple[str, str]], part: Part, head: str = "") -> bytes:
    """A whole message: ``head`` (already folded lines) and ``headers``, then ``part``."""
    head += "".join([_fold(name, value) for name, value in headers])
    return (head + "MIME-Version: 1.0\r\n" + part[0] + "\r\n").encode("ascii") + part[1]


class _Boundaries:
    """Deterministic, fixed-width (so never a prefix of each other) MIME boundaries."""

    def __init__(self, tag: str, style: int = 0) -> None:
        self.tag = tag
        self.style = style % 3
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        if self.style == 0:
            return f"----=_Part_{self.count:03d}_{self.tag}"
        if self.style == 1:
            return f"=_{self.tag}.{self.count:03d}"
        return f"000000000000{self.tag[:12]}{self.count:03d}=_"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DOC_NETS = ("192.0.2", "198.51.100", "203.0.113")  # RFC 5737 documentation ranges


def _en_stamp(when: datetime) -> str:
    """'Tue, 3 Nov 2026 at 14:05' without strftime (which follows the C locale)."""
    return (
        f"{_DAYS[when.weekday()]}, {when.day} {_MONTHS[when.month - 1]} {when.year} "
        f"at {when.hour:02d}:{when.minute:02d}"
    )


def _date(dt: datetime, offset_minutes: int) -> str:
    return format_datetime(dt.astimezone(timezone(timedelta(minutes=offset_minutes))))


def _digest_hex(*parts: object, size: int = 10) -> str:
    text = "/".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).hexdigest()


# ---------------------------------------------------------------------------------------
# Tiny real files: PNG, PDF, iCalendar.


def _zlib_stored(data: bytes) -> bytes:
    """A zlib stream of stored deflate blocks: same bytes with every zlib build."""
    out = bytearray(b"\x78\x01")
    if not data:
        out += b"\x01\x00\x00\xff\xff"
    for k in range(0, len(data), 65535):
        block = data[k : k + 65535]
        final = 1 if k + 65535 >= len(data) else 0
        out += struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF) + block
    out += struct.pack(">I", zlib.adler32(data))
    return bytes(out)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(width: int, height: int, rows: Iterable[bytes]) -> bytes:
    """An 8-bit RGB PNG; ``rows`` gives ``height`` rows of ``3 * width`` bytes."""
    raw = b"".join(b"\x00" + row for row in rows)
    assert len(raw) == height * (1 + 3 * width)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", _zlib_stored(raw))
        + _png_chunk(b"IEND", b"")
    )


def _png_logo() -> bytes:
    """32x32: a white 'T' on the Tidings teal."""
    rows = []
    for y in range(32):
        row = bytearray()
        for x in range(32):
            in_t = (6 <= y <= 10 and 6 <= x <= 25) or (6 <= y <= 26 and 14 <= x <= 17)
            row += b"\xff\xff\xff" if in_t else b"\x13\x80\x7a"
        rows.append(bytes(row))
    return _png(32, 32, rows)


def _png_chart(values: Sequence[int]) -> bytes:
    """120x64 bar chart of ``values`` (0..56), bars alternating two colours."""
    width, height = 120, 64
    bar = width // len(values)
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            k = min(x // bar, len(values) - 1)
            inside = x % bar not in (0, bar - 1) and height - 4 - y < values[k] and y < height - 4
            if y >= height - 4:
                row += b"\x33\x33\x33"
            elif inside:
                row += b"\xe0\x6c\x4f" if k % 2 else b"\x2a\x7a\xb9"
            else:
                row += b"\xfa\xfa\xfa"
        rows.append(bytes(row))
    return _png(width, height, rows)


def _png_photo() -> bytes:
    """96x64 'landscape': sky gradient, a mountain, a lake."""
    width, height = 96, 64
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            ridge = 40 - abs(x - 40) * 0.7 + (8 if 55 < x < 80 else 0) - abs(x - 67) * 0.3
            if y > 48:
                pixel = (30, 90 + (y - 48) * 3, 140 + (x % 7))
            elif y > 64 - ridge - 16:
                shade = 90 + (x * 3 + y * 5) % 40
                pixel = (shade - 40, shade, shade - 50) if y > 30 else (235, 240, 245)
            else:
                pixel = (120 + y * 2, 170 + y, 235)
            row += bytes(min(255, max(0, v)) for v in pixel)
        rows.append(bytes(row))
    return _png(width, height, rows)


def _pdf_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in "()\\":
            out.append("\\" + ch)
        elif ch.isascii():
            out.append(ch)
        else:
            out.append("".join(f"\\{b:03o}" for b in ch.encode("cp1252")))
    return "(" + "".join(out) + ")"


def _pdf(title: str, lines: Sequence[str]) -> bytes:
    """A minimal, valid one-page PDF 1.4 (Helvetica, WinAnsi text, correct xref)."""
    text_ops = " T* ".join(f"{_pdf_string(line)} Tj" for line in lines)
    stream = (
        f"BT /F1 18 Tf 72 770 Td {_pdf_string(title)} Tj ET\n"
        f"BT /F1 11 Tf 14 TL 72 736 Td {text_ops} ET\n"
    ).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
        b"<< /Producer (Tidings sample generator) /CreationDate (D:20261101093000Z) /Title "
        + _pdf_string(title).encode("ascii")
        + b" >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _ics_fold(line: str) -> str:
    """RFC 5545 folding: lines of at most 75 octets, continuation lines start with a space."""
    out: list[str] = []
    current = ""
    size = 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > 75:
            out.append(current)
            current, size = " ", 1
        current += ch
        size += n
    out.append(current)
    return "\r\n".join(out)


def _ics_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ics(lines: Sequence[str]) -> str:
    return "\r\n".join(_ics_fold(line) for line in lines) + "\r\n"


_VTIMEZONE_BERLIN = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Berlin",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]


# ---------------------------------------------------------------------------------------
# HTML newsletter layout (used by the demo and by synthetic list mail).


@dataclass(frozen=True, slots=True)
class _Article:
    title: str
    blurb: str
    url: str
    image: str


@lru_cache(maxsize=4096)
def _esc(text: str) -> str:
    return html.escape(text)


def _newsletter_html(
    *,
    brand: str,
    issue: str,
    intro: str,
    articles: Sequence[_Article],
    view_url: str,
    unsubscribe_url: str,
    pixel_url: str,
    logo_url: str,
    address: str,
) -> str:
    esc = html.escape
    rows = []
    for a in articles:
        rows.append(
            '<tr><td style="padding:16px 24px;border-bottom:1px solid #e6e6e6">\n'
            '<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr>\n'
            f'<td width="120" valign="top"><a href="{esc(a.url)}"><img src="{esc(a.image)}" '
            f'width="120" height="80" alt="" style="display:block;border:0"></a></td>\n'
            '<td valign="top" style="padding-left:16px;font:15px/1.5 Georgia,serif;color:#222">\n'
            f'<a href="{esc(a.url)}" style="color:#0b5394;font:bold 18px Helvetica,Arial,'
            f'sans-serif;text-decoration:none">{esc(a.title)}</a>\n'
            f'<p style="margin:6px 0 0">{esc(a.blurb)}</p>\n'
            "</td></tr></table>\n</td></tr>\n"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width">\n'
        f"<title>{esc(brand)} {esc(issue)}</title>\n"
        "<style>body{margin:0;background:#f2f2f2}a{color:#0b5394}"
        "@media (max-width:620px){.wrap{width:100%!important}}</style>\n"
        '</head><body style="margin:0;background:#f2f2f2">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
        'bgcolor="#f2f2f2"><tr><td align="center">\n'
        '<table role="presentation" class="wrap" width="600" cellpadding="0" cellspacing="0" '
        'bgcolor="#ffffff" style="margin:24px 0">\n'
        '<tr><td style="padding:8px 24px;font:12px Helvetica,Arial,sans-serif;color:#888" '
        f'align="right"><a href="{esc(view_url)}">View this email in your browser</a></td></tr>\n'
        '<tr><td style="padding:24px;background:#0b5394">'
        f'<img src="{esc(logo_url)}" width="180" height="40" alt="{esc(brand)}" '
        'style="display:block;border:0"></td></tr>\n'
        '<tr><td style="padding:24px;font:16px/1.5 Georgia,serif;color:#222">'
        f'<h1 style="margin:0 0 8px;font:bold 24px Helvetica,Arial,sans-serif">{esc(issue)}</h1>'
        f'\n<p style="margin:0">{esc(intro)}</p></td></tr>\n'
        + "".join(rows)
        + '<tr><td style="padding:24px;font:12px/1.5 Helvetica,Arial,sans-serif;color:#888">\n'
        f"You are receiving this because you subscribed to {esc(brand)}.<br>\n"
        f'{esc(address)}<br>\n<a href="{esc(unsubscribe_url)}">Unsubscribe</a> &middot; '
        f'<a href="{esc(view_url)}">View online</a>\n</td></tr>\n'
        "</table>\n</td></tr></table>\n"
        f'<img src="{esc(pixel_url)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0">\n'
        "</body></html>\n"
    )


def _newsletter_text(brand: str, issue: str, intro: str, articles: Sequence[_Article]) -> str:
    lines = [f"{brand} - {issue}", "", intro, ""]
    for a in articles:
        lines += [a.title, "-" * min(len(a.title), 72), a.blurb, f"Read more: {a.url}", ""]
    lines += ["--", f"You are receiving this because you subscribed to {brand}."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# The demo mailbox.


@dataclass(frozen=True, slots=True, eq=False)
class _Person:
    name: str
    address: str
    tz: int = 0  # UTC offset in minutes
    charset: str = "utf-8"
    first: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "first", self.name.split(" ")[0])


_ME = _Person(DEMO_NAME, DEMO_ADDRESS, 60)
_P = {
    "zoe": _Person("Zoë Müller", "zoe.mueller@example.org", 60, "iso-8859-1"),
    "jose": _Person("José García", "jose.garcia@example.com", 60),
    "taro": _Person("山田太郎", "yamada.taro@tokyo.example", 540, "iso-2022-jp"),
    "dmitri": _Person("Дмитрий Иванов", "d.ivanov@example.org", 180, "koi8-r"),
    "chloe": _Person("Chloé Dubois", "chloe.dubois@example.com", 60, "windows-1252"),
    "priya": _Person("Priya Raman", "priya.raman@example.com", 0),
    "liam": _Person("Liam O'Connor", "liam.oconnor@example.org", 0),
    "mei": _Person("Mei Chen", "mei.chen@example.com", -480),
    "sam": _Person("Sam Okafor", "sam.okafor@example.org", -300),
    "hannah": _Person("Hannah Becker", "hannah.becker@example.org", 60),
    "bjorn": _Person("Björn Lindqvist", "bjorn.lindqvist@stockholm.example", 60),
    "fatima": _Person("Fatima Al-Sayed", "fatima.alsayed@example.com", 240),
    "ana": _Person("Ana Sousa", "ana.sousa@lisboa.example", 0),
    "noah": _Person("Noah Williams", "noah.williams@example.com", -480),
    "grace": _Person("Grace Kim", "grace.kim@example.com", -420),
    "tomasz": _Person("Tomasz Kowalski", "tomasz.kowalski@example.com", 60),
    "ci": _Person("Tidings CI", "ci@builds.example", 0),
    "tracker": _Person("Tidings Tracker", "notifications@code.example", 0),
    "weekly": _Person("The Weekly Byte", "newsletter@weeklybyte.example", -300),
    "shop": _Person("Northwind Outfitters", "orders@northwind.example", -300),
    "bank": _Person("Contoso Bank", "no-reply@contoso-bank.example", 0),
    "fabrikam": _Person("Fabrikam Accounts", "accounts@fabrikam.example", 60),
    "list": _Person("tidings-users", "tidings-users@lists.example.org", 0),
}


@dataclass(slots=True)
class _DemoRecord:
    folder: str
    flags: set[str]
    when: datetime
    msgid: str
    references: tuple[str, ...]
    sender: _Person
    text: str  # plain text as sent, what replies quote
    subject: str
    raw: bytes = b""


@dataclass(slots=True)
class _Demo:
    rng: random.Random = field(default_factory=lambda: random.Random("tidings-demo"))
    records: list[_DemoRecord] = field(default_factory=list)

    def when(self, days_ago: float, hour: float) -> datetime:
        day = BASE_DATE.replace(hour=0, minute=0) - timedelta(days=int(days_ago))
        minute = self.rng.randrange(60)
        return day + timedelta(hours=hour, minutes=minute)

    def add(
        self,
        *,
        folder: str,
        sender: _Person,
        to: Sequence[_Person],
        subject: str,
        when: datetime,
        text: str = "",
        body: Part | None = None,
        parent: _DemoRecord | None = None,
        cc: Sequence[_Person] = (),
        flags: Iterable[str] | None = None,
        extra: Sequence[tuple[str, str]] = (),
        charset: str | None = None,
        mode: str | None = None,
        received: bool = True,
        quote: bool = True,
        msgid: str | None = None,
        reply_to: _Person | None = None,
        mailer: str | None = None,
    ) -> _DemoRecord:
        """Add one message; ``text`` is the new text (a quote of ``parent`` is appended)."""
        charset = charset or sender.charset
        mode = mode or ("Q" if charset in ("iso-8859-1", "windows-1252") else "B")
        number = len(self.records)
        host = sender.address.split("@")[1]
        msgid = msgid or f"<{_digest_hex('demo', number, subject)}@{host}>"
        references: tuple[str, ...] = ()
        if parent is not None:
            references = (*parent.references, parent.msgid)
            if quote and text:
                german = subject.startswith("AW: ")
                text = text.rstrip("\n") + "\n\n" + _quote(parent, german=german)
        if body is None:
            cte = {"koi8-r": "8bit", "iso-2022-jp": "7bit"}.get(charset)
            body = _text_part(text, charset=charset, cte=cte)
        if flags is None:
            age = (BASE_DATE - when).days
            flags = {"seen"} if folder != "INBOX" or age > 3 else set()
        headers: list[tuple[str, str]] = []
        if received and sender is not _ME:
            headers += _received_headers(self.rng, sender, when, msgid)
        headers.append(("From", _mailbox(sender.name, sender.address, charset, mode)))
        if reply_to is not None:
            headers.append(("Reply-To", _mailbox(reply_to.name, reply_to.address)))
        if to:
            headers.append(
                ("To", ", ".join(_mailbox(p.name, p.address, charset, mode) for p in to))
            )
        if cc:
            headers.append(
                ("Cc", ", ".join(_mailbox(p.name, p.address, charset, mode) for p in cc))
            )
        headers += [
            ("Subject", _unstructured(subject, charset, mode)),
            ("Date", _date(when, sender.tz)),
            ("Message-ID", msgid),
        ]
        if parent is not None:
            headers += [("In-Reply-To", parent.msgid), ("References", " ".join(references))]
        if mailer is None:
            mailer = _DEMO_MAILERS[number % len(_DEMO_MAILERS)]
        if mailer:
            headers.append(("User-Agent", mailer))
        headers += extra
        record = _DemoRecord(
            folder, set(flags), when, msgid, references, sender, text, subject,
            _render(headers, body),
        )  # fmt: skip
        self.records.append(record)
        if parent is not None and folder == "Sent" and parent.sender is not _ME:
            parent.flags.add("answered")
        return record

    def reply(
        self,
        parent: _DemoRecord,
        sender: _Person,
        text: str,
        *,
        days_after: float,
        to: Sequence[_Person] | None = None,
        cc: Sequence[_Person] = (),
        folder: str | None = None,
        prefix: str = "Re: ",
        **kwargs: object,
    ) -> _DemoRecord:
        when = parent.when + timedelta(days=days_after, minutes=self.rng.randrange(5, 50))
        subject = parent.subject
        if not subject.lower().startswith(prefix.lower()):
            subject = prefix + _strip_re(subject)
        if folder is None:
            folder = "Sent" if sender is _ME else "INBOX"
        return self.add(
            folder=folder,
            sender=sender,
            to=to if to is not None else [parent.sender if parent.sender is not sender else _ME],
            cc=cc,
            subject=subject,
            when=when,
            text=text,
            parent=parent,
            **kwargs,  # type: ignore[arg-type]
        )


def _strip_re(subject: str) -> str:
    for prefix in ("Re: ", "AW: ", "RE: "):
        if subject.startswith(prefix):
            return subject[len(prefix) :]
    return subject


_DEMO_MAILERS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.4.0",
    "",
    "Apple Mail (2.3774.200.91.1.1)",
    "Microsoft Outlook 16.0",
    "",
    "K-9 Mail for Android",
    "Mutt/2.2.13 (2024-03-09)",
)


def _quote(parent: _DemoRecord, *, german: bool = False) -> str:
    when = parent.when.astimezone(timezone(timedelta(minutes=parent.sender.tz)))
    stamp = _en_stamp(when)
    attribution = f"On {stamp}, {parent.sender.name} <{parent.sender.address}> wrote:"
    if german:
        attribution = (
            f"Am {when.day}.{when.month}.{when.year} um {when.hour:02d}:{when.minute:02d} "
            f"schrieb {parent.sender.name}:"
        )
    lines = []
    for line in parent.text.rstrip("\n").split("\n"):
        if line.startswith(">"):
            lines.append(">" + line)
        elif line:
            lines.append("> " + line)
        else:
            lines.append(">")
    return attribution + "\n" + "\n".join(lines) + "\n"


def _received_headers(
    rng: random.Random, sender: _Person, when: datetime, msgid: str
) -> list[tuple[str, str]]:
    host = sender.address.split("@")[1]
    ip = f"{rng.choice(_DOC_NETS)}.{rng.randrange(1, 255)}"
    queue = _digest_hex("queue", msgid, size=6).upper()
    return [
        ("Return-Path", f"<{sender.address}>"),
        ("Delivered-To", DEMO_ADDRESS),
        (
            "Received",
            f"from mail.{host} (mail.{host} [{ip}]) by mx.tidings.example (Postfix) with ESMTPS "
            f"id {queue} for <{DEMO_ADDRESS}>; {_date(when + timedelta(seconds=4), 0)}",
        ),
    ]


def _plain_or_alt(
    text: str, charset: str = "utf-8", html_body: str | None = None, b: _Boundaries | None = None
) -> Part:
    if html_body is None or b is None:
        return _text_part(text, charset=charset)
    return _multipart(
        "alternative",
        b(),
        [_text_part(text, charset=charset), _text_part(html_body, "html", charset=charset)],
    )


def _paragraphs_html(text: str) -> str:
    paras = [p for p in text.strip("\n").split("\n\n") if p]
    inner = "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paras)
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>'
        '\n<body style="font-family:Helvetica,Arial,sans-serif;font-size:14px">\n'
        + inner
        + "\n</body></html>\n"
    )


def demo_messages() -> Iterator[SampleMessage]:
    """The demo mailbox, oldest first (so UIDs grow with dates within each folder).

    Built in well under a second; the same messages, flags and bytes every time.
    """
    demo = _Demo()
    _demo_conversations(demo)
    _demo_international(demo)
    _demo_offsite_thread(demo)
    _demo_mailing_list(demo)
    _demo_notifications(demo)
    _demo_newsletters(demo)
    _demo_calendar(demo)
    _demo_junk_trash_drafts(demo)
    order = sorted(range(len(demo.records)), key=lambda k: (demo.records[k].when, k))
    for k in order:
        r = demo.records[k]
        yield SampleMessage(r.folder, frozenset(r.flags), r.raw)


# The demo content lives in the functions below; it is data more than code.


def _demo_conversations(demo: _Demo) -> None:
    p = _P
    # -- Lunch: three messages, the user's reply in Sent.
    lunch = demo.add(
        folder="INBOX",
        sender=p["priya"],
        to=[_ME],
        subject="Lunch on Thursday?",
        when=demo.when(6, 10.2),
        text=(
            "Hi Alex,\n\nAre you free for lunch on Thursday? There's a new ramen place near the\n"
            "station that I've been wanting to try. 12:30 works best for me, but I can be\n"
            "flexible.\n\nPriya\n"
        ),
    )
    mine = demo.reply(
        lunch,
        _ME,
        "Thursday works! 12:30 is perfect. Shall we meet at the station entrance?\n\nAlex\n",
        days_after=0.1,
    )
    demo.reply(
        mine,
        p["priya"],
        "Great, see you at the north entrance at 12:25. I'll book a table for two\n"
        "just in case.\n\nP.\n",
        days_after=0.05,
        flags=set(),
    )

    # -- Apartment viewing, with a PDF attachment in the third message.
    flat = demo.add(
        folder="INBOX",
        sender=p["jose"],
        to=[_ME],
        subject="Apartment viewing on Saturday",
        when=demo.when(12, 18.5),
        text=(
            "Hola Alex,\n\nThe landlord confirmed the viewing for Saturday at 11:00. The address\n"
            "is Calle de la Reina 14, 3º izquierda. Bring your ID and the last three\n"
            "payslips; she was very clear about that.\n\nI also asked about the heating: it's "
            "gas, and the bills last winter were\naround 60 € a month.\n\n¡Hasta el sábado!\n"
            "José\n"
        ),
    )
    ask = demo.reply(
        flat,
        _ME,
        "Thanks José! I'll be there. Do you know if pets are allowed? Asking for a\n"
        "friend (the friend is a cat).\n\nAlex\n",
        days_after=0.2,
    )
    contract = _pdf(
        "Contrato de arrendamiento (borrador)",
        [
            "Vivienda: Calle de la Reina 14, 3º izquierda, Madrid",
            "Renta mensual: 1.150 €  -  Fianza: dos mensualidades",
            "Duración: 12 meses, prorrogable",
            "Se admiten mascotas pequeñas (gatos).",
            "Borrador para revisión, no firmar.",
        ],
    )
    b = _Boundaries(_digest_hex("flat", size=8))
    body = _multipart(
        "mixed",
        b(),
        [
            _text_part(
                "Ja ja! Pets are fine as long as it's not a dog bigger than the sofa.\n\n"
                "She sent me the contract draft, it's attached so you can read it before\n"
                "Saturday. Clause 7 (repairs) is the one to look at.\n\nJosé\n\n" + _quote(ask)
            ),
            _file_part(_b64(contract), "application/pdf", "Contrato_borrador.pdf"),
        ],
        preamble=True,
    )
    demo.reply(ask, p["jose"], "(pdf)", days_after=0.4, body=body, flags={"seen", "flagged"})

    # -- Photos from the hike: an image attachment.
    b = _Boundaries(_digest_hex("hike", size=8), 1)
    hike = demo.add(
        folder="INBOX",
        sender=p["liam"],
        to=[_ME],
        cc=[p["ana"], p["sam"]],
        subject="Photos from Saturday's hike",
        when=demo.when(20, 21.0),
        text="(photo)",
        body=_multipart(
            "mixed",
            b(),
            [
                _text_part(
                    "Hi all,\n\nHere's the one decent photo I took before the fog rolled in. The\n"
                    "others are mostly of my thumb. Same time next month? I was thinking of the\n"
                    "ridge trail, it's about 14 km with 700 m of climbing.\n\nLiam\n"
                ),
                _file_part(_b64(_png_photo()), "image/png", "ridge-trail.png"),
            ],
        ),
    )
    hike.text = "Here's the one decent photo I took before the fog rolled in.\n"
    reply = demo.reply(
        hike,
        _ME,
        "What a view! Count me in for next month; the ridge trail sounds great.\n\nAlex\n",
        days_after=0.5,
        to=[p["liam"]],
        cc=[p["ana"], p["sam"]],
    )
    demo.reply(
        reply,
        p["ana"],
        "Me too! I can drive, there's room for three more in the car.\n\nAna\n",
        days_after=0.1,
        to=[p["liam"], _ME],
        cc=[p["sam"]],
    )

    # -- Inline images referenced by cid: (multipart/related inside multipart/alternative).
    b = _Boundaries(_digest_hex("chart", size=8), 2)
    chart_cid = "chart-sync-2026-10@tidings.example"
    logo_cid = "logo@tidings.example"
    text = (
        "Hi Alex,\n\nThe numbers from last week's sync benchmark are in. Median sync time for a\n"
        "50,000 message mailbox went from 41 s to 17 s after the batching change.\n"
        "The chart is in the HTML version of this mail.\n\nGrace\n"
    )
    html_body = (
        '<html><body style="font-family:Helvetica,Arial,sans-serif;font-size:14px">\n'
        f'<p><img src="cid:{logo_cid}" width="32" height="32" alt="Tidings"></p>\n'
        "<p>Hi Alex,</p>\n<p>The numbers from last week's sync benchmark are in. Median sync "
        "time for a 50,000 message mailbox went from <b>41&nbsp;s</b> to <b>17&nbsp;s</b> "
        "after the batching change.</p>\n"
        f'<p><img src="cid:{chart_cid}" width="240" height="128" alt="Sync time per week"></p>\n'
        "<p>Grace</p>\n</body></html>\n"
    )
    related = _multipart(
        "related",
        b(),
        [
            _text_part(html_body, "html"),
            _file_part(_b64(_png_chart([30, 34, 41, 38, 22, 17])), "image/png", "chart.png",
                       inline=True, cid=chart_cid),
            _file_part(_b64(_png_logo()), "image/png", None, inline=True, cid=logo_cid),
        ],
        params=' type="text/html";',
    )  # fmt: skip
    demo.add(
        folder="INBOX",
        sender=p["grace"],
        to=[_ME],
        subject="Sync benchmark: before and after batching",
        when=demo.when(5, 16.0),
        text=text,
        body=_multipart("alternative", b(), [_text_part(text), related]),
        flags={"seen", "flagged"},
        mailer="Apple Mail (2.3774.200.91.1.1)",
    )

    # -- Invoice with a PDF, flagged.
    invoice = _pdf(
        "Invoice INV-2026-0412",
        [
            "Fabrikam Ltd., 1 Harbour Street, Example City",
            "Bill to: Alex Rivera",
            "Period: October 2026",
            "Consulting, 12.5 h at 96.00 EUR ........ 1,200.00 EUR",
            "VAT 19% ...................................... 228.00 EUR",
            "Total due by 30 November 2026 ....... 1,428.00 EUR",
        ],
    )
    b = _Boundaries(_digest_hex("invoice", size=8))
    demo.add(
        folder="INBOX",
        sender=p["fabrikam"],
        to=[_ME],
        subject="Invoice INV-2026-0412 for October",
        when=demo.when(1, 8.0),
        text="(invoice)",
        body=_multipart(
            "mixed",
            b(),
            [
                _text_part(
                    "Dear Alex Rivera,\n\nplease find attached invoice INV-2026-0412 for October "
                    "2026\n(1,428.00 EUR), due by 30 November 2026.\n\nKind regards,\n"
                    "Fabrikam Accounts\n"
                ),
                _file_part(_b64(invoice), "application/pdf", "INV-2026-0412.pdf"),
            ],
        ),
        flags={"flagged"},
        mailer="",
    )

    # -- A talk abstract as a .txt attachment.
    abstract = (
        "Local-first mail: what we learned building an offline IMAP client\n"
        "==================================================================\n\n"
        "Mail is the oldest local-first application: it worked offline long before the\n"
        "term existed. This talk walks through syncing IMAP into SQLite, keeping a search\n"
        "index fresh without re-indexing on every flag change, and rendering hostile HTML\n"
        "safely. Speaker: Björn Lindqvist. Length: 30 minutes.\n"
    )
    b = _Boundaries(_digest_hex("abstract", size=8), 1)
    talk = demo.add(
        folder="INBOX",
        sender=p["bjorn"],
        to=[_ME],
        subject="Draft abstract for NordConf",
        when=demo.when(26, 14.0),
        text="Could you read the abstract before I submit it on Friday?\n",
        body=_multipart(
            "mixed",
            b(),
            [
                _text_part(
                    "Hej Alex,\n\nCould you read the abstract before I submit it on Friday? It "
                    "has to fit in\n600 characters and I'm at 590.\n\nTack!\nBjörn\n"
                ),
                _file_part(
                    _b64(abstract.replace("\n", "\r\n").encode("utf-8")),
                    "text/plain",
                    "abstract.txt",
                    ct_params="; charset=utf-8",
                ),
            ],
        ),
    )
    demo.reply(
        talk,
        _ME,
        'Reads well! I\'d cut "long before the term existed" to save space, and say\n'
        '"hostile HTML" earlier: that\'s the hook.\n\nAlex\n',
        days_after=1,
    )

    # -- Book club: a group thread that branches.
    start = demo.add(
        folder="Archive",
        sender=p["mei"],
        to=[_ME, p["sam"], p["hannah"]],
        subject="Book club: November pick",
        when=demo.when(45, 19.0),
        text=(
            'Hi book people,\n\nNominations for November: "The Left Hand of Darkness", '
            '"Piranesi" or\n"Klara and the Sun". Vote by Friday!\n\nMei\n'
        ),
    )
    sam = demo.reply(
        start, p["sam"], "Piranesi, no contest.\n\nSam\n", days_after=0.2,
        to=[p["mei"], _ME, p["hannah"]], folder="Archive",
    )  # fmt: skip
    demo.reply(
        start, p["hannah"], "The Left Hand of Darkness! I've wanted to reread it for years.\n\n"
        "Hannah\n", days_after=0.4, to=[p["mei"], _ME, p["sam"]], folder="Archive",
    )  # fmt: skip
    mine = demo.reply(
        sam, _ME, "Seconding Piranesi. It's also short, which November me appreciates.\n\nAlex\n",
        days_after=0.5, to=[p["mei"], p["sam"], p["hannah"]],
    )  # fmt: skip
    demo.reply(
        mine, p["mei"], "Piranesi it is: 3 votes to 1. We meet on the 26th at mine.\n\nMei\n",
        days_after=1, to=[_ME, p["sam"], p["hannah"]], folder="Archive",
    )  # fmt: skip

    # -- The user's own mail: numbers for Noah (whose auto-reply went to Trash), slides.
    numbers = demo.add(
        folder="Sent",
        sender=_ME,
        to=[p["noah"]],
        cc=[p["grace"]],
        subject="Quarterly numbers",
        when=demo.when(33, 8.5),
        text=(
            "Hi Noah,\n\nQ3 in short: 1,840 daily active users (+12%), median first sync 17 s,\n"
            "crash rate 0.3%. Full table in the shared folder.\n\nCould you add the numbers "
            "to Monday's board slides?\n\nThanks,\nAlex\n"
        ),
    )
    demo.add(
        folder="Trash",
        sender=p["noah"],
        to=[_ME],
        subject="Automatic reply: Quarterly numbers",
        when=numbers.when + timedelta(seconds=41),
        text=(
            "Thanks for your message. I'm out of the office until 3 October with limited\n"
            "access to email. For anything urgent, please contact Grace Kim.\n\nNoah\n"
        ),
        parent=numbers,
        quote=False,
        extra=[("Auto-Submitted", "auto-replied")],
    )
    slides = _pdf(
        "Syncing IMAP into SQLite",
        [
            "1. Why local-first mail",
            "2. CONDSTORE and QRESYNC in practice",
            "3. Batching: 41 s -> 17 s for 50,000 messages",
            "4. Search without re-indexing on flag changes",
            "5. Questions",
        ],
    )
    b = _Boundaries(_digest_hex("slides", size=8), 2)
    demo.add(
        folder="Sent",
        sender=_ME,
        to=[p["mei"], p["sam"], p["grace"]],
        subject="Slides from today's sync talk",
        when=demo.when(4, 16.5),
        text="(slides)",
        body=_multipart(
            "mixed",
            b(),
            [
                _text_part(
                    "Hi all,\n\nthanks for coming to the talk! The slides are attached; the "
                    "benchmark\nnumbers on slide 3 are Grace's.\n\nAlex\n"
                ),
                _file_part(_b64(slides), "application/pdf", "sync-talk-slides.pdf"),
            ],
            preamble=True,
        ),
    )
    fwd = (
        "FYI, see below: the new expense policy starts in November.\n\nFatima\n\n"
        "---------- Forwarded message ---------\n"
        "From: Finance Team <finance@example.com>\n"
        "Date: Mon, 12 Oct 2026 at 09:00\n"
        "Subject: Updated expense policy\n\n"
        "From 1 November, receipts must be uploaded within 30 days, and per-diem rates\n"
        "for travel follow the new table on the intranet.\n"
    )
    demo.add(
        folder="Archive",
        sender=p["fatima"],
        to=[_ME],
        subject="Fwd: Updated expense policy",
        when=demo.when(19, 11.0),
        text=fwd,
    )


def _demo_international(demo: _Demo) -> None:
    p = _P
    folder = "Projekte/Übersicht"
    # -- German, iso-8859-1, with a non-ASCII (RFC 2231) attachment name.
    pdf = _pdf(
        "Übersicht Q4 - Übersetzungen",
        [
            "Deutsch: fertig (100 %)",
            "Français : terminé (100 %)",
            "Japanisch: 412 von 452 Zeichenketten",
            "Russisch: in Prüfung",
            "Nächster Schritt: Glossar für »Posteingang« und »Entwürfe«",
        ],
    )
    b = _Boundaries(_digest_hex("uebersicht", size=8))
    text = (
        "Hallo Alex,\n\nanbei die aktuelle Übersicht zum Stand der Übersetzungen für das "
        "Release 2.0.\nDeutsch und Französisch sind fertig, bei Japanisch fehlen noch etwa "
        "40\nZeichenketten.\n\nKönntest Du bitte bis Freitag die Glossar-Einträge für "
        "»Posteingang« und\n»Entwürfe« prüfen?\n\nViele Grüße\nZoë\n"
    )
    first = demo.add(
        folder=folder,
        sender=p["zoe"],
        to=[_ME],
        cc=[p["hannah"]],
        subject="Übersicht Q4: Stand der Übersetzungen",
        when=demo.when(16, 9.5),
        text=text,
        body=_multipart(
            "mixed",
            b(),
            [
                _text_part(text, charset="iso-8859-1", cte="quoted-printable"),
                _file_part(_b64(pdf), "application/pdf", "Übersicht Q4 – Zoë Müller.pdf"),
            ],
        ),
        flags={"seen"},
    )
    mine = demo.reply(
        first,
        _ME,
        "Hallo Zoë,\n\ndanke für die Übersicht! Die Glossar-Einträge schaue ich mir morgen an.\n"
        "»Entwürfe« finde ich gut, bei »Posteingang« bin ich unsicher, ob »Eingang«\n"
        "nicht reicht.\n\nViele Grüße\nAlex\n",
        days_after=0.3,
        cc=[p["hannah"]],
        prefix="AW: ",
    )
    demo.reply(
        mine,
        p["zoe"],
        "Hallo Alex,\n\n»Posteingang« ist der übliche Begriff (Thunderbird und Outlook "
        "verwenden ihn\nauch), ich würde dabei bleiben.\n\nSchöne Grüße\nZoë\n",
        days_after=0.2,
        cc=[p["hannah"]],
        prefix="AW: ",
        folder=folder,
        flags={"seen"},
    )
    for week in range(6):
        done = 61 + week * 7
        demo.add(
            folder=folder,
            sender=p["hannah"],
            to=[_ME, p["zoe"]],
            subject=f"Wöchentlicher Statusbericht KW {44 - week}",
            when=demo.when(1 + week * 7, 7.0),
            text=(
                f"Hallo zusammen,\n\nStatus Kalenderwoche {44 - week}:\n\n"
                f"- Übersetzungen: {done} % erledigt\n"
                f"- Offene Fehler: {23 - week * 3 if week < 7 else 2}\n"
                "- Nächste Abstimmung: Donnerstag, 14:00 Uhr\n\n"
                "Grüße\nHannah\n"
            ),
            flags=set() if week == 0 else {"seen"},
        )
    demo.add(
        folder=folder,
        sender=p["tomasz"],
        to=[_ME],
        subject="Polnische Übersetzung / Polish translation",
        when=demo.when(9, 13.0),
        text=(
            "Hi Alex,\n\nI can take the Polish translation (Zażółć gęślą jaźń, as we say to test\n"
            "fonts). Could you add me to the translation project?\n\nDzięki,\nTomasz\n"
        ),
        flags={"seen", "flagged"},
    )

    # -- Japanese, iso-2022-jp (7bit), RFC 2047 B-encoded subject and name.
    ja = demo.add(
        folder="INBOX",
        sender=p["taro"],
        to=[_ME],
        subject="来週の打ち合わせについて",
        when=demo.when(6, 2.0),
        text=(
            "Alex さん\n\nお世話になっております。山田です。\n\n"
            "来週の打ち合わせですが、１１月５日（木）の午後３時からでいかがでしょうか。\n"
            "場所は渋谷オフィスの会議室Ｂを予約しておきます。\n\n"
            "ご都合をお知らせください。\n\nよろしくお願いいたします。\n山田太郎\n"
        ),
        flags={"seen", "flagged"},
    )
    mine = demo.reply(
        ja,
        _ME,
        "Yamada-san,\n\nThank you. Thursday 5 November at 15:00 works for me. See you in "
        "meeting\nroom B.\n\nBest regards,\nAlex\n",
        days_after=0.3,
    )
    demo.reply(
        mine,
        p["taro"],
        "Alex さん\n\n承知しました。当日はよろしくお願いいたします。\n\n山田\n",
        days_after=0.4,
        charset="iso-2022-jp",
    )

    # -- Russian, koi8-r (8bit), with a CSV attachment.
    rows = ["date,active_users,median_sync_s,errors"]
    rng = random.Random("dmitri-report")
    users = 1840
    for day in range(1, 32):
        users += rng.randrange(-20, 45)
        rows.append(f"2026-10-{day:02d},{users},{1.6 + rng.random() * 0.5:.2f},{rng.randrange(9)}")
    csv = ("\r\n".join(rows) + "\r\n").encode("ascii")
    b = _Boundaries(_digest_hex("otchet", size=8), 1)
    text = (
        "Привет, Алекс!\n\nВо вложении отчёт за октябрь: число активных пользователей выросло "
        "на 12%,\nсреднее время синхронизации сократилось до 1,8 секунды.\n\n"
        "Если будут вопросы, пиши.\n\nДмитрий\n"
    )
    demo.add(
        folder="INBOX",
        sender=p["dmitri"],
        to=[_ME],
        subject="Отчёт за октябрь",
        when=demo.when(2, 7.5),
        text=text,
        body=_multipart(
            "mixed",
            b(),
            [
                _text_part(text, charset="koi8-r", cte="8bit"),
                _file_part(
                    _b64(csv), "text/csv", "report-2026-10.csv", ct_params="; charset=us-ascii"
                ),
            ],
        ),
        flags=set(),
    )
    demo.add(
        folder="Archive",
        sender=p["dmitri"],
        to=[_ME],
        subject="Отчёт за сентябрь",
        when=demo.when(32, 7.5),
        text=(
            "Привет, Алекс!\n\nКоротко о сентябре: 1 640 активных пользователей, ошибок "
            "синхронизации\nстало вдвое меньше. Подробный отчёт пришлю в понедельник.\n\nДмитрий\n"
        ),
    )

    # -- French, windows-1252 (’ – € are not in latin-1), quoted-printable.
    fr = demo.add(
        folder="INBOX",
        sender=p["chloe"],
        to=[_ME, p["zoe"], p["jose"]],
        subject="Réunion d’équipe – ordre du jour",
        when=demo.when(8, 8.5),
        text=(
            "Bonjour à tous,\n\nVoici l’ordre du jour de la réunion de jeudi :\n\n"
            "1. Bilan du trimestre (budget : 12 500 €)\n"
            "2. Nouvelles fonctionnalités – recherche hors ligne\n"
            "3. Questions diverses\n\nN’hésitez pas à m’envoyer vos points d’ici mercredi.\n\n"
            "Bien cordialement,\nChloé\n"
        ),
    )
    demo.reply(
        fr,
        _ME,
        "Bonjour Chloé,\n\nMerci ! Je voudrais ajouter un point : la synchronisation des "
        "brouillons.\n\nAlex\n",
        days_after=0.5,
    )
    # -- Spanish in iso-8859-1 with a Q-encoded subject.
    demo.add(
        folder="Archive",
        sender=p["jose"],
        to=[_ME],
        subject="¿Cena el viernes? Año nuevo, restaurante nuevo",
        when=demo.when(60, 20.0),
        text=(
            "¡Hola!\n\n¿Te apetece cenar el viernes? Han abierto un restaurante gallego en la\n"
            "esquina: pulpo, empanada y un albariño muy bueno.\n\nUn abrazo,\nJosé\n"
        ),
        charset="iso-8859-1",
    )


_OFFSITE_LINES = (
    ("ana", "Kicking off planning for the 2027 offsite. Proposal: Lisbon, 9-11 March.\n"
     "Budget is 1,200 EUR per person including travel. Thoughts?"),
    ("mei", "Lisbon gets my vote. March is good for me, anything but the week of the 16th."),
    ("sam", "+1 for Lisbon. Can we make sure the venue has decent wifi this time?"),
    ("priya", "Flights from London are cheap that week, I just checked: around 140 EUR return."),
    ("liam", "Works for me. Is the offsite also open to the two new hires starting in February?"),
    ("ana", "Yes, everyone on the team, new hires included. That makes us 14 people."),
    ("me", "Lisbon in March sounds great. I can look into venues if nobody else has."),
    ("hannah", "Please consider accessibility: one of us uses a wheelchair, so step-free\n"
     "access at the venue and the hotel matters."),
    ("ana", "Good point Hannah, that's a hard requirement. Alex, can you filter on it?"),
    ("me", "Will do. Shortlist so far: a converted warehouse in Marvila, a hotel in\n"
     "Baixa with meeting rooms, and a co-working space in Alcântara."),
    ("bjorn", "The warehouse sounds fun but check the heating. March can be chilly."),
    ("fatima", "I'd like one afternoon without laptops. Maybe a walking tour?"),
    ("grace", "Agenda idea: half a day on the 2027 roadmap, half a day on the sync engine\n"
     "rewrite, the rest unstructured."),
    ("noah", "Could we do a hack day? Small teams, demo at the end, silly prizes."),
    ("mei", "Hack day yes! Last time it produced the search query parser."),
    ("sam", "I can organise the hack day if someone else handles the dinner."),
    ("priya", "I'll take the dinner. Any dietary needs, send them to me directly."),
    ("liam", "Vegetarian here. Also, can we avoid the three-hour dinner from last year?"),
    ("ana", "Noted. Two-hour dinner max, I promise."),
    ("me", "Venue update: the Baixa hotel is step-free, has a room for 20 and quoted\n"
     "4,800 EUR for three days including lunch. The warehouse has stairs only."),
    ("hannah", "Thank you for checking, the hotel sounds right."),
    ("bjorn", "Hotel in Baixa also means we can walk to dinner. Good choice."),
    ("fatima", "Can we get a quiet room too? Some of us need a break from group sessions."),
    ("me", "Asked the hotel: they have a small library room we can use for free."),
    ("grace", "For the roadmap session, I'll prepare a one-page summary per area.\n"
     "Owners: sync (Sam), search (Mei), reader (Liam), compose (Priya)."),
    ("sam", "Fine by me. I'll bring the numbers from the sync benchmark."),
    ("noah", "Hack day teams: sign up in the sheet by 15 February."),
    ("mei", "Which sheet? Link please!"),
    ("noah", "Oops: https://docs.example.com/offsite-2027-hackday"),
    ("ana", "Budget check: hotel 4,800, dinner about 900, flights about 2,800. We're under."),
    ("priya", "Restaurant booked for Wednesday 10 March, 19:30, table for 14."),
    ("liam", "Does the restaurant have vegetarian mains, not just salad?"),
    ("priya", "Three vegetarian mains and a vegan dessert. I asked twice."),
    ("hannah", "The hotel confirmed the ramp to the meeting room. Thank you, everyone."),
    ("fatima", "Walking tour booked for Thursday afternoon: Alfama and the castle, 2 hours."),
    ("bjorn", "Bring good shoes for Alfama. It's all hills and cobblestones."),
    ("grace", "Roadmap one-pagers due 1 March, please. Template in the shared folder."),
    ("sam", "Could we add 30 minutes on on-call? It keeps coming up."),
    ("ana", "Added on-call to Tuesday after lunch."),
    ("mei", "Flights booked. Arriving Monday evening, 18:40 from Frankfurt."),
    ("noah", "I'm on the same flight as Mei. Shared taxi?"),
    ("me", "Draft agenda attached below, corrections welcome:\n"
     "  Tue: roadmap, on-call; Wed: hack day, dinner; Thu: walking tour, wrap-up."),
    ("liam", "Agenda looks good. Can the wrap-up be before the tour so we end relaxed?"),
    ("ana", "Swapped: wrap-up Thursday morning, tour in the afternoon."),
    ("priya", "Final headcount for dinner: 14, two vegetarians, one vegan, no nuts for Sam."),
    ("hannah", "Thanks Ana and Alex for pulling this together."),
    ("grace", "Looking forward to it. Lisbon, here we come!"),
    ("ana", "Everything is booked. Calendar invites follow. Thank you, everyone!"),
)  # fmt: skip


def _demo_offsite_thread(demo: _Demo) -> None:
    """A 48-message thread, 11 participants, quoted text growing (Gmail-style quoting)."""
    p = _P
    everyone = [p[k] for k in ("ana", "mei", "sam", "priya", "liam", "hannah", "bjorn",
                               "fatima", "grace", "noah")]  # fmt: skip
    records: list[_DemoRecord] = []
    start = BASE_DATE - timedelta(days=40)
    for k, (who, line) in enumerate(_OFFSITE_LINES):
        sender = _ME if who == "me" else p[who]
        signature = sender.first
        text = f"{line}\n\n{signature}\n"
        when = start + timedelta(hours=k * 9 + demo.rng.randrange(0, 5), minutes=k * 7 % 60)
        to = [x for x in [*everyone, _ME] if x is not sender]
        folder = "Sent" if sender is _ME else ("INBOX" if k >= 20 else "Archive")
        flags = {"seen"} | ({"flagged"} if k in (19, 41) else set())
        if not records:
            rec = demo.add(
                folder=folder, sender=sender, to=to, subject="Team offsite 2027: dates, venue, "
                "agenda", when=when, text=text, flags=flags,
            )  # fmt: skip
        else:
            # mostly a chain; now and then someone answers an earlier message
            parent = records[-1] if k % 9 != 4 else records[-3]
            rec = demo.add(
                folder=folder, sender=sender, to=to, subject="Re: Team offsite 2027: dates, "
                "venue, agenda", when=when, text=text, parent=parent, flags=flags,
            )  # fmt: skip
        records.append(rec)


_LIST_THREADS = (
    (
        "Importing a 4 GB mbox: progress bar stuck at 99%",
        [
            ("noah", "I'm importing an old 4 GB mbox and the progress bar sits at 99% for about\n"
             "ten minutes. Is it doing something or should I kill it?"),
            ("mei", "It's building the search index for the last batch; the bar only counts\n"
             "parsed messages. Let it run. We should show a second phase in the UI."),
            ("noah", "It finished after 12 minutes. A second progress phase would be great."),
            ("sam", "Filed as #341. Indexing progress will be reported separately."),
        ],
    ),
    (
        "Dovecot with QRESYNC: flags not syncing",
        [
            ("tomasz", "With Dovecot 2.3 and QRESYNC enabled, flags I change on my phone don't\n"
             "show up in Tidings until a restart. Anyone else?"),
            ("bjorn", "Same here. Looks like the highest modseq isn't saved after IDLE."),
            ("sam", "Confirmed, fixed on main. The worker now stores HIGHESTMODSEQ after every\n"
             "FETCH response during IDLE. It will be in 0.9.2."),
            ("tomasz", "Built from main, works perfectly. Dziękuję!"),
            ("liam", "Thanks for the quick fix."),
        ],
    ),
    (
        "Feature request: send later",
        [
            ("fatima", "Would love a 'send later' option; I write mail at night but don't want\n"
             "to send it at 2 am."),
            ("priya", "The outbox already has send_at for the undo window; this could reuse it."),
            ("grace", "+1, and please make it survive a restart of the app."),
            ("mei", "It would: the outbox lives in SQLite and the worker sends it. Needs a\n"
             "date picker in compose, that's all."),
            ("fatima", "Happy to test a build when there is one."),
            ("noah", "Same. Also, 'send tomorrow morning' as a one-click option, please."),
        ],
    ),
    (
        "Search: how do I find mail with attachments from last year?",
        [
            ("hannah", "How do I search for mail with attachments from 2025 only?"),
            ("mei", "has:attachment after:2025-01-01 before:2026-01-01\nThe dates are "
             "YYYY-MM-DD, and before: is exclusive."),
            ("hannah", "Perfect, thank you! Might be worth adding to the docs."),
        ],
    ),
    (
        "Dark mode for HTML mail?",
        [
            ("liam", "Dark mode works for the app, but HTML mail is still blinding white."),
            ("grace", "Inverting HTML mail breaks images and brand colours. Thunderbird's\n"
             "approach is an opt-in per message."),
            ("liam", "Opt-in per message would be fine by me."),
            ("priya", "Or per sender, remembered. I read the same newsletters every week."),
        ],
    ),
    (
        "Release 0.9.1",
        [
            ("sam", "Tidings 0.9.1 is out: faster first sync, fixed the Gmail label\n"
             "duplicates, and better error messages for bad passwords."),
            ("jose", "¡Gracias! First sync of my 60,000 messages took 9 minutes instead of 25."),
            ("dmitri", "Works well with my Russian mailbox, koi8-r subjects finally look right."),
        ],
    ),
)  # fmt: skip


def _demo_mailing_list(demo: _Demo) -> None:
    p = _P
    lst = p["list"]
    base = BASE_DATE - timedelta(days=70)
    for t, (subject, posts) in enumerate(_LIST_THREADS):
        parent: _DemoRecord | None = None
        when = base + timedelta(days=t * 11, hours=t * 3)
        for k, (who, text) in enumerate(posts):
            sender = p[who]
            when += timedelta(hours=3 + (k * 5) % 17, minutes=k * 13 % 60)
            folder = "Archive" if (BASE_DATE - when).days > 30 else "INBOX"
            extra = [
                ("List-Id", "Tidings users <tidings-users.lists.example.org>"),
                ("List-Post", "<mailto:tidings-users@lists.example.org>"),
                ("List-Archive", "<https://lists.example.org/archive/tidings-users/>"),
                (
                    "List-Unsubscribe",
                    "<mailto:tidings-users-leave@lists.example.org>, "
                    "<https://lists.example.org/unsubscribe/tidings-users>",
                ),
                ("Precedence", "list"),
            ]
            body = f"{text}\n\n{sender.first}\n\n_______________________________________________\n"
            body += "tidings-users mailing list\nhttps://lists.example.org/tidings-users\n"
            title = f"[tidings-users] {subject}"
            if parent is None:
                parent = demo.add(folder=folder, sender=sender, to=[lst], subject=title,
                                  when=when, text=body, extra=extra, reply_to=lst)  # fmt: skip
            else:
                parent = demo.add(folder=folder, sender=sender, to=[lst], subject="Re: " + title,
                                  when=when, text=body, extra=extra, parent=parent, quote=False,
                                  reply_to=lst)  # fmt: skip


_COMMITS = (
    "storage: batch inserts during ingest",
    "sync: resume interrupted folder sync from last committed batch",
    "ui: lazy item model for the message list",
    "search: answer flags from SQLite, not the index",
    "outbox: exponential backoff with jitter for 4xx replies",
    "reader: block remote images until allowed",
    "threading: JWZ container pruning for empty parents",
    "cli: tidings sync --watch prints JSON events",
    "storage: dedupe messages by Message-ID and content hash",
    "sync: handle UIDVALIDITY change without losing local flags",
    "reader: serve cid: images from the local store",
    "compose: autosave drafts every 3 seconds",
    "search: support larger:/smaller: with units",
    "migrations: add index on messages(thread_id, date)",
    "ui: unread counts update without a full refresh",
    "sync: CONDSTORE flag changes since last modseq",
)


def _demo_notifications(demo: _Demo) -> None:
    p = _P
    rng = random.Random("demo-notifications")
    # -- CI: one build every ~2 days; failures flagged while recent.
    for k in range(45):
        days = 2 * k + (k % 3) * 0.3
        build = 1466 - k
        commit = _COMMITS[k % len(_COMMITS)]
        sha = _digest_hex("commit", k, size=4)
        failed = k % 7 == 3
        state = "failed" if failed else "passed"
        minutes = 6 + rng.randrange(9)
        text = (
            f"Build #{build} {state} on main\n\nCommit:   {sha} {commit}\n"
            f"Author:   {rng.choice(['Mei Chen', 'Sam Okafor', 'Priya Raman', 'Liam OConnor'])}\n"
            f"Duration: {minutes} min {rng.randrange(60)} s\n\n"
        )
        if failed:
            text += (
                "Failed step: pytest (tests/test_sync.py::test_resume_after_kill)\n\n"
                "    AssertionError: expected 1200 messages, found 1150\n\n"
            )
        text += f"Details: https://builds.example/tidings/builds/{build}\n"
        when = BASE_DATE - timedelta(days=days, hours=rng.randrange(10))
        old = (BASE_DATE - when).days > 21
        folder = "Trash" if k == 30 else ("Archive" if old else "INBOX")
        flags = {"seen"} if old or k > 1 else set()
        if failed and not old:
            flags.add("flagged")
        demo.add(
            folder=folder, sender=p["ci"], to=[_ME],
            subject=f"[tidings] Build #{build} {state} on main ({sha})",
            when=when, text=text, flags=flags, mailer="",
            extra=[("X-CI-Build", str(build)), ("Auto-Submitted", "auto-generated")],
        )  # fmt: skip

    # -- Issue tracker: threads keyed on the issue, multipart/alternative.
    issues = (
        (318, "Search ignores accents in folder names", ["mei", "tomasz", "sam", "mei"]),
        (324, "Crash when opening an mbox over 2 GB", ["noah", "sam", "noah", "liam", "sam"]),
        (329, "Reader: show remote images for trusted senders", ["grace", "liam", "priya"]),
        (333, "Drafts saved twice after reconnect", ["priya", "sam", "mei", "sam", "priya"]),
        (337, "Unread count wrong after moving a thread", ["fatima", "mei", "fatima"]),
    )  # fmt: skip
    comments = (
        "I can reproduce this on main with a fresh profile.",
        "Here's a minimal repro: create a folder called 'Übersicht', add a message, search.",
        "Looks like the normaliser runs NFC on one side and NFD on the other.",
        "Fixed in the linked pull request, please test.",
        "Tested, works for me. Thanks!",
        "This happens only when the worker restarts during a sync.",
        "Can you attach the log with TIDINGS_DEBUG=1?",
        "Log attached to the issue. The last line is the interesting one.",
        "Closing as fixed; reopen if you still see it.",
        "I'd prefer a per-sender allowlist over a global switch.",
        "Agreed. Per-sender, stored in the profile, with a way to revoke it.",
    )
    for n, (number, title, people) in enumerate(issues):
        root_id = f"<tidings/tidings/issues/{number}@code.example>"
        when = BASE_DATE - timedelta(days=55 - n * 10, hours=3)
        parent: _DemoRecord | None = None
        for k, who in enumerate(people):
            author = p[who]
            comment = comments[(number + k) % len(comments)]
            action = "opened this issue" if k == 0 else "commented"
            text = (
                f"{author.name} {action} (tidings/tidings#{number}):\n\n{comment}\n\n-- \n"
                f"Reply to this email directly or view it on the tracker:\n"
                f"https://code.example/tidings/tidings/issues/{number}#c{k}\n"
            )
            page = (
                f"<p><strong>{html.escape(author.name)}</strong> {action} "
                f'(<a href="https://code.example/tidings/tidings/issues/{number}">'
                f"#{number}</a>):</p>\n<p>{html.escape(comment)}</p>\n"
                '<p style="font-size:small;color:#666">Reply to this email directly or '
                f'<a href="https://code.example/tidings/tidings/issues/{number}#c{k}">view it on '
                "the tracker</a>.</p>\n"
            )
            b = _Boundaries(_digest_hex("issue", number, k, size=8), k)
            sender = _Person(author.name, p["tracker"].address, 0)
            when += timedelta(hours=5 + k * 7)
            old = (BASE_DATE - when).days > 30
            parent = demo.add(
                folder="Archive" if old else "INBOX",
                sender=sender, to=[_ME], subject=f"[tidings/tidings] {title} (#{number})",
                when=when, text=text, body=_plain_or_alt(text, html_body=page, b=b),
                parent=parent, quote=False, mailer="",
                msgid=root_id if k == 0 else f"<tidings/tidings/issues/{number}/c{k}@code.example>",
                reply_to=_Person("tidings/tidings", f"reply+{number}@code.example"),
                extra=[("List-Id", "tidings/tidings <tidings.tidings.code.example>"),
                       ("X-Tracker-Reason", "subscribed")],
            )  # fmt: skip

    # -- Shop: two orders, confirmation -> shipped -> delivered.
    for order, (item, days) in enumerate((("Trail running shoes", 50), ("Rain jacket", 9))):
        order_no = f"NW-{48213 + order * 377}"
        steps = (
            ("Order confirmation", "Thanks for your order!"),
            ("Your order has shipped", "Good news: your order is on its way."),
            ("Delivered", "Your parcel was delivered and left at the front door."),
        )
        for s, (title, line) in enumerate(steps):
            text = (
                f"{line}\n\nOrder {order_no}\n1 x {item} ............ 89.00 EUR\n"
                f"Shipping ........................ 0.00 EUR\n\n"
                f"Track your order: https://northwind.example/orders/{order_no}\n"
            )
            page = (
                '<table role="presentation" width="100%" cellpadding="8"><tr><td '
                'style="background:#2d6a4f;color:#fff;font:bold 20px Helvetica,Arial">'
                "Northwind Outfitters</td></tr>"
                f"<tr><td><p>{html.escape(line)}</p><p>Order <b>{order_no}</b><br>1 &times; "
                f"{html.escape(item)}: 89.00&nbsp;EUR</p>"
                f'<p><a href="https://northwind.example/orders/{order_no}">Track your order</a></p>'
                '<img src="https://northwind.example/img/footer.png" width="600" height="60" '
                'alt=""></td></tr></table>\n'
            )
            b = _Boundaries(_digest_hex("order", order_no, s, size=8))
            when = BASE_DATE - timedelta(days=days - s * 2, hours=rng.randrange(12))
            demo.add(
                folder="Archive" if days > 30 else "INBOX",
                sender=p["shop"], to=[_ME], subject=f"{title}: {order_no}", when=when, text=text,
                body=_plain_or_alt(text, html_body=page, b=b), mailer="",
                flags={"seen"} if s < 2 or days > 30 else set(),
            )  # fmt: skip

    # -- Bank statements.
    for k, month in enumerate(("August", "September", "October")):
        when = BASE_DATE - timedelta(days=62 - k * 30, hours=2)
        demo.add(
            folder="Archive" if k < 2 else "INBOX",
            sender=p["bank"], to=[_ME], subject=f"Your {month} statement is ready",
            when=when, mailer="",
            text=(
                f"Dear customer,\n\nyour account statement for {month} 2026 is available in "
                "online banking.\nFor your security we never send statements or links to log "
                "in by email.\n\nContoso Bank\n"
            ),
        )  # fmt: skip


_WEEKLY_HEADLINES = (
    "Why your laptop fan spins up when you open email",
    "SQLite in production: the boring choice that keeps winning",
    "A field guide to IMAP extensions",
    "The strange history of the Reply-All button",
    "Offline-first apps, five years on",
    "What the tracking pixel knows about you",
    "Unicode in email headers: a survival guide",
    "Search indexes for people who hate search indexes",
    "How mailing lists survived the social network",
    "The calendar invite is a tiny programming language",
    "Dark patterns in unsubscribe flows",
    "Rendering HTML safely: lessons from mail clients",
    "The year in email, 2026 edition",
)
_WEEKLY_BLURBS = (
    "Most of the work is re-rendering HTML you have already seen. Here is how to stop that.",
    "One file, no server, and a test suite bigger than most applications.",
    "CONDSTORE, QRESYNC, IDLE, MOVE: what they do and which servers really support them.",
    "A tale of unintended consequences, told by the people who were there.",
    "Local-first software promised speed and ownership. Did it deliver?",
    "A 1x1 image can tell a sender when, where and how often you opened their mail.",
    "RFC 2047 encoded words, charsets nobody uses any more, and why they still matter.",
    "Inverted indexes explained with a shoebox of index cards.",
    "Mailman, listservs and the quiet persistence of plain text discussion.",
    "RRULEs, time zones and the meeting that happened twice.",
    "One click should be enough. RFC 8058 agrees.",
    "Sanitise, sandbox, and never trust a style attribute.",
)


def _demo_newsletters(demo: _Demo) -> None:
    weekly = _P["weekly"]
    for k, headline in enumerate(_WEEKLY_HEADLINES):
        issue_no = 120 + k
        when = BASE_DATE - timedelta(days=(len(_WEEKLY_HEADLINES) - 1 - k) * 7 + 0.8)
        articles = [
            _Article(
                headline if j == 0 else _WEEKLY_HEADLINES[(k + j * 5) % len(_WEEKLY_HEADLINES)],
                _WEEKLY_BLURBS[(k + j) % len(_WEEKLY_BLURBS)],
                f"https://weeklybyte.example/{issue_no}/{j + 1}?utm_source=newsletter",
                f"https://cdn.weeklybyte.example/img/{issue_no}-{j + 1}.jpg",
            )
            for j in range(4)
        ]
        token = _digest_hex("weekly-subscriber", issue_no, size=8)
        unsubscribe = f"https://weeklybyte.example/unsubscribe/{token}"
        issue = f"Issue #{issue_no}"
        intro = "Hello, reader! This week: " + headline.lower() + ", and three more stories."
        page = _newsletter_html(
            brand="The Weekly Byte",
            issue=issue,
            intro=intro,
            articles=articles,
            view_url=f"https://weeklybyte.example/{issue_no}?v={token}",
            unsubscribe_url=unsubscribe,
            pixel_url=f"https://t.weeklybyte.example/open/{token}.gif",
            logo_url="https://cdn.weeklybyte.example/img/logo.png",
            address="The Weekly Byte, 100 Example Avenue, Springfield",
        )
        text = _newsletter_text("The Weekly Byte", issue, intro, articles)
        b = _Boundaries(_digest_hex("weekly", issue_no, size=8), 1)
        body = _multipart(
            "alternative",
            b(),
            [_text_part(text, cte="quoted-printable"), _text_part(page, "html", cte="base64")],
        )
        recent = k >= len(_WEEKLY_HEADLINES) - 4
        demo.add(
            folder="INBOX" if recent else "Archive",
            sender=weekly,
            to=[_ME],
            subject=f"The Weekly Byte #{issue_no}: {headline}",
            when=when,
            text=text,
            body=body,
            mailer="",
            flags=set() if k == len(_WEEKLY_HEADLINES) - 1 else {"seen"},
            extra=[
                ("List-Id", "The Weekly Byte <weekly.weeklybyte.example>"),
                (
                    "List-Unsubscribe",
                    f"<mailto:unsubscribe@weeklybyte.example?subject=unsubscribe-{token}>, "
                    f"<{unsubscribe}>",
                ),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Precedence", "bulk"),
                ("Feedback-ID", f"{issue_no}:weekly:weeklybyte"),
            ],
        )


def _demo_calendar(demo: _Demo) -> None:
    p = _P
    hannah, mei = p["hannah"], p["mei"]
    stamp = "20261027T081500Z"
    attendees = [_ME, p["zoe"], p["jose"], p["priya"], mei]

    def attendee(person: _Person, status: str = "NEEDS-ACTION") -> str:
        return (
            f"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT={status};RSVP=TRUE;"
            f'CN="{person.name}":mailto:{person.address}'
        )

    uid = "weekly-sync-7f3a2c@tidings.example"
    ics = _ics(
        [
            "BEGIN:VCALENDAR", "PRODID:-//Tidings//Sample Calendar//EN", "VERSION:2.0",
            "CALSCALE:GREGORIAN", "METHOD:REQUEST", *_VTIMEZONE_BERLIN, "BEGIN:VEVENT",
            "DTSTART;TZID=Europe/Berlin:20261103T100000",
            "DTEND;TZID=Europe/Berlin:20261103T103000",
            "RRULE:FREQ=WEEKLY;BYDAY=TU", f"DTSTAMP:{stamp}",
            f'ORGANIZER;CN="{hannah.name}":mailto:{hannah.address}', f"UID:{uid}",
            attendee(hannah, "ACCEPTED").replace("RSVP=TRUE", "RSVP=FALSE"),
            *[attendee(a) for a in attendees],
            "CREATED:20261027T081200Z",
            "DESCRIPTION:" + _ics_text("Weekly sync for the translation project: status, "
                                       "blockers, next steps.\nAgenda in the shared doc."),
            "LAST-MODIFIED:20261027T081500Z", "LOCATION:Room Spree / https://meet.example/"
            "weekly-sync", "SEQUENCE:0", "STATUS:CONFIRMED",
            "SUMMARY:" + _ics_text("Weekly sync: translations"), "TRANSP:OPAQUE",
            "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER:-P0DT0H10M0S",
            "END:VALARM", "END:VEVENT", "END:VCALENDAR",
        ]
    )  # fmt: skip
    text = (
        "You have been invited to the following event.\n\nWeekly sync: translations\n"
        "When: Every Tuesday, 10:00 - 10:30 (Central European Time - Berlin), from 3 November\n"
        "Where: Room Spree / https://meet.example/weekly-sync\n"
        f"Organizer: {hannah.name} <{hannah.address}>\n\nGuests:\n"
        + "".join(f"- {a.name} <{a.address}>\n" for a in [hannah, *attendees])
        + "\nAccept, decline or propose a new time in your calendar.\n"
    )
    page = _paragraphs_html(text)
    b = _Boundaries(_digest_hex("invite", uid, size=8))
    ics_bytes = ics.encode("utf-8")
    body = _multipart(
        "mixed",
        b(),
        [
            _multipart(
                "alternative",
                b(),
                [
                    _text_part(text),
                    _text_part(page, "html", cte="quoted-printable"),
                    _text_part(ics.replace("\r\n", "\n"), "calendar", params="; method=REQUEST",
                               cte="quoted-printable"),
                ],
            ),
            _file_part(_b64(ics_bytes), "application/ics", "invite.ics"),
        ],
    )  # fmt: skip
    demo.add(
        folder="INBOX",
        sender=hannah,
        to=attendees,
        subject="Invitation: Weekly sync: translations @ Weekly on Tuesday 10:00 (CET)",
        when=BASE_DATE - timedelta(days=5, hours=1),
        text=text,
        body=body,
        flags=set(),
        mailer="",
    )

    # The design review: first the invitation (Archive), then its cancellation (INBOX).
    uid = "design-review-2026-10-29@example.com"
    for method, seq, status, days in (
        ("REQUEST", 0, "CONFIRMED", 20),
        ("CANCEL", 1, "CANCELLED", 4),
    ):
        lines = [
            "BEGIN:VCALENDAR", "PRODID:-//Example Corp//Calendar 3.2//EN", "VERSION:2.0",
            f"METHOD:{method}", "BEGIN:VEVENT", f"UID:{uid}", f"SEQUENCE:{seq}",
            f"DTSTAMP:202610{31 - days:02d}T170000Z", "DTSTART:20261029T170000Z",
            "DTEND:20261029T180000Z", "SUMMARY:Design review: reader pane",
            f'ORGANIZER;CN="{mei.name}":mailto:{mei.address}', attendee(_ME),
            attendee(p["grace"]), attendee(p["liam"]), f"STATUS:{status}",
            "END:VEVENT", "END:VCALENDAR",
        ]  # fmt: skip
        if method == "CANCEL":
            text = "This event has been cancelled.\n\nDesign review: reader pane\n" \
                   "Thu 29 Oct 2026, 10:00 - 11:00 (Pacific Time)\n\nWe'll do it async instead, " \
                   "comments in the doc please.\nMei\n"  # fmt: skip
            subject = "Cancelled: Design review: reader pane (Thu 29 Oct)"
        else:
            text = "Design review: reader pane\nThu 29 Oct 2026, 10:00 - 11:00 (Pacific Time)\n" \
                   "Organizer: Mei Chen\n"  # fmt: skip
            subject = "Invitation: Design review: reader pane (Thu 29 Oct)"
        b = _Boundaries(_digest_hex("review", method, size=8), 1)
        body = _multipart(
            "alternative",
            b(),
            [
                _text_part(text),
                _text_part(_ics(lines).replace("\r\n", "\n"), "calendar",
                           params=f"; method={method}", cte="base64"),
            ],
        )  # fmt: skip
        demo.add(
            folder="INBOX" if method == "CANCEL" else "Archive",
            sender=mei, to=[_ME, p["grace"], p["liam"]], subject=subject,
            when=BASE_DATE - timedelta(days=days, hours=3), text=text, body=body, mailer="",
            flags={"seen"} if method == "REQUEST" else set(),
        )  # fmt: skip


def _demo_junk_trash_drafts(demo: _Demo) -> None:
    p = _P
    spam_headers = [("X-Spam-Flag", "YES"), ("X-Spam-Status", "Yes, score=9.8 required=5.0")]
    junk = (
        (
            _Person("Prize Department", "winner@lucky-draw.example", -300, "windows-1252"),
            "Congratulations!!! You’ve been selected – claim your €1,000 gift card",
            "Dear Valued Customer,\n\nYou’ve been selected to receive a €1,000 gift card! "
            "Claim it within 24 hours:\nhttp://lucky-draw.example/claim?id=8842\n\n"
            "This is a one-time offer – don’t miss out!\n",
            "windows-1252",
        ),
        (
            _Person("IT Helpdesk", "helpdesk@mai1box-security.example", 0),
            "Action required: your mailbox is 98% full",
            "Your mailbox has exceeded its storage limit and will stop receiving mail.\n"
            "Verify your account now to increase your quota:\n"
            "https://mai1box-security.example/verify\n\nIT Helpdesk\n",
            "utf-8",
        ),
        (
            _Person("王经理", "service@fapiao.example", 480, "gb2312"),
            "代开各类发票，优惠多多",
            "您好！\n\n本公司长期代开各类发票，价格优惠，保证真实。\n有意者请联系：王经理\n",
            "gb2312",
        ),
        (
            _Person("Сергей", "sergey@sale-now.example", 180, "koi8-r"),
            "Скидки до 90% только сегодня",
            "Здравствуйте!\n\nТолько сегодня скидки до 90% на всю технику. Успейте купить!\n"
            "http://sale-now.example/\n",
            "koi8-r",
        ),
        (
            _Person("Crypto Growth Fund", "invest@moon-returns.example", 0),
            "Turn 250 USD into 25,000 USD in 30 days",
            "Our AI trading robot made early investors 100x returns. Limited spots left.\n"
            "Start with just 250 USD: https://moon-returns.example/start\n",
            "utf-8",
        ),
        (
            _Person("Accounts Payable", "ap@fabrikarn.example", 60),
            "RE: Overdue invoice INV-2026-0412",
            "Hello,\n\nThe attached invoice is overdue. Please pay to our NEW bank account\n"
            "immediately to avoid a late fee. Details: https://fabrikarn.example/pay\n",
            "utf-8",
        ),
    )  # fmt: skip
    for k, (sender, subject, text, charset) in enumerate(junk):
        body: Part
        if k in (0, 4):
            page = (
                '<html><body><center><img src="https://cdn.lucky-draw.example/banner.jpg" '
                'width="600" height="300"><h1 style="color:red">'
                + html.escape(subject)
                + "</h1><p>"
                + html.escape(text).replace("\n", "<br>")
                + '</p><img src="https://t.lucky-draw.example/o.gif?u=8842" width="1" '
                'height="1"></center></body></html>\n'
            )
            b = _Boundaries(_digest_hex("junk", k, size=8))
            body = _multipart(
                "alternative",
                b(),
                [_text_part(text, charset=charset), _text_part(page, "html", charset=charset)],
            )
        else:
            cte = {"gb2312": "base64", "koi8-r": "8bit"}.get(charset)
            body = _text_part(text, charset=charset, cte=cte)
        demo.add(
            folder="Junk", sender=sender, to=[_ME], subject=subject,
            when=BASE_DATE - timedelta(days=2 + k * 9, hours=k * 5), text=text, body=body,
            charset=charset, flags=set() if k < 3 else {"seen"}, extra=spam_headers, mailer="",
        )  # fmt: skip

    demo.add(
        folder="Trash",
        sender=p["shop"],
        to=[_ME],
        subject="Last chance: 30% off all rain gear",
        when=BASE_DATE - timedelta(days=14, hours=6),
        text="Our autumn sale ends tonight: 30% off all rain gear.\nhttps://northwind.example/sale\n",
        mailer="",
    )

    # Drafts: a reply in progress and a new message.
    offsite = next(r for r in reversed(demo.records) if "offsite 2027" in r.subject)
    demo.add(
        folder="Drafts",
        sender=_ME,
        to=[p["ana"]],
        subject="Re: Team offsite 2027: dates, venue, agenda",
        when=BASE_DATE - timedelta(hours=20),
        text="Ana, one more thing for the hotel: can we get the library room on Wednesday\n"
        "too? I'll ",
        parent=offsite,
        quote=False,
        flags={"draft", "seen"},
        received=False,
    )
    demo.add(
        folder="Drafts",
        sender=_ME,
        to=[p["ana"], p["liam"]],
        subject="Ideas for the next hike",
        when=BASE_DATE - timedelta(hours=2),
        text="Hi both,\n\nA few ideas for December:\n- the coastal path (flat, 11 km)\n- \n",
        flags={"draft", "seen"},
        received=False,
    )


# ---------------------------------------------------------------------------------------
# Synthetic mailboxes for benchmarks.


def _words(text: str) -> list[str]:
    return text.split()


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """'native latin, native latin' -> ((native, latin), ...): names and their romanisation."""
    return tuple((native, latin) for native, latin in (item.split() for item in text.split(", ")))


_BLOCK = 512  # threads are laid out within blocks of this many consecutive indexes
_GAP = 900  # seconds between consecutive messages, on average
_BASE_TS = int(BASE_DATE.timestamp())
_PLAIN, _ALT, _MIXED, _LIST = range(4)
_QUOTE_DEPTH = 3  # a reply quotes its parent, which quotes its own parent, ... this deep

_EN_WORDS = _words("""
the and to of a in for is on that we it with this be are as you have will at not can from
or by our an if but all they so was please let know more about next would should could
also just new time week team meeting project update review release plan today tomorrow
thanks question issue change changes draft version data report budget customer design
server sync search index folder message mail inbox thread feature bug fix test tests build
deploy schedule deadline agenda notes summary proposal contract invoice order delivery
office travel call slides document feedback approval priority status estimate quarter
month morning afternoon evening Monday Tuesday Wednesday Thursday Friday weekend holiday
lunch coffee room calendar link file attachment photo account password access permission
support ticket problem solution option options idea ideas point points number numbers list
table chart result results performance latency memory disk network database query cache
queue worker process window screen button menu setting settings user users client clients
vendor partner price cost payment revenue growth target goal goals risk risks scope
timeline milestone launch migration backup storage security privacy policy legal hiring
interview candidate offer onboarding training workshop conference talk presentation demo
prototype roadmap strategy research analysis experiment survey metrics dashboard alert
incident outage rollback patch upgrade install config script branch merge commit pull
request check confirm agree discuss share send sent attach attached forward reply follow
up before after during until soon later early late quick quickly small large big good
great fine sure happy sorry important urgent final first last second other same different
clear simple hard easy possible likely probably actually really still already again maybe
here there when where what which who how why some any each every both few many most one
two three four five ten hundred think need want make take get got see look looks work
works working start finish keep move add remove use using try run running open close
write read meet help ask tell give find show feel seem mean hope people company product
service market sales board manager engineer developer designer team's weekly monthly
annual internal external public private shared local remote online offline mobile desktop
version draft final template process review signed pending approved rejected blocked
""")

_SYLLABLES_ON = _words("b c d f g h j k l m n p r s t v w z br cr dr fl gr kl pl pr sk st tr ch sh")
_SYLLABLES_NU = _words("a e i o u a e i o ai ea io ou")
_SYLLABLES_CO = ["", "", "", "n", "r", "s", "t", "l", "m", "x", "k"]

_LANG_WORDS = {
    "de": """und der die das wir ich Sie nicht mit für über Änderung Übersicht Größe prüfen Grüße
        Besprechung nächste Woche Termin Angebot Rechnung Projekt Bericht Ergebnis Lösung schön
        Kunde Anfrage bitte danke morgen heute Straße schließlich Verfügbarkeit Zeitplan
        Mitarbeiter Abteilung Entwurf Rückmeldung gemäß natürlich möglich Unterstützung Gespräch
        Qualität wöchentlich Bestätigung Zusammenfassung Präsentation Überprüfung Ausgabe Fehler
        behoben Version Vertrag Lieferung Budget Team Kollegen Aufgabe erledigt offen später
        früher müssen können würden hätten Datei Anhang Server Suche Ordner Nachricht""",
    "fr": """le la les de et pour avec nous vous réunion équipe déjà très être été prochaine
        semaine problème résultat système données fenêtre où à reçu façon leçon sœur cœur
        bientôt dernière première Noël naïf projet budget rapport société envoyé réponse créer
        vérifier modèle accès sécurité développement qualité hôtel forêt plutôt d’abord
        aujourd’hui demain merci fichier dossier message serveur recherche version client
        contrat facture livraison mise à jour""",
    "es": """el la los de y para con nosotros reunión equipo año mañana también está próxima
        semana problema informe diseño señal niño pequeño compañía teléfono dirección
        información aplicación público rápido después así aquí allí último página código
        versión número día cuántos gracias archivo carpeta mensaje servidor búsqueda cliente
        contrato factura entrega presupuesto proyecto revisión cambio""",
    "ru": """и в не на что мы вы это для отчёт встреча неделя проект задача результат сервер
        письмо вопрос ответ данные система работа сегодня завтра вчера клиент договор счёт
        оплата срок версия ошибка исправить проверить обновление команда решение пользователь
        почта сообщение файл приложение быстро хорошо спасибо пожалуйста нужно можно уже ещё
        очень всё новый последний следующий объём подъём съёмка время год месяц план бюджет
        запуск тест сборка поиск индекс синхронизация папка""",
    "ja": """会議 資料 確認 予定 来週 今週 明日 本日 お願い 対応 検討 共有 修正 報告 開発 環境
        設定 更新 送付 連絡 担当 顧客 見積 請求書 契約 納品 品質 試験 結果 問題 改善 提案 日程
        調整 打ち合わせ メール サーバー データ ファイル システム プロジェクト テスト リリース
        スケジュール よろしく ありがとうございます いたします について ください ので ですが
        ます です の を に が は と で 検索 同期 フォルダ""",
    "zh": """会议 资料 确认 计划 下周 本周 明天 今天 请 处理 讨论 共享 修改 报告 开发 环境 设置
        更新 发送 联系 负责 客户 报价 发票 合同 交付 质量 测试 结果 问题 改进 建议 日程 安排
        邮件 服务器 数据 文件 系统 项目 发布 谢谢 我们 你们 已经 需要 可以 的 了 和 在 是 有
        搜索 同步 文件夹""",
}

_GREETINGS = {
    "en": ("Hi {first},", "Hello {first},", "Dear {first},", "Hey {first},", "{first},"),
    "de": ("Hallo {first},", "Liebe Grüße vorab, {first},", "Guten Tag {first},"),
    "fr": ("Bonjour {first},", "Salut {first},", "Chère équipe,"),
    "es": ("Hola {first},", "Buenos días {first}:", "Estimado equipo:"),
    "ru": ("Привет, {first}!", "Здравствуйте, {first}!", "Добрый день!"),
    "ja": ("{first}さん\n\nお世話になっております。", "{first}様\n\nいつもありがとうございます。"),
    "zh": ("{first}，你好！", "各位好："),
}
_CLOSINGS = {
    "en": ("Thanks,\n{me}", "Best,\n{me}", "Cheers,\n{me}", "Regards,\n{me}", "{me}"),
    "de": ("Viele Grüße\n{me}", "Beste Grüße\n{me}", "Danke und schöne Grüße\n{me}"),
    "fr": ("Bien cordialement,\n{me}", "Merci d’avance,\n{me}", "À bientôt,\n{me}"),
    "es": ("Saludos,\n{me}", "Un abrazo,\n{me}", "Muchas gracias,\n{me}"),
    "ru": ("Спасибо,\n{me}", "С уважением,\n{me}", "До связи,\n{me}"),
    "ja": ("よろしくお願いいたします。\n{me}", "以上、よろしくお願いします。\n{me}"),
    "zh": ("谢谢！\n{me}", "祝好，\n{me}"),
}
_WROTE = {
    "en": "On {date}, {name} <{addr}> wrote:",
    "de": "Am {date} schrieb {name} <{addr}>:",
    "fr": "Le {date}, {name} <{addr}> a écrit :",
    "es": "El {date}, {name} <{addr}> escribió:",
    "ru": "{date}, {name} <{addr}> пишет:",
    "ja": "{date} {name} <{addr}>:",
    "zh": "{name} <{addr}> 于 {date} 写道：",
}
_SUBJECTS = {
    "en": (
        "{A} {b} review", "Question about the {a} {b}", "{A} {b}: next steps",
        "Notes from the {a} meeting", "Update on the {a} {b}", "[{A}] {b} {c} failing",
        "{A} {b} for {month}", "Draft: {a} {b} proposal", "Can we move the {a} sync?",
        "Invoice {num} for {month}", "FYI: {a} {b}", "Heads up: {a} is {b}",
        "{A} and {b} plan", "Feedback on {a} {b} {c}", "Quick question re {a}",
    ),
    "de": ("Frage zu {a} {b}", "{A}: {b} und {c}", "Besprechung {a} am Montag", "AW-Liste {a}"),
    "fr": ("Question sur {a} {b}", "{A} : {b} et {c}", "Réunion {a} de jeudi"),
    "es": ("Pregunta sobre {a} {b}", "{A}: {b} y {c}", "Reunión de {a} el lunes"),
    "ru": ("Вопрос по {a}", "{A}: {b} и {c}", "Встреча по {a} в понедельник"),
    "ja": ("{a}{b}について", "【{a}】{b}の{c}", "{a}の件"),
    "zh": ("关于{a}{b}", "【{a}】{b}{c}", "{a}的问题"),
}  # fmt: skip
_REPLY_PREFIX = {"de": ("AW: ", "Re: "), "fr": ("RE : ", "Re: ")}
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")  # fmt: skip

# (language, thread weight, ((charset, probability of a message using it), ...))
_LANGS: tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...] = (
    ("en", 80.0, (("windows-1252", 0.05), ("iso-8859-1", 0.04))),
    ("de", 5.5, (("iso-8859-1", 0.3), ("windows-1252", 0.15))),
    ("fr", 3.0, (("windows-1252", 0.35), ("iso-8859-1", 0.1))),
    ("es", 3.0, (("iso-8859-1", 0.3), ("windows-1252", 0.15))),
    ("ru", 3.5, (("koi8-r", 0.55),)),
    ("ja", 2.5, (("iso-2022-jp", 0.6),)),
    ("zh", 2.5, (("gb2312", 0.6),)),
)
_LEGACY_CTE = {
    "iso-8859-1": (("quoted-printable", 0.7), ("8bit", 0.3)),
    "windows-1252": (("quoted-printable", 0.8), ("8bit", 0.2)),
    "koi8-r": (("8bit", 0.6), ("base64", 0.4)),
    "gb2312": (("base64", 1.0),),
    "iso-2022-jp": (("7bit", 1.0),),
    "utf-8": (("quoted-printable", 0.5), ("8bit", 0.3), ("base64", 0.2)),
}

_FIRST = {
    "en": """James Mary Priya Liam Olivia Noah Emma Mateo Sofia Lucas Amara Kwame Aisha Ravi Chen
        Hiro Elena Zoë Chloé José Björn Søren Ingrid Siobhán Fatima Omar Grace Daniel Sarah
        Michael Laura David Anna Tom Ben Kate Ethan Maya Leila Ana Łukasz Dagný""",
    "de": "Jürgen Sabine Lukas Anja Jörg Käthe Uwe Birgit Matthias Steffi Günther Heike",
    "fr": "Élodie François Hélène Jérôme Cécile Benoît Amélie Loïc Maëlle Gaël",
    "es": "José María Begoña Íñigo Lucía Andrés Nuria Sebastián",
}
_LAST = {
    "en": """Smith Johnson Brown Taylor Okafor Patel Kim Nguyễn O'Brien Müller García Rossi Dubois
        Novak Kowalski Andersson Haddad Tanaka Silva Costa Walker Wright Hughes Murphy Chen Singh
        Mensah Larsen Fischer Moreau Jónsdóttir""",
    "de": "Müller Schröder Weiß Groß Köhler Becker Hoffmann Schäfer Krüger Wagner Jäger Böhm",
    "fr": "Lefèvre Girard Bérenger Faure Chevalier Roussel Mercier Lemaître",
    "es": "García Martínez Muñoz Peña Ibáñez Rodríguez López Sánchez",
}
# Names that need a romanisation for the address: (native, latin, female)
_RU_FIRST = (
    ("Алексей", "aleksey", False), ("Мария", "maria", True), ("Дмитрий", "dmitry", False),
    ("Ольга", "olga", True), ("Сергей", "sergey", False), ("Наталья", "natalya", True),
    ("Иван", "ivan", False), ("Екатерина", "ekaterina", True), ("Михаил", "mikhail", False),
    ("Анна", "anna", True),
)  # fmt: skip
_RU_LAST = _pairs(
    "Иванов ivanov, Смирнов smirnov, Кузнецов kuznetsov, Попов popov, Соколов sokolov, "
    "Лебедев lebedev, Волков volkov, Фёдоров fedorov, Морозов morozov"
)
_JA_LAST = _pairs(
    "山田 yamada, 佐藤 sato, 鈴木 suzuki, 高橋 takahashi, "
    "田中 tanaka, 伊藤 ito, 渡辺 watanabe, 中村 nakamura"
)
_JA_FIRST = _pairs(
    "太郎 taro, 花子 hanako, 健一 kenichi, 美咲 misaki, "
    "大輔 daisuke, 由美 yumi, 翔太 shota, 明美 akemi"
)
_ZH_LAST = _pairs("王 wang, 李 li, 张 zhang, 刘 liu, 陈 chen, 杨 yang, 黄 huang, 赵 zhao")
_ZH_FIRST = _pairs(
    "伟 wei, 芳 fang, 娜 na, 秀英 xiuying, 敏 min, 静 jing, 丽 li, 强 qiang, 磊 lei, 军 jun"
)
_DOMAINS = (
    "example.com", "example.org", "mail.example", "acme.example", "globex.example",
    "initech.example", "umbrella.example", "hooli.example", "contoso.example",
    "fabrikam.example", "northwind.example", "tailspin.example", "wingtip.example",
    "litware.example", "adatum.example", "proseware.example", "woodgrove.example",
)  # fmt: skip
_LANG_DOMAINS = {
    "de": ("berlin.example", "example.org"), "fr": ("paris.example", "example.com"),
    "es": ("madrid.example", "example.com"), "ru": ("moskva.example", "example.org"),
    "ja": ("tokyo.example", "example.com"), "zh": ("beijing.example", "example.org"),
}  # fmt: skip
_LANG_TZ = {"en": (-480, -300, 0, 60, 330, 600), "de": (60,), "fr": (60,), "es": (60,),
            "ru": (180,), "ja": (540,), "zh": (480,)}  # fmt: skip
_SENDER_COUNTS = {"en": 220, "de": 20, "fr": 15, "es": 15, "ru": 18, "ja": 14, "zh": 14}
_MAILERS = (
    ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
     "Thunderbird/128.4.2"),
    ("X-Mailer", "Microsoft Outlook 16.0"),
    ("X-Mailer", "Apple Mail (2.3774.200.91.1.1)"),
    ("User-Agent", "K-9 Mail for Android"),
    ("User-Agent", "Mutt/2.2.13 (2024-03-09)"),
    ("X-Mailer", "iPhone Mail (21H16)"),
    ("User-Agent", "Roundcube Webmail/1.6.9"),
    ("User-Agent", "Evolution 3.52.4"),
)  # fmt: skip


def _ascii_name(text: str) -> str:
    text = text.replace("ß", "ss").replace("ø", "o").replace("Ø", "O").replace("ł", "l")
    text = text.replace("Ł", "L").replace("ð", "d").replace("'", "")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


@lru_cache(maxsize=1)
def _sender_pool() -> dict[str, tuple[_Person, ...]]:
    """A fixed pool of a few hundred people per language (the seed only picks from it)."""
    rng = random.Random("tidings-senders")
    pools: dict[str, tuple[_Person, ...]] = {}
    for lang, count in _SENDER_COUNTS.items():
        people: dict[str, _Person] = {}
        domains = _DOMAINS + _LANG_DOMAINS.get(lang, ())
        while len(people) < count:
            if lang in _FIRST:
                first = rng.choice(_FIRST[lang].split())
                last = rng.choice(_LAST[lang].split())
                name, local = f"{first} {last}", f"{_ascii_name(first)}.{_ascii_name(last)}"
            elif lang == "ru":
                f, fl, female = rng.choice(_RU_FIRST)
                ln, ll = rng.choice(_RU_LAST)
                name, local = (
                    f"{f} {ln}{'а' if female else ''}",
                    f"{fl}.{ll}{'a' if female else ''}",
                )
            else:
                lasts, firsts = (_JA_LAST, _JA_FIRST) if lang == "ja" else (_ZH_LAST, _ZH_FIRST)
                (ln, ll), (f, fl) = rng.choice(lasts), rng.choice(firsts)
                name, local = ln + f, f"{fl}.{ll}"
            if rng.random() < 0.15:
                local = local.split(".")[0] + str(rng.randrange(2, 99))
            address = f"{local}@{rng.choice(domains)}"
            if address not in {p.address for p in people.values()}:
                people[address] = _Person(name, address, rng.choice(_LANG_TZ[lang]))
        pools[lang] = tuple(people.values())
    return pools


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[tuple[str, ...], tuple[float, ...]]:
    """~2,300 English words: real words first (frequent), then pseudo-words (rarer).

    Word ranks follow Zipf's law (weight 1/rank^1.1), so a search benchmark finds words
    in most messages ("the", "meeting") and words in a handful ("drovaimex").
    """
    real = list(dict.fromkeys(_EN_WORDS))
    rng = random.Random("tidings-vocabulary")
    seen = set(real)
    pseudo: list[str] = []
    while len(pseudo) < 2000:
        word = "".join(
            rng.choice(_SYLLABLES_ON) + rng.choice(_SYLLABLES_NU) + rng.choice(_SYLLABLES_CO)
            for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))
        )
        if 3 <= len(word) <= 14 and word not in seen:
            seen.add(word)
            pseudo.append(word)
    # interleave a little so a few pseudo-words are common too
    words = real[:60] + [w for pair in zip(real[60:], pseudo, strict=False) for w in pair]
    words += pseudo[len(real) - 60 :]
    total = 0.0
    cum: list[float] = []
    for rank in range(len(words)):
        total += 1.0 / (rank + 1) ** 1.1
        cum.append(total)
    return tuple(words), tuple(cum)


def _sampling_table(words: Sequence[str], cum: Sequence[float]) -> list[str]:
    """65,536 slots, each word in proportion to its weight (at least one slot each)."""
    size = 65536 - len(words)
    table: list[str] = []
    previous = 0.0
    for word, upto in zip(words, cum, strict=True):
        table += [word] * (1 + round(upto / cum[-1] * size) - round(previous / cum[-1] * size))
        previous = upto
    assert len(table) == 65536
    return table


_WRAP_72 = re.compile(r"\S.{0,71}(?= |$)")


def _wrap(text: str) -> str:
    """Greedy word wrap at 72 columns (words are shorter than that)."""
    return "\n".join(_WRAP_72.findall(text))


@dataclass(frozen=True, slots=True)
class _Pool:
    text: tuple[str, ...]  # paragraphs, wrapped, \n line ends
    html: tuple[str, ...]  # the same paragraphs, escaped, unwrapped
    words: tuple[str, ...]


@lru_cache(maxsize=8)
def _paragraph_pool(lang: str) -> _Pool:
    """Fixed paragraphs per language; messages pick paragraphs by index."""
    rng = random.Random(f"tidings-paragraphs/{lang}")
    if lang == "en":
        words, cum = _vocabulary()
        count = 2000
    else:
        words = tuple(_LANG_WORDS[lang].split())
        cum = tuple(float(k) for k in range(1, len(words) + 1))  # uniform
        count = 300
    cjk = lang in ("ja", "zh")
    table = _sampling_table(words, cum)
    texts: list[str] = []
    htmls: list[str] = []
    for _ in range(count):
        sentences: list[str] = []
        flat: list[str] = []
        lengths = [
            rng.randint(4, 14) if cjk else rng.randint(6, 20)
            for _ in range(rng.randint(1, 3) if cjk else rng.randint(2, 6))
        ]
        total = sum(lengths)
        drawn = list(itemgetter(*struct.unpack(f"<{total}H", rng.randbytes(2 * total)))(table))
        start = 0
        for length in lengths:
            chosen = drawn[start : start + length]
            start += length
            if cjk:
                sentences.append("".join(chosen) + ("。" if rng.random() < 0.9 else "？"))
                continue
            if rng.random() < 0.12:
                chosen.insert(rng.randrange(len(chosen)), str(rng.choice((2, 3, 5, 12, 40, 2026))))
            chosen[0] = chosen[0][:1].upper() + chosen[0][1:]
            chosen[-1] += rng.choice((".", ".", ".", ".", ".", "?", "!", ".", ".", "."))
            flat += chosen
        if cjk:
            para = "".join(sentences)
            texts.append("\n".join(para[k : k + 36] for k in range(0, len(para), 36)))
            htmls.append(html.escape(para))
        else:
            line = " ".join(flat)
            texts.append(_wrap(line))
            htmls.append(html.escape(line))
    return _Pool(tuple(texts), tuple(htmls), tuple(words))


class _Slot(NamedTuple):
    kind: int
    when: int  # unix time
    lang: str
    sender: _Person
    to: tuple[_Person, ...]
    cc: tuple[_Person, ...]
    root: int  # index of the thread's first message (itself for a root)
    parent: int  # -1 for a root
    ancestors: tuple[int, ...]  # root first, parent last
    model: _Model  # what the body says
    subject: str  # the thread's subject, without Re:


class _Model(NamedTuple):
    greeting: str
    paras: tuple[int, ...]  # indexes into the language's paragraph pool
    closing: str
    signature: str  # '' for none
    quotes: bool  # does a reply quote its parent


_NO_MODEL = _Model("", (), "", "", False)


@lru_cache(maxsize=4096)
def _fill(template: str, name: str) -> str:
    return template.replace("{first}", name).replace("{me}", name)


def _make_model(rng: random.Random, lang: str, sender: _Person, to: Sequence[_Person]) -> _Model:
    random_ = rng.random
    size = len(_paragraph_pool(lang).text)
    npara = min(16, 1 + int(rng.expovariate(0.4)))
    recipient = to[0] if to else _ME
    signature = ""
    if random_() < 0.35:
        org = sender.address.split("@")[1].split(".")[0].title()
        signature = f"-- \n{sender.name}\n{org} | +1 555 01{int(random_() * 100):02d}"
    greetings, closings = _GREETINGS[lang], _CLOSINGS[lang]
    return _Model(
        _fill(greetings[int(random_() * len(greetings))], recipient.first),
        tuple([int(random_() * size) for _ in range(npara)]),
        _fill(closings[int(random_() * len(closings))], sender.first),
        signature,
        random_() < 0.85,
    )


def _cumulative(weights: Iterable[float]) -> tuple[float, ...]:
    total = 0.0
    out = []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


_THREAD_SIZES = tuple(range(2, 31))
_THREAD_CUM = _cumulative(1.0 / s**1.3 for s in _THREAD_SIZES)
_KINDS = (_PLAIN, _ALT, _MIXED)
_KIND_CUM = _cumulative((55, 30, 12))
_LANG_NAMES = tuple(lang for lang, _, _ in _LANGS)
_LANG_CUM = _cumulative(w for _, w, _ in _LANGS)
_LANG_CHARSETS = {lang: options for lang, _, options in _LANGS}
_PARTICIPANTS = (1, 1, 2, 2, 3, 4, 5)


@lru_cache(maxsize=4)
def _layout(seed: int, block: int) -> tuple[_Slot, ...]:
    """Who writes what, when and in reply to whom, for one block of indexes.

    3% of the indexes are list mail (newsletters, digests). The rest is cut into threads
    (half of them single messages, the others 2-30 messages, small ones more likely, so
    about 7 messages in 8 are in a thread) whose members are scattered over the block;
    within a thread the largest index is the oldest message, the root. A reply answers
    the message just before it three times in four, else an earlier one, so threads
    branch.
    """
    rng = random.Random(f"tidings-layout/{seed}/{block}")
    start = block * _BLOCK
    order = list(range(start, start + _BLOCK))
    rng.shuffle(order)
    slots: dict[int, _Slot] = {}
    pools = _sender_pool()
    random_ = rng.random

    def when(i: int) -> int:
        return _BASE_TS - i * _GAP - int(random_() * _GAP)

    people_mail: list[int] = []
    for i in order:
        if random_() < 0.03:  # newsletters and digests: never part of a thread
            slots[i] = _Slot(_LIST, when(i), "en", _ME, (_ME,), (), i, -1, (), _NO_MODEL, "")
        else:
            people_mail.append(i)
    order = people_mail
    pos = 0
    while pos < len(order):
        size = 1 if random_() < 0.5 else _THREAD_SIZES[_draw(random_, _THREAD_CUM)]
        members = sorted(order[pos : pos + size], reverse=True)  # oldest (largest index) first
        pos += size
        lang = _LANG_NAMES[_draw(random_, _LANG_CUM)]
        pool = pools[lang]
        count = _PARTICIPANTS[int(random_() * len(_PARTICIPANTS))]
        people = [pool[j] for j in sorted({int(random_() * len(pool)) for _ in range(count)})]
        if lang != "en" and random_() < 0.3:
            people.append(pools["en"][int(random_() * len(pools["en"]))])
        everyone = [*people, _ME]
        first_sender = _ME if random_() < 0.12 else people[0]
        chain: dict[int, tuple[int, ...]] = {}
        senders: dict[int, _Person] = {}
        kinds = [_KINDS[_draw(random_, _KIND_CUM)] for _ in members]
        subject = _make_subject(random_, lang)
        root = members[0]
        for k, i in enumerate(members):
            ancestors: tuple[int, ...] = ()
            if k == 0:
                sender, parent = first_sender, -1
                others = [p for p in everyone if p is not sender]
                to = tuple(others[:1] if len(others) < 3 else others[:2])
            else:
                parent = members[k - 1] if random_() < 0.75 else members[int(random_() * k)]
                ancestors = (*chain[parent], parent)
                before = senders[parent]
                candidates = [p for p in everyone if p is not before]
                sender = candidates[int(random_() * len(candidates))]
                to = (before,)
                others = [p for p in everyone if p is not sender and p is not before]
            cc = tuple([p for p in others if p not in to])
            chain[i] = ancestors
            senders[i] = sender
            model = _make_model(rng, lang, sender, to)
            slots[i] = _Slot(
                kinds[k], when(i), lang, sender, to, cc, root, parent, ancestors, model, subject
            )
    return tuple(slots[i] for i in range(start, start + _BLOCK))


def _draw(random_: Callable[[], float], cum: Sequence[float]) -> int:
    """Index drawn with cumulative weights ``cum`` (what random.choices does, but cheaper)."""
    return bisect.bisect(cum, random_() * cum[-1])


def _slot(seed: int, i: int) -> _Slot:
    return _layout(seed, i // _BLOCK)[i % _BLOCK]


@lru_cache(maxsize=2048)
def _synthetic_msgid(seed: int, i: int) -> str:
    domain = _slot(seed, i).sender.address.partition("@")[2]
    digest = hashlib.blake2b(b"tidings-msgid/%d/%d" % (seed, i), digest_size=12).hexdigest()
    return f"<{digest}@mail.{domain}>"


def _make_subject(random_: Callable[[], float], lang: str) -> str:
    if lang == "en":
        words = _vocabulary()[0]
        picks = [words[20 + int(random_() * 580)] for _ in range(3)]
    else:
        words = _paragraph_pool(lang).words
        picks = [w for w in (words[int(random_() * len(words))] for _ in range(6)) if len(w) > 1]
        picks = (picks + [words[0]] * 3)[:3]
    a, b, c = picks
    templates = _SUBJECTS[lang]
    return templates[int(random_() * len(templates))].format(
        a=a, A=a[:1].upper() + a[1:], b=b, c=c, month=_MONTH_NAMES[int(random_() * 12)],
        num=f"{1000 + int(random_() * 98999)}",
    )  # fmt: skip


def _rfc_date(ts: int, tz: int) -> str:
    """RFC 5322 date of unix time ``ts`` at UTC offset ``tz`` minutes (no locale, no tzdata)."""
    local = ts + tz * 60
    seconds = local % 86400
    return (
        f"{_day_prefix(local // 86400)} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
        f"{seconds % 60:02d} {_tz_suffix(tz)}"
    )


@lru_cache(maxsize=4096)
def _day_prefix(day: int) -> str:
    t = time.gmtime(day * 86400)
    return f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year}"


@lru_cache(maxsize=64)
def _tz_suffix(tz: int) -> str:
    return f"{'-' if tz < 0 else '+'}{abs(tz) // 60:02d}{abs(tz) % 60:02d}"


def _stamp(lang: str, ts: int, tz: int) -> str:
    t = time.gmtime(ts + tz * 60)
    if lang == "en":
        return (
            f"{_DAYS[t.tm_wday]}, {t.tm_mday} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"at {t.tm_hour:02d}:{t.tm_min:02d}"
        )
    return f"{t.tm_year}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}"


@lru_cache(maxsize=2048)
def _attribution(seed: int, i: int) -> str:
    """'On <date>, <name> wrote:' for a reply to message ``i``."""
    parent = _slot(seed, i)
    return _WROTE[parent.lang].format(
        date=_stamp(parent.lang, parent.when, parent.sender.tz),
        name=parent.sender.name,
        addr=parent.sender.address,
    )


def _synthetic_plain(seed: int, i: int, depth: int) -> str:
    """Plain body of message ``i`` (CRLF), quoting up to ``depth`` ancestors, top-posted.

    A reply quotes its parent's whole body, which quotes its own parent, and so on: the
    body is the message's own text followed by, for each ancestor, its attribution line
    and own text, quoted once more per generation (``_quoted_block``, cached).
    """
    pieces = [_own_plain(seed, i)]
    slot = _layout(seed, i // _BLOCK)[i % _BLOCK]
    for level in range(1, depth + 1):
        if slot.parent < 0 or not slot.model.quotes:
            break
        pieces.append(_quoted_block(seed, slot.parent, level))
        slot = _layout(seed, slot.parent // _BLOCK)[slot.parent % _BLOCK]
    return "".join(pieces)


@lru_cache(maxsize=2048)
def _own_plain(seed: int, i: int) -> str:
    """What message ``i`` itself says: greeting, paragraphs, closing, signature (CRLF)."""
    slot = _layout(seed, i // _BLOCK)[i % _BLOCK]
    model = slot.model
    pool = _paragraph_pool(slot.lang).text
    text = (
        model.greeting
        + "\n\n"
        + "\n\n".join([pool[p] for p in model.paras])
        + "\n\n"
        + model.closing
        + ("\n\n" + model.signature if model.signature else "")
        + "\n"
    )
    return text.replace("\n", "\r\n")


@lru_cache(maxsize=4096)
def _quoted_block(seed: int, i: int, level: int) -> str:
    """Message ``i``'s attribution line and own text as they appear ``level`` quotes deep."""
    head = _quote_lines("\r\n" + _attribution(seed, i) + "\r\n", level - 1)
    return head + _quote_lines(_own_plain(seed, i), level)


def _quote_lines(text: str, level: int) -> str:
    """Prefix every line of ``text`` (CRLF, ending with CRLF) with ``level`` quote marks."""
    if level == 0:
        return text
    prefix = "> " * level
    quoted = prefix + text[:-2].replace("\r\n", "\r\n" + prefix) + "\r\n"
    return quoted.replace(prefix + "\r\n", prefix[:-1] + "\r\n")


@lru_cache(maxsize=2048)
def _synthetic_html(seed: int, i: int, depth: int) -> str:
    """HTML fragment of message ``i`` (Gmail-style quote blocks), as ``_synthetic_plain``."""
    slot = _slot(seed, i)
    model = slot.model
    pool = _paragraph_pool(slot.lang).html
    parts = [f"<div>{_esc(model.greeting)}</div><div><br></div>\n"]
    parts += [f"<div>{pool[p]}</div><div><br></div>\n" for p in model.paras]
    parts.append("<div>" + _esc(model.closing).replace("\n", "<br>") + "</div>\n")
    if model.signature:
        parts.append(
            '<div><br></div><div class="signature">'
            + _esc(model.signature).replace("\n", "<br>")
            + "</div>\n"
        )
    if slot.parent >= 0 and depth > 0 and model.quotes:
        parts.append(
            '<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
            + _esc(_attribution(seed, slot.parent))
            + '<br></div>\n<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
            'border-left:1px solid rgb(204,204,204);padding-left:1ex">\n'
            + _synthetic_html(seed, slot.parent, depth - 1)
            + "</blockquote></div>\n"
        )
    return "".join(parts)


_OUTLOOK_HEAD = (
    '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:'
    'office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.'
    'com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n'
    '<meta http-equiv="Content-Type" content="text/html; charset={charset}">\n'
    '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n<style><!--\n'
    '/* Font Definitions */\n@font-face\n\t{{font-family:"Cambria Math";\n\t'
    "panose-1:2 4 5 3 5 4 6 3 2 4;}}\n@font-face\n\t{{font-family:Calibri;\n\t"
    "panose-1:2 15 5 2 2 2 4 3 2 4;}}\n@font-face\n\t{{font-family:Aptos;}}\n"
    "/* Style Definitions */\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{{margin:0cm;\n\t"
    'font-size:11.0pt;\n\tfont-family:"Aptos",sans-serif;\n\tmso-ligatures:standardcontextual;'
    "\n\tmso-fareast-language:EN-US;}}\na:link, span.MsoHyperlink\n\t{{mso-style-priority:99;\n\t"
    "color:#467886;\n\ttext-decoration:underline;}}\nspan.EmailStyle17\n\t{{mso-style-type:"
    'personal-compose;\n\tfont-family:"Aptos",sans-serif;\n\tcolor:windowtext;}}\n'
    ".MsoChpDefault\n\t{{mso-style-type:export-only;\n\tfont-size:10.0pt;\n\t"
    "mso-ligatures:none;}}\n@page WordSection1\n\t{{size:612.0pt 792.0pt;\n\t"
    "margin:72.0pt 72.0pt 72.0pt 72.0pt;}}\ndiv.WordSection1\n\t{{page:WordSection1;}}\n"
    "--></style>\n</head>\n"
    '<body lang="EN-US" link="#467886" vlink="#96607D" style="word-wrap:break-word">\n'
    '<div class="WordSection1">\n'
)
_APPLE_HEAD = (
    '<html><head><meta http-equiv="content-type" content="text/html; charset={charset}"></head>'
    '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: '
    'after-white-space;">\n'
)


def _html_document(fragment: str, style: int, charset: str) -> str:
    if style == 0:
        return '<div dir="ltr">' + fragment + "</div>\n"
    if style == 1:
        return _OUTLOOK_HEAD.format(charset=charset) + fragment + "</div>\n</body>\n</html>\n"
    return _APPLE_HEAD.format(charset=charset) + fragment + "</body></html>\n"


def _pick(rng: random.Random, options: Sequence[tuple[str, float]]) -> str:
    x = rng.random()
    for value, p in options:
        if x < p:
            return value
        x -= p
    return "utf-8"


# Attachment kinds: (extension, MIME type, magic bytes, weight, textual)
_ATTACHMENTS: tuple[tuple[str, str, bytes, float, bool], ...] = (
    ("pdf", "application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 30, False),
    ("jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01", 25, False),
    ("png", "image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 8, False),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     b"PK\x03\x04\x14\x00\x06\x00", 10, False),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
     b"PK\x03\x04\x14\x00\x06\x00", 7, False),
    ("zip", "application/zip", b"PK\x03\x04\x14\x00\x00\x00", 4, False),
    ("csv", "text/csv", b"", 6, True),
    ("txt", "text/plain", b"", 5, True),
    ("ics", "text/calendar", b"", 3, True),
)  # fmt: skip
_ATTACHMENT_CUM = _cumulative(a[3] for a in _ATTACHMENTS)
_POOL_LINES = 56_000  # base64 lines of 57 bytes: 3.2 MB, enough for the largest attachment


@lru_cache(maxsize=1)
def _b64_pool() -> bytes:
    """Base64 lines (76 chars + CRLF) of fixed pseudo-random bytes, sliced for attachments."""
    data = random.Random("tidings-attachment-bytes").randbytes(57 * _POOL_LINES)
    return _b64(data)


def _binary_b64(rng: random.Random, size: int, magic: bytes) -> bytes:
    """``size`` bytes (starting with ``magic``), base64-encoded: mostly a slice of the pool."""
    head = magic + rng.randbytes(max(0, min(size, 57) - len(magic)))
    lines = max(0, size - 57) // 57
    assert lines <= _POOL_LINES
    tail = max(0, size - 57 - lines * 57)
    offset = int(rng.random() * (_POOL_LINES - lines + 1)) * 78
    middle = memoryview(_b64_pool())[offset : offset + lines * 78]
    return b"".join((_b64(head), middle, _b64(rng.randbytes(tail)) if tail else b""))


@lru_cache(maxsize=1)
def _csv_rows() -> tuple[str, ...]:
    rng = random.Random("tidings-csv-rows")
    r = rng.random
    states = ("paid", "open", "overdue")
    return tuple(
        f"2026-{1 + int(r() * 10):02d}-{1 + int(r() * 28):02d},ACC-{int(r() * 10000):04d},"
        f"{r() * 5000:.2f},{states[int(r() * 3)]}"
        for _ in range(4000)
    )


def _text_attachment(rng: random.Random, ext: str, size: int) -> str:
    r = rng.random
    if ext == "csv":
        rows = _csv_rows()
        count = min(len(rows), size // 36)
        start = int(r() * (len(rows) - count))
        body = "\n".join([f"{k},{row}" for k, row in enumerate(rows[start : start + count], 1)])
        return "id,date,account,amount,status\n" + body + "\n"
    if ext == "ics":
        uid = f"{rng.getrandbits(64):016x}@calendar.example"
        return _ics(
            ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Example//Calendar//EN", "METHOD:PUBLISH",
             "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261001T120000Z",
             f"DTSTART:2026{1 + int(r() * 12):02d}{1 + int(r() * 28):02d}T{7 + int(r() * 10):02d}"
             "0000Z", "DURATION:PT1H", "SUMMARY:Planning session", "END:VEVENT", "END:VCALENDAR"]
        ).replace("\r\n", "\n")  # fmt: skip
    pool = _paragraph_pool("en").text
    out: list[str] = []
    total = 0
    while total < size:
        para = pool[int(r() * len(pool))]
        out.append(para)
        total += len(para) + 2
    return "\n\n".join(out) + "\n"


def _attachment_size(rng: random.Random, big: bool) -> int:
    """Decoded size of a binary attachment; base64 adds a third (and 2 bytes a line)."""
    r = rng.random()
    if big:
        return int(730_000 * 4**r)  # 1-4 MB once encoded, log-uniform
    if r < 0.25:
        return 2_000 + int(rng.random() * 18_000)
    return int(20_000 * 15 ** (rng.random() ** 3))  # 20-300 KB, median ~28 KB, mean ~56 KB


def _filename(rng: random.Random, lang: str, ext: str) -> str:
    r = rng.random
    if lang != "en" and r() < 0.5:
        words = _paragraph_pool(lang).words
        stem = f"{words[int(r() * len(words))]}_{words[int(r() * len(words))]}"
        return f"{stem}_{1 + int(r() * 40)}.{ext}"
    words = _vocabulary()[0]
    stem = "-".join([words[40 + int(r() * 860)] for _ in range(1 + int(r() * 3))])
    if r() < 0.3:
        stem += f"-2026-{1 + int(r() * 10):02d}"
    return f"{stem}.{ext}"


def _seed_int(seed: int, i: int, stream: int) -> int:
    """A distinct non-negative int per (seed, i, stream); int seeds are the cheapest."""
    a = seed * 2 if seed >= 0 else -seed * 2 - 1  # zigzag: any int -> natural number
    return ((a + i) * (a + i + 1) // 2 + i) * 16 + stream  # Cantor pairing


def synthetic_message(i: int, seed: int = 0) -> bytes:
    """Message ``i`` (0 = newest) of the synthetic mailbox ``seed``, as raw CRLF bytes.

    The same (i, seed) always gives the same bytes, whatever was generated before; any
    int is a valid seed. Random access costs one block layout (a few milliseconds);
    sequential access, as ``synthetic_messages`` does, is much cheaper per message.
    """
    if i < 0:
        raise ValueError(f"message index must be >= 0, got {i}")
    slot = _layout(seed, i // _BLOCK)[i % _BLOCK]
    rng = random.Random(_seed_int(seed, i, 1))
    if slot.kind == _LIST:
        return _list_message(seed, i, slot, rng, _Boundaries(_synthetic_msgid(seed, i)[1:13], i))
    text = _synthetic_plain(seed, i, _QUOTE_DEPTH)
    charset = _pick(rng, _LANG_CHARSETS[slot.lang])
    cte = _pick(rng, _LEGACY_CTE[charset])
    if text.isascii():  # lines are short (wrapped at 72, a few quote marks): 7bit is valid
        encoded = text.encode("ascii")
        cte = "7bit"
    else:
        try:
            data = text.encode(charset)
        except UnicodeEncodeError:
            charset, data = "utf-8", text.encode("utf-8")
            cte = _pick(rng, _LEGACY_CTE[charset])
        cte, encoded = _transfer_encode(data, cte)
    label = _charset_label(charset)
    plain: Part = (
        f"Content-Type: text/plain; charset={label}\r\nContent-Transfer-Encoding: {cte}\r\n",
        encoded,
    )
    body: Part
    if slot.kind == _PLAIN:
        body = plain
    else:
        b = _Boundaries(_synthetic_msgid(seed, i)[1:13], i)
        page = _html_document(_synthetic_html(seed, i, _QUOTE_DEPTH), int(rng.random() * 3), label)
        html_cte = "base64" if rng.random() < 0.4 else "quoted-printable"
        if charset == "iso-2022-jp":
            html_cte = "7bit"
        alternative = _multipart(
            "alternative", b(), [plain, _text_part(page, "html", charset=charset, cte=html_cte)]
        )
        if slot.kind == _ALT:
            body = alternative
        else:
            first = alternative if rng.random() < 0.4 else plain
            files = _attachments(rng, slot, first)
            mode = "Q" if charset in ("iso-8859-1", "windows-1252") or rng.random() < 0.3 else "B"
            head = _synthetic_headers(seed, i, slot, rng, charset=charset, mode=mode)
            return _render_multipart(head, "mixed", b(), files, preamble=True)
    mode = "Q" if charset in ("iso-8859-1", "windows-1252") or rng.random() < 0.3 else "B"
    return _render((), body, _synthetic_headers(seed, i, slot, rng, charset=charset, mode=mode))


def _attachments(rng: random.Random, slot: _Slot, first: Part) -> list[Part]:
    parts = [first]
    big = rng.random() < (1 / 200) / 0.12  # 1 message in 200 carries a 1-4 MB file
    for n in range(1 + _draw(rng.random, (78, 95, 100))):
        ext, mimetype, magic, _, textual = _ATTACHMENTS[_draw(rng.random, _ATTACHMENT_CUM)]
        name = _filename(rng, slot.lang, ext)
        if textual:
            content = _text_attachment(rng, ext, 600 + int(rng.random() * 23_400))
            encoded = _b64(content.replace("\n", "\r\n").encode("utf-8"))
            parts.append(_file_part(encoded, mimetype, name, ct_params="; charset=utf-8"))
        else:
            size = _attachment_size(rng, big and n == 0)
            parts.append(_file_part(_binary_b64(rng, size, magic), mimetype, name))
    return parts


@lru_cache(maxsize=1024)
def _trace_template(sender: _Person) -> tuple[str, bool, bool]:
    """The trace headers a sender's mail picks up, as a %-template (fixed per sender).

    Each sender's infrastructure is its own: how many relays, whether its provider signs
    with DKIM, whether the mail passed a forwarder that adds an ARC set. Per message only
    ids, times and signatures change (``%(q)s``, ``%(date)s``, ...). Also returns whether
    the template has an ARC set and a DKIM signature (which need signature values).
    """
    rng = random.Random(f"tidings-trace/{sender.address}")
    domain = sender.address.partition("@")[2]
    ip = f"{rng.choice(_DOC_NETS)}.{rng.randrange(1, 255)}"
    out = [
        f"Return-Path: <{sender.address}>\r\nDelivered-To: {DEMO_ADDRESS}\r\n"
        f"Received: from mail.{domain} (mail.{domain} [{ip}])\r\n\tby mx.tidings.example "
        f"(Postfix) with ESMTPS id %(q)s\r\n\tfor <{DEMO_ADDRESS}>; %(arrived)s\r\n"
    ]
    arc = rng.random() < 0.35
    if arc:
        out.append(
            "ARC-Seal: i=1; a=rsa-sha256; t=%(t)d; cv=none;\r\n\td=arc.example; "
            "s=arc-20240605;\r\n\tb=%(sig1)s\r\n"
            "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=arc.example;\r\n"
            "\ts=arc-20240605;\r\n\th=to:subject:message-id:date:from:mime-version"
            ":dkim-signature;\r\n\tbh=%(bh1)s;\r\n\tb=%(sig2)s\r\n"
            "ARC-Authentication-Results: i=1; mx.arc.example;\r\n"
            f"\tdkim=pass header.i=@{domain} header.s=s1 header.b=%(hb)s;\r\n"
            f"\tspf=pass (arc.example: domain of {sender.address} designates {ip} as "
            f"permitted sender)\r\n\tsmtp.mailfrom={sender.address};\r\n"
            f"\tdmarc=pass (p=NONE) header.from={domain}\r\n"
            "X-Received: by 2002:a05:6000:%(x1)s with SMTP id %(x2)s;\r\n\t%(date)s\r\n"
        )
    for hop in range(rng.choice((0, 0, 0, 1, 1, 2))):
        out.append(
            f"Received: from relay{hop + 1}.{domain} (relay{hop + 1}.{domain} "
            f"[{rng.choice(_DOC_NETS)}.{rng.randrange(1, 255)}])\r\n\tby mail.{domain} with "
            f"ESMTPS id %(r{hop})s;\r\n\t%(date)s\r\n"
        )
    if rng.random() < 0.6:
        out.append(
            f"Received: from [10.{rng.randrange(256)}.{rng.randrange(256)}."
            f"{rng.randrange(1, 255)}]\r\n\tby mail.{domain} with ESMTPSA id %(c)s;\r\n"
            "\t%(date)s\r\n"
        )
    dkim = rng.random() < 0.75
    if dkim:
        out.append(
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain};\r\n"
            f"\ts=s{rng.randrange(1, 9)}; t=%(t)d;\r\n"
            "\th=from:to:subject:date:message-id:mime-version:content-type;\r\n"
            "\tbh=%(bh2)s;\r\n\tb=%(sig3)s\r\n"
        )
    out.append(
        f"Authentication-Results: mx.tidings.example;\r\n\tdkim=pass header.d={domain};\r\n"
        f"\tspf=pass smtp.mailfrom={sender.address};\r\n\tdmarc=pass header.from={domain}\r\n"
    )
    return "".join(out), arc, dkim


def _synthetic_headers(
    seed: int, i: int, slot: _Slot, rng: random.Random, *, charset: str, mode: str
) -> str:
    """The header block (folded, CRLF), trace headers first as servers add them."""
    sender = slot.sender
    date = _rfc_date(slot.when, sender.tz)
    out: list[str] = []
    if sender is not _ME:
        template, arc, dkim = _trace_template(sender)
        ids = f"{rng.getrandbits(320):080x}"
        values = {
            "q": ids[:10].upper(),
            "arrived": _rfc_date(slot.when + 2 + rng.getrandbits(5), 0),
            "date": date,
            "t": slot.when,
            "x1": ids[10:14],
            "x2": ids[14:26] + "mr" + ids[26:33],
            "r0": ids[33:49],
            "r1": ids[49:64],
            "c": ids[64:80],
        }
        if arc or dkim:
            sigs, hashes = _signatures()
            pick = rng.getrandbits(40)
            values["hb"] = hashes[pick & 511][:8]
            values["sig1"] = sigs[pick >> 9 & 511]
            values["sig2"] = sigs[pick >> 18 & 511]
            values["sig3"] = sigs[pick >> 27 & 511]
            values["bh1"] = hashes[pick >> 9 & 511]
            values["bh2"] = hashes[pick >> 18 & 511]
        out.append(template % values)
    out.append(_address_fields(sender, slot.to, slot.cc, charset, mode))
    if slot.parent >= 0:
        out.append(_subject_field(_reply_prefix(sender) + slot.subject, charset, mode))
        out.append(f"Date: {date}\r\nMessage-ID: {_synthetic_msgid(seed, i)}\r\n")
        out.append(_reply_fields(seed, slot.parent))
    else:
        out.append(_subject_field(slot.subject, charset, mode))
        out.append(f"Date: {date}\r\nMessage-ID: {_synthetic_msgid(seed, i)}\r\n")
    out.append(_mailer_field(sender.address))
    return "".join(out)


@lru_cache(maxsize=1024)
def _reply_prefix(sender: _Person) -> str:
    """'Re: ' mostly; 'AW: ' / 'RE : ' from German / French Outlook users."""
    lang = next((lang for lang, pool in _sender_pool().items() if sender in pool), "en")
    prefixes = _REPLY_PREFIX.get(lang, ("Re: ",))
    return prefixes[zlib.crc32(sender.address.encode("utf-8")) % len(prefixes)]


@lru_cache(maxsize=2048)
def _references(seed: int, i: int) -> str:
    """Message-IDs of message ``i``'s ancestors and of ``i`` itself, space separated."""
    parent = _slot(seed, i).parent
    own = _synthetic_msgid(seed, i)
    return own if parent < 0 else _references(seed, parent) + " " + own


@lru_cache(maxsize=2048)
def _reply_fields(seed: int, parent: int) -> str:
    """In-Reply-To and References of a reply to ``parent``."""
    refs = _references(seed, parent).split(" ")
    return f"In-Reply-To: {refs[-1]}\r\nReferences: " + "\r\n ".join(refs) + "\r\n"


@lru_cache(maxsize=4096)
def _address_fields(
    sender: _Person, to: tuple[_Person, ...], cc: tuple[_Person, ...], charset: str, mode: str
) -> str:
    out = _address_field("From", (sender,), charset, mode) + _address_field("To", to, charset, mode)
    return out + _address_field("Cc", cc, charset, mode) if cc else out


@lru_cache(maxsize=1)
def _signatures() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """512 made-up RSA-2048 signatures (folded) and 512 body hashes, picked per message."""
    rng = random.Random("tidings-signatures")
    sigs, hashes = [], []
    for _ in range(512):
        sig = binascii.b2a_base64(rng.randbytes(256), newline=False).decode("ascii")
        sigs.append("\r\n\t ".join([sig[k : k + 70] for k in range(0, len(sig), 70)]))
        hashes.append(binascii.b2a_base64(rng.randbytes(32), newline=False).decode("ascii"))
    return tuple(sigs), tuple(hashes)


@lru_cache(maxsize=4096)
def _address_field(name: str, people: tuple[_Person, ...], charset: str, mode: str) -> str:
    return _fold(name, ", ".join([_mailbox(p.name, p.address, charset, mode) for p in people]))


@lru_cache(maxsize=2048)
def _subject_field(subject: str, charset: str, mode: str) -> str:
    return _fold("Subject", _unstructured(subject, charset, mode))


@lru_cache(maxsize=1024)
def _mailer_field(address: str) -> str:
    name, value = _MAILERS[zlib.crc32(address.encode("utf-8")) % len(_MAILERS)]
    return _fold(name, value)


_NEWSLETTERS = (
    ("The Weekly Byte", "newsletter@weeklybyte.example"),
    ("Northwind Deals", "deals@northwind.example"),
    ("Hooli Product Updates", "updates@hooli.example"),
    ("Open Source Digest", "digest@oss-news.example"),
    ("Design Notes", "hello@designnotes.example"),
    ("Contoso Travel", "offers@contoso-travel.example"),
    ("Local Library Events", "events@library.example"),
    ("Runner's Weekly", "team@runners.example"),
    ("Data Science Roundup", "roundup@datasci.example"),
    ("Fabrikam Community", "community@fabrikam.example"),
)
_LISTS = (
    ("tidings-users", "lists.example.org"),
    ("sqlite-users", "lists.example.org"),
    ("python-list", "lists.example.com"),
    ("imap-protocol", "lists.example.com"),
)


def _list_message(seed: int, i: int, slot: _Slot, rng: random.Random, b: _Boundaries) -> bytes:
    """A newsletter (multipart/alternative, table layout) or a MIME mailing-list digest."""
    pool = _paragraph_pool("en")
    words, _ = _vocabulary()
    date = _date(datetime.fromtimestamp(slot.when, UTC), rng.choice((-300, 0, 60)))
    token = f"{rng.getrandbits(64):016x}"
    headers: list[tuple[str, str]]
    body: Part
    if rng.random() < 0.7:
        brand, address = rng.choice(_NEWSLETTERS)
        domain = address.split("@")[1]
        issue_no = 1 + (_BASE_TS - slot.when) // 86400 % 400
        articles = [
            _Article(
                " ".join(
                    [words[30 + int(rng.random() * 770)] for _ in range(rng.randint(3, 7))]
                ).capitalize(),
                pool.text[int(rng.random() * len(pool.text))].replace("\n", " "),
                f"https://{domain}/a/{token[:8]}/{k}?utm_source=newsletter&utm_medium=email",
                f"https://cdn.{domain}/img/{rng.getrandbits(32):08x}.jpg",
            )
            for k in range(rng.randint(5, 14))
        ]
        issue = f"Issue {issue_no}"
        intro = pool.text[int(rng.random() * len(pool.text))].replace("\n", " ")
        unsubscribe = f"https://{domain}/unsubscribe?u={token}"
        page = _newsletter_html(
            brand=brand, issue=issue, intro=intro, articles=articles,
            view_url=f"https://{domain}/view/{token}", unsubscribe_url=unsubscribe,
            pixel_url=f"https://t.{domain}/o/{token}.gif", logo_url=f"https://cdn.{domain}/logo.png",
            address=f"{brand}, 1 Example Street, Springfield",
        )  # fmt: skip
        text = _newsletter_text(brand, issue, intro, articles)
        body = _multipart(
            "alternative",
            b(),
            [
                _text_part(text, cte="quoted-printable"),
                _text_part(page, "html", cte=rng.choice(("quoted-printable", "base64"))),
            ],
        )
        headers = [
            ("From", _mailbox(brand, address)),
            ("To", DEMO_ADDRESS),
            ("Subject", f"{brand}: {articles[0].title}"),
            ("Date", date),
            ("Message-ID", f"<{_digest_hex('tidings-msgid', seed, i, size=12)}@mail.{domain}>"),
            ("List-Id", f"{brand} <{domain.split('.')[0]}.list.{domain}>"),
            ("List-Unsubscribe", f"<mailto:unsubscribe@{domain}?subject={token}>, <{unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Precedence", "bulk"),
        ]
    else:
        name, host = rng.choice(_LISTS)
        volume, number = 20 + (_BASE_TS - slot.when) // (86400 * 365), rng.randrange(1, 300)
        pools = _sender_pool()["en"]
        posts: list[Part] = []
        toc = ["Today's Topics:", ""]
        for k in range(rng.randint(4, 12)):
            author = rng.choice(pools)
            topic = " ".join(
                [words[30 + int(rng.random() * 870)] for _ in range(rng.randint(2, 6))]
            )
            topic = ("Re: " if rng.random() < 0.6 else "") + topic.capitalize()
            text = "\n\n".join(
                pool.text[rng.randrange(len(pool.text))] for _ in range(rng.randint(1, 5))
            )
            inner = _render(
                [
                    ("From", _mailbox(author.name, author.address)),
                    ("Date", _date(datetime.fromtimestamp(slot.when - 3600 * (12 - k), UTC), 0)),
                    ("Subject", _unstructured(topic)),
                    ("Message-ID", f"<{token}.{k}@{host}>"),
                ],
                _text_part(text + "\n", cte="8bit"),
            )
            posts.append(_message_part(inner))
            toc.append(f"   {k + 1}. {topic} ({author.name})")
        footer = f"_______________________________________________\n{name} mailing list\n"
        footer += f"{name}@{host}\nhttps://{host}/mailman/listinfo/{name}\n"
        body = _multipart(
            "mixed",
            b(),
            [
                _text_part(
                    f"Send {name} mailing list submissions to\n\t{name}@{host}\n\n"
                    + "\n".join(toc) + "\n"
                ),
                _multipart("digest", b(), posts),
                _text_part(footer),
            ],
        )  # fmt: skip
        headers = [
            ("From", f"{name}-request@{host}"),
            ("To", f"{name}@{host}"),
            ("Subject", f"{name} Digest, Vol {volume}, Issue {number}"),
            ("Date", date),
            ("Message-ID", f"<mailman.{token}.{i}.{name}@{host}>"),
            ("Reply-To", f"{name}@{host}"),
            ("List-Id", f"<{name}.{host}>"),
            ("List-Post", f"<mailto:{name}@{host}>"),
            ("List-Unsubscribe", f"<https://{host}/mailman/options/{name}>, "
             f"<mailto:{name}-request@{host}?subject=unsubscribe>"),
            ("Precedence", "list"),
        ]  # fmt: skip
    return _render(headers, body)


def synthetic_messages(n: int, seed: int = 0) -> Iterator[bytes]:
    """Stream ``synthetic_message(i, seed)`` for ``i in range(n)``, newest first.

    A generator: nothing is built ahead, so ``n`` may be as large as you like.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for i in range(n):
        yield synthetic_message(i, seed)
