"""The reader's unsubscribe bar against real servers: a list message arrives through a
private Dovecot; the one-click POST goes (after confirmation, off the GUI thread) to
an HTTPS server started here and trusted through ``SSL_CERT_FILE``; a ``mailto:``
unsubscribe leaves through the outbox to a recording aiosmtpd."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

from app.mailbox import Mailbox
from app.services import Services
from tests.mailmaker import mail
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.test_unsubscribe import ONE_CLICK_BODY, WebServer
from tests.ui.test_rich_invite import arrive
from ui.reader import ReaderPane

pytestmark = pytest.mark.usefixtures("dovecot_available")


def newsletter(
    msgid: str, unsubscribe: str, *, post: bool = True, list_id: str = "news.example.org"
) -> bytes:
    extra = f"List-Id: Weekly News <{list_id}>\r\nList-Unsubscribe: {unsubscribe}"
    if post:
        extra += "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
    return mail(
        msgid, "This week", sender="News <news@example.org>", to="alice@example.com", extra=extra
    )


@pytest.fixture
def reader(qtbot, services: Services, home: Path) -> ReaderPane:
    from ui.app import open_settings

    pane = ReaderPane(Mailbox(services), open_settings(home))
    qtbot.addWidget(pane)
    pane.resize(900, 700)
    pane.show()
    return pane


def _show(qtbot, reader: ReaderPane, mid: int) -> None:
    bar = reader.unsubscribe_bar
    reader.show_message(mid)
    qtbot.waitUntil(lambda: bar.message_id == mid and bar.isVisible(), timeout=20_000)


def _answer(qtbot, reader: ReaderPane, button: QMessageBox.StandardButton) -> str:
    bar = reader.unsubscribe_bar
    bar.button.click()
    box = bar.confirm_box
    assert box is not None
    assert box.isVisible()
    text = box.text()
    box.button(button).click()
    return text


def test_one_click_posts_exactly_once_after_confirmation_and_is_remembered(
    qtbot,
    cli,
    services: Services,
    mail_account: Dovecot,
    reader: ReaderPane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with WebServer(tls=True) as web:
        monkeypatch.setenv("SSL_CERT_FILE", str(web.write_ca(tmp_path / "ca.pem")))
        url = web.url("/unsubscribe?list=weekly&u=alice")
        first, second = arrive(
            cli,
            mail_account,
            newsletter("news-1@x", f"<mailto:off@news.example.org>, <{url}>"),
            newsletter("news-2@x", f"<mailto:off@news.example.org>, <{url}>"),
        )
        bar = reader.unsubscribe_bar
        _show(qtbot, reader, first)
        assert bar.label.text() == "This message is from a mailing list."
        assert bar.button.text() == "Unsubscribe"

        # Cancel: nothing leaves.
        text = _answer(qtbot, reader, QMessageBox.StandardButton.Cancel)
        assert text == "Unsubscribe now? Tidings will send a one-click unsubscribe at 127.0.0.1."
        assert web.requests == []

        # Confirm: one POST with the RFC 8058 body, made off the GUI thread.
        with qtbot.waitSignal(bar.unsubscribed, timeout=15_000) as done:
            _answer(qtbot, reader, QMessageBox.StandardButton.Yes)
        assert done.args[0].outcome == "done"
        [request] = web.requests
        assert (request.method, request.path) == ("POST", "/unsubscribe?list=weekly&u=alice")
        assert request.body == ONE_CLICK_BODY
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert "cookie" not in request.headers
        assert bar.label.text().startswith("Unsubscribed on ")
        assert "(one-click, HTTP 200 OK)" in bar.label.text()

        # Another message of the same list remembers it.
        _show(qtbot, reader, second)
        qtbot.waitUntil(lambda: bar.label.text().startswith("Unsubscribed on "), timeout=10_000)
        assert bar.button.text() == "Unsubscribe again"
        assert len(web.requests) == 1


def test_mailto_unsubscribe_goes_through_the_outbox(
    qtbot,
    cli,
    mail_account: Dovecot,
    smtp: SmtpServer,
    reader: ReaderPane,
) -> None:
    [mid] = arrive(
        cli,
        mail_account,
        newsletter("news-3@x", "<mailto:leave-8812@lists.example.org?subject=unsub>", post=False),
    )
    bar = reader.unsubscribe_bar
    _show(qtbot, reader, mid)
    with qtbot.waitSignal(bar.unsubscribed, timeout=15_000) as done:
        text = _answer(qtbot, reader, QMessageBox.StandardButton.Yes)
    assert text == (
        "Unsubscribe? Tidings will send an unsubscribe message to leave-8812@lists.example.org."
    )
    assert done.args[0].outcome == "queued"
    assert bar.label.text().startswith("Unsubscribe message queued on ")
    r = cli("sync", "--once")
    assert r.code == 0, r.err
    [got] = smtp.received
    assert got.rcpt_tos == ("leave-8812@lists.example.org",)
    assert b"Subject: unsub" in got.data


class _Browser(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toString())


def test_https_only_link_opens_in_the_browser_and_plain_http_is_refused(
    qtbot, cli, mail_account: Dovecot, reader: ReaderPane
) -> None:
    web_only, plain = arrive(
        cli,
        mail_account,
        newsletter("news-4@x", "<https://news.example.org/leave?u=alice>", post=False),
        newsletter(
            "news-5@x", "<http://old.example.org/leave?u=alice>", post=False, list_id="old.list"
        ),
    )
    browser = _Browser()
    QDesktopServices.setUrlHandler("https", browser, "open")
    try:
        bar = reader.unsubscribe_bar
        _show(qtbot, reader, web_only)
        with qtbot.waitSignal(bar.unsubscribed, timeout=15_000):
            _answer(qtbot, reader, QMessageBox.StandardButton.Yes)
        assert browser.opened == ["https://news.example.org/leave?u=alice"]
        assert bar.label.text().startswith("Unsubscribe page opened on ")
    finally:
        QDesktopServices.unsetUrlHandler("https")

    _show(qtbot, reader, plain)
    assert bar.label.text() == (
        "This message is from a mailing list, but: the list offers only a non-https "
        "unsubscribe link (http://old.example.org/leave?u=alice); it is not used."
    )
    assert not bar.button.isVisible()
