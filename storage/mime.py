"""MIME parsing: raw RFC 822 bytes in, what the mail store keeps out.

Raw message bytes are the source of truth in Tidings; everything here re-derives list
rows, body text and attachment rows from them. The module is pure (no I/O, no globals
that change) so that ingest, re-indexing and the reader all get the same answer.

Why it is shaped this way:

* Two stages. ``parse_envelope`` is what the message *list* needs and runs for every
  message of a sync (the ingest budget is about 2,000 messages/s including SQLite), so it
  reads the header block only. One regex match finds the end of the block and checks
  every line in it (CRLF, LF; CR-only mail is converted first; a leading mbox ``From``
  line is skipped), a second one picks the dozen headers we need out of the lower-cased
  block in C, so the dozens of ``Received``/``DKIM`` lines never reach Python code. Only
  those headers are decoded, with fast paths for the shapes nearly all mail has
  (``Name <a@b>``, RFC 5322 dates), and address headers are cached because list mail
  repeats them. ``extract_content`` is the expensive stage (body text, HTML, attachments)
  and runs once per message.
* Our own MIME walker instead of ``email.parser``. The feed parser pushes every body line
  through Python, so a message with a few MB of base64 costs tens of milliseconds, and it
  round-trips 8-bit data through surrogates. The walker keeps one ``bytes`` buffer and
  works with offsets into it: boundaries are found with ``bytes.find`` on
  newline+delimiter, so attachment content is skipped in C; parts are sliced only when
  they are decoded; the decoded size of a base64 attachment follows from its length and
  line layout without decoding it. Part numbers are IMAP ``BODY[...]`` section numbers,
  so ``part_bytes`` and the server agree about "part 2.1"; ``part_bytes`` parses only
  the entities on the path to the part it is asked for.
* Real-world mail is broken, so nothing here may raise on message content. The code is
  written not to throw (lenient decoders, bounded nesting and part counts, explicit
  fallbacks) and the public functions additionally catch anything unexpected and return
  a best-effort result with a ``defects`` entry ('internal error: ...'). Problems are
  reported as short strings ('no header block', 'bad date', 'missing closing
  boundary', ...), never as exceptions.
* Charsets are decoded leniently: the declared codec first (with the usual aliases and
  supersets: gb2312 -> gb18030, ks_c_5601-1987 -> cp949, iso-8859-1 -> windows-1252,
  shift_jis -> cp932, big5 -> big5hkscs, ...), then UTF-8, then windows-1252, then
  latin-1, which cannot fail. A known multi-byte codec that fails strictly is used with
  replacement characters rather than letting windows-1252 produce mojibake. 7-bit text
  with ISO-2022 escapes is decoded as ISO-2022-JP even when no charset is declared. Raw
  8-bit header bytes are tried as UTF-8, then in the body's charset, then windows-1252.
* Body choice follows mail-reader practice: in ``multipart/alternative`` the plain-text
  part feeds ``text`` (unless it is blank) and the HTML part feeds ``html``; in
  ``multipart/mixed`` every text part that is not ``Content-Disposition: attachment`` is
  body, in order (mailing-list footers are separate parts; in ``html`` they are appended
  as ``<pre>``); ``multipart/related`` contributes its root (``start``, else the first
  part of ``type``, else the first part); ``multipart/signed`` its first part;
  ``multipart/encrypted`` nothing. An attached ``message/rfc822`` is one attachment (its
  own attachments live inside that ``.eml``); its text becomes ``text`` only when the
  message has no text of its own (bare forwards, digests). HTML becomes text once, with
  lexbor (``storage.htmltext``).
* The snippet skips empty lines, ``>`` quotes, attribution lines ('On ... wrote:', also
  wrapped over two lines and in a dozen languages), and stops at a signature (``-- ``),
  an Outlook '-----Original Message-----' or a long separator line after some text.
* Decisions that callers may trip over: ``references`` is de-duplicated keeping the first
  occurrence; ``list_id`` is the ``<list-id>`` part of the header (the description is
  dropped); dates without a usable zone (``-0000``, military letters, unknown names) are
  taken as UTC; ``Attachment.size`` of a damaged base64 part comes from its length and
  can differ from what a lenient decoder yields; ``Attachment.inline`` is true for
  ``Content-Disposition: inline`` (Apple Mail marks PDFs so) or a part referenced by a
  ``cid:`` URL; ``sanitize_filename`` returns ``''`` when nothing usable is left, so
  the caller picks a default name; ``part_bytes`` re-parses the message on each call.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_tz
from html import escape as _html_escape
from urllib.parse import unquote, unquote_to_bytes

from storage.dto import AttachmentInfo as Attachment
from storage.htmltext import html_to_text

__all__ = [
    "Address",
    "Attachment",
    "Content",
    "Envelope",
    "decode_header_value",
    "extract_content",
    "html_to_text",
    "normalize_subject",
    "parse_envelope",
    "part_bytes",
    "sanitize_filename",
]

MAX_TEXT_CHARS = 200_000
SNIPPET_CHARS = 200
_MAX_DEPTH = 40  # MIME nesting levels we follow
_MAX_PARTS = 2_000  # parts per message we look at
_MAX_HTML_CHARS = 5_000_000  # HTML converted to text (the reader still gets all of it)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from an address header."""

    name: str  # decoded display name, '' if none
    email: str  # addr-spec as given (whitespace and <> stripped), '' if unparseable


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the message list needs, from the header block only."""

    message_id: str | None
    subject: str
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    list_id: str | None
    list_unsubscribe: str | None
    list_unsubscribe_post: str | None
    content_type: str
    defects: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Content:
    """Full content extraction: readable text, HTML for the reader, attachments."""

    text: str
    html: str | None
    snippet: str
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]


# --------------------------------------------------------------------------- charsets

_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "csgb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "chinese": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "euc-kr": "cp949",
    "korean": "cp949",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "iso646-us": "ascii",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "unicode-1-1-utf-7": "utf-7",
    "x-unicode-2-0-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "big5": "big5hkscs",
    "x-euc-tw": "big5hkscs",
}
# Tried after the declared codec failed strictly, before falling back further.
_CHARSET_EXTRA = {
    "iso2022_jp": ("iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_3"),
    "euc_jp": ("euc_jis_2004", "cp932"),
    "cp932": ("shift_jis_2004",),
    "big5hkscs": ("cp950",),
}
# Codecs that are not character sets for mail text even though Python knows them.
_NOT_CHARSETS = frozenset(
    {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode", "mbcs", "oem"}
)
# Codecs where ASCII bytes do not simply mean ASCII text.
_STATEFUL = ("iso2022", "hz", "utf-7", "utf_7", "utf-16", "utf-32", "utf_16", "utf_32")
_UTF8_SEQ = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


@functools.lru_cache(maxsize=512)
def _codec(charset: str) -> str | None:
    """Python codec name for a MIME charset label, or None when unknown or bogus."""
    name = charset.strip().strip("\"'").strip().lower().split("*", 1)[0]
    if name.startswith("3d") and len(name) > 2:  # 'charset=3Dutf-8': QP damage
        name = name[2:].strip("\"'")
    candidates = [name]
    if name.startswith("x-"):
        candidates.append(name[2:])
    if name.startswith("windows-"):
        candidates.append("cp" + name[8:])
    if name.startswith("cp-"):
        candidates.append("cp" + name[3:])
    for label in candidates:
        try:
            info = codecs.lookup(_CHARSET_ALIASES.get(label, label))
        except (LookupError, ValueError, TypeError):
            continue
        if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
            continue
        return info.name
    return None


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except Exception:  # codecs raise assorted errors on garbage
        return None


def _replace(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec, "replace")
    except Exception:  # a codec that cannot even replace: the caller tries the next
        return None


def _decode_7bit(data: bytes, codec: str | None) -> str | None:
    """Text for 7-bit data, or None when the declared codec must have its say."""
    if b"\x1b" in data:
        # ISO-2022 escape sequences: the declared variant, else Japanese (which is often
        # sent without any charset), else the declared codec with replacement characters.
        stateful = codec is not None and codec.startswith("iso2022")
        for candidate in (codec if stateful else "", "iso2022_jp_2", "iso2022_jp_ext"):
            text = _try(data, candidate) if candidate else None
            if text is not None:
                return text
        if codec is not None and stateful:
            return _replace(data, codec)
        return data.decode("ascii")
    if codec is not None and codec.startswith(_STATEFUL):
        return None  # UTF-7, HZ, UTF-16/32 are not plain ASCII even without escapes
    return data.decode("ascii")


def _decode_bytes(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    """Decode body or header bytes in a declared charset; never raises.

    Declared codec, then UTF-8, then windows-1252, then latin-1. A declared codec that
    fails strictly is used with replacement characters rather than letting windows-1252
    turn a damaged CJK text into mojibake.
    """
    codec = _codec(charset) if charset else None
    if charset and codec is None and defects is not None:
        defects.append(f"unknown charset {charset.strip()[:40]!r}")
    if data.isascii():
        text = _decode_7bit(data, codec)
        if text is not None:
            return text
    declared = codec is not None and codec not in ("ascii", "utf-8")
    if declared:
        for candidate in (codec, *_CHARSET_EXTRA.get(codec or "", ())):
            text = _try(data, candidate or "")
            if text is not None:
                return text
    text = _try(data, "utf-8")
    if text is not None:
        return text
    if codec == "cp1252":  # declared iso-8859-1: its own bytes are the last word
        return data.decode("latin-1")
    if declared and codec is not None:
        text = _replace(data, codec)
        if text is not None:
            return text
    if _UTF8_SEQ.search(data):  # UTF-8 with a few broken bytes, not a legacy charset
        return data.decode("utf-8", "replace")
    text = _try(data, "cp1252")
    return text if text is not None else data.decode("latin-1")


def _header_text(value: bytes, hint: str | None = None) -> str:
    """Raw header bytes to str: ASCII, else UTF-8, else the body charset, else cp1252."""
    if value.isascii():
        text = value.decode("ascii")
        if "\x1b" in text:  # raw ISO-2022-JP in a header
            for jis in ("iso2022_jp_2", "iso2022_jp_ext"):
                decoded = _try(value, jis)
                if decoded is not None:
                    return decoded
        return text
    for candidate in ("utf-8", _codec(hint) if hint else None, "cp1252"):
        if candidate is not None and candidate != "ascii":
            decoded = _try(value, candidate)
            if decoded is not None:
                return decoded
    return value.decode("latin-1")


# --------------------------------------------------------------------------- RFC 2047

_ENCODED_WORD = re.compile(r"=\?([^?\s\"]+)\?([bBqQ])\?([^?]*)\?=")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")


def _b64decode(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        pass
    clean = _B64_JUNK.sub(b"", data)
    rem = len(clean) % 4
    if rem == 1:
        clean = clean[:-1]
    elif rem:
        clean += b"=" * (4 - rem)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def _decode_words(text: str) -> str:
    """Decode the RFC 2047 encoded words in ``text``.

    Whitespace between adjacent words is dropped, and the bytes of adjacent words in the
    same charset are decoded together (encoders split multi-byte characters and ISO-2022
    escape sequences across words).
    """
    pieces = _ENCODED_WORD.split(text)  # gap, (charset, encoding, data, gap)*
    out = [pieces[0]]
    pending: list[bytes] = []
    pending_charset = ""
    last = len(pieces) - 4
    for index in range(1, len(pieces), 4):
        charset = pieces[index].lower()
        if "*" in charset:  # RFC 2231 language suffix
            charset = charset.split("*", 1)[0]
        if charset != pending_charset and pending:
            out.append(_decode_bytes(b"".join(pending), pending_charset))
            pending.clear()
        pending_charset = charset
        data = pieces[index + 2].encode("utf-8", "replace")
        if pieces[index + 1] in "bB":
            pending.append(_b64decode(data))
        else:
            pending.append(binascii.a2b_qp(data, header=True))
        gap = pieces[index + 3]
        if index == last or (gap and not gap.isspace()):
            out.append(_decode_bytes(b"".join(pending), pending_charset))
            pending.clear()
            out.append(gap)
    return "".join(out)


def decode_header_value(value: bytes | str) -> str:
    """Decode a header value: RFC 2047 words (also sloppy ones) and raw 8-bit bytes.

    Adjacent encoded words are joined (whitespace between them dropped) and their bytes
    are decoded together, so a multi-byte character split across two words survives.
    Words inside quoted strings and words glued to text are decoded too. Folding is
    undone. Never raises.
    """
    try:
        if isinstance(value, bytes | bytearray | memoryview):
            text = _header_text(bytes(value))
        else:
            text = str(value)
        if "\n" in text or "\r" in text:
            text = text.replace("\r", "").replace("\n ", " ").replace("\n\t", "\t")
            text = text.replace("\n", " ")
        if "=?" in text:
            text = _decode_words(text)
        return text
    except Exception:  # never raise on message content
        if isinstance(value, str):
            return value
        return bytes(value).decode("latin-1")


# --------------------------------------------------------------------------- header block

_HEADER_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")
# Header lines and continuation lines, as many as there are, in one C-speed match.
_HEADER_BLOCK = re.compile(rb"(?:[!-9;-~]++[ \t]*+:[^\n]*+\n|[ \t][^\n]*+\n)*+")
_BLANKS = re.compile(rb"[\r\n]+")
_BARE_CR = re.compile(rb"\r\n?")


def _prepare(raw: object) -> bytes:
    """Bytes of the message, with CR-only line ends turned into LF."""
    if isinstance(raw, bytes):
        data = raw
    elif isinstance(raw, bytearray | memoryview):
        data = bytes(raw)
    elif isinstance(raw, str):
        data = raw.encode("utf-8", "surrogateescape")
    else:
        data = b""
    newline = data.find(b"\n")
    cr = data.find(b"\r", 0, newline if newline >= 0 else len(data))
    if cr >= 0 and data[cr + 1 : cr + 2] != b"\n":
        data = _BARE_CR.sub(b"\n", data)
    return data


def _split_entity(data: bytes, start: int, end: int, top: bool) -> tuple[bytes, int, list[str]]:
    """Find the header block of the entity ``data[start:end]``.

    Returns the header block with a ``\\n`` prepended (so that header regexes can anchor
    on a literal newline), where the body starts, and the defects found. One regex match
    both finds the end of the block and checks that every line in it is a header line or
    a continuation; like the stdlib, a line that is neither ends the header block.
    """
    defects: list[str] = []
    if top and data.startswith(b"From ", start, end):
        newline = data.find(b"\n", start, end)
        start = end if newline < 0 else newline + 1
    if top and start < end and data[start] in b"\r\n":
        after = _BLANKS.match(data, start, end)
        skip_to = after.end() if after else start
        if _HEADER_LINE.match(data, skip_to, end):
            start = skip_to
            defects.append("blank line before headers")
        else:
            body = start + (2 if data.startswith(b"\r\n", start, end) else 1)
            return b"\n", min(body, end), ["no header block"]
    match = _HEADER_BLOCK.match(data, start, end)
    header_end = match.end() if match is not None else start
    if header_end >= end:
        body_start = end
    elif data[header_end] == 10:  # the empty line, LF
        body_start = header_end + 1
    elif data.startswith(b"\r\n", header_end, end):  # the empty line, CRLF
        body_start = header_end + 2
    elif data.find(b"\n", header_end, end) < 0 and (
        data[header_end] in b" \t" or _HEADER_LINE.match(data, header_end, end)
    ):
        header_end = body_start = end  # last header line without a line end, no body
    elif header_end == start:
        return b"\n", start, (["no header block"] if top else ["part without headers"])
    else:
        body_start = header_end
        defects.append("missing header/body separator")
    block = b"\n" + data[start:header_end]
    if block[1:2] in (b" ", b"\t"):
        defects.append("first header line is continuation")
    return block, body_start, defects


def _value(raw: bytes, hint: str | None) -> str:
    """An envelope header value: unfolded, stripped, decoded to str (not RFC 2047)."""
    if b"\n" in raw:
        raw = raw.replace(b"\r", b"").replace(b"\n", b"")
    raw = raw.strip()
    if raw.isascii() and b"\x1b" not in raw:
        return raw.decode("ascii")
    return _header_text(raw, hint)


def _unfold(value: bytes) -> bytes:
    if b"\n" in value or b"\r" in value:
        value = value.replace(b"\r", b"").replace(b"\n", b"")
    return value.strip()


# --------------------------------------------------------------------------- addresses

_ADDR_TOKEN = re.compile(
    r"""
      (?P<q>"(?:[^"\\]|\\.)*"?)                  # quoted string, maybe unterminated
    | (?P<c>\((?:[^()\\]|\\.|\([^()]*\))*\)?)   # comment, one nested level
    | (?P<a><[^<>]*>?)                           # angle address
    | (?P<w>=\?[^?\s"]+\?[bBqQ]\?[^?]*\?=)       # encoded word, opaque to specials
    | (?P<s>[,;:])
    | (?P<t>[^",;:<(=]+|=)
    """,
    re.X,
)
_QUOTED_PAIR = re.compile(r"\\(.)")
_WHITESPACE = re.compile(r"\s+")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _clean_name(text: str) -> str:
    if "=?" in text:
        text = _decode_words(text)
    text = _WHITESPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def _clean_email(text: str) -> str:
    text = _WHITESPACE.sub("", text).strip("<>\"'")
    if text.startswith("@") and ":" in text:  # obsolete source route
        text = text.rsplit(":", 1)[1]
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return _CONTROL.sub("", text)


# The two shapes nearly every address header has: 'Name <a@b>' and a bare 'a@b'.
_ONE_NAMED = re.compile(r'\s*+(?:"([^"\\]*+)"|([^"<>,;:()\\@]*+))\s*+<([^<>"\s,;:()\\]++)>\s*+')
_ONE_BARE = re.compile(r'\s*([^\s<>",;:()\\]+@[^\s<>",;:()\\]+)\s*')


@functools.lru_cache(maxsize=4096)
def _parse_addresses(value: str) -> tuple[Address, ...]:
    """Parse an address list header; cached because list mail repeats the same values."""
    match = _ONE_NAMED.fullmatch(value)
    if match is not None:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if "=?" in name or "  " in name or not name.isprintable() or name.startswith("'"):
            name = _clean_name(name)
        return (Address(name=name.strip(), email=match.group(3)),)
    match = _ONE_BARE.fullmatch(value)
    if match is not None:
        return (Address(name="", email=match.group(1)),)
    return _parse_address_list(value)


def _parse_address_list(value: str) -> tuple[Address, ...]:
    out: list[Address] = []
    phrase: list[str] = []
    comment = ""
    angle: str | None = None

    def flush() -> None:
        nonlocal comment, angle
        text = "".join(phrase).strip()
        if angle is not None:
            email = _clean_email(angle)
            name = text or comment
        else:
            name = comment
            if not text:
                email = ""
            elif " " in text or "\t" in text:
                words = text.split()
                at = [w for w in words if "@" in w]
                if at:
                    email = _clean_email(at[-1])
                    words.remove(at[-1])
                    name = name or " ".join(words)
                else:
                    email, name = "", name or text
            else:
                email = _clean_email(text)
        name = _clean_name(name)
        if email or name:
            out.append(Address(name=name, email=email))
        phrase.clear()
        comment = ""
        angle = None

    for match in _ADDR_TOKEN.finditer(value):
        kind = match.lastgroup
        token = match.group()
        if kind == "q":
            inner = token[1:-1] if len(token) > 1 and token.endswith('"') else token[1:]
            phrase.append(_QUOTED_PAIR.sub(r"\1", inner))
        elif kind == "c":
            if not comment:
                comment = token[1:].removesuffix(")")
        elif kind == "a":
            if angle is None:
                angle = token[1:].removesuffix(">")
        elif kind == "s":
            if token == ":" and angle is None:
                phrase.clear()  # group name; its members follow
                comment = ""
            elif token != ":":
                flush()
        else:
            phrase.append(token)
    flush()
    return tuple(out)


def _addresses(values: list[str] | None) -> tuple[Address, ...]:
    if not values:
        return ()
    if len(values) == 1:
        return _parse_addresses(values[0])
    result: list[Address] = []
    for value in values:
        result.extend(_parse_addresses(value))
    return tuple(result)


# --------------------------------------------------------------------------- msg-ids

_MSG_ID = re.compile(r"<([^<>]*)>")
_MSG_ID_FAST = re.compile(r"<([^<>\s]+)>")


def _msg_ids(value: str) -> list[str]:
    ids = _MSG_ID_FAST.findall(value)
    if ids and len(ids) == value.count("<"):
        return ids
    ids = [i.strip() for i in _MSG_ID.findall(value)]
    ids = [_WHITESPACE.sub("", i) for i in ids if i]
    if ids or "<" in value:
        return ids
    words = value.split()
    if len(words) == 1:
        return [words[0]]
    return [w for w in words if "@" in w]


# --------------------------------------------------------------------------- dates

_DATE_RE = re.compile(
    r"\s*(?:[A-Za-z]+\.?\s*,?\s*)?(\d{1,2})[\s-]+([A-Za-z]{3,9})\.?[\s-]+(\d{2,4})"
    r"[\s,]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:\.\d+)?"
    r"\s*(?:([+-])(\d\d):?(\d\d)(?!\d)|\(?([A-Za-z]{1,5})\b)?"
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_ZONES = {
    "ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0,
    "est": -300, "edt": -240, "cst": -360, "cdt": -300,
    "mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
    "akst": -540, "akdt": -480, "hst": -600, "ast": -240, "adt": -180,
    "bst": 60, "cet": 60, "met": 60, "mez": 60, "west": 60,
    "cest": 120, "mest": 120, "mesz": 120, "eet": 120, "eest": 180, "msk": 180,
    "ist": 330, "hkt": 480, "sgt": 480, "jst": 540, "kst": 540,
    "aest": 600, "aedt": 660, "nzst": 720, "nzdt": 780,
}  # fmt: skip


def _make_date(fields: tuple[int, int, int, int, int, int], offset_min: int) -> datetime | None:
    year, month, day, hour, minute, second = fields
    if year < 100:
        year += 2000 if year < 50 else 1900
    elif year < 1000:
        year += 1900
    second = min(second, 59)
    if abs(offset_min) >= 24 * 60:
        offset_min = 0
    try:
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        return stamp - _offset(offset_min) if offset_min else stamp
    except (ValueError, OverflowError):
        return None


@functools.lru_cache(maxsize=256)
def _offset(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


_DATE_FAST = re.compile(  # the RFC 5322 form nearly all mail uses
    r"(?:[A-Z][a-z]{2}, +)?(\d\d?) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d{4})"
)


@functools.lru_cache(maxsize=256)
def _zone(zone: str) -> timedelta:
    minutes = int(zone[1:3]) * 60 + int(zone[3:5])
    if minutes >= 24 * 60:
        return timedelta(0)
    return timedelta(minutes=-minutes if zone[0] == "-" else minutes)


_MONTH_ABBR = {name.title(): number for name, number in _MONTHS.items() if len(name) == 3}


def _parse_date(value: str) -> datetime | None:
    fast = _DATE_FAST.match(value)
    if fast is not None:
        day, mon, year, hour, minute, sec, zone = fast.groups()
        month = _MONTH_ABBR.get(mon)
        if month is not None and int(sec) < 60:
            try:
                stamp = datetime(
                    int(year), month, int(day), int(hour), int(minute), int(sec), tzinfo=UTC
                )
            except ValueError:
                return None
            return stamp - _zone(zone) if zone != "+0000" else stamp
    match = _DATE_RE.match(value)
    if match is not None:
        day, mon, year, hour, minute, sec, sign, oh, om, zone = match.groups()
        month = _MONTHS.get(mon.lower())
        if month is not None:
            offset = 0
            if sign:
                offset = int(oh) * 60 + int(om)
                if sign == "-":
                    offset = -offset
            elif zone:
                offset = _ZONES.get(zone.lower(), 0)
            fields = (int(year), month, int(day), int(hour), int(minute), int(sec or 0))
            return _make_date(fields, offset)
    try:
        parts = parsedate_tz(value)
    except Exception:  # stdlib date parsing can throw on junk
        parts = None
    if parts is not None:
        offset_s = parts[9] or 0
        return _make_date(parts[:6], offset_s // 60)
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


# --------------------------------------------------------------------------- envelope

# Runs on the lower-cased header block (a case-sensitive regex is twice as fast); the
# value is then sliced from the original block by position.
_ENVELOPE_RE = re.compile(
    rb"\n(message-id|subject|from|to|cc|bcc|reply-to|date|in-reply-to|references|"
    rb"list-id|list-unsubscribe|list-unsubscribe-post|content-type)[ \t]*+:"
    rb"([^\n]*+(?:\n[ \t][^\n]*+)*+)"
)
_HEADER_NAMES = {
    name.encode("ascii"): name
    for name in [
        "message-id",
        "subject",
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "date",
        "in-reply-to",
        "references",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "content-type",
    ]
}
_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to"})
_CTYPE_RE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_CTYPE_FAST = re.compile(rb"[ \t]*([A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+)[ \t]*(?:;|$)")
_CHARSET_PARAM = re.compile(rb"charset\s*=\s*\"?([^\s\";]+)", re.I)


def _content_type_of(value: bytes | None, defects: list[str], default: str) -> str:
    if value is None:
        return default
    fast = _CTYPE_FAST.match(value)
    if fast is not None:
        return fast.group(1).decode("ascii").lower()
    text = _header_text(_unfold(value)).split(";", 1)[0].strip().strip('"').lower()
    text = _WHITESPACE.sub("", text)
    if _CTYPE_RE.fullmatch(text):
        return text
    if text:
        defects.append("bad content-type")
    return default


def _envelope_content_type(value: str | None, defects: list[str]) -> str:
    if value is None:
        return "text/plain"
    text = _WHITESPACE.sub("", value.split(";", 1)[0]).strip('"').lower()
    if _CTYPE_RE.fullmatch(text):
        return text
    if text:
        defects.append("bad content-type")
    return "text/plain"


def _empty_envelope(defects: list[str]) -> Envelope:
    return Envelope(
        message_id=None,
        subject="",
        from_=(),
        to=(),
        cc=(),
        bcc=(),
        reply_to=(),
        date=None,
        in_reply_to=(),
        references=(),
        list_id=None,
        list_unsubscribe=None,
        list_unsubscribe_post=None,
        content_type="text/plain",
        defects=tuple(dict.fromkeys(defects)),
    )


def parse_envelope(raw: bytes) -> Envelope:
    """Parse what the message list needs from the header block; never raises."""
    try:
        return _parse_envelope(_prepare(raw))
    except Exception as exc:  # never raise on message content
        return _empty_envelope([f"internal error: {type(exc).__name__}"])


def _envelope_headers(block: bytes) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The envelope headers of a header block as str: first occurrence, or all for addresses.

    A pure-ASCII block (nearly all mail) is decoded once and sliced; otherwise each value
    is decoded on its own, with the body charset as a hint for raw 8-bit bytes.
    """
    singles: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    if block.isascii() and b"\x1b" not in block:  # not raw ISO-2022-JP either
        # One decode, one lower-case copy to match on; values are sliced from the text.
        text = block.decode("ascii")
        for match in _ENVELOPE_RE.finditer(block.lower()):
            name = _HEADER_NAMES[match.group(1)]
            if name in _ADDRESS_HEADERS:
                start, end = match.span(2)
                value = text[start:end]
                if "\n" in value:
                    value = value.replace("\r", "").replace("\n", "")
                lists.setdefault(name, []).append(value.strip())
            elif name not in singles:
                start, end = match.span(2)
                value = text[start:end]
                if "\n" in value:
                    value = value.replace("\r", "").replace("\n", "")
                singles[name] = value.strip()
        return singles, lists
    found = _CHARSET_PARAM.search(block)
    hint = found.group(1).decode("ascii", "replace") if found else None
    for found_bytes in _ENVELOPE_RE.finditer(block.lower()):
        name = _HEADER_NAMES[found_bytes.group(1)]
        is_list = name in _ADDRESS_HEADERS
        if not is_list and name in singles:
            continue
        start, end = found_bytes.span(2)
        value = _value(block[start:end], hint)
        if is_list:
            lists.setdefault(name, []).append(value)
        else:
            singles[name] = value
    return singles, lists


def _parse_envelope(data: bytes) -> Envelope:
    if not data or data.isspace():
        return _empty_envelope(["empty message"])
    block, _body, defects = _split_entity(data, 0, len(data), top=True)
    singles, lists = _envelope_headers(block)
    if not singles and not lists:
        return _empty_envelope(defects)
    get = singles.get

    subject = get("subject", "")
    if "=?" in subject:
        subject = _decode_words(subject)
    if not subject.isprintable():
        subject = _CONTROL.sub(" ", subject)
    subject = " ".join(subject.split())

    message_id: str | None = None
    raw = get("message-id")
    if raw is not None:
        ids = _msg_ids(raw)
        message_id = ids[0] if ids else None

    date: datetime | None = None
    raw = get("date")
    if raw:
        date = _parse_date(raw)
        if date is None:
            defects.append("bad date")

    references: tuple[str, ...] = ()
    raw = get("references")
    if raw is not None:
        references = tuple(dict.fromkeys(_msg_ids(raw)))
    in_reply_to: tuple[str, ...] = ()
    raw = get("in-reply-to")
    if raw is not None:
        in_reply_to = tuple(dict.fromkeys(_msg_ids(raw)))

    list_id: str | None = None
    raw = get("list-id")
    if raw is not None:
        ids = _MSG_ID.findall(raw)
        list_id = (ids[-1].strip() if ids else raw) or None

    unsubscribe: str | None = None
    raw = get("list-unsubscribe")
    if raw is not None:
        unsubscribe = " ".join(raw.split()) or None
    unsubscribe_post: str | None = None
    raw = get("list-unsubscribe-post")
    if raw is not None:
        unsubscribe_post = " ".join(raw.split()) or None

    return Envelope(
        message_id=message_id or None,
        subject=subject,
        from_=_addresses(lists.get("from")),
        to=_addresses(lists.get("to")),
        cc=_addresses(lists.get("cc")),
        bcc=_addresses(lists.get("bcc")),
        reply_to=_addresses(lists.get("reply-to")),
        date=date,
        in_reply_to=in_reply_to,
        references=references,
        list_id=list_id,
        list_unsubscribe=unsubscribe,
        list_unsubscribe_post=unsubscribe_post,
        content_type=_envelope_content_type(get("content-type"), defects),
        defects=tuple(dict.fromkeys(defects)) if defects else (),
    )


# --------------------------------------------------------------------------- MIME tree

_PART_RE = re.compile(  # on the lower-cased block, like _ENVELOPE_RE
    rb"\n(content-type|content-disposition|content-transfer-encoding|content-id)[ \t]*+:"
    rb"([^\n]*+(?:\n[ \t][^\n]*+)*+)"
)
_PARAM_RE = re.compile(r"""([^\s=;"]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"?|([^;]*))""")
_RFC2231_KEY = re.compile(r"(.+?)\*(\d+)?\*?$")
_RFC2231_VALUE = re.compile(r"([^']*)'[^']*'(.*)", re.S)
_GUESS_BOUNDARY = re.compile(rb"(?m)^--([^\s]{1,200}?)[ \t]*\r?$")


def _params(text: str) -> dict[str, str]:
    """Parameters of a Content-Type or Content-Disposition value (RFC 2045 + RFC 2231)."""
    plain: dict[str, str] = {}
    sections: dict[str, list[tuple[int, bool, str]]] = {}
    for match in _PARAM_RE.finditer(text):
        key = match.group(1).lower().lstrip(";")
        quoted = match.group(2)
        if quoted is None:
            value = match.group(3).strip()
        elif "\\" in quoted:
            value = _QUOTED_PAIR.sub(r"\1", quoted).strip()
        else:
            value = quoted.strip()
        ext = _RFC2231_KEY.fullmatch(key) if "*" in key else None
        if ext is not None:
            index = int(ext.group(2)) if ext.group(2) else 0
            encoded = key.endswith("*")
            sections.setdefault(ext.group(1), []).append((index, encoded, value))
        elif key not in plain:
            plain[key] = value
    for name, parts in sections.items():
        parts.sort(key=lambda part: part[0])
        charset = ""
        chunks: list[bytes] = []
        for position, (_index, encoded, section) in enumerate(parts):
            if not encoded:
                chunks.append(section.encode("utf-8", "replace"))
                continue
            head = _RFC2231_VALUE.fullmatch(section) if position == 0 else None
            if head is not None:
                charset = head.group(1)
            chunks.append(unquote_to_bytes(head.group(2) if head is not None else section))
        decoded = _decode_bytes(b"".join(chunks), charset or "utf-8")
        if decoded:
            plain[name] = decoded
    return plain


@dataclass(slots=True, eq=False)
class _Node:
    data: bytes  # the buffer this part lives in (shared, never copied per part)
    body_start: int
    body_end: int
    ctype: str
    params: dict[str, str]
    disposition: str
    dparams: dict[str, str]
    cte: str
    content_id: str | None
    part_id: str = ""
    spans: list[tuple[int, int]] | None = None  # where the parts of a multipart are
    children: list[_Node] | None = None  # the parsed parts (not built for part_bytes)


@dataclass(slots=True)
class _Walk:
    defects: list[str]
    parts: int = 0
    texts: list[tuple[bool, str]] = field(default_factory=list)  # (is_html, text)
    htmls: list[tuple[bool, str]] = field(default_factory=list)  # (is_html, text)
    attachments: list[_Node] = field(default_factory=list)
    embedded: list[_Node] = field(default_factory=list)


def _entity(
    data: bytes,
    span: tuple[int, int],
    *,
    default: str,
    top: bool,
    walk: _Walk,
    depth: int,
    eager: bool = True,
) -> _Node:
    """Parse one entity's headers; for multipart, find its parts and (eager) parse them."""
    start, end = span
    block, body_start, defects = _split_entity(data, start, end, top)
    if defects:
        walk.defects.extend(defects)
    found: dict[bytes, bytes] = {}
    if len(block) > 1:
        for match in _PART_RE.finditer(block.lower()):
            name = match.group(1)
            if name not in found:
                value_start, value_end = match.span(2)
                found[name] = block[value_start:value_end]
    ctype, params = default, {}
    raw = found.get(b"content-type")
    if raw is not None:
        ctype = _content_type_of(raw, walk.defects, default)
        text = _header_text(_unfold(raw))
        if ";" in text:
            params = _params(text.split(";", 1)[1])
    disposition, dparams = "", {}
    raw = found.get(b"content-disposition")
    if raw is not None:
        disposition, _sep, rest = _header_text(_unfold(raw)).partition(";")
        disposition = disposition.strip().strip('"').lower()
        if rest:
            dparams = _params(rest)
    cte = ""
    raw = found.get(b"content-transfer-encoding")
    if raw is not None:
        cte = _header_text(_unfold(raw)).strip("\"' \t").lower()
    cid: str | None = None
    raw = found.get(b"content-id")
    if raw is not None:
        cid = _WHITESPACE.sub("", _header_text(_unfold(raw))).strip("<>") or None
    node = _Node(data, body_start, end, ctype, params, disposition, dparams, cte, cid)
    if ctype.startswith("multipart/"):
        _split_multipart(node, walk, depth)
        if eager and node.spans is not None:
            node.children = [_child(node, index, walk, depth) for index in range(len(node.spans))]
    return node


def _child(node: _Node, index: int, walk: _Walk, depth: int, eager: bool = True) -> _Node:
    default = "message/rfc822" if node.ctype == "multipart/digest" else "text/plain"
    span = (node.spans or [])[index]
    return _entity(
        node.data, span, default=default, top=False, walk=walk, depth=depth + 1, eager=eager
    )


def _split_multipart(node: _Node, walk: _Walk, depth: int) -> None:
    data, start, end = node.data, node.body_start, node.body_end
    boundary = node.params.get("boundary", "")
    if not boundary:
        guess = _GUESS_BOUNDARY.search(data, start, end)
        if guess is None:
            walk.defects.append("multipart without boundary")
            node.ctype = "text/plain"
            return
        walk.defects.append("multipart without boundary, guessed")
        delimiter = b"--" + guess.group(1)
    else:
        delimiter = b"--" + boundary.encode("utf-8", "replace")
    if depth >= _MAX_DEPTH:
        walk.defects.append("nesting too deep")
        node.ctype = "application/octet-stream"
        return
    spans: list[tuple[int, int]] = []
    part_start = -1
    closed = False
    # Delimiters start a line: search for newline + delimiter, so that the (possibly
    # megabytes of) part content is skipped by bytes.find, not looked at in Python.
    needle = b"\n" + delimiter
    if data.startswith(delimiter, start, end):
        pos = start
    else:
        hit = data.find(needle, start, end)
        pos = hit + 1 if hit >= 0 else -1
    while pos >= 0:
        after = pos + len(delimiter)
        closing = data.startswith(b"--", after, end)
        line_end = data.find(b"\n", after, end)
        if line_end < 0:
            line_end = end
        if not data[after + 2 if closing else after : line_end].strip():
            line_start = pos  # the line end before a delimiter belongs to the delimiter
            if pos > start:
                line_start = pos - 1
                if line_start > start and data[line_start - 1] == 13:
                    line_start -= 1
            if part_start >= 0:
                spans.append((part_start, max(line_start, part_start)))
            if closing:
                closed = True
                break
            part_start = min(line_end + 1, end)
        hit = data.find(needle, pos, end)
        pos = hit + 1 if hit >= 0 else -1
    if part_start < 0 and not spans:
        walk.defects.append("boundary not found")
        node.ctype = "text/plain"
        return
    if not closed:
        walk.defects.append("missing closing boundary")
        if part_start >= 0:
            spans.append((part_start, end))
    walk.parts += len(spans)
    if walk.parts > _MAX_PARTS:
        walk.defects.append("too many parts")
        del spans[max(0, len(spans) - (walk.parts - _MAX_PARTS)) :]
    node.spans = spans


def _join(prefix: str, number: int) -> str:
    return f"{prefix}.{number}" if prefix else str(number)


def _number(node: _Node, prefix: str, is_message_root: bool) -> None:
    """Assign IMAP section numbers below ``prefix``."""
    if node.children is None:
        if is_message_root:
            node.part_id = _join(prefix, 1)
        return
    node.part_id = prefix
    for index, child in enumerate(node.children, 1):
        child.part_id = _join(prefix, index)
        if child.children is not None:
            _number(child, child.part_id, is_message_root=False)


def _message(
    data: bytes, span: tuple[int, int], prefix: str, walk: _Walk, *, depth: int, eager: bool = True
) -> _Node:
    top = not prefix
    root = _entity(data, span, default="text/plain", top=top, walk=walk, depth=depth, eager=eager)
    _number(root, prefix, is_message_root=True)
    return root


def _embedded(node: _Node, walk: _Walk, depth: int, eager: bool = True) -> _Node | None:
    """The message inside a message/rfc822 part, numbered below the part."""
    if depth >= _MAX_DEPTH:
        walk.defects.append("nesting too deep")
        return None
    if node.cte in ("", "7bit", "8bit", "binary"):
        data, start, end = node.data, node.body_start, node.body_end
    else:
        data = _prepare(_payload(node, walk.defects))
        start, end = 0, len(data)
    return _message(data, (start, end), node.part_id, walk, depth=depth + 1, eager=eager)


# --------------------------------------------------------------------------- payloads

_UU_BEGIN = re.compile(rb"^begin [0-7]{3,4} ", re.M)


def _uudecode(data: bytes, defects: list[str]) -> bytes:
    out: list[bytes] = []
    started = _UU_BEGIN.search(data) is None
    for line in data.splitlines():
        if not started:
            started = line.startswith(b"begin ")
            continue
        stripped = line.strip()
        if stripped == b"end":
            break
        if not stripped or stripped == b"`":
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            length = (((line[0] - 32) & 63) * 4 + 5) // 3
            try:
                out.append(binascii.a2b_uu(line[:length]))
            except binascii.Error:
                defects.append("bad uuencode")
    return b"".join(out)


def _decode_transfer(body: bytes, cte: str, defects: list[str]) -> bytes:
    if cte in ("", "7bit", "8bit", "binary", "7-bit", "8-bit"):
        return body
    if "base64" in cte:
        return _b64decode(body)
    if "quoted" in cte or cte == "qp":
        return binascii.a2b_qp(body)
    if "uu" in cte:
        return _uudecode(body, defects)
    defects.append(f"unknown transfer encoding {cte[:30]!r}")
    return body


def _payload(node: _Node, defects: list[str]) -> bytes:
    body = node.data[node.body_start : node.body_end]
    return _decode_transfer(body, node.cte, defects)


def _decoded_size(node: _Node, defects: list[str]) -> int:
    data, start, end = node.data, node.body_start, node.body_end
    cte = node.cte
    if cte in ("", "7bit", "8bit", "binary", "7-bit", "8-bit"):
        return end - start
    if "base64" in cte:
        # 4 characters make 3 bytes: the size follows from the number of base64
        # characters, without decoding (or even counting through) megabytes.
        tail = data[max(start, end - 64) : end]
        trimmed = len(tail.rstrip())
        end -= len(tail) - trimmed
        padding = (
            2 if data.endswith(b"==", start, end) else 1 if data.endswith(b"=", start, end) else 0
        )
        chars = _base64_chars(data, start, end)
        if chars >= 0:
            return max(chars * 3 // 4 - padding, 0)
    return len(_payload(node, defects))


_BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _base64_chars(data: bytes, start: int, end: int) -> int:
    """Base64 characters in ``data[start:end]`` (which ends in a non-space), or -1.

    Encoders write lines of one fixed width, so the count follows from the first line's
    width and the total length; a few line ends are checked to confirm the layout. For
    anything irregular (rare, and usually damaged) this returns -1 and the caller decodes.
    """
    if start < end and data[end - 1] not in _BASE64_ALPHABET:
        return -1
    newline = data.find(b"\n", start, end)
    if newline < 0:
        return -1 if data.find(b" ", start, end) >= 0 else end - start
    eol = 2 if newline > start and data[newline - 1] == 13 else 1
    period = newline + 1 - start  # one line including its line end
    width = period - eol
    if width > 0:
        lines, rest = divmod(end - start, period)
        probes = {1, lines // 2, lines} - {0}
        regular = rest <= width and data.find(b"\n", start + lines * period, end) < 0
        regular = regular and all(
            data[start + k * period - eol : start + k * period]
            == data[newline + 1 - eol : newline + 1]
            for k in probes
        )
        if regular and data.find(b" ", start, min(end, start + 4 * period)) < 0:
            return lines * width + rest
    return -1


_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_ENRICHED_TAG = re.compile(r"<(/?)([A-Za-z0-9-]{1,30})>")
_UU_BLOCK = re.compile(r"^begin [0-7]{3,4} ([^\n]*)\n.*?^end[ \t]*$", re.M | re.S)


def _part_text(node: _Node, defects: list[str]) -> str:
    data = _payload(node, defects)
    if len(data) > MAX_TEXT_CHARS * 4 and node.ctype != "text/html":
        cut = data.rfind(b"\n", 0, MAX_TEXT_CHARS * 4)
        data = data[: cut if cut > 0 else MAX_TEXT_CHARS * 4]
    charset = node.params.get("charset")
    if not charset and node.ctype == "text/html":
        meta = _META_CHARSET.search(data, 0, 4096)
        if meta is not None:
            charset = meta.group(1).decode("ascii")
    text = _decode_bytes(data, charset, defects)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
    if node.ctype in ("text/enriched", "text/richtext"):
        text = _ENRICHED_TAG.sub("", text).replace("<<", "<")
    elif node.ctype == "text/plain" and ("\nbegin " in text or text.startswith("begin ")):
        text = _UU_BLOCK.sub(lambda m: f"[uuencoded file: {m.group(1).strip()}]", text)
    return text


# --------------------------------------------------------------------------- body choice

_BODY_TYPES = frozenset({"text/plain", "text/html", "text/enriched", "text/richtext"})


def _filename(node: _Node) -> str:
    return node.dparams.get("filename") or node.params.get("name") or ""


def _is_body(node: _Node) -> bool:
    # Like the stdlib and Thunderbird: a text part is body unless it says "attachment",
    # even when it carries a name (old mailers name every part).
    return node.ctype in _BODY_TYPES and node.disposition != "attachment"


def _kind(node: _Node) -> str:
    """'html', 'plain' or 'other': what a branch of multipart/alternative offers."""
    if node.children is None:
        if not _is_body(node):
            return "other"
        return "html" if node.ctype == "text/html" else "plain"
    if node.ctype == "multipart/related" and node.children:
        return _kind(_related_root(node))
    kinds = {_kind(child) for child in node.children}
    if "html" in kinds:
        return "html"
    return "plain" if "plain" in kinds else "other"


def _related_root(node: _Node) -> _Node:
    """The root of multipart/related: the ``start`` part, else the first of ``type``."""
    children = node.children or []
    start = node.params.get("start", "").strip().strip("<>")
    if start:
        for child in children:
            if child.content_id == start:
                return child
    wanted = node.params.get("type", "").strip().lower()
    if wanted and children[0].ctype != wanted:
        for child in children:
            if child.ctype == wanted:
                return child
    return children[0]


def _blank(text: str) -> bool:
    return not text or text.isspace()  # without copying megabytes, unlike strip()


def _walk(node: _Node, want_text: bool, want_html: bool, walk: _Walk) -> None:
    children = node.children
    if children is None:
        _leaf(node, want_text, want_html, walk)
        return
    subtype = node.ctype.partition("/")[2]
    if not children:
        return
    if subtype == "alternative" and (want_text or want_html):
        _alternative(children, want_text, want_html, walk)
    elif subtype == "related" and (want_text or want_html):
        root = _related_root(node)
        _walk(root, want_text, want_html, walk)
        for child in children:
            if child is not root:
                _walk(child, False, False, walk)
    elif subtype == "signed":
        _walk(children[0], want_text, want_html, walk)
        for child in children[1:]:
            _walk(child, False, False, walk)
    elif subtype == "encrypted":
        for child in children:
            _walk(child, False, False, walk)
    else:
        for child in children:
            _walk(child, want_text, want_html, walk)


def _alternative(children: list[_Node], want_text: bool, want_html: bool, walk: _Walk) -> None:
    kinds = [_kind(child) for child in children]
    # The last alternative of a kind is the sender's preferred one (RFC 2046, 5.1.4).
    chosen = dict(zip(kinds, children, strict=True))
    plain, html = chosen.get("plain"), chosen.get("html")
    for child, kind in zip(children, kinds, strict=True):
        if kind == "other":
            _walk(child, False, False, walk)
    if plain is None or html is None:
        only = plain if plain is not None else html
        if only is not None:
            _walk(only, want_text, want_html, walk)
        return
    mark = len(walk.texts)
    _walk(plain, want_text, False, walk)
    blank = all(_blank(text) for _is_html, text in walk.texts[mark:])
    if blank:
        del walk.texts[mark:]
    _walk(html, want_text and blank, want_html, walk)


def _leaf(node: _Node, want_text: bool, want_html: bool, walk: _Walk) -> None:
    if node.ctype in ("message/rfc822", "message/global"):
        walk.embedded.append(node)
        walk.attachments.append(node)
        return
    if not (want_text or want_html) or not _is_body(node):
        walk.attachments.append(node)
        return
    text = _part_text(node, walk.defects)
    is_html = node.ctype == "text/html"
    if want_text:
        walk.texts.append((is_html, text))
    if want_html:
        walk.htmls.append((is_html, text))


# --------------------------------------------------------------------------- snippet

_WROTE = re.compile(
    r"\b(?:wrote|writes|schrieb|a écrit|escribió|ha scritto|scrisse|schreef|skrev|"
    r"napisał|kirjoitti|написал|написала|napsal|írta|yazdı|escreveu)\b",
    re.I,
)
_ATTRIBUTION_START = ("on ", "le ", "am ", "el ", "il ", "op ", "den ", "w dniu ", "em ")
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|"
    r"mensaje original|messaggio originale)\s*-{2,}",
    re.I,
)
_SEPARATOR = re.compile(r"[-_=*~]{20,}")  # list footers, Outlook's reply separator
_FORWARD_LINE = re.compile(r"-{2,}\s*forwarded message\s*-{2,}|begin forwarded message:", re.I)


def _is_attribution(line: str) -> bool:
    return line.endswith(":") and _WROTE.search(line) is not None


def _snippet(text: str) -> str:
    """About 200 characters of what the sender wrote: no quotes, attributions, signature."""
    snippet = _snippet_of(text[:4_000])
    if len(snippet) < SNIPPET_CHARS and len(text) > 4_000:  # a long quote came first
        snippet = _snippet_of(text[:50_000])
    if not snippet:  # nothing but quotes: better the quote than nothing
        snippet = " ".join(text[:2_000].replace(">", " ").split())
    if len(snippet) > SNIPPET_CHARS:
        cut = snippet.rfind(" ", SNIPPET_CHARS * 3 // 4, SNIPPET_CHARS)
        snippet = snippet[: cut if cut > 0 else SNIPPET_CHARS].rstrip()
    return snippet


def _snippet_of(text: str) -> str:
    lines = text.split("\n")
    picked: list[str] = []
    total = 0
    skip_next = False
    for index, raw_line in enumerate(lines):
        line = raw_line.strip()
        if skip_next:
            skip_next = False
            continue
        if not line or line[0] == ">" or _is_attribution(line):
            continue
        if line[0] in "-_=*~bB":  # cheap test before the separator regexes
            if raw_line.rstrip() == "--" or _ORIGINAL_MESSAGE.match(line):
                break  # signature, or the quoted original below an Outlook reply
            if _FORWARD_LINE.match(line):
                continue
            if _SEPARATOR.fullmatch(line):
                if picked:
                    break
                continue
        if line.lower().startswith(_ATTRIBUTION_START) and index + 1 < len(lines):
            following = lines[index + 1].strip()  # 'On Mon, 1 Jan, Jane Doe <\njane@x> wrote:'
            if not following.startswith(">") and _is_attribution(f"{line} {following}"):
                skip_next = True
                continue
        picked.append(line)
        total += len(line) + 1
        if total > SNIPPET_CHARS:
            break
    return " ".join(" ".join(picked).split())


# --------------------------------------------------------------------------- content

_CID_REF = re.compile(r"""cid:([^\s"'<>)]+)""", re.I)


def extract_content(raw: bytes) -> Content:
    """Extract body text, HTML, snippet and attachments; never raises."""
    try:
        return _extract(_prepare(raw))
    except Exception as exc:  # never raise on message content
        return Content(
            text="",
            html=None,
            snippet="",
            attachments=(),
            defects=(f"internal error: {type(exc).__name__}",),
        )


def _extract(data: bytes) -> Content:
    walk = _Walk(defects=["empty message"] if not data or data.isspace() else [])
    root = _message(data, (0, len(data)), "", walk, depth=0)
    _walk(root, True, True, walk)
    texts, embedded, level = walk.texts, walk.embedded, 0
    while embedded and level < 8 and all(_blank(text) for _is_html, text in texts):
        # No text of its own (a bare forward, a digest): show the first attached message's.
        level += 1
        inner_walk = _Walk(defects=walk.defects)
        inner = _embedded(embedded[0], inner_walk, level)
        if inner is None:
            break
        _walk(inner, True, False, inner_walk)
        texts, embedded = inner_walk.texts, inner_walk.embedded

    html: str | None = None
    if any(is_html for is_html, _text in walk.htmls):
        html = "\n".join(
            text if is_html else f'<pre style="white-space:pre-wrap">{_html_escape(text)}</pre>'
            for is_html, text in walk.htmls
        )
    pieces = [
        html_to_text(text[:_MAX_HTML_CHARS]) if is_html else text.strip("\n")
        for is_html, text in texts
    ]
    body = "\n\n".join(piece for piece in pieces if not _blank(piece))
    if len(body) > MAX_TEXT_CHARS:
        body = body[:MAX_TEXT_CHARS]

    referenced: set[str] = set()
    if html is not None and ("cid:" in html or "CID:" in html or "Cid:" in html):
        referenced = {unquote(cid).strip("<>") for cid in _CID_REF.findall(html)}
    attachments = tuple(
        Attachment(
            part_id=node.part_id,
            filename=sanitize_filename(_filename(node)),
            content_type=node.ctype,
            size=_decoded_size(node, walk.defects),
            content_id=node.content_id,
            inline=node.disposition == "inline" or (node.content_id or "\0") in referenced,
        )
        for node in walk.attachments
    )
    return Content(
        text=body,
        html=html,
        snippet=_snippet(body),
        attachments=attachments,
        defects=tuple(dict.fromkeys(walk.defects)),
    )


_PART_ID = re.compile(r"[1-9][0-9]{0,5}(?:\.[1-9][0-9]{0,5})*")


def part_bytes(raw: bytes, part_id: str) -> bytes | None:
    """Decoded payload of one part by IMAP section number; None if there is no such part.

    For a ``message/rfc822`` part this is the embedded message, for a multipart part its
    raw body. Transfer encodings are undone; charsets are not.
    """
    try:
        if not _PART_ID.fullmatch(part_id):
            return None
        data = _prepare(raw)
        walk = _Walk(defects=[])
        # Only the entities on the path to the part are parsed, so saving every
        # attachment of a message with hundreds of parts stays linear.
        node: _Node | None = _message(data, (0, len(data)), "", walk, depth=0, eager=False)
        is_message_root = True
        for depth, number in enumerate(int(number) for number in part_id.split(".")):
            if node is None:
                return None
            if depth and node.ctype in ("message/rfc822", "message/global"):
                node = _embedded(node, walk, depth, eager=False)
                is_message_root = True
                if node is None:
                    return None
            if node.spans is None:
                if not is_message_root or number != 1:
                    return None
            elif number > len(node.spans):
                return None
            else:
                node = _child(node, number - 1, walk, depth, eager=False)
            is_message_root = False
        return None if node is None else _payload(node, walk.defects)
    except Exception:  # never raise on message content
        return None


# --------------------------------------------------------------------------- filenames

_FILENAME_2231 = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.:-]*)'[A-Za-z0-9-]*'(.*)", re.S)
_SEPARATORS = re.compile(r"[/\\]")
_WINDOWS_CHARS = re.compile(r'[<>:"|?*]')
# Controls, bidi overrides (which make "exe.pdf" out of "fdp.exe") and BOMs go; line and
# paragraph separators become spaces.
_UNSAFE_CHARS: dict[int, str | None] = dict.fromkeys(
    (*range(0x20), *range(0x7F, 0xA0), 0x200E, 0x200F, *range(0x202A, 0x202F)),
)
_UNSAFE_CHARS.update(dict.fromkeys((*range(0x2066, 0x206A), 0xFEFF)))
_UNSAFE_CHARS.update({0x2028: " ", 0x2029: " "})
_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in "123456789¹²³"}
    | {f"LPT{i}" for i in "123456789¹²³"}
)
_MAX_FILENAME_BYTES = 200


def sanitize_filename(name: str) -> str:
    """A safe single file name: decoded, no paths, no controls, Windows-safe, <= 200 bytes.

    Returns ``''`` when nothing usable is left (the caller picks a default name).
    """
    try:
        return _sanitize_filename(name)
    except Exception:  # never raise on message content
        return ""


def _sanitize_filename(name: str) -> str:
    if not name:
        return ""
    text = decode_header_value(name)
    ext = _FILENAME_2231.fullmatch(text)
    if ext is not None and _codec(ext.group(1)) is not None:
        text = _decode_bytes(unquote_to_bytes(ext.group(2)), ext.group(1))
    text = unicodedata.normalize("NFC", text).translate(_UNSAFE_CHARS)
    components = [part for part in _SEPARATORS.split(text) if part.strip(" .")]
    text = components[-1] if components else ""
    text = _WINDOWS_CHARS.sub("_", text)
    text = _WHITESPACE.sub(" ", text).strip(" .")
    if not text:
        return ""
    if text.split(".", 1)[0].strip().upper() in _RESERVED_NAMES:
        text = "_" + text
    encoded = text.encode("utf-8")
    if len(encoded) > _MAX_FILENAME_BYTES:
        stem, dot, suffix = text.rpartition(".")
        suffix_bytes = len(suffix.encode("utf-8")) + 1
        if dot and stem and suffix_bytes <= 32:
            room = _MAX_FILENAME_BYTES - suffix_bytes
            stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .")
            text = f"{stem}.{suffix}" if stem else suffix
        else:
            text = encoded[:_MAX_FILENAME_BYTES].decode("utf-8", "ignore").rstrip(" .")
    return text


# --------------------------------------------------------------------------- subjects

_SUBJECT_PREFIX = re.compile(
    r"\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|antwort|tr|rif|odp|vl|ynt|res|enc|rv|vb|"
    r"回复|回覆|答复|答覆|转发|轉寄|转寄)\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]"
    r"|\[[^\]]*\])\s*",
    re.I,
)
_FWD_SUFFIX = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.I)


def normalize_subject(subject: str) -> str:
    """Subject key for threading: reply/forward prefixes and list tags stripped, casefolded."""
    try:
        text = _WHITESPACE.sub(" ", subject).strip()
        while True:
            match = _SUBJECT_PREFIX.match(text)
            if match is None or not match.end():
                break
            text = text[match.end() :]
        text = _FWD_SUFFIX.sub("", text)
        return text.strip().casefold()
    except Exception:  # never raise on message content
        return subject.casefold()
