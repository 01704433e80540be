"""Leaving a mailing list: List-Unsubscribe (RFC 2369) and one-click (RFC 8058).

The reader's Unsubscribe button and ``tidings unsubscribe`` both come here. A list
offers ways to leave in ``List-Unsubscribe`` (``<mailto:...>``, ``<https://...>``,
in any order); with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` its https
URI accepts a bare POST that unsubscribes at once.

Decisions:

* What is used, best first: the one-click POST when the list offers it (RFC 8058: the
  Post header *and* an https URI); else the ``mailto:``, queued through the outbox like
  any mail, with the list's ``subject``/``body`` (other header fields in the URI, such
  as ``cc`` or ``in-reply-to``, are ignored: a list does not get to write our headers);
  else an https link, handed back for the user's browser to open (we never GET it
  ourselves: it is a web page that wants a person). Plain ``http://`` links are never
  used, for POST or for the browser: an unsubscribe token travelling in the clear is
  readable and replayable on the way. Only tests may allow ``http://127.0.0.1``, with
  an explicit argument.
* The POST is the one network request the reader makes on its own, after the user
  confirmed, and it says nothing about the user beyond what the list put in the URI:
  the body is exactly ``List-Unsubscribe=One-Click`` as
  ``application/x-www-form-urlencoded``, no cookies, no authorisation, no Referer, a
  neutral User-Agent, a 10-second timeout, certificates verified (the system's trust
  store, which honours ``SSL_CERT_FILE``). http.client is used directly because it
  has no cookie jar and follows no redirects by itself. The answer counts as done on
  2xx, and on 302/303 (the post-redirect-get pattern: the POST was taken, a page is
  shown). 301/307/308 mean the endpoint moved: the POST is repeated there only on
  the same scheme, host and port (three times at most); a redirect elsewhere is not
  followed and is a failure. Anything else (4xx/5xx, no answer, a TLS error) is an
  ``UnsubscribeError`` with one line naming the host. DKIM is not checked here
  (RFC 8058 asks the *receiving system* to check that the signature covers both
  headers; the store does not verify signatures yet).
* The result is recorded (table ``unsubscribes``: when, how, target, outcome, kept by
  ``storage/unsubscribes.py``, which ``Services`` calls in the transaction that also
  queues a ``mailto:`` message) for the message and its list (List-Id), so every
  message of that list can show "Unsubscribed on ...". Only what happened is
  recorded: a failure changes nothing. This module touches no database.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit

from app import compose
from app.errors import UnsubscribeError
from storage.unsubscribes import UnsubscribeResult

__all__ = [
    "ONE_CLICK_BODY",
    "Mailto",
    "Options",
    "Plan",
    "UnsubscribeResult",
    "build_mailto",
    "describe_options",
    "one_click_post",
    "parse",
    "parse_mailto",
    "plan",
]

ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"
FORM_TYPE = "application/x-www-form-urlencoded"
USER_AGENT = "Tidings (one-click unsubscribe)"
TIMEOUT = 10.0
MAX_REDIRECTS = 3
_MAX_BODY = 64 * 1024
_BRACKETED = re.compile(r"<([^<>]*)>")
_LOOPBACK_HOSTS = ("127.0.0.1",)


@dataclass(frozen=True, slots=True)
class Mailto:
    to: tuple[str, ...]
    subject: str
    body: str
    uri: str


@dataclass(frozen=True, slots=True)
class Options:
    """What a message's List-Unsubscribe headers offer."""

    https: tuple[str, ...]
    http: tuple[str, ...]  # offered, never used
    mailto: tuple[Mailto, ...]
    one_click: bool  # List-Unsubscribe-Post asks for the RFC 8058 POST

    @property
    def any(self) -> bool:
        return bool(self.https or self.http or self.mailto)


@dataclass(frozen=True, slots=True)
class Plan:
    """What unsubscribing will do, for the confirmation."""

    method: str  # 'one-click' | 'mailto' | 'browser'
    target: str  # the URL or the mailto: URI
    mailto: Mailto | None
    description: str  # 'one-click unsubscribe at news.example.com', ...


# --------------------------------------------------------------------------- parsing


def _uris(header: str) -> list[str]:
    found = _BRACKETED.findall(header)
    if not found and header.strip():  # no angle brackets: a bare list (seen in the wild)
        found = [item for item in re.split(r"[,\s]+", header) if item]
    return ["".join(uri.split()) for uri in found if uri.strip()]


def parse_mailto(uri: str) -> Mailto | None:
    """An RFC 6068 ``mailto:`` URI; None when it names no address."""
    if uri[:7].lower() != "mailto:":
        return None
    rest = uri[7:]
    path, _q, query = rest.partition("?")
    to = [unquote(a).strip() for a in path.split(",") if unquote(a).strip()]
    subject = body = ""
    for key, value in parse_qsl(query, keep_blank_values=True):
        name = key.lower()
        if name == "to":
            to.extend(a.strip() for a in value.split(",") if a.strip())
        elif name == "subject":
            subject = value
        elif name == "body":
            body = value
    if not to:
        return None
    return Mailto(to=tuple(dict.fromkeys(to)), subject=subject, body=body, uri=uri)


