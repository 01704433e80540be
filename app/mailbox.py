"""What the desktop app reads: folder tree, list pages, the reader's document, contacts.

The desktop UI talks to the store only through this module (and ``app.services`` for
changes), so that no ORM object, SQL or MIME parsing lives in ``ui/``.

Why it is shaped this way:

* **List sources.** The message list asks a *source* for pages: ``FolderSource`` pages
  through a set of folders (one folder, or every inbox for the unified inbox) with
  keyset paging on (date, location id), in message or conversation mode; it also
  answers "what are the rows for these message ids now?" so a list can update in place
  from worker events without reloading. ``StaticSource`` holds a finished result
  (search) and answers the same two questions from it. Both return ``ListRow`` DTOs.
* **The reader's document is built here, not in Qt.** ``Mailbox.reader`` parses the
  raw message once (``storage.mime.extract_content``) and returns a complete HTML
  document: HTML mail sanitised with nh3 (no scripts, no event handlers, no forms, no
  frames; inline styles and ``<style>`` kept because newsletters depend on them, and
  CSS cannot run code), ``cid:`` references rewritten to ``tidings://message/ID/cid/X``
  (served from the local store by the UI's scheme handler), and plain text turned into
  HTML with clickable links and quote levels. A Content-Security-Policy forbids
  scripts as a second line of defence; the UI also turns JavaScript off and blocks
  every network request until the user allows remote content. It is CPU work, so the
  UI calls it on a thread pool.
* **Connection check** (``check_connection``) logs in to IMAP and SMTP with what the
  account dialog holds, on the caller's thread (the UI runs it in the background),
  and reports one line per server and a one-line summary (what failed, and what
  works); failures are the sync layer's one-line errors. ``timeout`` bounds every
  step, so a server that accepts and then says nothing fails in that time.
* **Invitations without the iCalendar stack** (``find_invite``). The reader asks every
  message it shows for an invitation; ``Services.invite`` imports ``app.invites`` and
  with it ``icalendar`` (~175 ms of imports, GIL held). Measured during a first sync
  (bench/ui.py with a stack-sampling watchdog), that import on a pool thread, right
  after the first message was shown, kept the GUI thread from its event loop for
  100-240 ms. ``find_invite`` first looks for a calendar content type
  in the raw bytes (one regex over bytes), and only a message that names one goes on
  to ``Services.invite``; the others (nearly all mail) answer None without the import.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from app.errors import TidingsError
from app.services import Services
from storage import queries
from storage.dto import (
    AccountInfo,
    AttachmentInfo,
    ContactInfo,
    FolderInfo,
    ListRow,
    MessageDetail,
    MessageSummary,
)

__all__ = [
    "SCHEME",
    "ConnectionReport",
    "FolderSource",
    "FolderTree",
    "ListSource",
    "Mailbox",
    "ReaderDocument",
    "StaticSource",
    "check_connection",
    "find_invite",
    "plain_to_html",
    "sanitize_html",
]

if TYPE_CHECKING:
    from app.invites import Invite

SCHEME = "tidings"  # tidings://message/<id>/body, tidings://message/<id>/cid/<content-id>
ROLE_ORDER = ("inbox", "drafts", "sent", "archive", "all", "flagged", "junk", "trash")
# What app.invites looks at (CALENDAR_TYPES, or a file named *.ics), as bytes in a raw
# message: a header naming one of them. A false match only costs the full look.
_CALENDAR_MARK = re.compile(rb"(?i)text/(?:x-v)?calendar|application/(?:x-)?ics|\.ics\b")
_CALENDAR_TYPES = frozenset(
    {"text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics"}
)


# --------------------------------------------------------------------------- folders


@dataclass(frozen=True, slots=True)
class FolderTree:
    accounts: tuple[AccountInfo, ...]
    folders: tuple[FolderInfo, ...]  # roles first (Inbox, Drafts, Sent, ...), then by name

    @property
    def inbox_ids(self) -> tuple[int, ...]:
        return tuple(f.id for f in self.folders if f.role == "inbox")

    @property
    def unified_unread(self) -> int:
        return sum(f.unread for f in self.folders if f.role == "inbox")

    def of_account(self, account_id: int) -> list[FolderInfo]:
        return [f for f in self.folders if f.account_id == account_id]


# --------------------------------------------------------------------------- sources


class ListSource:
    """Where a message list gets its rows (keyset pages) and in-place updates."""

    threads: bool = False

    def page(self, before: tuple[datetime | None, int] | None, limit: int) -> list[ListRow]:
        raise NotImplementedError

    def rows_for(self, message_ids: Sequence[int]) -> list[ListRow]:
        raise NotImplementedError

    def thread_ids(self, message_ids: Sequence[int]) -> dict[int, int | None]:
        raise NotImplementedError


class FolderSource(ListSource):
    def __init__(self, services: Services, folder_ids: Sequence[int], *, threads: bool) -> None:
        self.services = services
        self.folder_ids = tuple(folder_ids)
        self.threads = threads

    def page(self, before: tuple[datetime | None, int] | None, limit: int) -> list[ListRow]:
        q = queries.PageQuery(self.folder_ids, threads=self.threads, limit=limit, before=before)
        with self.services.reading() as s:
            return queries.list_page(s, q)

    def rows_for(self, message_ids: Sequence[int]) -> list[ListRow]:
        with self.services.reading() as s:
            return queries.list_rows_for(s, self.folder_ids, message_ids, threads=self.threads)

    def thread_ids(self, message_ids: Sequence[int]) -> dict[int, int | None]:
        with self.services.reading() as s:
            return queries.thread_ids_of(s, message_ids)


class StaticSource(ListSource):
    """A finished list (search results): one page; updates re-read the rows it holds."""

    def __init__(self, services: Services, summaries: Sequence[MessageSummary]) -> None:
        self.services = services
        self._ids = [m.id for m in summaries]
        self._rows = [
            ListRow(m, m.date, -n, 1, 0 if "seen" in m.flags else 1)
            for n, m in enumerate(summaries)
        ]

    def page(self, before: tuple[datetime | None, int] | None, limit: int) -> list[ListRow]:
        start = 0 if before is None else -before[1] + 1
        return self._rows[start : start + limit]

    def rows_for(self, message_ids: Sequence[int]) -> list[ListRow]:
        wanted = set(message_ids)
        with self.services.reading() as s:
            fresh = {m.id: m for m in queries.summaries(s, [i for i in self._ids if i in wanted])}
        out = []
        for row in self._rows:
            m = fresh.get(row.summary.id)
            if m is not None:
                out.append(ListRow(m, row.date, row.key, 1, 0 if "seen" in m.flags else 1))
        return out

    def thread_ids(self, message_ids: Sequence[int]) -> dict[int, int | None]:
        return {}


# --------------------------------------------------------------------------- reader

_CSP = (
    "default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; "
    "form-action 'none'; img-src * data: tidings:; style-src * 'unsafe-inline'; "
    "font-src * data:; media-src 'none'"
)
_BASE_STYLE = """
html { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif;
       margin: 12px 16px; color: #1d1d1f; background: #fff; word-wrap: break-word; }
img { max-width: 100%; height: auto; }
pre.tidings-plain { white-space: pre-wrap; font: inherit; margin: 0; }
.tidings-plain blockquote { margin: 0 0 0 2px; padding-left: 10px;
       border-left: 3px solid #8ab4f8; color: #3c5a99; }
.tidings-plain blockquote blockquote { border-color: #81c995; color: #2d6a3e; }
.tidings-plain blockquote blockquote blockquote { border-color: #f6ae7f; color: #8a4b1f; }
a { color: #0b57d0; }
"""

_EXTRA_TAGS = {
    "style", "font", "center", "big", "section", "main", "address", "caption", "u", "tfoot",
}  # fmt: skip
_GENERIC_ATTRS = {
    "style", "class", "id", "align", "valign", "width", "height", "bgcolor", "color", "dir",
    "title", "lang", "border", "face", "size", "background", "role", "nowrap",
}  # fmt: skip
_TAG_ATTRS = {
    "a": {"href", "name"},
    "img": {"src", "alt", "hspace", "vspace"},
    "table": {"cellpadding", "cellspacing", "summary", "frame", "rules"},
    "td": {"colspan", "rowspan", "headers", "scope"},
    "th": {"colspan", "rowspan", "headers", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "li": {"value", "type"},
    "ul": {"type"},
    "blockquote": {"cite", "type"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "time": {"datetime"},
    "area": {"href", "alt", "shape", "coords"},
    "map": {"name"},
}
_URL_ATTRS = {"src", "href", "background"}
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)
_REMOTE_CSS = re.compile(r"url\(\s*['\"]?\s*(?:https?:)?//", re.I)


@dataclass(frozen=True, slots=True)
class ReaderDocument:
    detail: MessageDetail
    document: str  # a complete HTML document, safe to show with JavaScript off
    is_html: bool  # the message had an HTML body (else: plain text shown as HTML)
    remote_refs: int  # remote URLs referenced by the sanitised document (images, CSS)
    inline_cids: dict[str, AttachmentInfo] = field(default_factory=dict)

    @property
    def attachments(self) -> tuple[AttachmentInfo, ...]:
        """What goes in the attachment bar: real attachments, not cid: images shown inline."""
        shown = set(self.inline_cids)
        return tuple(
            a
            for a in self.detail.attachments
            if not (a.content_id and a.content_id in shown and a.content_type.startswith("image/"))
        )


def cid_url(message_id: int, content_id: str) -> str:
    return f"{SCHEME}://message/{message_id}/cid/{quote(content_id, safe='')}"


def body_url(message_id: int) -> str:
    return f"{SCHEME}://message/{message_id}/body"


def parse_tidings_url(url: str) -> tuple[int, str, str] | None:
    """``tidings://message/7/cid/x%40y`` -> (7, 'cid', 'x@y'); None when it is not one."""
    m = re.fullmatch(rf"{SCHEME}://message/(\d+)/(body|cid)(?:/(.*))?", url)
    if m is None:
        return None
    return int(m.group(1)), m.group(2), unquote(m.group(3) or "")


def sanitize_html(text: str, message_id: int) -> tuple[str, int, set[str]]:
    """Safe HTML for the reader; returns (html, remote references, cids referenced)."""
    import nh3

    remote = 0
    cids: set[str] = set()

    kept_tags = nh3.ALLOWED_TAGS | _EXTRA_TAGS

    def attr_filter(tag: str, attr: str, value: str) -> str | None:
        nonlocal remote
        if tag in kept_tags and (attr in _URL_ATTRS or attr == "style"):
            remote_src = attr != "href" and _REMOTE.match(value)
            if remote_src or (attr == "style" and _REMOTE_CSS.search(value)):
                remote += 1
            if attr in _URL_ATTRS and value.strip().lower().startswith("cid:"):
                cid = unquote(value.strip()[4:]).strip("<>")
                cids.add(cid)
                return cid_url(message_id, cid)
        return value

    attributes = {tag: set(attrs) for tag, attrs in _TAG_ATTRS.items()}
    attributes["*"] = set(_GENERIC_ATTRS)
    clean = nh3.clean(
        text,
        tags=kept_tags,
        clean_content_tags={"script", "noscript", "iframe", "object", "embed", "template"},
        attributes=attributes,
        attribute_filter=attr_filter,
        url_schemes={"http", "https", "mailto", "cid", SCHEME, "data", "tel"},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return clean, remote, cids


_LINK = re.compile(
    r"(?P<url>(?:https?://|www\.)[^\s<>\"']+)|(?P<mail>(?:mailto:)?[\w.+-]+@[\w-]+(?:\.[\w-]+)+)",
    re.I,
)
_QUOTE = re.compile(r"^((?:>[ \t]?)+)")


def _linkify(line: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _LINK.finditer(line):
        start, end = m.span()
        target = m.group(0)
        trail = ""
        while target and target[-1] in ".,;:!?)]}'\"":
            if target[-1] == ")" and target.count("(") >= target.count(")"):
                break
            trail = target[-1] + trail
            target = target[:-1]
        end -= len(trail)
        out.append(_html.escape(line[pos:start]))
        if m.group("url"):
            href = target if not target.lower().startswith("www.") else f"https://{target}"
        else:
            href = target if target.lower().startswith("mailto:") else f"mailto:{target}"
        out.append(f'<a href="{_html.escape(href)}">{_html.escape(target)}</a>')
        pos = end
    out.append(_html.escape(line[pos:]))
    return "".join(out)


def plain_to_html(text: str) -> str:
    """Plain text as HTML: escaped, links clickable, ``>`` quote levels as nested blocks."""
    parts: list[str] = ['<pre class="tidings-plain">']
    level = 0
    for line in text.split("\n"):
        m = _QUOTE.match(line)
        depth = m.group(1).count(">") if m else 0
        body = line[m.end() :] if m else line
        while level < depth:
            parts.append("<blockquote>")
            level += 1
        while level > depth:
            parts.append("</blockquote>")
            level -= 1
        parts.append(_linkify(body) + "\n")
    parts.extend("</blockquote>" for _ in range(level))
    parts.append("</pre>")
    # blockquote is a block: drop the newline that would follow each opening/closing tag.
    return re.sub(r"\n(</?blockquote>)", r"\1", "".join(parts))


def _document(body: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<style>{_BASE_STYLE}</style></head><body>{body}</body></html>"
    )


# --------------------------------------------------------------------------- facade


class Mailbox:
    """Read-side services for the desktop app; every call is one short unit of work."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def tree(self) -> FolderTree:
        accounts = tuple(self.services.accounts())
        folders = tuple(self.services.folders())
        return FolderTree(accounts, folders)

    def folder_source(self, folder_ids: Sequence[int], *, threads: bool) -> FolderSource:
        return FolderSource(self.services, folder_ids, threads=threads)

    def thread(self, thread_id: int) -> list[MessageSummary]:
        with self.services.reading() as s:
            return queries.thread_summaries(s, thread_id)

    def contacts(self, text: str, limit: int = 10) -> list[ContactInfo]:
        with self.services.reading() as s:
            return queries.contacts_matching(s, text, limit)

    def reader(self, message_id: int) -> ReaderDocument:
        """The reader's document for a message (parses the raw bytes: call it off the GUI)."""
        from storage.mime import extract_content

        detail = self.services.message(message_id)
        content = extract_content(self.services.raw(message_id))
        by_cid = {a.content_id: a for a in detail.attachments if a.content_id}
        if content.html is not None:
            body, remote, cids = sanitize_html(content.html, message_id)
            inline = {c: by_cid[c] for c in cids if c in by_cid}
            return ReaderDocument(detail, _document(body), True, remote, inline)
        return ReaderDocument(detail, _document(plain_to_html(content.text)), False, 0, {})

    def cid_part(self, message_id: int, content_id: str) -> tuple[str, bytes] | None:
        """(content type, bytes) of the part a ``cid:`` URL names, from the local store."""
        from storage.mime import part_bytes

        detail = self.services.message(message_id)
        for a in detail.attachments:
            if a.content_id == content_id:
                data = part_bytes(self.services.raw(message_id), a.part_id)
                return None if data is None else (a.content_type, data)
        return None

    def attachment(self, message_id: int, part_id: str) -> bytes:
        from storage.mime import part_bytes

        data = part_bytes(self.services.raw(message_id), part_id)
        if data is None:
            raise TidingsError(f"message {message_id} has no part {part_id}")
        return data


def find_invite(services: Services, message_id: int) -> Invite | None:
    """``Services.invite`` for the reader, which asks it of every message it shows:
    a message whose raw bytes and stored parts name no calendar type and no ``.ics``
    file holds no invitation, and answers None without importing the iCalendar stack
    (see the module docstring). Call it off the GUI thread."""
    detail = services.message(message_id)
    named = any(
        a.content_type in _CALENDAR_TYPES or a.filename.lower().endswith(".ics")
        for a in detail.attachments
    )
    if not named and _CALENDAR_MARK.search(services.raw(message_id)) is None:
        return None
    return services.invite(message_id)


# --------------------------------------------------------------------------- connection


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What a connection test found: one line per server (``lines``), and which of
    them failed (``failures``); ``summary`` says it all in one line."""

    ok: bool
    lines: tuple[str, ...]
    failures: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        if self.ok or not self.failures:
            return "; ".join(self.lines)
        worked = [line.split(":", 1)[0] for line in self.lines if line not in self.failures]
        text = "; ".join(self.failures)
        return f"{text} ({' and '.join(worked)} works)" if worked else text


def check_connection(
    *,
    email: str,
    username: str | None,
    secret: str,
    imap_host: str,
    imap_port: int,
    imap_security: str,
    smtp_host: str | None,
    smtp_port: int | None,
    smtp_security: str | None,
    ca_file: str | None = None,
    timeout: float = 20.0,
) -> ConnectionReport:
    """Log in to the IMAP (and SMTP) server with these settings; never raises for
    server trouble: the report says what worked and what did not, one line each."""
    from sync.errors import SyncError
    from sync.imap import ImapConnection, ServerConfig

    lines: list[str] = []
    failures: list[str] = []
    user = username or email
    try:
        cfg = ServerConfig(
            host=imap_host,
            port=imap_port,
            security=imap_security,
            username=user,
            secret=secret,
            ca_file=ca_file,
            timeout=timeout,
        )
        with ImapConnection.connect(cfg) as conn:
            count = len(conn.list_folders())
        lines.append(f"IMAP: logged in to {imap_host}:{imap_port} as {user} ({count} folders)")
    except (SyncError, TidingsError, ValueError) as exc:
        failures.append(f"IMAP: {exc}")
        lines.append(failures[-1])
    if smtp_host and smtp_port:
        from sync.smtp import SmtpConfig, SmtpSession

        try:
            scfg = SmtpConfig(
                host=smtp_host,
                port=smtp_port,
                security=smtp_security or "ssl",
                username=user,
                secret=secret,
                ca_file=ca_file,
                timeout=timeout,
            )
            SmtpSession.open(scfg).close()
            lines.append(f"SMTP: logged in to {smtp_host}:{smtp_port} as {user}")
        except (SyncError, TidingsError, ValueError) as exc:
            failures.append(f"SMTP: {exc}")
            lines.append(failures[-1])
    return ConnectionReport(not failures, tuple(lines), tuple(failures))
