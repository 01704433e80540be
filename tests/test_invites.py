"""Calendar invitations: reading them in the user's zone, recurrence in words, the REPLY.

Invitations are generated here (iCalendar text by hand, the mail with the ``email``
package) so every property the tests look at is visible in the test; real-world ones
come from ``$TIDINGS_CORPUS`` (Thunderbird's, Google's, Outlook's, Apple's).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.compose import Identity
from app.errors import InviteError, UsageError
from app.invites import (
    Invite,
    build_reply,
    build_reply_calendar,
    describe_recurrence,
    find_invite,
    parse_invite,
    save_ics,
    user_zone,
)
from app.services import Services
from storage import accounts as acc
from tests.conftest import corpus_dir
from tests.mailmaker import mail
from tests.test_unsubscribe import store

BERLIN = ZoneInfo("Europe/Berlin")
ME = "alice@example.com"
ORGANIZER = "ORGANIZER;CN=Bob Organiser:mailto:bob@example.org"
ATTENDEES = (
    "ATTENDEE;CN=Bob Organiser;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:bob@example.org",
    "ATTENDEE;CN=Alice Ämber;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;ROLE=REQ-PARTICIPANT;"
    "CUTYPE=INDIVIDUAL:mailto:Alice@Example.com",
    "ATTENDEE;CN=Carol;PARTSTAT=TENTATIVE;ROLE=OPT-PARTICIPANT:mailto:carol@example.org",
    "ATTENDEE;CN=Room 4;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:room4@example.org",
)
NEW_YORK_TZ = (
    "BEGIN:VTIMEZONE",
    "TZID:America/New_York",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:-0500",
    "TZOFFSETTO:-0400",
    "TZNAME:EDT",
    "DTSTART:19700308T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:-0400",
    "TZOFFSETTO:-0500",
    "TZNAME:EST",
    "DTSTART:19701101T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)


def ics(
    *,
    method: str | None = "REQUEST",
    uid: str = "evt-1@example.org",
    sequence: int | None = 0,
    start: str = "DTSTART;TZID=America/New_York:20260316T090000",
    end: str | None = "DTEND;TZID=America/New_York:20260316T100000",
    rrule: str | None = None,
    summary: str = "Weekly sync",
    location: str | None = "Room 4",
    organizer: str | None = ORGANIZER,
    attendees: tuple[str, ...] = ATTENDEES,
    timezones: tuple[str, ...] = NEW_YORK_TZ,
    extra: tuple[str, ...] = (),
) -> bytes:
    lines = ["BEGIN:VCALENDAR", "PRODID:-//Example Corp//Calendar 1.0//EN", "VERSION:2.0"]
    if method:
        lines.append(f"METHOD:{method}")
    lines += list(timezones)
    lines += ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260301T120000Z", start]
    if end:
        lines.append(end)
    if sequence is not None:
        lines.append(f"SEQUENCE:{sequence}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines.append(f"SUMMARY:{summary}")
    if location:
        lines.append(f"LOCATION:{location}")
    if organizer:
        lines.append(organizer)
    lines += list(attendees)
    lines += list(extra)
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines).encode("utf-8")


def invite_mail(
    calendar: bytes,
    *,
    msgid: str = "invite-1@example.org",
    subject: str = "Invitation: Weekly sync",
    method: str = "REQUEST",
    sender: str = "Bob Organiser <bob@example.org>",
    to: str = "Alice Ämber <alice@example.com>",
    date_header: str = "Sun, 01 Mar 2026 12:00:00 +0000",
    attach_as_file: bool = False,
) -> bytes:
    """An iMIP message: text/plain + text/calendar (method=...) in multipart/alternative."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date_header
    msg["Message-ID"] = f"<{msgid}>"
    msg.set_content("You have been invited.\n")
    if attach_as_file:
        msg.add_attachment(calendar, maintype="application", subtype="ics", filename="invite.ics")
    else:
        msg.add_alternative(calendar.decode("utf-8"), subtype="calendar", params={"method": method})
    return msg.as_bytes(policy=policy.SMTP)


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pin the user's time zone (the process's local time too) to Europe/Berlin."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def parse(data: bytes, **kwargs: object) -> Invite:
    return parse_invite(data, me=(ME,), zone=BERLIN, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- times


def test_user_zone_follows_tz(berlin: None) -> None:
    assert user_zone() == BERLIN


def test_generated_invite_shows_in_the_users_zone_with_the_organisers_noted(berlin: None) -> None:
    invite = find_invite(invite_mail(ics()), me=(ME,))
    assert invite is not None
    # 09:00 in New York on 16 March 2026 (EDT, UTC-4) is 14:00 in Berlin (CET, UTC+1).
    assert invite.start == datetime(2026, 3, 16, 14, 0, tzinfo=BERLIN)
    assert invite.end == datetime(2026, 3, 16, 15, 0, tzinfo=BERLIN)
    assert invite.start.tzinfo == BERLIN
    assert invite.user_zone == "CET"
    assert invite.organizer_zone == "America/New_York"
    assert invite.organizer_start == datetime(
        2026, 3, 16, 9, 0, tzinfo=ZoneInfo("America/New_York")
    )
    assert invite.when == (
        "Monday 16 March 2026, 14:00–15:00 CET "
        "(organiser's time: Monday 16 March 2026, 09:00–10:00 America/New_York)"
    )
    assert invite.method == "REQUEST"
    assert invite.kind == "request"
    assert invite.title == "Weekly sync"
    assert invite.location == "Room 4"
    assert invite.part_id == "2"
    assert invite.can_reply
    assert invite.reply_blocker is None


def test_same_clock_zones_and_utc_times_get_no_note() -> None:
    paris = parse(
        ics(
            start="DTSTART;TZID=Europe/Paris:20260316T090000",
            end="DTEND;TZID=Europe/Paris:20260316T100000",
            timezones=(),
        )
    )
    assert paris.organizer_zone is None
    assert paris.when == "Monday 16 March 2026, 09:00–10:00 CET"
    utc = parse(ics(start="DTSTART:20260316T080000Z", end="DTEND:20260316T083000Z"))
    assert utc.organizer_zone is None
    assert utc.when == "Monday 16 March 2026, 09:00–09:30 CET"
    summer = parse(ics(start="DTSTART:20260716T080000Z", end="DTEND:20260716T083000Z"))
    assert summer.when == "Thursday 16 July 2026, 10:00–10:30 CEST"


def test_floating_time_is_local_and_unknown_zone_is_named() -> None:
    floating = parse(ics(start="DTSTART:20260316T090000", end="DTEND:20260316T093000"))
    assert floating.start == datetime(2026, 3, 16, 9, 0, tzinfo=BERLIN)
    assert floating.organizer_zone is None
    unknown = parse(
        ics(
            start="DTSTART;TZID=Mars/Olympus:20260316T090000",
            end="DTEND;TZID=Mars/Olympus:20260316T093000",
            timezones=(),
        )
    )
    assert unknown.start == datetime(2026, 3, 16, 9, 0, tzinfo=BERLIN)
    assert unknown.organizer_zone == "Mars/Olympus"
    assert unknown.organizer_start is None
    assert unknown.when == (
        "Monday 16 March 2026, 09:00–09:30 CET "
        "(time zone Mars/Olympus is unknown: shown as local time)"
    )


def test_windows_zone_names_are_mapped() -> None:
    tz = (
        "BEGIN:VTIMEZONE",
        "TZID:Pacific Standard Time",
        "BEGIN:STANDARD",
        "DTSTART:16010101T020000",
        "TZOFFSETFROM:-0700",
        "TZOFFSETTO:-0800",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=1SU;BYMONTH=11",
        "END:STANDARD",
        "BEGIN:DAYLIGHT",
        "DTSTART:16010101T020000",
        "TZOFFSETFROM:-0800",
        "TZOFFSETTO:-0700",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=2SU;BYMONTH=3",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
    )
    invite = parse(
        ics(
            start='DTSTART;TZID="Pacific Standard Time":20261105T100000',
            end='DTEND;TZID="Pacific Standard Time":20261105T110000',
            timezones=tz,
        )
    )
    assert invite.organizer_zone == "America/Los_Angeles"
    assert invite.start == datetime(2026, 11, 5, 19, 0, tzinfo=BERLIN)  # 10:00 PST = 18:00 UTC


def test_all_day_events_are_dates() -> None:
    one = parse(ics(start="DTSTART;VALUE=DATE:20260303", end="DTEND;VALUE=DATE:20260304"))
    assert one.all_day
    assert one.start == date(2026, 3, 3)
    assert one.when == "Tuesday 3 March 2026 (all day)"
    assert one.user_zone == ""
    assert one.organizer_zone is None
    three = parse(ics(start="DTSTART;VALUE=DATE:20260303", end="DTEND;VALUE=DATE:20260306"))
    assert three.when == "Tuesday 3 March 2026 – Thursday 5 March 2026 (all day)"
    no_end = parse(ics(start="DTSTART;VALUE=DATE:20260303", end=None))
    assert no_end.end == date(2026, 3, 4)
    assert no_end.when == "Tuesday 3 March 2026 (all day)"


def test_duration_spanning_days_and_no_end() -> None:
    night = parse(
        ics(start="DTSTART:20260316T210000Z", end="DURATION:PT5H"),
    )
    assert night.when == "Monday 16 March 2026 22:00 – Tuesday 17 March 2026 03:00 CET"
    to_midnight = parse(ics(start="DTSTART:20260316T210000Z", end="DTEND:20260316T230000Z"))
    assert to_midnight.when == "Monday 16 March 2026, 22:00–00:00 CET"
    open_ended = parse(ics(start="DTSTART:20260316T210000Z", end=None))
    assert open_ended.end is None
    assert open_ended.when == "Monday 16 March 2026, 22:00 CET"


# --------------------------------------------------------------------------- people, kinds


def test_organiser_attendees_and_me() -> None:
    invite = parse(ics())
    assert invite.organizer is not None
    assert invite.organizer.display() == "Bob Organiser <bob@example.org>"
    assert [(a.email, a.partstat, a.role, a.kind) for a in invite.attendees] == [
        ("bob@example.org", "ACCEPTED", "CHAIR", "INDIVIDUAL"),
        ("Alice@Example.com", "NEEDS-ACTION", "REQ-PARTICIPANT", "INDIVIDUAL"),
        ("carol@example.org", "TENTATIVE", "OPT-PARTICIPANT", "INDIVIDUAL"),
        ("room4@example.org", "ACCEPTED", "REQ-PARTICIPANT", "ROOM"),
    ]
    assert invite.me is not None
    assert invite.me.name == "Alice Ämber"
    assert invite.me.rsvp
    assert [a.is_me for a in invite.attendees] == [False, True, False, False]


@pytest.mark.parametrize(
    ("method", "sequence", "extra", "kind", "blocker"),
    [
        ("REQUEST", 0, (), "request", None),
        ("REQUEST", 3, (), "update", None),
        ("REQUEST", 1, ("STATUS:CANCELLED",), "cancel", "the event was cancelled"),
        ("CANCEL", 1, (), "cancel", "nothing to answer (METHOD:CANCEL)"),
        ("PUBLISH", 0, (), "publish", "nothing to answer (METHOD:PUBLISH)"),
        (None, 0, (), "publish", "nothing to answer (no METHOD)"),
        ("REPLY", 0, (), "reply", "nothing to answer (METHOD:REPLY)"),
    ],
)
def test_kinds_and_what_can_be_answered(
    method: str | None, sequence: int, extra: tuple[str, ...], kind: str, blocker: str | None
) -> None:
    invite = parse(ics(method=method, sequence=sequence, extra=extra))
    assert invite.kind == kind
    assert invite.sequence == sequence
    assert invite.reply_blocker == blocker
    assert invite.can_reply is (blocker is None)


def test_own_event_and_missing_organiser_cannot_be_answered() -> None:
    own = parse(ics(organizer="ORGANIZER:mailto:ALICE@example.com"))
    assert own.reply_blocker == "you organise this event"
    nobody = parse(ics(organizer=None))
    assert nobody.reply_blocker == "the invitation names no organiser to answer"


def test_description_html_is_text_and_url_kept() -> None:
    invite = parse(
        ics(
            extra=(
                "DESCRIPTION:Agenda:<br><b>1.</b> Budget<br>2. Hiring",
                "URL:https://meet.example.org/abc",
            )
        )
    )
    assert invite.description.split() == ["Agenda:", "1.", "Budget", "2.", "Hiring"]
    assert invite.url == "https://meet.example.org/abc"
    plain = parse(ics(extra=("DESCRIPTION:Line one\\nLine two\\, with a comma",)))
    assert plain.description == "Line one\nLine two, with a comma"


# --------------------------------------------------------------------------- recurrence


def _rule(text: str) -> icalendar.vRecur:
    return icalendar.vRecur.from_ical(text)


MONDAY = datetime(2026, 3, 16, 9, 0, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        (
            "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270303T225959Z",
            "every week on Monday and Wednesday until 3 March 2027",
        ),
        ("FREQ=DAILY", "every day"),
        ("FREQ=DAILY;INTERVAL=3;COUNT=10", "every 3 days, 10 times"),
        ("FREQ=DAILY;COUNT=1", "every day, once"),
        ("FREQ=WEEKLY", "every week on Monday"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR", "every 2 weeks on Monday, Wednesday and Friday"),
        ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "every weekday"),
        ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", "every weekday"),
        ("FREQ=MONTHLY", "every month on day 16"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15", "every month on days 1 and 15"),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", "every month on the last day"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "every month on the last Friday"),
        ("FREQ=MONTHLY;INTERVAL=3;BYDAY=2TU", "every 3 months on the second Tuesday"),
        ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "every month on the last weekday"),
        ("FREQ=YEARLY", "every year on 16 March"),
        ("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", "every year on the fourth Thursday of November"),
        ("FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24", "every year on 24 December"),
        ("FREQ=HOURLY;INTERVAL=4;COUNT=6", "every 4 hours, 6 times"),
        ("FREQ=WEEKLY;UNTIL=20260630", "every week on Monday until 30 June 2026"),
        (
            "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
            "every year on 16 March (rule: FREQ=YEARLY;BYDAY=MO;BYWEEKNO=20)",
        ),
    ],
)
def test_recurrence_in_words(rule: str, words: str) -> None:
    assert describe_recurrence(_rule(rule), MONDAY) == words