def _well_formed(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _port = parts.port  # raises on a bad port
    except ValueError:
        return False
    return bool(parts.hostname)


def parse(list_unsubscribe: str | None, list_unsubscribe_post: str | None) -> Options:
    https: list[str] = []
    http: list[str] = []
    mailto: list[Mailto] = []
    for uri in _uris(list_unsubscribe or ""):
        scheme = uri.split(":", 1)[0].lower()
        if scheme in ("https", "http") and not _well_formed(uri):
            continue
        if scheme == "https":
            https.append(uri)
        elif scheme == "http":
            http.append(uri)
        elif scheme == "mailto":
            parsed = parse_mailto(uri)
            if parsed is not None:
                mailto.append(parsed)
    post = "".join((list_unsubscribe_post or "").split()).lower()
    return Options(
        https=tuple(https),
        http=tuple(http),
        mailto=tuple(mailto),
        one_click=post == ONE_CLICK_BODY.decode().lower(),
    )


def _loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


def plan(options: Options, *, allow_http_loopback: bool = False) -> Plan:
    """The best way out that the list offers; ``UnsubscribeError`` when there is none."""
    if options.one_click:
        post_urls = list(options.https)
        if allow_http_loopback:
            post_urls += [u for u in options.http if _loopback_http(u)]
        if post_urls:
            url = post_urls[0]
            host = urlsplit(url).hostname or url
            return Plan("one-click", url, None, f"one-click unsubscribe at {host}")
    if options.mailto:
        m = options.mailto[0]
        return Plan("mailto", m.uri, m, f"send an unsubscribe message to {', '.join(m.to)}")
    if options.https:
        url = options.https[0]
        return Plan("browser", url, None, f"open {url} in the browser to unsubscribe")
    if options.http:
        raise UnsubscribeError(
            f"the list offers only a non-https unsubscribe link ({options.http[0][:80]}); "
            "it is not used"
        )
    raise UnsubscribeError("the message offers no way to unsubscribe (no List-Unsubscribe)")


# --------------------------------------------------------------------------- acting


def build_mailto(mailto: Mailto, identity: compose.Identity) -> tuple[compose.Built, str]:
    """The unsubscribe message for a ``mailto:`` URI, and its subject."""
    subject = mailto.subject.strip() or "unsubscribe"
    body = mailto.body if mailto.body.strip() else "unsubscribe"
    try:
        built = compose.build(
            identity,
            compose.Draft(to=compose.parse_recipients(list(mailto.to)), subject=subject, text=body),
        )
    except compose.ComposeError as exc:
        raise UnsubscribeError(f"unusable unsubscribe address in {mailto.uri[:80]}: {exc}") from exc
    return built, subject


def _check_url(url: str, allow_http_loopback: bool) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme == "http" and allow_http_loopback and host in _LOOPBACK_HOSTS:
        pass
    elif scheme != "https":
        raise UnsubscribeError(f"refusing a non-https unsubscribe URL: {url[:80]}")
    if not host:
        raise UnsubscribeError(f"not a usable unsubscribe URL: {url[:80]}")
    if parts.username or parts.password:
        raise UnsubscribeError(f"refusing an unsubscribe URL with credentials in it: {host}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UnsubscribeError(f"not a usable unsubscribe URL: {url[:80]}") from exc
    return scheme, host, port


def _network_error(host: str, exc: BaseException, timeout: float) -> UnsubscribeError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"its certificate is not trusted ({exc.verify_message})"
    elif isinstance(exc, ssl.SSLError):
        reason = f"TLS failed ({exc.reason or exc})"
    elif isinstance(exc, TimeoutError):
        reason = f"no answer within {timeout:g} s"
    elif isinstance(exc, socket.gaierror):
        reason = "unknown host"
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, http.client.HTTPException):
        reason = f"malformed HTTP answer ({type(exc).__name__})"
    else:
        reason = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).lower()
    return UnsubscribeError(f"cannot unsubscribe at {host}: {reason}")


def one_click_post(
    url: str,
    *,
    timeout: float = TIMEOUT,
    allow_http_loopback: bool = False,
    context: ssl.SSLContext | None = None,
) -> str:
    """Send the RFC 8058 POST; returns the status line ('HTTP 200 OK') when it was taken."""
    current = url
    origin = _check_url(current, allow_http_loopback)
    for _hop in range(MAX_REDIRECTS + 1):
        scheme, host, port = _check_url(current, allow_http_loopback)
        parts = urlsplit(current)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=context or ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request(
                "POST",
                target,
                body=ONE_CLICK_BODY,
                headers={
                    "Content-Type": FORM_TYPE,
                    "User-Agent": USER_AGENT,
                    "Accept": "*/*",
                    "Connection": "close",
                },
            )
            response = conn.getresponse()
            response.read(_MAX_BODY)
            status, reason = response.status, (response.reason or "").strip()
            location = response.getheader("Location")
        except (OSError, http.client.HTTPException) as exc:
            raise _network_error(host, exc, timeout) from exc
        finally:
            conn.close()
        line = f"HTTP {status} {reason}".rstrip()
        if 200 <= status < 300 or status in (302, 303):
            return line
        if status in (301, 307, 308) and location:
            following = urljoin(current, location.strip())
            try:
                hop = _check_url(following, allow_http_loopback)
            except UnsubscribeError:
                hop = None
            if hop != origin:
                where = urlsplit(following).hostname or following[:60]
                raise UnsubscribeError(
                    f"cannot unsubscribe at {host}: it redirects to {where}, which is not followed"
                )
            current = following
            continue
        raise UnsubscribeError(f"cannot unsubscribe at {host}: the server answered {line}")
    raise UnsubscribeError(f"cannot unsubscribe at {origin[1]}: too many redirects")


def describe_options(options: Options) -> Sequence[str]:
    """The offered ways out, one per line (for ``tidings show``-like listings)."""
    lines = []
    if options.one_click and options.https:
        lines.append(f"one-click: {options.https[0]}")
    lines += [f"mail: {m.uri}" for m in options.mailto]
    lines += [f"web: {u}" for u in options.https]
    lines += [f"web (not https, not used): {u}" for u in options.http]
    return lines
