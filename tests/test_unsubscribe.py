"""Unsubscribe: reading List-Unsubscribe, choosing the way out, the RFC 8058 POST.

The POST goes to a real HTTP(S) server started here on 127.0.0.1 (``http.server`` in a
thread; HTTPS with a throwaway trustme CA), which records every request it gets.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import pytest
import trustme

from app.errors import UnsubscribeError
from app.services import Services
from app.unsubscribe import (
    ONE_CLICK_BODY,
    Mailto,
    one_click_post,
    parse,
    parse_mailto,
    plan,
)
from storage import accounts as acc
from storage.ingest import Incoming, extract_pending, ingest_batch
from tests.mailmaker import mail

# --------------------------------------------------------------------------- a web server


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    server: WebServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.requests.append(
                Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
        status, extra = self.server.answers.get(self.path.split("?")[0], (200, {}))
        payload = b"You have been unsubscribed.\n"
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Set-Cookie", "tracking=1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = _record
    do_GET = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


class WebServer(ThreadingHTTPServer):
    """A recording HTTP server on 127.0.0.1; ``tls=True`` serves HTTPS (trustme CA)."""

    daemon_threads = True

    def __init__(self, *, tls: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self.answers: dict[str, tuple[int, dict[str, str]]] = {}
        self.lock = threading.Lock()
        self.ca: trustme.CA | None = None
        self.scheme = "http"
        if tls:
            self.ca = trustme.CA()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def client_context(self) -> ssl.SSLContext:
        assert self.ca is not None
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def write_ca(self, path: Path) -> Path:
        assert self.ca is not None
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def __enter__(self) -> WebServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(5)


@pytest.fixture
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- parsing


def test_parse_list_unsubscribe_forms() -> None:
    options = parse(
        "<mailto:leave-123@lists.example.org?subject=unsubscribe%20me&body=bye%21>,\r\n"
        " <https://news.example.org/u?t=abc\r\n def>, <http://news.example.org/plain>",
        "List-Unsubscribe=One-Click",
    )
    assert options.https == ("https://news.example.org/u?t=abcdef",)
    assert options.http == ("http://news.example.org/plain",)
    assert options.mailto == (
        Mailto(
            to=("leave-123@lists.example.org",),
            subject="unsubscribe me",
            body="bye!",
            uri="mailto:leave-123@lists.example.org?subject=unsubscribe%20me&body=bye%21",
        ),
    )
    assert options.one_click
    bare = parse("https://x.example/u, MAILTO:off@x.example", None)
    assert bare.https == ("https://x.example/u",)
    assert [m.to for m in bare.mailto] == [("off@x.example",)]
    assert not bare.one_click
    assert parse(None, None).any is False
    broken = parse("<https://[::1/u>, <https://x.example:99999/u>, <https://>", None)
    assert broken.any is False
    assert parse("<https://x.example/u>", " list-unsubscribe = one-click ").one_click
    assert not parse("<https://x.example/u>", "List-Unsubscribe=Maybe").one_click


def test_parse_mailto_details() -> None:
    m = parse_mailto(
        "mailto:a@x.example,b%40x.example?to=c@x.example&cc=evil@x.example&Subject=off"
    )
    assert m is not None
    assert m.to == ("a@x.example", "b@x.example", "c@x.example")
    assert m.subject == "off"
    assert m.body == ""
    assert parse_mailto("mailto:?subject=x") is None
    assert parse_mailto("https://x.example") is None


def test_plan_picks_the_best_way_out() -> None:
    both = parse("<mailto:off@x.example>, <https://x.example/u>", "List-Unsubscribe=One-Click")
    p = plan(both)
    assert (p.method, p.target) == ("one-click", "https://x.example/u")
    assert p.description == "one-click unsubscribe at x.example"
    no_post = parse("<https://x.example/u>, <mailto:off@x.example?subject=stop>", None)
    assert plan(no_post).method == "mailto"
    assert plan(no_post).description == "send an unsubscribe message to off@x.example"
    web_only = plan(parse("<https://x.example/u>", None))
    assert (web_only.method, web_only.target) == ("browser", "https://x.example/u")
    http_post = parse("<http://x.example/u>, <mailto:off@x.example>", "List-Unsubscribe=One-Click")
    assert plan(http_post).method == "mailto"  # a POST in the clear is never sent


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "<http://x.example/u?token=1>",
            "the list offers only a non-https unsubscribe link (http://x.example/u?token=1); "
            "it is not used",
        ),
        (None, "the message offers no way to unsubscribe (no List-Unsubscribe)"),
        ("<ftp://x.example/u>", "the message offers no way to unsubscribe (no List-Unsubscribe)"),
    ],
)
def test_plan_without_a_usable_way_is_a_one_line_error(header: str | None, message: str) -> None:
    with pytest.raises(UnsubscribeError) as err:
        plan(parse(header, "List-Unsubscribe=One-Click"))
    assert str(err.value) == message


def test_loopback_http_only_when_explicitly_allowed() -> None:
    options = parse("<http://127.0.0.1:8080/u>", "List-Unsubscribe=One-Click")
    with pytest.raises(UnsubscribeError, match="non-https"):
        plan(options)
    assert plan(options, allow_http_loopback=True).method == "one-click"
    elsewhere = parse("<http://10.0.0.1/u>", "List-Unsubscribe=One-Click")
    with pytest.raises(UnsubscribeError, match="non-https"):
        plan(elsewhere, allow_http_loopback=True)


# --------------------------------------------------------------------------- the POST


def test_one_click_sends_exactly_one_rfc8058_post(web: WebServer) -> None:
    status = one_click_post(web.url("/unsub?list=news&t=42"), allow_http_loopback=True)
    assert status == "HTTP 200 OK"
    [request] = web.requests
    assert request.method == "POST"
    assert request.path == "/unsub?list=news&t=42"
    assert request.body == ONE_CLICK_BODY == b"List-Unsubscribe=One-Click"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["content-length"] == str(len(ONE_CLICK_BODY))
    for private in ("cookie", "authorization", "referer"):
        assert private not in request.headers


def test_one_click_over_https_with_verified_certificate() -> None:
    with WebServer(tls=True) as server:
        assert one_click_post(server.url("/u"), context=server.client_context()) == "HTTP 200 OK"
        with pytest.raises(UnsubscribeError) as err:
            one_click_post(server.url("/u"))  # the system does not trust the test CA
        assert str(err.value).startswith("cannot unsubscribe at 127.0.0.1: its certificate is not")
        assert [r.body for r in server.requests] == [ONE_CLICK_BODY]


def test_redirects(web: WebServer) -> None:
    other = closed_port()
    web.answers["/see-other"] = (303, {"Location": "/thanks"})
    web.answers["/moved"] = (307, {"Location": "/new"})
    web.answers["/away"] = (308, {"Location": f"http://127.0.0.1:{other}/u"})
    web.answers["/elsewhere"] = (301, {"Location": "https://tracker.example/u"})
    assert one_click_post(web.url("/see-other"), allow_http_loopback=True) == "HTTP 303 See Other"
    assert [r.path for r in web.requests] == ["/see-other"]  # the page is not fetched
    assert one_click_post(web.url("/moved"), allow_http_loopback=True) == "HTTP 200 OK"
    assert [(r.method, r.path, r.body) for r in web.requests[1:]] == [
        ("POST", "/moved", ONE_CLICK_BODY),
        ("POST", "/new", ONE_CLICK_BODY),
    ]
    for path, where in (("/away", "127.0.0.1"), ("/elsewhere", "tracker.example")):
        with pytest.raises(UnsubscribeError) as err:
            one_click_post(web.url(path), allow_http_loopback=True)
        assert str(err.value) == (
            f"cannot unsubscribe at 127.0.0.1: it redirects to {where}, which is not followed"
        )
    assert len(web.requests) == 5


def test_failures_are_one_line_errors(web: WebServer) -> None:
    web.answers["/gone"] = (404, {})
    with pytest.raises(UnsubscribeError) as err:
        one_click_post(web.url("/gone"), allow_http_loopback=True)
    assert (
        str(err.value) == "cannot unsubscribe at 127.0.0.1: the server answered HTTP 404 Not Found"
    )
    with pytest.raises(UnsubscribeError) as err:
        one_click_post(f"http://127.0.0.1:{closed_port()}/u", allow_http_loopback=True)
    assert str(err.value) == "cannot unsubscribe at 127.0.0.1: connection refused"
    with pytest.raises(UnsubscribeError, match="refusing a non-https unsubscribe URL"):
        one_click_post(web.url("/u"))  # http without the explicit test allowance
    with pytest.raises(UnsubscribeError, match="credentials"):
        one_click_post("https://user:pw@x.example/u")
    assert len(web.requests) == 1


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection in the kernel, never answers
        port = listener.getsockname()[1]
        with pytest.raises(UnsubscribeError) as err:
            one_click_post(f"http://127.0.0.1:{port}/u", allow_http_loopback=True, timeout=0.3)
    assert str(err.value) == "cannot unsubscribe at 127.0.0.1: no answer within 0.3 s"


# --------------------------------------------------------------------------- recorded


def store(services: Services, raw: bytes, account: str = "news") -> int:
    """Put one message into a local account's INBOX, content extracted, as sync would."""
    with services.session() as s:
        if any(a.name == account for a in acc.list_accounts(s)):
            account_id = acc.get_account(s, account).id
        else:
            account_id = acc.add_account(s, acc.NewAccount(account, "alice@example.com")).id
        folder = acc.ensure_folder(s, account_id, "INBOX")
        [result] = ingest_batch(s, account_id, folder, [Incoming(raw)])
        extract_pending(s, account_id=account_id)
    return result.message_id