def test_recurrence_extra_and_skipped_dates() -> None:
    assert (
        describe_recurrence(_rule("FREQ=DAILY"), MONDAY, exdates=2, rdates=1)
        == "every day, except on 2 dates, plus 1 more date"
    )


def test_recurrence_on_the_invite_moves_weekdays_to_the_users_dates() -> None:
    # Monday 20:00 in New York is Tuesday 01:00 in Berlin: the Berlin user meets on Tuesdays.
    invite = parse(
        ics(
            start="DTSTART;TZID=America/New_York:20260316T200000",
            end="DTEND;TZID=America/New_York:20260316T210000",
            rrule="FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270304T035959Z",
            extra=("EXDATE;TZID=America/New_York:20260318T200000",),
        )
    )
    assert invite.start == datetime(2026, 3, 17, 1, 0, tzinfo=BERLIN)
    assert invite.recurrence == (
        "every week on Tuesday and Thursday until 3 March 2027, except on 1 date"
    )
    same_day = parse(ics(rrule="FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270303T225959Z"))
    assert same_day.recurrence == "every week on Monday and Wednesday until 3 March 2027"


def test_series_with_changed_occurrences_and_a_single_occurrence() -> None:
    changed = (
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:evt-1@example.org",
        "DTSTAMP:20260301T120000Z",
        "RECURRENCE-ID;TZID=America/New_York:20260323T090000",
        "DTSTART;TZID=America/New_York:20260324T090000",
        "DTEND;TZID=America/New_York:20260324T100000",
        "SUMMARY:Weekly sync (moved)",
    )
    series = parse(ics(rrule="FREQ=WEEKLY", extra=changed))
    assert series.title == "Weekly sync"
    assert series.recurrence_id is None
    assert series.changed_occurrences == 1
    single = parse(
        ics(
            rrule=None,
            extra=("RECURRENCE-ID;TZID=America/New_York:20260316T090000",),
        )
    )
    assert single.recurrence_id == "20260316T090000"
    assert single.recurrence is None


