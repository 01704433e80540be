"""What the reader checks in a message's HTML before the user acts on it: deceptive
links and tracking pixels, from the sanitised document, and what the bars say about them.

Why it is shaped this way:

* **Deceptive links.** Phishing mail shows one address and links to another
  (``<a href="https://evil.example/login">https://bank.example</a>``). With
  JavaScript off the view cannot tell us what text a click was on, so the document
  is read once, here, and every link whose *visible text looks like an address*
  (a URL, ``www.``-something, or a bare domain such as ``paypal.com``) is compared
  with its target. The comparison is by host (case-insensitive, without ``www.``,
  IDNA-decoded on both sides): a text that names a different host than the ``href``,
  or the same host over ``https`` in the text and plain ``http`` in the target, is a
  mismatch. Ordinary link text ("Click here", a person's name) is never flagged:
  there is nothing it pretends to be. A mismatch is keyed by the ``href`` exactly as
  written, and the caller normalises both sides the same way (``QUrl``).
* **Tracking pixels.** Remote images are blocked anyway; what the remote-content bar
  adds is *which* of them exist only to report that the mail was opened. Two signs
  are used, the ones mail clients and blockers use: an ``<img>`` declared 1x1 (or 0)
  pixel by its ``width``/``height`` attributes or its inline style, or ``display:
  none``/``visibility: hidden``; and an image from a known tracking host (the list
  below: the open-tracking endpoints of the big mailing services). Both need the URL
  to be remote; a ``cid:`` picture is local and never counted.
* ``remote_bar_text`` and ``mismatch_for`` compare URLs the way the web view reports
  them (``QUrl``), so they import Qt lazily; the rest is plain Python.
* Parsing uses ``html.parser`` (the document was produced by nh3, so it is well
  formed); it is CPU work proportional to the document, run off the GUI thread by the
  reader.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

__all__ = [
    "TRACKER_HOSTS",
    "Analysis",
    "LinkMismatch",
    "analyse",
    "host_of",
    "is_tracker_url",
    "link_mismatch",
    "looks_like_address",
    "mismatch_for",
    "remote_bar_text",
]

# Hosts (and their subdomains) whose images are open-tracking beacons.
TRACKER_HOSTS = frozenset(
    {
        "list-manage.com",  # Mailchimp
        "mcusercontent.com",
        "mailchimp.com",
        "sendgrid.net",
        "ct.sendgrid.net",
        "mailgun.org",
        "mandrillapp.com",
        "sparkpostmail.com",
        "mailjet.com",
        "sendinblue.com",
        "brevo.com",
        "hubspot.com",
        "hubspotemail.net",
        "hs-analytics.net",
        "exacttarget.com",
        "salesforce.com",
        "pardot.com",
        "marketo.com",
        "mktoweb.com",
        "constantcontact.com",
        "rs6.net",
        "campaign-archive.com",
        "klaviyo.com",
        "klclick.com",
        "mailtrack.io",
        "mixmax.com",
        "yesware.com",
        "streak.com",
        "bananatag.com",
        "getnotify.com",
        "awstrack.me",
        "emltrk.com",
        "pixel.wp.com",
        "google-analytics.com",
        "doubleclick.net",
        "facebook.com/tr",
        "links.iterable.com",
        "customer.io",
        "intercom-mail.com",
        "convertkit-mail.com",
        "substack.com/o",
    }
)
_TRACKER_DOMAINS = frozenset(h for h in TRACKER_HOSTS if "/" not in h)
_TRACKER_PREFIXES = tuple(h for h in TRACKER_HOSTS if "/" in h)

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)
_DOMAIN = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{2,59})"
    r"(?::\d{1,5})?(?:[/?#]\S*)?$",
    re.I,
)
_PX = re.compile(r"^\s*([0-9.]+)\s*(?:px)?\s*$", re.I)
_STYLE_DECL = re.compile(r"([a-z-]+)\s*:\s*([^;]+)", re.I)
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)


@dataclass(frozen=True, slots=True)
class LinkMismatch:
    href: str  # the link's real target, as written in the document
    shown: str  # the address the link's text shows
    shown_host: str
    target_host: str

    def warning(self) -> str:
        return (
            f"This link shows {self.shown} but leads to {self.target_host or self.href}. "
            "Links like this are a common trick of phishing mail."
        )


@dataclass(frozen=True, slots=True)
class Analysis:
    mismatches: dict[str, LinkMismatch] = field(default_factory=dict)  # by href
    pixels: frozenset[str] = frozenset()  # remote URLs of tracking pixels
    remote_images: int = 0  # remote <img> references in the document


def host_of(url: str) -> str:
    """The host of a URL or of a bare 'www.x.org/path', lower-case, IDNA-decoded, no
    'www.' and no port; '' when there is none."""
    text = url.strip()
    if not _SCHEME.match(text):
        text = ("http:" if text.startswith("//") else "http://") + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".").lower()
    if host.startswith("www."):
        host = host[4:]
    if "xn--" in host:
        with contextlib.suppress(UnicodeError):
            host = host.encode("ascii").decode("idna")
    return host


def looks_like_address(text: str) -> bool:
    """Does this link text claim to be an address (a URL, www.x, or a bare domain)?"""
    t = text.strip().strip("<>").strip()
    if not t or " " in t or "@" in t.split("/")[0]:
        return False
    if _SCHEME.match(t):
        return t.lower().startswith(("http://", "https://"))
    return bool(_DOMAIN.match(t))


def link_mismatch(href: str, text: str) -> LinkMismatch | None:
    """A mismatch when ``text`` shows an address other than where ``href`` goes."""
    shown = " ".join(text.split())
    if not looks_like_address(shown):
        return None
    target = href.strip()
    if not target.lower().startswith(("http://", "https://")):
        # A mailto:/tel: target behind a web address is odd too, but the window shows
        # those targets before acting; only web targets can land on a fake page.
        return None
    shown_host, target_host = host_of(shown.strip("<>")), host_of(target)
    if not shown_host:
        return None
    if shown_host != target_host:
        return LinkMismatch(href, shown.strip("<>"), shown_host, target_host)
    if shown.lower().startswith("https://") and target.lower().startswith("http://"):
        return LinkMismatch(href, shown.strip("<>"), shown_host, f"{target_host} (not encrypted)")
    return None


def is_tracker_url(url: str) -> bool:
    """A URL on one of the known open-tracking hosts."""
    host = host_of(url)
    if not host:
        return False
    parts = host.split(".")
    for n in range(len(parts) - 1):
        if ".".join(parts[n:]) in _TRACKER_DOMAINS:
            return True
    text = url.split("://", 1)[-1].lower()
    text = text[4:] if text.startswith("www.") else text
    return any(text.startswith(p) for p in _TRACKER_PREFIXES)


def _pixel_size(value: str | None) -> float | None:
    if value is None:
        return None
    m = _PX.match(value)
    return float(m.group(1)) if m else None


def _hidden_or_tiny(attrs: dict[str, str | None]) -> bool:
    width, height = _pixel_size(attrs.get("width")), _pixel_size(attrs.get("height"))
    style = {k.lower(): v.strip().lower() for k, v in _STYLE_DECL.findall(attrs.get("style") or "")}
    width = _pixel_size(style.get("width")) if width is None else width
    height = _pixel_size(style.get("height")) if height is None else height
    if style.get("display") == "none" or style.get("visibility") == "hidden":
        return True
    if width is not None and height is not None:
        return width <= 1 and height <= 1
    return (width is not None and width == 0) or (height is not None and height == 0)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.mismatches: dict[str, LinkMismatch] = {}
        self.pixels: set[str] = set()
        self.remote_images = 0
        self._link: str | None = None
        self._text: list[str] = []
        self._depth = 0  # nested <a> never happens in nh3 output; be safe anyway

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a":
            self._depth += 1
            if self._depth == 1:
                self._link = a.get("href")
                self._text = []
        elif tag == "img":
            src = (a.get("src") or "").strip()
            if _REMOTE.match(src):
                self.remote_images += 1
                if _hidden_or_tiny(a) or is_tracker_url(src):
                    self.pixels.add(src)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != "a" or self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0 and self._link is not None:
            found = link_mismatch(self._link, "".join(self._text))
            if found is not None:
                self.mismatches.setdefault(self._link, found)
            self._link = None


def analyse(document: str) -> Analysis:
    """Deceptive links and tracking pixels of a (sanitised) HTML document."""
    reader = _Reader()
    reader.feed(document)
    reader.close()
    return Analysis(dict(reader.mismatches), frozenset(reader.pixels), reader.remote_images)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def remote_bar_text(blocked: list[str], remote_refs: int, analysis: Analysis) -> str:
    """What the remote-content bar says ('' when nothing remote was blocked)."""
    from PySide6.QtCore import QUrl

    pixels = {QUrl(p).toString() for p in analysis.pixels}
    unique = set(blocked)
    tracked = {u for u in unique if u in pixels or is_tracker_url(u)}
    total = max(len(unique), remote_refs, analysis.remote_images)
    trackers = max(len(tracked), len(pixels))
    if not total:
        return ""
    text = f"Remote content blocked: {_plural(total, 'resource')}"
    if trackers:
        text += (
            f", including {_plural(trackers, 'known tracking pixel')}"
            if trackers < total
            else ", all of them known tracking pixels"
            if trackers > 1
            else ", a known tracking pixel"
        )
    return text + ". It would tell the sender when and where you read this."


def mismatch_for(analysis: Analysis, url: object) -> str | None:
    """The warning for a clicked link (a QUrl) whose text shows another address."""
    from PySide6.QtCore import QUrl

    clicked = QUrl(url).toString()  # type: ignore[call-overload]
    for href, found in analysis.mismatches.items():
        if QUrl(href).toString() == clicked or href == clicked:
            return found.warning()
    return None
