"""``tidings show --invite``, ``rsvp``, ``unsubscribe`` and ``attachments`` end to end.

Mail arrives the real way (a private Dovecot, ``tidings sync``); answers and
unsubscribe messages leave the real way (the outbox, a recording aiosmtpd); the
one-click POST goes to an HTTPS server started here, trusted through
``SSL_CERT_FILE`` exactly as a system CA would be.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import icalendar
import pytest

from app.services import Services
from tests.mailmaker import mail
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import Received, SmtpServer
from tests.test_invites import berlin, ics, invite_mail  # noqa: F401 - berlin is a fixture
from tests.test_unsubscribe import ONE_CLICK_BODY, WebServer, closed_port

pytestmark = pytest.mark.usefixtures("dovecot_available")


@pytest.fixture
def work(mail_account: Dovecot) -> Dovecot:
    return mail_account


def _arrive(cli, server: Dovecot, *raws: bytes) -> list[int]:
    """Deliver to the server, sync, and return the new local ids in delivery order."""
    before = {m["id"] for m in map(json.loads, cli("list", "--json").out.splitlines())}
    for raw in raws:
        server.deliver(raw)
    r = cli("sync")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in cli("list", "--json").out.splitlines()]
    return sorted(m["id"] for m in rows if m["id"] not in before)


def _calendar_of(message: Received) -> icalendar.Event:
    msg = BytesParser(policy=policy.default).parsebytes(message.data)
    assert msg.get_content_type() == "multipart/alternative"
    [part] = [p for p in msg.iter_parts() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REPLY"
    cal = icalendar.Calendar.from_ical(part.get_content().encode("utf-8"))
    assert str(cal["METHOD"]) == "REPLY"
    [event] = cal.walk("VEVENT")
    return event


def _one_line_error(r, text: str) -> None:
    assert r.code == 1
    assert r.err.splitlines() == [f"tidings: error: {text}"]


# --------------------------------------------------------------------------- invitations


def test_show_invite_in_local_time(cli, work: Dovecot, berlin: None) -> None:  # noqa: F811
    calendar = ics(
        sequence=1,
        rrule="FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270303T225959Z",
        extra=("DESCRIPTION:Agenda: numbers\\, then hiring.",),
    )
    [mid] = _arrive(cli, work, invite_mail(calendar))
    r = cli("show", str(mid), "--invite")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "Updated invitation: Weekly sync",
        "When:        Monday 16 March 2026, 14:00–15:00 CET "
        "(organiser's time: Monday 16 March 2026, 09:00–10:00 America/New_York)",
        "Repeats:     every week on Monday and Wednesday until 3 March 2027",
        "Where:       Room 4",
        "Organiser:   Bob Organiser <bob@example.org>",
        "Attendees:   Bob Organiser <bob@example.org>: accepted",
        "             Alice Ämber <Alice@Example.com> (you): needs action",
        "             Carol <carol@example.org>: tentative, optional",
        "             Room 4 <room4@example.org>: accepted",
        f"Answer:      tidings rsvp {mid} accept|tentative|decline",
        "",
        "Agenda: numbers, then hiring.",
    ]
    as_json = json.loads(cli("show", str(mid), "--invite", "--json").out)
    assert as_json["start"] == "2026-03-16T14:00:00+01:00"
    assert as_json["organizer_start"] == "2026-03-16T09:00:00-04:00"
    assert as_json["uid"] == "evt-1@example.org"
    assert as_json["sequence"] == 1
    assert as_json["kind"] == "update"
    assert as_json["response"] is None
    assert [a["partstat"] for a in as_json["attendees"]] == [
        "ACCEPTED",
        "NEEDS-ACTION",
        "TENTATIVE",
        "ACCEPTED",
    ]


def test_rsvp_accept_sends_an_imip_reply_to_the_organiser(
    cli,
    services: Services,
    work: Dovecot,
    smtp: SmtpServer,
    berlin: None,  # noqa: F811
) -> None:
    [mid] = _arrive(cli, work, invite_mail(ics(sequence=3)))
    r = cli("rsvp", str(mid), "accept", "--comment", "See you there", "--now")
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["accepted: Weekly sync; the answer was sent to bob@example.org"]
    [got] = smtp.received
    assert got.mail_from == "alice@example.com"
    assert got.rcpt_tos == ("bob@example.org",)
    msg = BytesParser(policy=policy.default).parsebytes(got.data)
    assert msg["Subject"] == "Accepted: Weekly sync"
    assert msg["In-Reply-To"] == "<invite-1@example.org>"
    event = _calendar_of(got)
    assert str(event["UID"]) == "evt-1@example.org"
    assert int(event["SEQUENCE"]) == 3
    attendee = event["ATTENDEE"]
    assert str(attendee).lower() == "mailto:alice@example.com"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert str(event["ORGANIZER"]) == "mailto:bob@example.org"
    assert str(event["COMMENT"]) == "See you there"
    # The card shows the answer; after the next sync the invitation is answered.
    shown = cli("show", str(mid), "--invite").out
    assert any(
        line.startswith("You:         accepted (") and line.endswith(", sent)")
        for line in shown.splitlines()
    )
    assert cli("sync").code == 0
    [row] = [m for m in map(json.loads, cli("list", "--json").out.splitlines()) if m["id"] == mid]
    assert "answered" in row["flags"]


def test_a_due_answer_leaves_with_tidings_sync(
    cli, services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    [mid] = _arrive(cli, work, invite_mail(ics()))
    services.rsvp(mid, "tentative", send_at=datetime.now(UTC))
    assert smtp.received == []
    assert cli("sync").code == 0
    [got] = smtp.received
    assert got.rcpt_tos == ("bob@example.org",)
    assert _calendar_of(got)["ATTENDEE"].params["PARTSTAT"] == "TENTATIVE"


def test_rsvp_without_the_undo_window_waits(cli, work: Dovecot, smtp: SmtpServer) -> None:
    [mid] = _arrive(cli, work, invite_mail(ics()))
    r = cli("rsvp", str(mid), "decline")
    assert r.code == 0, r.err
    assert r.out.startswith("declined: Weekly sync; the answer to bob@example.org is queued as")
    [item] = [json.loads(line) for line in cli("outbox", "--json").out.splitlines()]
    assert item["state"] == "scheduled"
    assert cli("outbox", "cancel", str(item["id"])).code == 0
    assert "You:" not in cli("show", str(mid), "--invite").out
    assert cli("sync").code == 0
    assert smtp.received == []


def test_invite_bad_input_is_one_line_and_changes_nothing(
    cli, work: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    plain, broken, cancelled = _arrive(
        cli,
        work,
        mail("plain@x", "Lunch?"),
        invite_mail(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", msgid="broken@x"),
        invite_mail(ics(method="CANCEL", sequence=2), msgid="cancel@x", method="CANCEL"),
    )
    _one_line_error(
        cli("show", str(plain), "--invite"), f"message {plain} has no calendar invitation"
    )
    _one_line_error(
        cli("rsvp", str(plain), "accept"), f"message {plain} has no calendar invitation"
    )
    _one_line_error(
        cli("rsvp", str(broken), "accept"),
        "malformed calendar invitation: it has no event (VEVENT)",
    )
    _one_line_error(
        cli("rsvp", str(cancelled), "accept"),
        "cannot answer this invitation: nothing to answer (METHOD:CANCEL)",
    )
    assert cli("show", str(cancelled), "--invite").out.startswith("Cancelled:   Weekly sync")
    assert cli("rsvp", str(plain), "maybe").code == 2
    assert cli("outbox", "--json").out == ""
    assert cli("sync").code == 0
    assert smtp.received == []


def test_save_ics(cli, work: Dovecot, tmp_path: Path) -> None:
    calendar = ics()
    [mid] = _arrive(cli, work, invite_mail(calendar))
    r = cli("show", str(mid), "--invite", "--save-ics", str(tmp_path))
    assert r.code == 0, r.err
    assert (tmp_path / "Weekly sync.ics").read_bytes() == calendar
    assert f"Saved:       {tmp_path / 'Weekly sync.ics'}" in r.out.splitlines()


# --------------------------------------------------------------------------- unsubscribe


def _newsletter(msgid: str, unsubscribe: str, post: bool = True) -> bytes:
    extra = f"List-Id: Weekly News <news.example.org>\r\nList-Unsubscribe: {unsubscribe}"
    if post:
        extra += "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
    return mail(
        msgid, "This week", sender="News <news@example.org>", to="alice@example.com", extra=extra
    )


def test_one_click_unsubscribe_posts_once_after_confirmation(
    cli, work: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with WebServer(tls=True) as web:
        monkeypatch.setenv("SSL_CERT_FILE", str(web.write_ca(tmp_path / "ca.pem")))
        url = web.url("/unsubscribe?list=weekly&u=alice")
        [mid] = _arrive(
            cli, work, _newsletter("news-1@x", f"<mailto:off@news.example.org>, <{url}>")
        )
        r = cli("unsubscribe", str(mid))
        assert r.code == 2
        assert r.err.splitlines() == [
            "tidings: error: unsubscribing from news.example.org needs confirmation: add --yes"
        ]
        assert web.requests == []
        r = cli("unsubscribe", str(mid), "--yes")
        assert r.code == 0, r.err
        assert r.out.splitlines() == [
            "unsubscribed from news.example.org: 127.0.0.1 answered HTTP 200 OK"
        ]
        [request] = web.requests
        assert request.method == "POST"
        assert request.path == "/unsubscribe?list=weekly&u=alice"
        assert request.body == ONE_CLICK_BODY
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert "cookie" not in request.headers
    assert cli("outbox", "--json").out == ""  # the mailto was not used


def test_mailto_unsubscribe_arrives_at_the_smtp_server(
    cli, work: Dovecot, smtp: SmtpServer
) -> None:
    [mid] = _arrive(
        cli,
        work,
        _newsletter(
            "news-1@x",
            "<mailto:leave-8812@lists.example.org?subject=unsubscribe%20alice&body=stop>",
            post=False,
        ),
    )
    r = cli("unsubscribe", str(mid), "--yes")
    assert r.code == 0, r.err
    assert r.out.startswith("unsubscribe message from news.example.org queued (outbox ")
    assert cli("sync").code == 0
    [got] = smtp.received
    assert got.rcpt_tos == ("leave-8812@lists.example.org",)
    assert got.mail_from == "alice@example.com"
    msg = BytesParser(policy=policy.default).parsebytes(got.data)
    assert msg["Subject"] == "unsubscribe alice"
    assert msg.get_content().strip() == "stop"


def test_unsubscribe_failures_are_one_line_and_change_nothing(
    cli, services: Services, work: Dovecot, smtp: SmtpServer
) -> None:
    port = closed_port()
    plain, away, none = _arrive(
        cli,
        work,
        _newsletter("n1@x", "<http://news.example.org/u?id=1>"),
        _newsletter("n2@x", f"<https://127.0.0.1:{port}/u>"),
        mail("n3@x", "no list"),
    )
    _one_line_error(
        cli("unsubscribe", str(plain), "--yes"),
        "the list offers only a non-https unsubscribe link (http://news.example.org/u?id=1); "
        "it is not used",
    )
    _one_line_error(
        cli("unsubscribe", str(away), "--yes"),
        "cannot unsubscribe at 127.0.0.1: connection refused",
    )
    _one_line_error(
        cli("unsubscribe", str(none), "--yes"),
        "the message offers no way to unsubscribe (no List-Unsubscribe)",
    )
    for mid in (plain, away, none):
        assert services.unsubscribe_state(mid) is None
    assert cli("outbox", "--json").out == ""
    assert smtp.received == []


def test_browser_only_link_is_printed(cli, services: Services, work: Dovecot) -> None:
    [mid] = _arrive(cli, work, _newsletter("n1@x", "<https://news.example.org/prefs>", post=False))
    r = cli("unsubscribe", str(mid))  # nothing is sent: no confirmation needed
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "to unsubscribe from news.example.org, open this link in your browser: "
        "https://news.example.org/prefs"
    ]
    state = services.unsubscribe_state(mid)
    assert state is not None
    assert (state.method, state.outcome) == ("browser", "link")


# --------------------------------------------------------------------------- attachments


def _with_attachments() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Mallory <mallory@example.net>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "your files"
    msg["Message-ID"] = "<files@example.net>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    msg.set_content("See attached.\n")
    msg.add_attachment(
        b"alias ls='rm -rf ~'\n", maintype="text", subtype="plain", filename="../../.bashrc"
    )
    msg.add_attachment(
        b"MZ\x90\x00", maintype="application", subtype="pdf", filename="invoice.pdf.exe"
    )
    return msg.as_bytes(policy=policy.SMTP)


def test_attachments_list_and_save(cli, work: Dovecot, tmp_path: Path) -> None:
    [mid] = _arrive(cli, work, _with_attachments())
    r = cli("attachments", str(mid))
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "     2  bashrc  text/plain, 20 B",
        "     3  invoice.pdf.exe  application/pdf, 4 B",
        "        warning: invoice.pdf.exe is a .exe file that looks like a .pdf: "
        "opening it can run code",
    ]
    target = tmp_path / "out" / "Downloads"
    r = cli("attachments", str(mid), "--save", str(target), "--json")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [(row["filename"], row["extension"], row["risky"]) for row in rows] == [
        ("bashrc", "", False),
        ("invoice.pdf.exe", ".exe", True),
    ]
    assert [Path(row["path"]) for row in rows] == [
        target.resolve() / "bashrc",
        target.resolve() / "invoice.pdf.exe",
    ]
    assert (target / "bashrc").read_bytes() == b"alias ls='rm -rf ~'\n"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == [
        "Downloads",
        "bashrc",
        "invoice.pdf.exe",
    ]
    r = cli("attachments", str(mid), "--save", str(target), "--part", "2")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        f"     2  bashrc  text/plain, 20 B  -> {target.resolve() / 'bashrc (2)'}"
    ]
    _one_line_error(
        cli("attachments", str(mid), "--save", str(target), "--part", "7"),
        "no attachment with part '7' (the message has: 2, 3)",
    )
    assert len(list(target.iterdir())) == 3
