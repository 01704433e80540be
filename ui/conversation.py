"""The conversation view: a whole thread as stacked messages in one reader page, with
an inline quick reply.

Why it is shaped this way:

* **One page, not one web view per message.** Thirty QWebEngineViews would mean
  thirty renderer surfaces and seconds of start-up; one document holding thirty
  sanitised messages loads in tens of milliseconds. It is served by the same
  locked-down profile as the reader (``ui.reader.make_profile``: JavaScript off,
  every network request blocked and counted until allowed, ``cid:`` images from the
  store, links handed to the window), so the conversation is exactly as safe.
* **Collapsing without JavaScript.** Each message is a ``<details>`` element: its
  ``<summary>`` is the one-line form (sender, first words, date), and the browser
  opens and closes it on a click with scripting off. Read messages start collapsed;
  the newest one and every unread one start open. Quoted text and signatures sit in
  ``<details class="tidings-quote">`` ("··· show quoted text"), so a long reply chain
  shows each message's new words only. A *collapsed* message carries its new words
  only (its quote is, nearly always, the message above it on the same page): a thread
  quotes itself over and over, and leaving the copies out of collapsed messages keeps
  the page a fraction of the size, which is what keeps a second open under 300 ms.
  Printing puts every message in whole.
* **Finding the quote.** Plain text: the trailing run of ``>`` lines with the
  attribution line before it ("On ..., Bob wrote:"), an Outlook "-----Original
  Message-----" block, and the signature after the "-- " line. HTML: the outermost
  ``<blockquote>`` elements, Gmail's ``gmail_quote`` and Thunderbird's
  ``moz-cite-prefix`` blocks (folded as whole elements), Outlook's ``divRplyFwdMsg`` /
  ``appendonsend`` (folded from there to the end of the enclosing element), and
  ``gmail_signature``/``moz-signature`` blocks. The element ranges come from a real
  HTML tokenizer over nh3's (well-formed) output, never from regular expressions.
* **Fast on the second open.** Parsing and sanitising a message is the expensive
  part, and a message's bytes never change, so each prepared message is kept in a
  bounded cache (``PreparedCache``, by message id). Opening a thread again reads only
  its summaries (flags may have changed) and joins cached pieces: the 30-message
  thread of ``bench/conversation.py`` shows in well under 300 ms. All of it runs on
  the thread pool; the GUI thread only hands the document to the page.
* **Newsletter CSS stays out.** ``<style>`` blocks are dropped from messages in a
  conversation (in the single-message reader they stay): one message's style sheet
  would restyle every other message on the page. Inline styles are kept.
* **Quick reply** is a plain-text box under the page. Sending builds the reply with
  ``app.compose.reply`` on the newest message (quoting it, threading it with
  In-Reply-To/References) and ``app.compose.build``, and queues it with
  ``Services.queue_mail`` behind the compose undo window (``compose/undo_seconds``):
  the same bytes the compose window would send.

Signals (ConversationView):
    conversation_shown(int, float): thread id and milliseconds from request to loaded.
    link_requested(QUrl): the user clicked a link in the conversation.
    mark_read_requested(int): an unread message was shown long enough to count as read.
    reply_queued(int): the quick reply is in the outbox (its id).
"""

from __future__ import annotations

import html as _html
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from itertools import count
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtWebEngineCore import QWebEnginePage
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.mailbox import SCHEME, Mailbox, plain_to_html, sanitize_html
from storage.dto import MessageSummary
from ui.bridge import TaskHandle, known_error, report_error, run_task
from ui.safety import Analysis, LinkMismatch, analyse
from ui.senderlist import allowed_senders

if TYPE_CHECKING:
    from app.services import Services

__all__ = [
    "ConversationView",
    "PreparedCache",
    "PreparedMessage",
    "build_document",
    "fold_html",
    "fold_plain",
    "prepare_message",
]

MARK_READ_DELAY_MS = 1500
DEFAULT_UNDO_SECONDS = 10.0
CACHE_SIZE = 600