# --------------------------------------------------------------------------- bad input


def test_a_bare_text_calendar_message_is_an_invite() -> None:
    raw = (
        b"From: bob@example.org\r\nSubject: Weekly sync\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n" + ics()
    )
    invite = find_invite(raw, me=(ME,), zone=BERLIN)
    assert invite is not None
    assert invite.part_id == "1"
    assert invite.title == "Weekly sync"


def test_message_without_a_calendar_has_no_invite() -> None:
    assert find_invite(mail(body="Lunch?\n"), me=(ME,), zone=BERLIN) is None


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        (b"this is not a calendar\r\n", "malformed calendar invitation: "),
        (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
            "malformed calendar invitation: it has no event (VEVENT)",
        ),
        (
            ics(start="DTSTART:tomorrow-ish"),
            "malformed calendar invitation: bad DTSTART ('tomorrow-ish')",
        ),
        (ics(uid=""), "malformed calendar invitation: the event has no UID"),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260101T100000Z\r\n",
            "malformed calendar invitation: ",
        ),
    ],
)
def test_malformed_calendars_are_one_line_errors(calendar: bytes, message: str) -> None:
    with pytest.raises(InviteError) as err:
        find_invite(invite_mail(calendar), me=(ME,), zone=BERLIN)
    text = str(err.value)
    assert text.startswith(message)
    assert "\n" not in text
    assert len(text) < 200