def newsletter(
    msgid: str, unsubscribe: str, post: str | None = "List-Unsubscribe=One-Click"
) -> bytes:
    extra = f"List-Id: Weekly News <news.example.org>\r\nList-Unsubscribe: {unsubscribe}"
    if post:
        extra += f"\r\nList-Unsubscribe-Post: {post}"
    return mail(
        msgid, "This week", sender="News <news@example.org>", to="alice@example.com", extra=extra
    )


def test_one_click_result_is_recorded_for_the_list(services: Services, web: WebServer) -> None:
    first = store(services, newsletter("n1@x", f"<{web.url('/u?id=1')}>"))
    second = store(services, newsletter("n2@x", f"<{web.url('/u?id=2')}>"))
    assert services.unsubscribe_state(first) is None
    before = datetime.now(UTC)
    result = services.unsubscribe(first, allow_http_loopback=True)
    assert (result.method, result.outcome, result.detail) == ("one-click", "done", "HTTP 200 OK")
    assert result.target == web.url("/u?id=1")
    assert [r.path for r in web.requests] == ["/u?id=1"]
    state = services.unsubscribe_state(second)  # another message of the same list
    assert state is not None
    assert (state.method, state.outcome, state.message_id) == ("one-click", "done", first)
    assert state.list_id == "news.example.org"
    assert before - timedelta(seconds=1) <= state.at <= datetime.now(UTC)


