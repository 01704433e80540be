"""The invitation card in the reader, end to end: the invitation arrives through a
private Dovecot (``tidings sync``), the card shows it in the user's time zone (pinned
to Europe/Berlin), Accept queues an iMIP REPLY, and ``tidings sync --once`` sends it to
a recording aiosmtpd."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import icalendar
import pytest

from app.mailbox import Mailbox
from app.services import Services
from storage import outbox
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from tests.test_invites import berlin, ics, invite_mail  # noqa: F401 - berlin is a fixture
from ui.reader import ReaderPane

pytestmark = pytest.mark.usefixtures("dovecot_available")

WHEN = (
    "Monday 16 March 2026, 14:00–15:00 CET "
    "(organiser's time: Monday 16 March 2026, 09:00–10:00 America/New_York)"
)


def arrive(cli, server: Dovecot, *raws: bytes) -> list[int]:
    """Deliver to the server, sync, and return the new local ids in delivery order."""
    before = {m["id"] for m in map(json.loads, cli("list", "--json").out.splitlines())}
    for raw in raws:
        server.deliver(raw)
    r = cli("sync")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in cli("list", "--json").out.splitlines()]
    return sorted(m["id"] for m in rows if m["id"] not in before)


@pytest.fixture
def reader(qtbot, services: Services, home: Path) -> ReaderPane:
    from ui.app import open_settings

    settings = open_settings(home)
    settings.setValue("compose/undo_seconds", 0)
    pane = ReaderPane(Mailbox(services), settings)
    qtbot.addWidget(pane)
    pane.resize(900, 700)
    pane.show()
    return pane


def _calendar(data: bytes) -> icalendar.Event:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    [part] = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REPLY"
    cal = icalendar.Calendar.from_ical(part.get_content().encode("utf-8"))
    assert str(cal["METHOD"]) == "REPLY"
    [event] = cal.walk("VEVENT")
    return event


def test_card_in_local_time_and_accept_sends_a_reply_to_the_organiser(
    qtbot,
    cli,
    services: Services,
    mail_account: Dovecot,
    smtp: SmtpServer,
    reader: ReaderPane,
    berlin: None,  # noqa: F811
) -> None:
    [mid] = arrive(cli, mail_account, invite_mail(ics(sequence=2)))
    card = reader.invite_card
    with qtbot.waitSignal(card.invite_loaded, timeout=20_000) as loaded:
        reader.show_message(mid)
    assert loaded.args[0] is not None
    assert card.isVisible()
    assert card.heading.text() == "Updated invitation"
    assert card.title.text() == "Weekly sync"
    assert card.when.text() == WHEN
    assert card.where.text() == "Room 4"
    assert card.organizer.text() == "Bob Organiser <bob@example.org>"
    assert card.attendees.text().splitlines() == [
        "Bob Organiser <bob@example.org>: accepted, chair",
        "Alice Ämber <Alice@Example.com> (you): needs action",
        "Carol <carol@example.org>: tentative, optional",
        "Room 4 <room4@example.org>: accepted",
    ]
    assert not card.repeats.isVisible()  # a single event: no "Repeats" row
    assert all(b.isVisible() and b.isEnabled() for b in card.answer_buttons)

    with qtbot.waitSignal(card.answered, timeout=10_000) as answered:
        card.accept_button.click()
    item = answered.args[0]
    qtbot.waitUntil(lambda: card.state.text().startswith("You accepted"), timeout=10_000)
    assert card.accept_button.text() == "✓ Accept"
    [queued] = [o for o in services.outbox() if o.id == item]
    assert (queued.to, queued.subject) == (("bob@example.org",), "Accepted: Weekly sync")
    with services.reading() as s:
        event = _calendar(outbox.raw_of(s, item))
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"

    # The outbox runs (tidings sync --once): the REPLY reaches the organiser.
    r = cli("sync", "--once")
    assert r.code == 0, r.err
    [got] = smtp.received
    assert got.rcpt_tos == ("bob@example.org",)
    assert got.mail_from == "alice@example.com"
    event = _calendar(got.data)
    assert str(event["UID"]) == "evt-1@example.org"
    assert int(event["SEQUENCE"]) == 2
    attendee = event["ATTENDEE"]
    assert str(attendee).lower() == "mailto:alice@example.com"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert str(event["ORGANIZER"]).lower() == "mailto:bob@example.org"

    # Opened again later, the card remembers the answer and that it went out.
    reader.clear()
    with qtbot.waitSignal(card.invite_loaded, timeout=20_000):
        reader.show_message(mid)
    assert card.state.text() == "You accepted: the answer was sent."


def test_cancellation_is_shown_as_such_and_saves_as_ics(
    qtbot,
    cli,
    mail_account: Dovecot,
    reader: ReaderPane,
    tmp_path: Path,
    berlin: None,  # noqa: F811
) -> None:
    cancel = invite_mail(
        ics(method="CANCEL", sequence=1, extra=("STATUS:CANCELLED",)),
        msgid="cancel-1@example.org",
        subject="Cancelled: Weekly sync",
        method="CANCEL",
    )
    [mid] = arrive(cli, mail_account, cancel)
    card = reader.invite_card
    with qtbot.waitSignal(card.invite_loaded, timeout=20_000):
        reader.show_message(mid)
    assert card.heading.text() == "Cancelled"
    assert card.property("kind") == "cancel"
    assert card.state.text() == "The organiser cancelled this event."
    assert not any(b.isVisible() for b in card.answer_buttons)
    saved = card.save_ics(str(tmp_path / "weekly"))
    assert saved == tmp_path / "weekly.ics"
    cal = icalendar.Calendar.from_ical(saved.read_bytes())
    assert str(cal["METHOD"]) == "CANCEL"
    assert card.state.text() == f"Saved to {saved}"


def test_a_message_without_an_invitation_has_no_card(
    qtbot, cli, mail_account: Dovecot, reader: ReaderPane
) -> None:
    from tests.mailmaker import mail

    [mid] = arrive(cli, mail_account, mail("plain@x", "Just text"))
    with qtbot.waitSignal(reader.invite_card.invite_loaded, timeout=20_000) as loaded:
        reader.show_message(mid)
    assert loaded.args[0] is None
    assert not reader.invite_card.isVisible()
