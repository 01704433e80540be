"""The reader: nothing remote until allowed, cid: images from the store, no scripts, no
navigation on link clicks, plain text with links and quote levels."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PySide6.QtCore import QBuffer, QIODevice, QUrl
from PySide6.QtGui import QColor, QImage
from PySide6.QtWebEngineCore import QWebEngineScript

from app.mailbox import Mailbox, body_url, plain_to_html, sanitize_html
from app.services import Services
from storage import accounts as acc
from storage.ingest import Incoming, extract_all, ingest_batch
from ui.reader import ReaderPane

APP_WORLD = int(QWebEngineScript.ScriptWorldId.ApplicationWorld.value)


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        png = _png()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(png)))
        self.end_headers()
        self.wfile.write(png)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def web_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _png(color: str = "#ff0000", size: int = 8) -> bytes:
    img = QImage(size, size, QImage.Format.Format_RGB32)
    img.fill(QColor(color))
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    return bytes(buf.data().data())


def _html_mail(base: str) -> bytes:
    png = base64.encodebytes(_png("#00aa00", 12)).decode()
    html = f"""<html><head><script>document.title = 'pwned';</script></head>
<body onload="document.title='pwned-onload'">
<p id="hello">Hello <b>reader</b></p>
<img id="remote" src="{base}/pixel.png?track=1" width="1" height="1">
<img id="inline" src="cid:logo@tidings">
<a id="link" href="https://example.org/real-target">Click me</a>
<script>document.body.innerHTML = 'replaced';</script>
</body></html>"""
    return (
        "From: News <news@example.org>\r\nTo: you@tidings.example\r\n"
        "Subject: Remote test\r\nDate: Mon, 1 Jan 2035 10:00:00 +0000\r\n"
        "Message-ID: <remote@test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/related; boundary="B"\r\n\r\n'
        '--B\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n'
        f"{html}\r\n"
        "--B\r\nContent-Type: image/png\r\nContent-ID: <logo@tidings>\r\n"
        "Content-Transfer-Encoding: base64\r\nContent-Disposition: inline\r\n\r\n"
        f"{png}\r\n--B--\r\n"
    ).encode()


def _store(services: Services, raw: bytes) -> int:
    with services.session() as s:
        account = acc.get_account(s, "demo").id
        inbox = next(f.id for f in services.folders() if f.role == "inbox")
        [res] = ingest_batch(s, account, inbox, [Incoming(raw)])
    extract_all(services.factory, account)
    return res.message_id


def _js(qtbot, reader: ReaderPane, script: str) -> object:
    out: list[object] = []
    reader.page.runJavaScript(script, APP_WORLD, out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=10_000)
    return out[0]


@pytest.fixture
def reader(qtbot, demo_services: Services, settings) -> ReaderPane:
    pane = ReaderPane(Mailbox(demo_services), settings)
    qtbot.addWidget(pane)
    pane.resize(800, 600)
    pane.show()
    return pane


def test_remote_blocked_until_allowed_cid_shown_no_script_no_navigation(
    qtbot, reader: ReaderPane, demo_services: Services, web_server
) -> None:
    base, hits = web_server
    mid = _store(demo_services, _html_mail(base))
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.show_message(mid)
    # The remote image was asked for, blocked and recorded; the server saw nothing.
    qtbot.waitUntil(lambda: bool(reader.blocker.blocked_for(mid)), timeout=10_000)
    assert any("/pixel.png?track=1" in u for u in reader.blocker.blocked_for(mid))
    assert hits == []
    assert reader.remote_bar.isVisible()
    assert "blocked" in reader.remote_label.text()
    # The cid: image came from the local store and decoded.
    qtbot.waitUntil(
        lambda: _js(qtbot, reader, "document.getElementById('inline').naturalWidth") == 12,
        timeout=10_000,
    )
    # Scripts never ran (and were removed); handlers were stripped.
    assert _js(qtbot, reader, "document.title") not in ("pwned", "pwned-onload")
    body = _js(qtbot, reader, "document.documentElement.outerHTML")
    assert isinstance(body, str)
    assert "<script" not in body
    assert "onload" not in body
    assert _js(qtbot, reader, "document.getElementById('hello').textContent") == "Hello reader"
    # A click on a link is handed to the window and the view stays where it is.
    with qtbot.waitSignal(reader.link_requested, timeout=10_000) as clicked:
        _js(qtbot, reader, "document.getElementById('link').click(); 1")
    assert clicked.args[0] == QUrl("https://example.org/real-target")
    assert reader.page.url() == QUrl(body_url(mid))
    assert hits == []
    # "Load remote content": now (and only now) the request goes out.
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.allow_remote()
    qtbot.waitUntil(lambda: bool(hits), timeout=10_000)
    assert hits[0] == "/pixel.png?track=1"
    assert not reader.remote_bar.isVisible()


def test_always_for_sender_is_remembered(
    qtbot, reader: ReaderPane, demo_services: Services, settings, web_server
) -> None:
    base, hits = web_server
    mid = _store(demo_services, _html_mail(base))
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.show_message(mid)
    qtbot.waitUntil(lambda: bool(reader.blocker.blocked_for(mid)), timeout=10_000)
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.allow_sender()
    assert reader.sender_allowed("NEWS@example.org")
    qtbot.waitUntil(lambda: bool(hits), timeout=10_000)


def test_mark_read_after_a_delay(qtbot, reader: ReaderPane, demo_services: Services) -> None:
    inbox = next(f.id for f in demo_services.folders() if f.role == "inbox")
    rows = Mailbox(demo_services).folder_source([inbox], threads=False).page(None, 100)
    unread = next(r.summary.id for r in rows if "seen" not in r.summary.flags)
    with qtbot.waitSignal(reader.mark_read_requested, timeout=10_000) as sig:
        reader.show_message(unread)
    assert sig.args == [unread]


def test_attachment_save_as_uses_the_sanitised_name(
    qtbot, reader: ReaderPane, demo_services: Services, tmp_path
) -> None:
    raw = (
        b"From: a@example.org\r\nTo: you@tidings.example\r\nSubject: att\r\n"
        b"Date: Mon, 1 Jan 2035 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--B\r\n"
        b'Content-Type: text/plain; name="../../.bashrc"\r\n'
        b'Content-Disposition: attachment; filename="../../.bashrc"\r\n\r\n'
        b"echo hi\r\n--B--\r\n"
    )
    mid = _store(demo_services, raw)
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.show_message(mid)
    [att] = reader.document.attachments
    assert reader.attach_bar.isVisible()
    saved = reader.save_attachment(att, str(tmp_path))
    assert saved is not None
    assert saved.parent == tmp_path
    assert saved.name == "bashrc"
    assert saved.read_bytes().strip() == b"echo hi"
    opened = reader.export_attachment(att)
    assert reader.temp_dir() in opened.parents
    assert (reader.temp_dir().stat().st_mode & 0o777) == 0o700
    reader.cleanup()
    assert not opened.exists()


def test_plain_text_links_and_quote_levels() -> None:
    html = plain_to_html("See https://example.org/a_(b). ok\n> quoted\n>> deeper\nback <b>")
    assert '<a href="https://example.org/a_(b)">https://example.org/a_(b)</a>.' in html
    assert html.count("<blockquote>") == 2
    assert "&lt;b&gt;" in html


def test_sanitizer_rewrites_cid_and_counts_remote() -> None:
    clean, remote, cids = sanitize_html(
        '<img src="cid:a%40b"><img src="https://t.example/p.gif"><div style="background:'
        'url(//x.example/y.png)">x</div><iframe src="https://e"></iframe><form><input></form>',
        7,
    )
    assert 'src="tidings://message/7/cid/a%40b"' in clean
    assert cids == {"a@b"}
    assert remote == 2
    assert "iframe" not in clean
    assert "<form" not in clean
    assert "<input" not in clean
