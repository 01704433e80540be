"""The conversation view in the main window, end to end: a 30-message thread arrives
through a private Dovecot, shows as one page with read messages collapsed and quoted
text folded, the quick reply leaves through the outbox (``tidings sync --once``) to a
recording aiosmtpd, threaded under the newest message; the conversation prints to PDF.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from PySide6.QtWebEngineCore import QWebEngineScript

from app.services import Services
from tests.mailmaker import mail
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.ui.test_rich_invite import arrive
from ui.conversation import fold_html, fold_plain

pytestmark = pytest.mark.usefixtures("dovecot_available")

APP_WORLD = int(QWebEngineScript.ScriptWorldId.ApplicationWorld.value)
SIZE = 30


def thread_mail(n: int) -> bytes:
    """Message n of a reply chain: new words, the previous message quoted, a signature."""
    who = ("Bob <bob@example.org>", "Carol <carol@example.org>")[n % 2]
    body = f"Reply number {n}: let us meet at {10 + n % 8}:00.\n"
    if n:
        body += (
            f"\nOn Mon, 2 Nov 2026, someone wrote:\n> Reply number {n - 1}: earlier words.\n"
            "> And a second quoted line.\n"
        )
    body += f"\n-- \n{who.split()[0]}, Planning Department\n"
    refs = " ".join(f"<c{k}@x>" for k in sorted({0, max(0, n - 3), n - 2, n - 1}) if 0 <= k < n)
    return mail(
        f"c{n}@x",
        "Planning" if n == 0 else "Re: Planning",
        sender=who,
        to="Alice <alice@example.com>",
        date=f"Mon, 02 Nov 2026 {8 + n // 6:02d}:{(n % 6) * 10:02d}:00 +0000",
        refs=refs or None,
        in_reply_to=f"<c{n - 1}@x>" if n else None,
        body=body,
    )


def _js(qtbot, view, script: str) -> object:
    out: list[object] = []
    view.page.runJavaScript(script, APP_WORLD, out.append)
    qtbot.waitUntil(lambda: bool(out), timeout=10_000)
    return out[0]


@pytest.fixture
def window(qtbot, cli, services: Services, home: Path, mail_account: Dovecot):
    from ui.app import open_settings
    from ui.mainwindow import MainWindow

    ids = arrive(cli, mail_account, *(thread_mail(n) for n in range(SIZE)))
    assert len(ids) == SIZE
    # Everything read except one message in the middle and the newest.
    r = cli("mark", *(str(i) for i in ids if i not in (ids[10], ids[-1])), "--read")
    assert r.code == 0, r.err
    settings = open_settings(home)
    settings.setValue("list/threads", True)
    settings.setValue("compose/undo_seconds", 0)
    w = MainWindow(services, settings, start_worker=False)
    w.shown_log = []
    w.conversation.conversation_shown.connect(lambda t, ms: w.shown_log.append((t, ms)))
    qtbot.addWidget(w)
    w.resize(1300, 900)
    w.show()
    w.thread_ids = ids
    yield w
    w.shutdown()


def test_thread_shows_as_one_folded_conversation_and_quick_reply_is_threaded(
    qtbot, window, cli, services: Services, smtp: SmtpServer, tmp_path: Path
) -> None:
    ids = window.thread_ids
    view = window.conversation
    qtbot.waitUntil(lambda: bool(window.shown_log), timeout=20_000)
    assert window.reading.currentWidget() is view
    assert window.list_model.rowCount() == 1  # one conversation row
    conv = view.conversation
    assert conv is not None
    assert [s.id for s in conv.summaries] == ids

    # One page: 30 messages, the unread one and the newest open, the rest one line each.
    assert _js(qtbot, view, "document.querySelectorAll('details.tidings-msg').length") == SIZE
    opened = _js(
        qtbot,
        view,
        "Array.from(document.querySelectorAll('details.tidings-msg[open]'))"
        ".map(e => e.id).join(',')",
    )
    assert opened == f"m{ids[10]},m{ids[-1]}"
    # In the two open messages quoted text and signature are folded, none open; the
    # 28 collapsed ones carry their new words only (their quote is the message above).
    assert _js(qtbot, view, "document.querySelectorAll('details.tidings-quote').length") == 4
    assert _js(qtbot, view, "document.querySelectorAll('.tidings-trimmed').length") == SIZE - 2
    assert _js(qtbot, view, "document.querySelectorAll('details.tidings-quote[open]').length") == 0
    shown = _js(qtbot, view, f"document.querySelector('#m{ids[-1]} .tidings-body').innerText")
    assert isinstance(shown, str)
    assert "Reply number 29: let us meet at 15:00." in shown
    assert "Reply number 28" not in shown  # folded away
    assert "Planning Department" not in shown
    assert "show quoted text" in shown
    collapsed = _js(qtbot, view, f"document.querySelector('#m{ids[3]}').innerText")
    assert isinstance(collapsed, str)
    assert "Carol" in collapsed  # the one-line summary
    assert "Reply number 3" in collapsed
    assert "earlier words" not in collapsed

    # Unread messages become read after being shown a moment.
    qtbot.waitUntil(
        lambda: all("seen" in services.message(i).summary.flags for i in (ids[10], ids[-1])),
        timeout=10_000,
    )

    # Second open: every message comes from the cache.
    hits = view.cache.hits
    window.shown_log.clear()
    view.show_thread(conv.thread_id, conv.newest.account)
    qtbot.waitUntil(lambda: bool(window.shown_log), timeout=10_000)
    assert view.cache.hits - hits == SIZE
    assert window.shown_log[0][1] < 2000  # generous under a loaded test machine; see bench

    # Quick reply: through compose and the outbox, threaded under the newest message.
    view.reply_box.setPlainText("Sounds good, see you then.")
    with qtbot.waitSignal(view.reply_queued, timeout=10_000):
        view.send_button.click()
    assert view.reply_box.toPlainText() == ""
    r = cli("sync", "--once")
    assert r.code == 0, r.err
    [got] = smtp.received
    assert got.rcpt_tos == ("carol@example.org",)  # message 29 came from Carol
    msg = BytesParser(policy=policy.default).parsebytes(got.data)
    assert msg["Subject"] == "Re: Planning"
    assert msg["In-Reply-To"] == "<c29@x>"
    refs = msg["References"].split()
    assert refs[0] == "<c0@x>"
    assert refs[-1] == "<c29@x>"
    text = msg.get_body(("plain",)).get_content()
    assert text.startswith("Sounds good, see you then.")
    assert "> Reply number 29" in text

    # The whole conversation prints, every message open.
    from PySide6.QtPdf import QPdfDocument

    target = tmp_path / "conversation.pdf"
    job = window.save_pdf(str(target))
    with qtbot.waitSignal(job.finished, timeout=20_000) as finished:
        pass
    assert finished.args == [True, str(target)]
    doc = QPdfDocument()
    doc.load(str(target))
    assert doc.pageCount() >= 2
    text = "".join(doc.getAllText(p).text() for p in range(doc.pageCount()))
    assert "Planning" in text
    assert "Reply number 0: let us meet" in text  # collapsed on screen, open on paper
    doc.close()


def test_fold_plain_splits_new_words_quote_and_signature() -> None:
    main, quote, sig = fold_plain(
        "Yes, Thursday works.\n\nOn Tue, 3 Mar 2026 at 10:00, Bob Example\n<bob@example.org> "
        "wrote:\n> Does Thursday work?\n>\n> Bob\n\n-- \nAlice\n"
    )
    assert main == "Yes, Thursday works."
    assert quote.startswith("On Tue, 3 Mar 2026 at 10:00, Bob Example")
    assert quote.endswith("> Bob")
    assert sig == "-- \nAlice"
    # Interleaved answers stay visible; only the trailing quote folds.
    main, quote, _ = fold_plain("> question one\nanswer one\n> question two\nanswer two\n")
    assert main == "> question one\nanswer one\n> question two\nanswer two"
    assert quote == ""
    main, quote, _ = fold_plain("Fine.\n\n-----Original Message-----\nFrom: Bob\n\nHi\n")
    assert (main, quote) == ("Fine.", "-----Original Message-----\nFrom: Bob\n\nHi")


def test_fold_html_wraps_whole_quote_elements() -> None:
    html = (
        '<div dir="ltr">New words<br></div><div class="gmail_quote"><div>On Mon, Bob wrote:'
        "</div><blockquote>old <b>words</b><blockquote>older</blockquote></blockquote></div>"
        '<div class="gmail_signature">Alice</div>'
    )
    folded, n = fold_html(html)
    assert n == 2
    assert folded.startswith('<div dir="ltr">New words<br></div><details class="tidings-quote">')
    assert folded.count("<details") == 2
    assert '<div class="gmail_quote"><div>On Mon, Bob wrote:</div><blockquote>' in folded
    outlook = (
        '<div><p>Answer</p><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">'
        "From: Bob</div><div>old text</div></div><p>after</p>"
    )
    folded, n = fold_html(outlook)
    assert n == 1
    assert folded == (
        '<div><p>Answer</p><details class="tidings-quote"><summary>··· show quoted text'
        '</summary><div id="appendonsend"></div><hr><div id="divRplyFwdMsg">From: Bob</div>'
        "<div>old text</div></details></div><p>after</p>"
    )