def test_broken_details_degrade_instead_of_failing() -> None:
    broken_rule = parse(ics(rrule="FREQ=SOMETIMES;BYDAY=XX"))
    assert broken_rule.recurrence == "repeats (unreadable rule: FREQ=SOMETIMES;BYDAY=XX)"
    backwards = parse(ics(end="DTEND:20260316T100000Z"))  # 11:00 CET, before the 14:00 start
    assert backwards.end is None
    assert backwards.when.startswith("Monday 16 March 2026, 14:00 CET (organiser's time:")
    odd = parse(ics(sequence=None, extra=("SEQUENCE:soon", "ATTENDEE:", "EXDATE:never")))
    assert odd.sequence == 0
    assert len(odd.attendees) == len(ATTENDEES)


_LINES = ics(rrule="FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4").decode().split("\r\n")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, len(_LINES) - 1), max_size=4),
    st.lists(st.tuples(st.integers(0, len(_LINES) - 1), st.text(max_size=12)), max_size=3),
)
def test_damaged_calendars_give_an_invite_or_one_line_error(
    dropped: list[int], garbled: list[tuple[int, str]]
) -> None:
    lines = list(_LINES)
    for index, junk in garbled:
        lines[index] = lines[index][: len(lines[index]) // 2] + junk
    data = "\r\n".join(line for i, line in enumerate(lines) if i not in set(dropped))
    error = ""
    try:
        invite = parse_invite(data.encode("utf-8", "surrogatepass"), me=(ME,), zone=BERLIN)
    except InviteError as exc:
        error = str(exc)
    if error:
        assert "\n" not in error
        assert error.startswith("malformed calendar invitation")
    else:
        assert invite.uid
        assert invite.when


def test_a_readable_part_wins_over_a_broken_one_and_attached_ics_is_found() -> None:
    msg = EmailMessage()
    msg["From"] = "bob@example.org"
    msg["Subject"] = "two calendars"
    msg.set_content("see attached")
    msg.add_attachment(b"garbage", maintype="text", subtype="calendar", filename="a.ics")
    msg.add_attachment(ics(), maintype="application", subtype="ics", filename="b.ics")
    invite = find_invite(msg.as_bytes(policy=policy.SMTP), me=(ME,), zone=BERLIN)
    assert invite is not None
    assert invite.title == "Weekly sync"
    assert invite.part_id == "3"
    as_file = find_invite(invite_mail(ics(), attach_as_file=True), me=(ME,), zone=BERLIN)
    assert as_file is not None
    assert as_file.uid == "evt-1@example.org"


# --------------------------------------------------------------------------- the reply

NOW = datetime(2026, 3, 2, 8, 30, 15, tzinfo=UTC)


def _only_event(data: bytes) -> tuple[icalendar.Calendar, icalendar.Event]:
    cal = icalendar.Calendar.from_ical(data)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def test_reply_calendar_is_a_correct_imip_reply() -> None:
    original = ics(sequence=2, extra=("RECURRENCE-ID;TZID=America/New_York:20260316T090000",))
    data = build_reply_calendar(
        original,
        partstat="ACCEPTED",
        address="alice@example.com",
        name="Alice Ämber",
        comment="See you there; bringing the numbers.",
        now=NOW,
    )
    assert b"\r\n" in data
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    cal, event = _only_event(data)
    assert str(cal["METHOD"]) == "REPLY"
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["PRODID"])
    assert str(event["UID"]) == "evt-1@example.org"
    assert int(event["SEQUENCE"]) == 2
    assert event["RECURRENCE-ID"].to_ical() == b"20260316T090000"
    assert event["RECURRENCE-ID"].params["TZID"] == "America/New_York"
    assert event.decoded("DTSTAMP") == NOW
    organizer = event["ORGANIZER"]
    assert str(organizer) == "mailto:bob@example.org"
    assert organizer.params["CN"] == "Bob Organiser"
    attendee = event["ATTENDEE"]
    assert not isinstance(attendee, list)  # exactly one: the user's own
    assert str(attendee) == "mailto:Alice@Example.com"  # as the organiser wrote it
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert attendee.params["CN"] == "Alice Ämber"
    assert "RSVP" not in attendee.params
    assert str(event["COMMENT"]) == "See you there; bringing the numbers."
    assert str(event["SUMMARY"]) == "Weekly sync"
    assert event.decoded("DTSTART") == datetime(2026, 3, 16, 9, tzinfo=ZoneInfo("America/New_York"))
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]