def test_a_failed_unsubscribe_changes_nothing(services: Services, web: WebServer) -> None:
    web.answers["/u"] = (500, {})
    mid = store(services, newsletter("n1@x", f"<{web.url('/u')}>"))
    with pytest.raises(UnsubscribeError, match="the server answered HTTP 500"):
        services.unsubscribe(mid, allow_http_loopback=True)
    refused = store(services, newsletter("n2@x", f"<http://127.0.0.1:{closed_port()}/u>"))
    with pytest.raises(UnsubscribeError, match="connection refused"):
        services.unsubscribe(refused, allow_http_loopback=True)
    plain = store(services, newsletter("n3@x", "<http://news.example.org/u>"))
    with pytest.raises(UnsubscribeError, match="non-https"):
        services.unsubscribe(plain)
    for message in (mid, refused, plain):
        assert services.unsubscribe_state(message) is None
    assert services.outbox() == []


def test_browser_link_is_handed_back_and_noted(services: Services) -> None:
    mid = store(services, newsletter("n1@x", "<https://news.example.org/prefs?u=1>", post=None))
    result = services.unsubscribe(mid)
    assert (result.method, result.outcome, result.target) == (
        "browser",
        "link",
        "https://news.example.org/prefs?u=1",
    )
    assert services.outbox() == []


def test_mailto_without_smtp_is_refused(services: Services) -> None:
    mid = store(services, newsletter("n1@x", "<mailto:off@news.example.org>", post=None))
    with pytest.raises(UnsubscribeError, match="account news has no SMTP server"):
        services.unsubscribe(mid)
    assert services.unsubscribe_state(mid) is None
    assert services.outbox() == []