_CSP = (
    "default-src 'none'; script-src 'none'; object-src 'none'; frame-src 'none'; "
    "form-action 'none'; img-src * data: tidings:; style-src * 'unsafe-inline'; "
    "font-src * data:; media-src 'none'"
)
_STYLE = """
html { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif;
       margin: 8px 12px; color: #1d1d1f; background: #f6f7f9; word-wrap: break-word; }
h1.tidings-subject { font-size: 18px; margin: 4px 2px 10px; }
details.tidings-msg { background: #fff; border: 1px solid #dfe3ea; border-radius: 6px;
       margin: 0 0 6px; }
details.tidings-msg > summary { list-style: none; cursor: pointer; padding: 7px 10px;
       display: flex; gap: 10px; align-items: baseline; white-space: nowrap; }
details.tidings-msg > summary::-webkit-details-marker { display: none; }
details.tidings-msg[open] > summary { border-bottom: 1px solid #eef0f4; }
.tidings-from { font-weight: 600; flex: none; }
.tidings-unread .tidings-from::before { content: "● "; color: #0b57d0; }
.tidings-snippet { color: #5f6368; overflow: hidden; text-overflow: ellipsis; flex: 1; }
details.tidings-msg[open] .tidings-snippet { visibility: hidden; }
.tidings-date { color: #5f6368; flex: none; font-size: 12px; }
.tidings-head { color: #5f6368; font-size: 12px; padding: 6px 12px 0; }
.tidings-body { padding: 8px 12px 10px; overflow-x: auto; }
.tidings-trimmed { color: #5f6368; font-size: 12px; margin-top: 4px; }
.tidings-files { color: #3c4043; font-size: 12px; padding: 0 12px 8px; }
img { max-width: 100%; height: auto; }
pre.tidings-plain { white-space: pre-wrap; font: inherit; margin: 0; }
.tidings-plain blockquote { margin: 0 0 0 2px; padding-left: 10px;
       border-left: 3px solid #8ab4f8; color: #3c5a99; }
.tidings-plain blockquote blockquote { border-color: #81c995; color: #2d6a3e; }
details.tidings-quote > summary { cursor: pointer; color: #5f6368; font-size: 12px;
       list-style: none; display: inline-block; padding: 0 6px; margin: 4px 0;
       border: 1px solid #dadce0; border-radius: 8px; }
details.tidings-quote > summary::-webkit-details-marker { display: none; }
a { color: #0b57d0; }
"""

# --------------------------------------------------------------------------- folding

_ATTRIBUTION = re.compile(
    r"(wrote|writes|schrieb|a écrit|escribió|ha scritto|schreef)\s*:\s*$", re.I
)
_ATTR_START = re.compile(r"^\s*(On|Am|Le|El|Il|Op)\s", re.I)
_ORIGINAL = re.compile(
    r"^\s*-{3,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Forwarded message)",
    re.I,
)


def fold_plain(text: str) -> tuple[str, str, str]:
    """Split plain text into (new words, trailing quote, signature); either may be ''."""
    lines = text.replace("\r\n", "\n").split("\n")
    signature = ""
    for n in range(len(lines) - 1, -1, -1):
        if lines[n] in ("-- ", "--") and len(lines) - n <= 15:  # RFC 3676 sig, kept short
            signature = "\n".join(lines[n:]).rstrip()
            lines = lines[:n]
            break
    for n, line in enumerate(lines):
        if _ORIGINAL.match(line):
            return "\n".join(lines[:n]).rstrip(), "\n".join(lines[n:]).strip("\n"), signature
    end = len(lines)
    start = end
    n = end - 1
    while n >= 0 and (not lines[n].strip() or lines[n].lstrip().startswith(">")):
        if lines[n].lstrip().startswith(">"):
            start = n
        n -= 1
    if start == end:
        return "\n".join(lines).rstrip(), "", signature
    # The attribution ("On ..., Bob wrote:") goes with the quote; it may wrap over
    # two lines ("On Tue, 3 Mar 2026, Bob Example" / "<bob@example.org> wrote:").
    k = start - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    if k >= 0 and _ATTRIBUTION.search(lines[k]):
        start = k
        if not _ATTR_START.match(lines[k]) and k >= 1 and _ATTR_START.match(lines[k - 1]):
            start = k - 1
    main = "\n".join(lines[:start]).rstrip()
    quote = "\n".join(lines[start:]).strip("\n")
    return main, quote, signature


_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
_WHOLE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote")
_SIG_CLASSES = ("gmail_signature", "moz-signature")
_TO_END_IDS = ("divrplyfwdmsg", "appendonsend")


