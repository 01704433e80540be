"""Building outgoing mail: drafts in, RFC 5322 bytes out; replies and forwards.

Everything here is pure (str/bytes in, bytes out; no database, no network, no clock
unless the caller leaves ``now`` out), so the compose window, the outbox and the tests
all get the same bytes from the same draft.

Why it is shaped this way:

* Two halves. *Reading* mail is ``storage.mime``'s job: ``reply`` and ``forward`` take
  the original's raw bytes and use ``parse_envelope``, ``extract_content`` and
  ``part_bytes`` for every fact about it, so a reply quotes exactly the text the reader
  showed. *Writing* mail is what the standard library's ``email`` package is good at:
  ``build`` assembles a ``MIMEPart`` tree and lets the ``SMTP`` policy fold headers,
  RFC 2231-encode non-ASCII file names, choose boundaries, quoted-printable and base64
  (with the exceptions below).
* ``build`` returns a ``Built``: the bytes (CRLF, ready for SMTP ``DATA`` and for
  ``APPEND`` to Sent, which must be the same bytes), the Message-ID the outbox uses to
  recognise a message already sent, and the SMTP envelope (``MAIL FROM`` is the
  identity's address; ``RCPT TO`` is To + Cc + Bcc, de-duplicated case-insensitively
  in order). Bcc never appears in the headers: the envelope is the only place it lives.
* Recipients typed by a user are validated strictly, unlike addresses in received
  mail (which ``storage.mime`` reads leniently because it must never fail):
  ``'bob@'`` is a ``ComposeError`` naming the bad entry, not a silently dropped
  recipient. Lists may be separated by commas or semicolons; ``Name <addr>``,
  ``"Last, First" <addr>``, ``addr (Name)`` and a pasted ``mailto:`` are understood.
  Internationalised domains are sent as IDNA A-labels (``xn--...``) so the message
  stays ASCII; only a non-ASCII *local part* (or a domain with IDNA 2003/2008
  deviation characters such as ``ß``, which the stdlib codec would map to another
  domain) needs SMTPUTF8, and then the message is written with the ``SMTPUTF8``
  policy (raw UTF-8 addresses; names and subject are still RFC 2047 words, which
  RFC 6532 allows) and ``Built.smtputf8`` tells the sender to ask for it.
* Message-IDs are ``<YYYYMMDD.HHMMSS.{16 hex digits}@{account's domain}>`` (UTC time,
  64 random bits from ``secrets``): unique without any state, and on the account's
  own domain as RFC 5322 asks. ``build(message_id=...)`` keeps a known id for a resend.
* Bodies are always 7-bit clean: short ASCII lines go as ``7bit``; anything else as
  quoted-printable, or base64 when more than a sixth of the bytes are non-ASCII (CJK,
  Cyrillic), which is the smaller of the two. So no line exceeds 998 octets (a
  5,000-character line becomes soft-broken QP) and nothing needs 8BITMIME, except an
  attached original message with 8-bit bytes: ``message/rfc822`` may only be
  7bit/8bit (RFC 2046 5.2.1) and re-encoding it would alter the original (and break
  its signatures), so it travels verbatim with ``8bit`` and ``Built.eight_bit_mime``
  is set (as it is for SMTPUTF8). The stdlib writes such a body as strict ASCII, so
  ``_Generator`` lets surrogate-escaped bytes through. An original that cannot travel
  verbatim (a line over 998 octets, NUL bytes) is attached as
  ``application/octet-stream`` instead, still byte-exact.
* Three things the 3.11 policy gets wrong are done by hand, still with the ``email``
  package, and written with ``set_raw`` (the policy has ``refold_source='none'`` so it
  leaves such values alone). (1) When it folds between two RFC 2047 words it puts the
  space at the fold, where RFC 2047 6.2 says readers drop it: "Ünï Bär" can come back
  as "ÜnïBär" (found by the property test). So subjects, display names and other
  free-text headers that need encoding (non-ASCII, a word over 70 characters, or
  ``=?``) are encoded with ``email.header.Header``, which keeps the spaces inside the
  words. (2) It decodes anything that *looks* like an encoded word when a value is
  stored, which is why a literal ``=?...?=`` typed by the user is always encoded.
  (3) It folds a long token (an Outlook Message-ID is ~90 characters) into encoded
  words, which corrupts ``References``; message ids are written pre-folded between
  ids. Address headers whose names are plain short ASCII, dates and MIME parameters
  go through the policy. File names are left to it too: every reader, ours included,
  decodes RFC 2047 in file names anyway.
* Subjects and display names are single-line fields: control characters become
  spaces and runs of whitespace collapse to one, which is also what the reader shows.
* ``reply``: To is Reply-To, else From; when the original is the user's own (From is
  the identity or an alias, no Reply-To) the reply goes to the original's To, as mail
  clients do; the user is left out of To unless nobody else is there (a note to self).
  Reply-all adds the original To (to To) and Cc (to Cc), minus the user's addresses
  (identity and aliases, case-insensitive, also in IDNA form) and duplicates. The
  subject gets one ``Re:``: a leading run of reply prefixes in any of the usual
  languages (``RE: AW: Re[2]:``) collapses into a single ``Re:``, and a subject that
  is already a reply behind a list tag (``[list] Re: x``) is kept.
  ``normalize_subject`` cannot decide this on its own because it also strips ``Fwd:``
  and list tags, which a reply keeps; the tests check that a reply always threads
  under the same ``normalize_subject`` key. References
  follow RFC 5322 3.6.4 (the parent's References, else its single In-Reply-To, then its
  Message-ID), trimmed to the first id plus the last 19. The attribution shows the date
  in the sender's own zone (the offset comes from the original's ``Date`` header), and
  the quote prefixes ``> `` (``>`` before an empty or already quoted line). An HTML
  reply quotes the original's *text*, escaped in a ``<blockquote>``: the original's
  HTML may be a whole document with styles and remote images, and the quote is
  meant to be read, not re-rendered.
* ``forward``: inline, the text plus a ``---------- Forwarded message ----------``
  block and the original's attachments (decoded with ``part_bytes``, so they are
  re-encoded cleanly, inline images included because the forward is plain text and
  would otherwise lose them); as an attachment, the original bytes as
  ``message/rfc822`` named after its subject. A subject that already starts with a
  forward prefix gets no second ``Fwd:``.
* Errors are ``ComposeError`` (a ``TidingsError``, so the CLI shows it as a known
  error) with a one-line message the compose window can show as it is. It is defined
  here because this module owns it; ``app/errors.py``'s tree should list it.
  ``load_attachment`` turns a file into an ``AttachmentSpec`` and an ``OSError`` into
  "cannot read attachment report.pdf: permission denied".
"""