def test_reply_for_someone_not_on_the_list_adds_them() -> None:
    data = build_reply_calendar(
        ics(attendees=ATTENDEES[:1]),
        partstat="DECLINED",
        address="alice@example.com",
        name="Alice",
        now=NOW,
    )
    _cal, event = _only_event(data)
    assert str(event["ATTENDEE"]) == "mailto:alice@example.com"
    assert event["ATTENDEE"].params["PARTSTAT"] == "DECLINED"
    assert event["ATTENDEE"].params["CN"] == "Alice"
    assert "COMMENT" not in event


def test_reply_message_is_imip_to_the_organiser(berlin: None) -> None:
    raw = invite_mail(ics(sequence=1))
    invite = find_invite(raw, me=(ME,))
    assert invite is not None
    built, subject = build_reply(
        invite,
        Identity(ME, "Alice Ämber"),
        raw,
        partstat="TENTATIVE",
        comment="Maybe late",
        now=NOW,
    )
    assert subject == "Tentative: Weekly sync"
    assert built.recipients == ("bob@example.org",)
    assert built.sender == ME
    msg = BytesParser(policy=policy.default).parsebytes(built.raw)
    assert msg["To"] == "Bob Organiser <bob@example.org>"
    assert msg["Subject"] == "Tentative: Weekly sync"
    assert msg["In-Reply-To"] == "<invite-1@example.org>"
    assert msg["References"] == "<invite-1@example.org>"
    assert msg.get_content_type() == "multipart/alternative"
    text, calendar = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    body = text.get_content()
    assert "Alice Ämber has tentatively accepted the invitation:" in body
    assert "When: Monday 16 March 2026, 14:00–15:00 CET" in body
    assert "Maybe late" in body
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REPLY"
    assert calendar.get_content_charset() == "utf-8"
    _cal, event = _only_event(calendar.get_content().encode("utf-8"))
    assert event["ATTENDEE"].params["PARTSTAT"] == "TENTATIVE"
    assert int(event["SEQUENCE"]) == 1