class _Ranges(HTMLParser):
    """Finds the character ranges of quote and signature elements in an HTML fragment."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        self.line_starts = [0]
        for m in re.finditer("\n", text):
            self.line_starts.append(m.end())
        self.stack: list[tuple[str, int, str | None]] = []  # (tag, start, fold kind)
        self.ranges: list[tuple[int, int, str]] = []
        self.to_end: list[tuple[int, int]] = []  # (start, stack index of the parent)

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        a = {k: (v or "") for k, v in attrs}
        classes = a.get("class", "").split()
        kind: str | None = None
        if tag == "blockquote" or any(c in _WHOLE_CLASSES for c in classes):
            kind = "quote"
        elif any(c in _SIG_CLASSES for c in classes):
            kind = "signature"
        elif a.get("id", "").lower() in _TO_END_IDS:
            self.to_end.append((start, len(self.stack) - 1))
        if tag in _VOID:
            return
        self.stack.append((tag, start, kind))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if a.get("id", "").lower() in _TO_END_IDS:
            self.to_end.append((self._offset(), len(self.stack) - 1))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        at = self._offset()
        close = self.text.find(">", at)
        end = len(self.text) if close < 0 else close + 1
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                _, start, kind = self.stack[i]
                depth = i
                del self.stack[i:]
                if kind is not None:
                    self.ranges.append((start, end, kind))
                for s, parent_depth in list(self.to_end):
                    if parent_depth == depth and s > start:  # this element is the parent
                        self.ranges.append((s, at, "quote"))
                        self.to_end.remove((s, parent_depth))
                return

    def finish(self) -> list[tuple[int, int, str]]:
        self.close()
        for s, _depth in self.to_end:  # the parent never closed: fold to the end
            self.ranges.append((s, len(self.text), "quote"))
        outer: list[tuple[int, int, str]] = []
        for s, e, k in sorted(self.ranges, key=lambda r: (r[0], -r[1])):
            if outer and s < outer[-1][1]:
                continue  # inside a range already folded
            outer.append((s, e, k))
        return outer


def _details(inner: str, kind: str) -> str:
    label = "··· show quoted text" if kind == "quote" else "··· show signature"
    return f'<details class="tidings-quote"><summary>{label}</summary>{inner}</details>'


def fold_html(fragment: str, *, drop: bool = False) -> tuple[str, int]:
    """Wrap quoted parts and signatures of an HTML fragment in <details> (or, with
    ``drop``, leave them out); returns the new fragment and how many parts there were."""
    finder = _Ranges(fragment)
    finder.feed(fragment)
    ranges = finder.finish()
    out = fragment
    for s, e, kind in reversed(ranges):
        out = out[:s] + ("" if drop else _details(out[s:e], kind)) + out[e:]
    return out, len(ranges)


_TRIMMED = '<div class="tidings-trimmed">··· quoted text: see the messages above</div>'


_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.I | re.S)

# --------------------------------------------------------------------------- preparing


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """One message's body, ready to drop into a conversation page (cached by id)."""

    message_id: int
    body: str  # sanitised HTML with quotes and signature folded
    short: str  # the same without quotes and signature (for collapsed messages)
    folded: int  # quoted parts / signatures folded
    remote_refs: int
    files: tuple[str, ...]  # attachment names (safe names) with sizes
    analysis: Analysis  # deceptive links and tracking pixels of this body (ui/safety.py)


def prepare_message(services: Services, message_id: int) -> PreparedMessage:
    """Parse, sanitise and fold one message (CPU work: call it off the GUI thread)."""
    from app.attachments import describe
    from storage.mime import extract_content

    detail = services.message(message_id)
    content = extract_content(services.raw(message_id))
    shown_cids: set[str] = set()
    if content.html is not None:
        clean, remote, shown_cids = sanitize_html(content.html, message_id)
        clean = _STYLE_BLOCK.sub("", clean)
        body, folded = fold_html(clean)
        short = fold_html(clean, drop=True)[0] if folded else body
    else:
        main, quote, signature = fold_plain(content.text)
        parts = [plain_to_html(main)] if main.strip() else []
        short = "".join(parts)
        folded = 0
        if quote:
            parts.append(_details(plain_to_html(quote), "quote"))
            folded += 1
        if signature:
            parts.append(_details(plain_to_html(signature), "signature"))
            folded += 1
        body, remote = "".join(parts), 0
    files = tuple(
        f"{v.filename} ({_size(v.size)})"
        for n, a in enumerate(detail.attachments, start=1)
        if not (a.content_id and a.content_id in shown_cids)
        for v in (describe(a, n),)
    )
    found = analyse(body) if "<a " in body or "<img" in body else Analysis()
    if folded:
        short += _TRIMMED
    return PreparedMessage(message_id, body, short, folded, remote, files, found)