from __future__ import annotations

import contextlib
import ipaddress
import mimetypes
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import policy as email_policy
from email.generator import BytesGenerator
from email.header import Header
from email.headerregistry import Address as HeaderAddress
from email.message import MIMEPart
from email.parser import BytesHeaderParser
from email.utils import format_datetime, parsedate_tz
from html import escape
from io import BytesIO
from os import PathLike
from pathlib import Path

from app.errors import TidingsError
from storage.mime import (
    Address,
    decode_header_value,
    extract_content,
    html_to_text,
    parse_envelope,
    part_bytes,
    sanitize_filename,
)

__all__ = [
    "AttachmentSpec",
    "Built",
    "ComposeError",
    "Draft",
    "Identity",
    "build",
    "forward",
    "load_attachment",
    "parse_recipients",
    "reply",
]

MAX_LINE_OCTETS = 998  # RFC 5322 2.1.1, without the CRLF
MAX_REFERENCES = 20
FORWARD_SEPARATOR = "---------- Forwarded message ----------"

# The stdlib's SMTP policies, told to leave values we folded ourselves (set_raw) alone.
_POLICY = email_policy.SMTP.clone(refold_source="none")
_POLICY_UTF8 = email_policy.SMTPUTF8.clone(refold_source="none")


class ComposeError(TidingsError):
    """A draft that cannot become a message; ``str(exc)`` is a one-line user message."""


class _Generator(BytesGenerator):
    """``BytesGenerator`` that can write an 8-bit ``message/rfc822`` body verbatim.

    The stdlib emits a string payload of a message/rfc822 part as it is (that is how we
    attach an original byte for byte), but encodes it as strict ASCII; 8-bit bytes held
    as surrogates (``surrogateescape``) must go out as the bytes they stand for.
    """

    def _encode(self, s: str) -> bytes:
        return s.encode("ascii", "surrogateescape")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Identity:
    """Who sends: the account's address, its display name and the user's other addresses."""

    address: str
    name: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachmentSpec:
    """One file to attach. ``content_type`` may carry parameters ('text/plain; charset=...')."""

    filename: str
    data: bytes
    content_type: str | None = None  # guessed from the name when None