def test_unanswerable_invites_build_no_reply() -> None:
    raw = invite_mail(ics(method="CANCEL"), method="CANCEL")
    invite = find_invite(raw, me=(ME,), zone=BERLIN)
    assert invite is not None
    with pytest.raises(InviteError, match="cannot answer this invitation: nothing to answer"):
        build_reply(invite, Identity(ME), raw, partstat="ACCEPTED", now=NOW)
    with pytest.raises(InviteError, match="not an answer"):
        build_reply_calendar(ics(), partstat="MAYBE", address=ME)


def test_save_ics_writes_the_part_as_received(tmp_path: Path) -> None:
    data = ics(summary="Q3 / planning: review")
    invite = parse(data)
    into_folder = save_ics(invite, tmp_path)
    assert into_folder == tmp_path / "Q3 - planning_ review.ics"
    assert into_folder.read_bytes() == data
    again = save_ics(invite, tmp_path)
    assert again.name == "Q3 - planning_ review (2).ics"
    named = save_ics(invite, tmp_path / "meeting")
    assert named == tmp_path / "meeting.ics"
    with pytest.raises(InviteError, match="no such folder"):
        save_ics(invite, tmp_path / "missing" / "x.ics")


# --------------------------------------------------------------------------- the corpus


def _corpus_calendars() -> list[Path]:
    root = corpus_dir()
    manifest = (root / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    names = [line.split("\t")[0] for line in manifest[1:] if "calendar" in line.split("\t")[-1]]
    if not names:
        pytest.skip("the corpus has no calendar messages")
    return [root / name for name in names]


@pytest.mark.corpus
def test_real_world_invites_parse_or_fail_in_one_line() -> None:
    parsed = 0
    errors: list[str] = []
    for path in _corpus_calendars():
        try:
            invite = find_invite(path.read_bytes(), me=("receiver@example.com",), zone=BERLIN)
        except InviteError as exc:
            errors.append(str(exc))
            continue
        if invite is None:
            continue
        parsed += 1
        assert invite.uid, path.name
        assert invite.when, path.name
        if invite.can_reply:
            reply = build_reply_calendar(
                invite.ics, partstat="ACCEPTED", address="receiver@example.com", now=NOW
            )
            _cal, event = _only_event(reply)
            assert str(event["UID"]) == invite.uid, path.name
    assert parsed >= 5
    assert all("\n" not in e and e.startswith("malformed calendar invitation") for e in errors)


@pytest.mark.corpus
def test_real_world_invites_details() -> None:
    root = corpus_dir()

    def load(name: str) -> Invite:
        path = root / f"thunderbird__calendar_test_browser_invitations_data_{name}.eml"
        if not path.exists():
            pytest.skip(f"{path.name} not in the corpus")
        invite = find_invite(path.read_bytes(), me=("receiver@example.com",), zone=BERLIN)
        assert invite is not None
        return invite

    repeat = load("repeat-event")
    assert repeat.recurrence == "every day, 3 times"
    assert repeat.when == "Wednesday 16 March 2022, 12:00–12:30 CET"
    assert repeat.me is not None
    assert repeat.me.partstat == "NEEDS-ACTION"
    assert repeat.can_reply
    minor = load("exception-minor")
    assert minor.recurrence_id == "20220317T110000Z"
    assert minor.title == "Exception title"
    party = load("message-non-invite")
    assert party.kind == "publish"
    assert not party.can_reply
    assert party.organizer_zone == "Europe/Helsinki"
    google = load("meet-meeting-invite")
    assert google.description.startswith("This is a test. Bold. Italic.")


# --------------------------------------------------------------------------- the store


def _work_account(services: Services) -> None:
    with services.session() as s:
        acc.add_account(
            s,
            acc.NewAccount(
                "work",
                ME,
                display_name="Alice Ämber",
                smtp_host="127.0.0.1",
                smtp_port=2525,
                smtp_security="none",
            ),
        )


def _rsvps(services: Services) -> list[tuple[str, int | None, int]]:
    from sqlalchemy import select

    from storage.models import RsvpRecord

    with services.session() as s:
        rows = s.execute(select(RsvpRecord.partstat, RsvpRecord.outbox_id, RsvpRecord.sequence))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_rsvp_queues_the_reply_and_the_card_shows_the_answer(
    services: Services, berlin: None
) -> None:
    _work_account(services)
    mid = store(services, invite_mail(ics(sequence=1)), account="work")
    invite = services.invite(mid)
    assert invite is not None
    assert invite.response is None
    assert invite.superseded_by is None
    item = services.rsvp(mid, "accept", comment="Thanks!")
    [out] = services.outbox()
    assert out.id == item
    assert out.state == "scheduled"  # the undo window
    assert out.to == ("bob@example.org",)
    assert out.subject == "Accepted: Weekly sync"
    answered = services.invite(mid)
    assert answered is not None
    assert answered.response is not None
    assert answered.response.partstat == "ACCEPTED"
    assert answered.response.comment == "Thanks!"
    assert answered.response.sequence == 1
    assert answered.response.outbox_state == "scheduled"
    assert not answered.response_outdated
    assert answered.can_reply  # the answer can be changed
    # Undone within the window: the answer no longer counts.
    services.cancel_outgoing(item)
    cancelled = services.invite(mid)
    assert cancelled is not None
    assert cancelled.response is None
    services.rsvp(mid, "decline")
    changed = services.invite(mid)
    assert changed is not None
    assert changed.response is not None
    assert changed.response.partstat == "DECLINED"
    assert [p for p, _o, _s in _rsvps(services)] == ["ACCEPTED", "DECLINED"]


def test_an_update_supersedes_the_older_invite(services: Services) -> None:
    _work_account(services)
    first = store(services, invite_mail(ics(sequence=0)), account="work")
    services.rsvp(first, "accept")
    moved = ics(
        sequence=1,
        start="DTSTART;TZID=America/New_York:20260317T090000",
        end="DTEND;TZID=America/New_York:20260317T100000",
    )
    update = store(
        services,
        invite_mail(
            moved, msgid="invite-2@example.org", date_header="Mon, 02 Mar 2026 12:00:00 +0000"
        ),
        account="work",
    )
    old = services.invite(first)
    assert old is not None
    assert old.superseded_by == update
    assert not old.can_reply
    assert old.reply_blocker == f"the invitation was updated or cancelled since (message {update})"
    with pytest.raises(InviteError, match="updated or cancelled since"):
        services.rsvp(first, "decline")
    new = services.invite(update)
    assert new is not None
    assert new.kind == "update"
    assert new.superseded_by is None
    assert new.response is not None  # the answer to version 0 ...
    assert new.response_outdated  # ... which the organiser has changed since
    cancel = store(
        services,
        invite_mail(
            ics(method="CANCEL", sequence=1),
            msgid="cancel@example.org",
            method="CANCEL",
            date_header="Tue, 03 Mar 2026 08:00:00 +0000",
        ),
        account="work",
    )
    after = services.invite(update)
    assert after is not None
    assert after.superseded_by == cancel
    cancelled = services.invite(cancel)
    assert cancelled is not None
    assert cancelled.kind == "cancel"
    assert not cancelled.can_reply
    assert len(services.outbox()) == 1  # only the first answer


def test_bad_input_changes_nothing(services: Services) -> None:
    _work_account(services)
    plain = store(services, mail(body="no invite here\n"), account="work")
    broken = store(
        services,
        invite_mail(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nnonsense\r\n", msgid="broken@x"),
        account="work",
    )
    assert services.invite(plain) is None
    with pytest.raises(InviteError, match=f"message {plain} has no calendar invitation"):
        services.rsvp(plain, "accept")
    with pytest.raises(InviteError, match="malformed calendar invitation"):
        services.rsvp(broken, "accept")
    with pytest.raises(UsageError, match="not an answer"):
        services.rsvp(broken, "maybe")
    with services.session() as s:
        acc.add_account(s, acc.NewAccount("local", "alice@example.org"))
    offline = store(services, invite_mail(ics(), msgid="local@x"), account="local")
    with pytest.raises(InviteError, match="account local has no SMTP server"):
        services.rsvp(offline, "accept")
    assert services.outbox() == []
    assert _rsvps(services) == []