class PreparedCache:
    """A bounded, thread-safe LRU of prepared messages (message bytes never change)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[int, PreparedMessage] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, services: Services, message_id: int) -> PreparedMessage:
        with self._lock:
            found = self._items.get(message_id)
            if found is not None:
                self._items.move_to_end(message_id)
                self.hits += 1
                return found
        prepared = prepare_message(services, message_id)
        with self._lock:
            self.misses += 1
            self._items[message_id] = prepared
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return prepared

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._items


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def _when(d: datetime | None) -> str:
    return d.astimezone().strftime("%a %d %b %Y %H:%M") if d is not None else ""


def build_document(
    summaries: Sequence[MessageSummary],
    prepared: Sequence[PreparedMessage],
    *,
    expand_all: bool = False,
) -> tuple[str, list[int]]:
    """The conversation page (oldest first) and the ids shown expanded (all of them
    with ``expand_all``, for printing)."""
    esc = _html.escape
    newest = summaries[-1].id if summaries else None
    subject = summaries[0].subject if summaries else ""
    parts = [
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<style>{_STYLE}</style></head><body>"
        f'<h1 class="tidings-subject">{esc(subject or "(no subject)")}</h1>'
    ]
    expanded: list[int] = []
    for s, p in zip(summaries, prepared, strict=True):
        unread = "seen" not in s.flags
        is_open = expand_all or unread or s.id == newest
        if is_open:
            expanded.append(s.id)
        classes = "tidings-msg" + (" tidings-unread" if unread else "")
        who = s.sender.name or s.sender.email or "(unknown sender)"
        to = ", ".join(a.display() for a in s.to)
        head = f"From: {esc(s.sender.display())}" + (f"<br>To: {esc(to)}" if to else "")
        files = (
            '<div class="tidings-files">📎 ' + " · ".join(esc(f) for f in p.files) + "</div>"
            if p.files
            else ""
        )
        parts.append(
            f'<details class="{classes}" id="m{s.id}"{" open" if is_open else ""}>'
            f'<summary><span class="tidings-from">{esc(who)}</span>'
            f'<span class="tidings-snippet">{esc(s.snippet)}</span>'
            f'<span class="tidings-date">{esc(_when(s.date))}</span></summary>'
            f'<div class="tidings-head">{head}</div>'
            f'<div class="tidings-body">{p.body if is_open else p.short}</div>{files}</details>'
        )
    parts.append("</body></html>")
    return "".join(parts), expanded


@dataclass(frozen=True, slots=True)
class Conversation:
    thread_id: int
    summaries: tuple[MessageSummary, ...]
    prepared: tuple[PreparedMessage, ...]
    document: str
    expanded: tuple[int, ...]
    analysis: Analysis

    @property
    def newest(self) -> MessageSummary:
        return self.summaries[-1]

    @property
    def remote_refs(self) -> int:
        return sum(p.remote_refs for p in self.prepared)


def load_conversation(
    mailbox: Mailbox, cache: PreparedCache, thread_id: int, account: str | None = None
) -> Conversation:
    """Everything the view needs for a thread (off the GUI thread)."""
    summaries = [
        s
        for s in mailbox.thread(thread_id)
        if (account is None or s.account == account) and "deleted" not in s.flags
    ]
    prepared = [cache.get(mailbox.services, s.id) for s in summaries]
    document, expanded = build_document(summaries, prepared)
    return Conversation(
        thread_id,
        tuple(summaries),
        tuple(prepared),
        document,
        tuple(expanded),
        _merge([p.analysis for p in prepared]),
    )


def _merge(parts: Sequence[Analysis]) -> Analysis:
    mismatches: dict[str, LinkMismatch] = {}
    for a in parts:
        for href, found in a.mismatches.items():
            mismatches.setdefault(href, found)
    return Analysis(
        mismatches,
        frozenset().union(*(a.pixels for a in parts)),
        sum(a.remote_images for a in parts),
    )


# --------------------------------------------------------------------------- the view


class ConversationView(QWidget):
    conversation_shown = Signal(int, float)
    link_requested = Signal(QUrl)
    mark_read_requested = Signal(int)
    reply_queued = Signal(int)

    _serial = count(1)

    def __init__(
        self, mailbox: Mailbox, settings: QSettings, parent: QWidget | None = None
    ) -> None:
        from ui.reader import ReaderPage, make_profile

        super().__init__(parent)
        self.mailbox = mailbox
        self.services = mailbox.services
        self.settings = settings
        self.cache = PreparedCache()
        self.conversation: Conversation | None = None
        self.thread_id: int | None = None
        self._pending: TaskHandle | None = None
        self._started = 0.0
        self._unread: list[int] = []
        self._mark_timer = QTimer(self)
        self._mark_timer.setSingleShot(True)
        self._mark_timer.timeout.connect(self._mark_read)

        self._page_holder = QObject(self)  # deleted before the profile (see make_profile)
        self.profile, self.blocker, self.handler = make_profile(mailbox, self)
        self.blocker.request_blocked.connect(self._on_blocked)
        self.page = ReaderPage(self.profile, self._page_holder)
        self.page.link_requested.connect(self.link_requested)
        self.page.loadFinished.connect(self._on_loaded)
        self.view = QWebEngineView(self)
        self.view.setObjectName("conversationView")
        self.view.setPage(self.page)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.view.setAcceptDrops(False)

        self.remote_bar = QFrame(self)
        self.remote_bar.setObjectName("remoteBar")
        self.remote_bar.setStyleSheet("#remoteBar { background: #fff4ce; border-radius: 4px; }")
        self.remote_label = QLabel(self.remote_bar)
        self.remote_label.setWordWrap(True)
        self.load_remote = QPushButton("Load remote content", self.remote_bar)
        self.load_remote.clicked.connect(self.allow_remote)
        rb = QHBoxLayout(self.remote_bar)
        rb.setContentsMargins(8, 4, 8, 4)
        rb.addWidget(self.remote_label, 1)
        rb.addWidget(self.load_remote)
        self.remote_bar.hide()

        self.reply_box = QPlainTextEdit(self)
        self.reply_box.setObjectName("quickReply")
        self.reply_box.setPlaceholderText("Quick reply…")
        self.reply_box.setMaximumHeight(110)
        self.reply_all = QCheckBox("Reply all", self)
        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("quickReplySend")
        self.send_button.clicked.connect(self.send_reply)
        self.reply_status = QLabel(self)
        self.reply_status.setWordWrap(True)
        reply_row = QHBoxLayout()
        reply_row.addWidget(self.reply_all)
        reply_row.addWidget(self.reply_status, 1)
        reply_row.addWidget(self.send_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.remote_bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.reply_box)
        layout.addLayout(reply_row)

    # -- showing ---------------------------------------------------------------------

    def clear(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self.thread_id = None
        self.conversation = None
        self._mark_timer.stop()
        self.remote_bar.hide()
        self.reply_status.clear()

    def show_thread(self, thread_id: int, account: str | None = None) -> None:
        """Load a conversation (prepared off the GUI thread; stale results dropped)."""
        if self._pending is not None:
            self._pending.cancel()
        self._mark_timer.stop()
        self._started = time.perf_counter()
        self.thread_id = thread_id
        mailbox, cache = self.mailbox, self.cache
        self._pending = run_task(
            lambda: load_conversation(mailbox, cache, thread_id, account),
            lambda conv: self._show(thread_id, conv),
            self._on_failed,
            owner=self,
        )

    def _on_failed(self, exc: BaseException) -> None:
        text = known_error(exc)
        if text is None:
            report_error(exc)
            return
        self.reply_status.setText(text)

    def _show(self, thread_id: int, conv: Conversation) -> None:
        if thread_id != self.thread_id or not conv.summaries:
            return
        if self.conversation is None or self.conversation.thread_id != thread_id:
            self.reply_box.clear()
            self.reply_status.clear()
        self.conversation = conv
        key = conv.newest.id
        if self._senders_allowed(conv):
            self.blocker.allowed.add(key)
        self._update_remote_bar()
        self.handler.documents = {key: conv.document.encode("utf-8")}
        self.view.load(QUrl(f"{SCHEME}://message/{key}/body/{next(self._serial)}"))
        self._unread = [s.id for s in conv.summaries if "seen" not in s.flags]
        if self._unread:
            self._mark_timer.start(MARK_READ_DELAY_MS)

    def _on_loaded(self, ok: bool) -> None:
        if self.conversation is not None and self.thread_id == self.conversation.thread_id:
            ms = (time.perf_counter() - self._started) * 1000
            self.conversation_shown.emit(self.conversation.thread_id, ms)

    def _mark_read(self) -> None:
        for mid in self._unread:
            self.mark_read_requested.emit(mid)
        self._unread = []

    # -- remote content ----------------------------------------------------------------

    def _senders_allowed(self, conv: Conversation) -> bool:
        allowed = set(allowed_senders(self.settings))
        with_remote = {
            s.sender.email.casefold()
            for s, p in zip(conv.summaries, conv.prepared, strict=True)
            if p.remote_refs
        }
        return bool(with_remote) and with_remote <= allowed

    def _on_blocked(self, mid: int, url: str) -> None:
        if self.conversation is not None and mid == self.conversation.newest.id:
            self._update_remote_bar()

    def blocked(self) -> list[str]:
        if self.conversation is None:
            return []
        return self.blocker.blocked_for(self.conversation.newest.id)

    def _update_remote_bar(self) -> None:
        from ui.safety import remote_bar_text

        conv = self.conversation
        if conv is None or conv.newest.id in self.blocker.allowed:
            self.remote_bar.hide()
            return
        text = remote_bar_text(self.blocked(), conv.remote_refs, conv.analysis)
        self.remote_label.setText(text)
        self.remote_bar.setVisible(bool(text))

    def allow_remote(self) -> None:
        if self.conversation is None:
            return
        self.blocker.allowed.add(self.conversation.newest.id)
        self.remote_bar.hide()
        self.page.triggerAction(QWebEnginePage.WebAction.ReloadAndBypassCache)

    def link_warning(self, url: QUrl) -> str | None:
        from ui.safety import mismatch_for

        if self.conversation is None:
            return None
        return mismatch_for(self.conversation.analysis, url)

    # -- quick reply -------------------------------------------------------------------

    def send_reply(self) -> None:
        """Build the reply to the newest message and queue it through the outbox."""
        conv = self.conversation
        text = self.reply_box.toPlainText()
        if conv is None:
            return
        if not text.strip():
            self.reply_status.setText("Write something first.")
            return
        target = conv.newest
        reply_all = self.reply_all.isChecked()
        seconds = float(self.settings.value("compose/undo_seconds", DEFAULT_UNDO_SECONDS))
        send_at = datetime.now(UTC) + timedelta(seconds=max(0.0, seconds))
        services = self.services
        self.send_button.setEnabled(False)
        self.reply_status.setText("Sending…")

        def queue() -> int:
            from app import compose

            account = services.account(target.account)
            if not account.smtp_host:
                from app.errors import UsageError

                raise UsageError(f"account {account.name} has no SMTP server to send with")
            identity = compose.Identity(account.email, account.display_name)
            draft = compose.reply(
                identity, services.raw(target.id), reply_all=reply_all, text=text.rstrip()
            )
            built = compose.build(identity, draft)
            return services.queue_mail(
                account.name,
                raw=built.raw,
                message_id=built.message_id,
                sender=built.sender,
                recipients=built.recipients,
                subject=draft.subject,
                send_at=send_at,
                reply_to_message=target.id,
            )

        def done(item: int) -> None:
            self.send_button.setEnabled(True)
            self.reply_box.clear()
            self.reply_status.setText(
                "Reply queued." if seconds <= 0 else "Reply queued (cancel it in the outbox)."
            )
            self.reply_queued.emit(int(item))

        def failed(exc: BaseException) -> None:
            self.send_button.setEnabled(True)
            message = known_error(exc)
            if message is None:
                report_error(exc)
                return
            self.reply_status.setText(f"Not sent: {message}")

        run_task(queue, done, failed, owner=self)