@dataclass(frozen=True)
class Draft:
    """What the user wrote. Addresses are 'Name <addr>' or 'addr' (lists allowed)."""

    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None  # with html, the message is multipart/alternative
    attachments: tuple[AttachmentSpec, ...] = ()
    in_reply_to: str | None = None  # msg-id without <>
    references: tuple[str, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Built:
    """A message ready to send and to append to Sent."""

    raw: bytes  # CRLF line ends, no line over 998 octets
    message_id: str  # without <>
    sender: str  # SMTP MAIL FROM
    recipients: tuple[str, ...]  # SMTP RCPT TO: To + Cc + Bcc, de-duplicated, in order
    smtputf8: bool  # an address needs SMTPUTF8 (non-ASCII local part)
    eight_bit_mime: bool = False  # 8-bit data (UTF-8 headers, an 8-bit attached message):
    # send with BODY=8BITMIME


# --------------------------------------------------------------------------- addresses


@dataclass(frozen=True, slots=True)
class _Mailbox:
    name: str  # display name, cleaned; '' if none
    local: str  # local part as written (a quoted local part keeps its quotes)
    domain: str  # IDNA A-labels where possible

    @property
    def addr(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def utf8(self) -> bool:
        return not (self.local.isascii() and self.domain.isascii())


_CONTROL = re.compile("[\x00-\x1f\x7f]")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f\s]"  # RFC 6532 allows UTF-8
_DOT_ATOM = re.compile(rf"(?:{_ATEXT})+(?:\.(?:{_ATEXT})+)*")
_QUOTED_LOCAL = re.compile(r'"(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*"')
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_U_CHAR = r"[^\s.@<>()\[\]\\,;:\"\x00-\x1f\x7f_-]"  # a label character other than '-'
_U_LABEL = re.compile(rf"{_U_CHAR}(?:(?:{_U_CHAR}|-)*{_U_CHAR})?")
_IDNA_DEVIATIONS = frozenset("ßς\u200c\u200d")  # IDNA 2003 maps them away, 2008 keeps them
_NAME_SPECIALS = frozenset('()<>[]:;@\\,."')
_MAX_ADDRESS_OCTETS = 254


def _clean_line(text: str) -> str:
    """A single-line field: controls become spaces, whitespace runs collapse."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _normalize_domain(domain: str) -> str | None:
    """The domain as it goes on the wire (A-labels), or None when it is not one."""
    if domain.startswith("["):
        inner = domain[1:-1] if domain.endswith("]") else ""
        try:
            if inner[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(inner[5:])
            else:
                ipaddress.IPv4Address(inner)
        except ValueError:
            return None
        return domain
    labels = domain.split(".")
    if domain.isascii():
        return domain if all(_LABEL.fullmatch(label) for label in labels) else None
    if not all(_U_LABEL.fullmatch(label) for label in labels):
        return None
    if _IDNA_DEVIATIONS.intersection(domain):
        return domain  # sent as UTF-8 (SMTPUTF8) rather than as a different domain
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    ascii_labels = ascii_domain.split(".")
    return ascii_domain if all(_LABEL.fullmatch(label) for label in ascii_labels) else None


def _mailbox(name: str, addr: str, shown: str) -> _Mailbox:
    """Validate an addr-spec; ``shown`` is what the error message quotes."""
    addr = addr.strip()
    if addr[:7].lower() == "mailto:":
        addr = addr[7:]
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise ComposeError(f"not an email address: {shown!r}")
    if not (_DOT_ATOM.fullmatch(local) or _QUOTED_LOCAL.fullmatch(local)):
        raise ComposeError(f"not an email address: {shown!r}")
    wire_domain = _normalize_domain(domain)
    if wire_domain is None:
        raise ComposeError(f"not an email address: {shown!r}")
    box = _Mailbox(name=_clean_line(name), local=local, domain=wire_domain)
    if len(box.addr.encode("utf-8")) > _MAX_ADDRESS_OCTETS:
        raise ComposeError(f"email address too long: {shown!r}")
    return box


def _split_list(value: str) -> list[str]:
    """Split an address list on top-level commas and semicolons."""
    items: list[str] = []
    start = 0
    quoted = escaped = False
    angle = comment = 0
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "<":
            angle += 1
        elif char == ">":
            angle = max(angle - 1, 0)
        elif char == "(":
            comment += 1
        elif char == ")":
            comment = max(comment - 1, 0)
        elif char in ",;" and not angle and not comment:
            items.append(value[start:index])
            start = index + 1
    items.append(value[start:])
    return [item.strip() for item in items if item.strip()]


def _top_level_angle(text: str) -> int:
    """Index of the first '<' outside a quoted string, or -1."""
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "<" and not quoted:
            return index
    return -1


_PHRASE_PART = re.compile(r'"((?:[^"\\]|\\.)*)"|([^"]+)|(")', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_TRAILING_COMMENT = re.compile(r"(.*?)\s*\(([^()]*)\)", re.S)


def _phrase_to_name(phrase: str) -> str:
    """A display name as typed: quoted parts unescaped, RFC 2047 words outside quotes decoded."""
    out: list[str] = []
    for match in _PHRASE_PART.finditer(phrase):
        if match.group(1) is not None:
            out.append(_QUOTED_PAIR.sub(r"\1", match.group(1)))
        elif match.group(2) is not None:
            out.append(decode_header_value(match.group(2)))
        else:
            out.append('"')
    return "".join(out)


def _parse_item(item: str) -> _Mailbox:
    angle = _top_level_angle(item)
    if angle >= 0:
        close = item.find(">", angle)
        if close < 0 or item[close + 1 :].strip():
            raise ComposeError(f"not an email address: {item!r}")
        return _mailbox(_phrase_to_name(item[:angle].strip()), item[angle + 1 : close], item)
    comment = _TRAILING_COMMENT.fullmatch(item)
    if comment is not None:  # 'bob@example.com (Bob)'
        return _mailbox(comment.group(2), comment.group(1), item)
    return _mailbox("", item, item)


def _parse_mailboxes(values: Iterable[str]) -> list[_Mailbox]:
    if isinstance(values, str):  # a bare str is one list, not an iterable of characters
        values = (values,)
    boxes: list[_Mailbox] = []
    for value in values:
        for item in _split_list(_CONTROL.sub(" ", value)):
            boxes.append(_parse_item(item))
    return boxes


def _format_mailbox(name: str, addr: str) -> str:
    """'Name <addr>' (quoted when needed, so parse_recipients reads it back), or 'addr'."""
    if not name:
        return addr
    if _NAME_SPECIALS.intersection(name) or "=?" in name or name != name.strip():
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def parse_recipients(values: Iterable[str]) -> tuple[str, ...]:
    """Validate recipient fields; one normalised 'Name <addr>' or 'addr' per mailbox.

    Each value may hold a comma- or semicolon-separated list. Raises ``ComposeError``
    naming the first entry that is not an email address.
    """
    return tuple(_format_mailbox(box.name, box.addr) for box in _parse_mailboxes(values))


def _dedupe(addrs: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for addr in addrs:
        seen.setdefault(addr.casefold(), addr)
    return tuple(seen.values())


# --------------------------------------------------------------------------- headers

_MSG_ID = re.compile(r"[!-;=?-~]{1,900}")  # printable ASCII without '<', '>' and spaces
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
        "return-path",
    }
)
_ADDRESS_EXTRA = frozenset({"reply-to", "mail-followup-to", "mail-reply-to"})


def _msg_id(value: str, what: str) -> str:
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not _MSG_ID.fullmatch(text):
        raise ComposeError(f"not a message id in {what}: {value!r}")
    return text


def _fold_ids(ids: Sequence[str]) -> str:
    """Message ids as a raw header value, folded between ids (never inside one)."""
    lines: list[str] = []
    line = ""
    for token in (f"<{mid}>" for mid in ids):
        if line and len(line) + 1 + len(token) > 76:
            lines.append(line)
            line = token
        else:
            line = f"{line} {token}" if line else token
    lines.append(line)
    return "\r\n ".join(lines)


def _needs_words(text: str) -> bool:
    """Whether a subject or display name must be RFC 2047-encoded (by us, see above)."""
    return not text.isascii() or "=?" in text or any(len(word) > 70 for word in text.split())


def _encoded_words(text: str, header_name: str | None = None) -> str:
    """RFC 2047 words, folded; whitespace stays inside the words, so none is lost."""
    return Header(text, "utf-8", header_name=header_name).encode(linesep="\r\n")


def _set_text_header(msg: MIMEPart, header: str, text: str) -> None:
    if _needs_words(text):
        msg.set_raw(header, _encoded_words(text, header))
    else:
        msg[header] = text


def _set_addresses(msg: MIMEPart, header: str, boxes: Sequence[_Mailbox]) -> None:
    if not any(_needs_words(box.name) for box in boxes):
        msg[header] = [
            HeaderAddress(box.name, username=_unquote_local(box.local), domain=box.domain)
            for box in boxes
        ]
        return
    items: list[str] = []
    for index, box in enumerate(boxes):
        if not box.name:
            items.append(box.addr)
        elif _needs_words(box.name):
            first = index == 0
            words = _encoded_words(box.name, header if first else None)
            last_line = words.rsplit("\r\n", 1)[-1]
            used = len(last_line) + (len(header) + 2 if first and last_line == words else 1)
            glue = " " if used + len(box.addr) + 3 <= 78 else "\r\n "
            items.append(f"{words}{glue}<{box.addr}>")
        else:
            items.append(_format_mailbox(box.name, box.addr))
    msg.set_raw(header, ",\r\n ".join(items))


def _unquote_local(local: str) -> str:
    if len(local) >= 2 and local[0] == local[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", local[1:-1])
    return local


# --------------------------------------------------------------------------- bodies


def _normalize_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a broken source
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


_ODD_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")  # legal in 7bit, but asking for trouble


def _text_cte(text: str) -> str:
    """7bit for short ASCII lines, else the smaller of quoted-printable and base64."""
    data = text.encode("utf-8")
    if (
        data.isascii()
        and not _ODD_CONTROL.search(text)
        and all(len(line) <= 78 for line in data.split(b"\n"))
    ):
        return "7bit"
    non_ascii = len(data) - len(text.encode("ascii", "ignore"))
    return "base64" if non_ascii * 6 > len(data) else "quoted-printable"


def _set_text(part: MIMEPart, text: str, subtype: str) -> None:
    part.set_content(text, subtype=subtype, charset="utf-8", cte=_text_cte(text))


# --------------------------------------------------------------------------- attachments

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")
_COMPRESSED = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_PATH_SEPARATORS = re.compile(r"[/\\]")


def _guess_type(filename: str) -> str:
    ctype, encoding = mimetypes.guess_type(filename, strict=False)
    if encoding is not None:  # 'x.tar.gz' is a gzip file, not a tar file
        return _COMPRESSED.get(encoding, "application/octet-stream")
    return ctype or "application/octet-stream"


def _attachment_name(filename: str) -> str:
    parts = [part for part in _PATH_SEPARATORS.split(filename) if part.strip()]
    name = " ".join(_CONTROL.sub(" ", parts[-1]).split()) if parts else ""
    if not name:
        raise ComposeError("attachment without a name")
    return name


def _content_type(spec: AttachmentSpec, name: str) -> tuple[str, str, dict[str, str]]:
    raw = spec.content_type.strip() if spec.content_type else _guess_type(name)
    header = email_policy.default.header_factory("content-type", raw)
    media = raw.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.fullmatch(media) or media.startswith("multipart/"):
        raise ComposeError(f"bad content type for attachment {name}: {raw!r}")
    maintype, _slash, subtype = media.partition("/")
    params = dict(getattr(header, "params", {}))
    params.pop("name", None)
    return maintype, subtype, params


def _add_attachment(msg: MIMEPart, spec: AttachmentSpec) -> bool:
    """Attach one file; True when the part carries 8-bit data."""
    name = _attachment_name(spec.filename)
    maintype, subtype, params = _content_type(spec, name)
    data = bytes(spec.data)
    part = MIMEPart(policy=msg.policy)
    eight_bit = False
    if maintype == "message" and subtype in ("rfc822", "global"):
        data = _LINE_ENDS.sub(b"\r\n", data)
        longest = max((len(line) for line in data.split(b"\r\n")), default=0)
        if longest <= MAX_LINE_OCTETS and b"\x00" not in data:
            eight_bit = not data.isascii()
            cte = "8bit" if eight_bit else "7bit"
            part.set_content(data, maintype, subtype, cte=cte, filename=name)
        else:  # cannot travel verbatim as message/*; octet-stream keeps every byte
            part.set_content(data, "application", "octet-stream", filename=name)
    else:
        if maintype == "text" and "charset" not in params and not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                params["charset"] = "utf-8"
        part.set_content(data, maintype, subtype, filename=name, params=params or None)
    if msg.get_content_type() != "multipart/mixed":
        msg.make_mixed()
    msg.attach(part)
    return eight_bit


def load_attachment(path: str | PathLike[str], content_type: str | None = None) -> AttachmentSpec:
    """Read a file into an ``AttachmentSpec``; an unreadable file is a ``ComposeError``."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ComposeError(f"cannot read attachment {file.name}: {reason}") from exc
    return AttachmentSpec(filename=file.name, data=data, content_type=content_type)


# --------------------------------------------------------------------------- build


def _make_message_id(now: datetime, domain: str) -> str:
    if not domain.isascii():  # a kept U-label domain: any ASCII form will do for an id
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = "tidings.invalid"
    stamp = now.astimezone(UTC)
    return f"{stamp:%Y%m%d.%H%M%S}.{secrets.token_hex(8)}@{domain}"


def _check_lines(raw: bytes) -> None:
    if any(len(line) > MAX_LINE_OCTETS for line in raw.split(b"\r\n")):
        raise ComposeError("cannot build the message: a line is longer than 998 octets")


def build(
    identity: Identity,
    draft: Draft,
    *,
    now: datetime | None = None,
    message_id: str | None = None,
) -> Built:
    """Turn a draft into a complete message and its SMTP envelope.

    ``now`` defaults to the current local time (a naive ``now`` is taken as local time);
    ``message_id`` (without ``<>``) lets a resend keep the id the outbox knows.
    """
    own = _parse_mailboxes([identity.address])
    if len(own) != 1:
        raise ComposeError(f"not an email address: {identity.address!r}")
    sender = _Mailbox(name=_clean_line(identity.name), local=own[0].local, domain=own[0].domain)
    to, cc, bcc = (_parse_mailboxes(field) for field in (draft.to, draft.cc, draft.bcc))
    recipients = _dedupe(box.addr for box in (*to, *cc, *bcc))
    if not recipients:
        raise ComposeError("no recipients")

    extra: list[tuple[str, str | list[_Mailbox]]] = []
    for name, value in draft.extra_headers:
        if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
            raise ComposeError(f"cannot set header {name!r}")
        if "\r" in value or "\n" in value:
            raise ComposeError(f"header {name} has a line break")
        extra.append((name, _parse_mailboxes([value]) if name.lower() in _ADDRESS_EXTRA else value))

    boxes = [sender, *to, *cc, *bcc]
    boxes.extend(box for _name, value in extra if isinstance(value, list) for box in value)
    smtputf8 = any(box.utf8 for box in boxes)
    policy = _POLICY_UTF8 if smtputf8 else _POLICY

    stamp = now if now is not None else datetime.now()
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()  # naive: local time
    mid = (
        _msg_id(message_id, "message_id") if message_id else _make_message_id(stamp, sender.domain)
    )
    in_reply_to = _msg_id(draft.in_reply_to, "In-Reply-To") if draft.in_reply_to else None
    references = [_msg_id(ref, "References") for ref in draft.references]

    msg = MIMEPart(policy=policy)
    _set_addresses(msg, "From", [sender])
    if to:
        _set_addresses(msg, "To", to)
    if cc:
        _set_addresses(msg, "Cc", cc)
    _set_text_header(msg, "Subject", _clean_line(draft.subject))
    msg["Date"] = format_datetime(stamp)
    msg.set_raw("Message-ID", f"<{mid}>")
    if in_reply_to:
        msg.set_raw("In-Reply-To", f"<{in_reply_to}>")
    if references:
        msg.set_raw("References", _fold_ids(list(dict.fromkeys(references))))
    msg["MIME-Version"] = "1.0"

    html = _normalize_text(draft.html) if draft.html is not None else None
    if draft.text is not None:
        text = _normalize_text(draft.text)
    else:
        text = html_to_text(html) if html is not None else ""
    _set_text(msg, text, "plain")
    if html is not None:
        alternative = MIMEPart(policy=policy)
        _set_text(alternative, html, "html")
        msg.make_alternative()
        msg.attach(alternative)

    eight_bit = smtputf8
    for spec in draft.attachments:
        eight_bit = _add_attachment(msg, spec) or eight_bit
    # Last, so that a Content-Language (say) is not moved into a body part by make_mixed.
    for header, content in extra:
        if isinstance(content, list):
            _set_addresses(msg, header, content)
        else:
            _set_text_header(msg, header, _clean_line(content))

    buffer = BytesIO()
    _Generator(buffer, mangle_from_=False, policy=policy).flatten(msg)
    raw = buffer.getvalue()
    _check_lines(raw)
    return Built(
        raw=raw,
        message_id=mid,
        sender=sender.addr,
        recipients=recipients,
        smtputf8=smtputf8,
        eight_bit_mime=eight_bit,
    )


# --------------------------------------------------------------------------- reply

_REPLY_WORDS = r"(?:re|aw|sv|vs|antw|antwort|odp|ynt|res|rif|atb|回复|回覆|答复|答覆)"
_REPLY_RUN = re.compile(rf"(?:\s*{_REPLY_WORDS}\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：])+\s*", re.I)
_LIST_TAGS = re.compile(r"(?:\s*\[[^\]]*\])+")
_FORWARD_PREFIX = re.compile(
    r"\s*(?:\[[^\]]*\]\s*)*(?:fwd?|wg|tr|vl|enc|rv|doorst|转发|轉寄|转寄)\s*[:：]", re.I
)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _reply_subject(subject: str) -> str:
    text = _clean_line(subject)
    run = _REPLY_RUN.match(text)
    if run is not None:
        return f"Re: {text[run.end() :]}"
    tags = _LIST_TAGS.match(text)
    if tags is not None and _REPLY_RUN.match(text, tags.end()):
        return text  # '[list] Re: x' is already a reply
    return f"Re: {text}" if text else "Re:"


def _forward_subject(subject: str) -> str:
    text = _clean_line(subject)
    if _FORWARD_PREFIX.match(text):
        return text
    return f"Fwd: {text}" if text else "Fwd:"


def _raw_header(original: bytes, name: str) -> str | None:
    end = _HEADER_END.search(original)
    block = original[: end.start() + 2] if end is not None else original
    try:
        value = BytesHeaderParser().parsebytes(block).get(name)
    except Exception:  # the stdlib parser on damaged bytes: we only lose the zone
        return None
    return None if value is None else str(value)


def _original_date(original: bytes, utc: datetime | None) -> datetime | None:
    """The original's date in the sender's own zone (its Date offset), else UTC."""
    if utc is None:
        return None
    value = _raw_header(original, "Date")
    parts = parsedate_tz(value) if value else None
    offset = parts[9] if parts is not None else None
    if offset is None or abs(offset) >= 24 * 3600:
        return utc
    return utc.astimezone(timezone(timedelta(seconds=offset)))


def _human_date(stamp: datetime) -> str:
    return (
        f"{_DAYS[stamp.weekday()]}, {stamp.day} {_MONTHS[stamp.month - 1]} {stamp.year}"
        f" at {stamp:%H:%M} {stamp:%z}"
    )


def _quote(text: str) -> str:
    lines = text.strip("\n").split("\n") if text.strip() else []
    return "\n".join(
        ">" + line if not line or line.startswith(">") else "> " + line for line in lines
    )


def _shown(address: Address) -> str:
    return _format_mailbox(address.name, address.email) if address.email else address.name


def _own(identity: Identity) -> set[str]:
    """The user's addresses, case-folded, as written and as sent (IDNA)."""
    own: set[str] = set()
    for value in (identity.address, *identity.aliases):
        own.add(value.strip().casefold())
        with contextlib.suppress(ComposeError):
            own.update(box.addr.casefold() for box in _parse_mailboxes([value]))
    return own


def _references(
    env_refs: Sequence[str], in_reply_to: Sequence[str], mid: str | None
) -> tuple[str, ...]:
    refs = list(env_refs) if env_refs else list(in_reply_to[:1])
    if mid:
        refs.append(mid)
    refs = [ref for ref in dict.fromkeys(refs) if _MSG_ID.fullmatch(ref)]
    if len(refs) > MAX_REFERENCES:
        refs = [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
    return tuple(refs)


def reply(
    identity: Identity,
    original: bytes,
    *,
    reply_all: bool = False,
    text: str = "",
    html: str | None = None,
) -> Draft:
    """A draft replying to ``original`` (raw bytes), quoting its text below ``text``."""
    env = parse_envelope(original)
    content = extract_content(original)
    own = _own(identity)

    primary = [a for a in env.reply_to if a.email] or [a for a in env.from_ if a.email]
    more_to, more_cc = list(env.to), list(env.cc)
    if not env.reply_to and primary and all(a.email.casefold() in own for a in primary):
        primary, more_to = list(env.to), []  # a reply to our own message goes to its To
    # The user is left out unless there is nobody else (a note to self).
    primary = [a for a in primary if a.email.casefold() not in own] or primary

    seen: set[str] = set()

    def pick(addresses: Iterable[Address]) -> tuple[str, ...]:
        picked: list[str] = []
        for address in addresses:
            key = address.email.casefold()
            if key and key not in seen:
                seen.add(key)
                picked.append(_shown(address))
        return tuple(picked)

    to = pick(primary)
    cc: tuple[str, ...] = ()
    if reply_all:
        seen.update(own)
        to += pick(more_to)
        cc = pick(more_cc)

    sender = env.from_[0] if env.from_ else None
    who = (sender.name or sender.email) if sender is not None else "someone"
    stamp = _original_date(original, env.date)
    attribution = f"On {_human_date(stamp)}, {who} wrote:" if stamp else f"{who} wrote:"
    quoted = _quote(content.text)
    body = f"{text}\n\n{attribution}\n{quoted}\n"
    html_body: str | None = None
    if html is not None:
        html_body = (
            f"{html}\n<br><br><div>{escape(attribution)}</div>\n"
            '<blockquote type="cite" style="margin:0 0 0 .8ex;border-left:1px solid #ccc;'
            f'padding-left:1ex"><pre style="white-space:pre-wrap">{escape(content.text)}'
            "</pre></blockquote>\n"
        )
    mid = env.message_id if env.message_id and _MSG_ID.fullmatch(env.message_id) else None
    return Draft(
        to=to,
        cc=cc,
        subject=_reply_subject(env.subject),
        text=body,
        html=html_body,
        in_reply_to=mid,
        references=_references(env.references, env.in_reply_to, mid),
    )


# --------------------------------------------------------------------------- forward


def forward(
    identity: Identity,
    original: bytes,
    *,
    as_attachment: bool = False,
    text: str = "",
) -> Draft:
    """A draft forwarding ``original``: inline with its attachments, or as message/rfc822.

    ``identity`` is accepted for symmetry with ``reply`` (the caller builds with it).
    """
    del identity
    env = parse_envelope(original)
    subject = _forward_subject(env.subject)
    if as_attachment:
        stem = sanitize_filename(env.subject)[:100].rstrip(" .") or "forwarded message"
        spec = AttachmentSpec(f"{stem}.eml", original, "message/rfc822")
        return Draft(subject=subject, text=text, attachments=(spec,))

    content = extract_content(original)
    block = [FORWARD_SEPARATOR]
    if env.from_:
        block.append("From: " + ", ".join(_shown(a) for a in env.from_))
    stamp = _original_date(original, env.date)
    if stamp is not None:
        block.append(f"Date: {_human_date(stamp)}")
    block.append(f"Subject: {env.subject}")
    for label, addresses in (("To", env.to), ("Cc", env.cc)):
        if addresses:
            block.append(f"{label}: " + ", ".join(_shown(a) for a in addresses))
    body = f"{text}\n\n" + "\n".join(block) + f"\n\n{content.text}\n"

    attachments: list[AttachmentSpec] = []
    for number, attachment in enumerate(content.attachments, start=1):
        data = part_bytes(original, attachment.part_id)
        if data is None:
            continue
        name = attachment.filename
        if not name:
            if attachment.content_type in ("message/rfc822", "message/global"):
                name = f"message-{number}.eml"
            else:
                ext = mimetypes.guess_extension(attachment.content_type) or ".bin"
                name = f"attachment-{number}{ext}"
        attachments.append(AttachmentSpec(name, data, attachment.content_type))
    return Draft(subject=subject, text=body, attachments=tuple(attachments))
