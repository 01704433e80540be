"""Calendar invitations in mail (iMIP, RFC 6047): read them, answer them, export them.

A meeting invitation is a ``text/calendar`` part (RFC 5545) whose ``METHOD`` (RFC
5546) says what it is: ``REQUEST`` (an invitation, or an update of one), ``CANCEL``,
``REPLY`` (an attendee's answer, seen by the organiser), ``PUBLISH`` (an event to
import, nothing to answer). This module turns such a part into an ``Invite`` the
reader's card and ``tidings show --invite`` show, and builds the ``METHOD:REPLY``
message that Accept / Tentative / Decline put in the outbox. Parsing and writing
iCalendar is the ``icalendar`` library's job (folding, escaping, VTIMEZONE, Windows
zone names); what is here is the mail client's part.

Decisions:

* Which part: a ``text/calendar`` part inside the body (iMIP puts it in the
  ``multipart/alternative`` next to the text) before one attached as a file, and
  ``text/calendar`` before ``application/ics``; the first part that holds a VEVENT
  wins. Parts that cannot be parsed are skipped when another one works; when none
  does, that is an ``InviteError`` ("malformed calendar invitation: ..."), as is a
  VEVENT without a UID or with an unreadable DTSTART. A message without any calendar
  part has no invite (``find_invite`` returns None).
* Which event: the first UID's master VEVENT (the one without RECURRENCE-ID); the other
  VEVENTs of that UID are changed occurrences, counted in ``changed_occurrences``. A
  calendar holding only one occurrence (RECURRENCE-ID) is an invitation or answer for
  that occurrence alone, and the reply carries the same RECURRENCE-ID.
* Times: shown in the user's time zone (``$TZ``, else ``/etc/localtime``, else the
  system's offset). The organiser's zone comes from DTSTART's TZID (Windows names such
  as "W. Europe Standard Time" are mapped to IANA ids) and is noted, with the times as
  the organiser sees them, only when its clock differs from the user's at that moment.
  UTC times ("Z", what Google sends) and floating times say nothing about the
  organiser, so they get no note; a floating time is the same wall-clock time
  everywhere (RFC 5545 3.3.5), so it is shown as the user's local time. A TZID nobody
  knows is treated as floating and named in the note. All-day events (DATE values)
  are dates, never converted: DTEND is exclusive, so 3-4 March is "3 March".
* Recurrence in words covers what calendar apps write: every N days/weeks/months/
  years, weekdays, "on Monday and Wednesday", "on the last Friday", "on day 15",
  "on 3 March", with "N times" or "until <date>", plus EXDATE/RDATE counts. Weekly
  day names are moved when the user's date differs from the organiser's (a Monday
  23:00 New York meeting is on Tuesdays in Berlin). Anything more exotic (BYWEEKNO,
  BYHOUR, ...) is described as far as it goes and the raw rule is added in brackets
  rather than being described wrongly.
* Kinds: REQUEST with SEQUENCE > 0 is an ``update`` (organisers bump SEQUENCE on every
  change that needs new answers); REQUEST with STATUS:CANCELLED, or CANCEL, is a
  ``cancel``. A newer version of the same invitation elsewhere in the account (same
  UID and occurrence, higher SEQUENCE, or a CANCEL) makes this one ``superseded_by``
  that message (only messages dated after this one, less an hour for clocks, and at
  most 20 of them are read, so the card stays quick); answering a superseded or
  cancelled invitation is refused.
* The reply (RFC 5546 3.2.3): METHOD:REPLY with one VEVENT holding the invitation's
  UID, SEQUENCE, RECURRENCE-ID, ORGANIZER, a fresh DTSTAMP, and the user's ATTENDEE
  (as the organiser wrote it, with its CN, ROLE and CUTYPE, without RSVP) with the new
  PARTSTAT; DTSTART/DTEND/DURATION and SUMMARY are copied because Outlook and Google
  show them, and the VTIMEZONEs they refer to go along. The user's ATTENDEE is found by
  the account's address; when the user is not on the list (invited through a mailing
  list) the reply adds the account's address, which organisers' calendars accept. The
  mail (RFC 6047) goes to the ORGANIZER's address, ``multipart/alternative`` of a short
  text part and ``text/calendar; method=REPLY``, as a reply to the invitation message
  (In-Reply-To, References), subject "Accepted: <title>" as Outlook and Google write it.
* Answers are recorded (table ``rsvps``) in the same transaction as the outbox row, so
  the card can show "Accepted" at once; an answer whose outbox message was cancelled
  within the undo window no longer counts. ``Invite.response`` is the latest answer to
  the same UID and occurrence in the account, whichever message it was given from.
* This module touches no database: ``storage/rsvps.py`` keeps the answers and finds the
  later calendar messages, ``Services`` runs both in its units of work and hands what
  they found to ``newer_invite`` and ``with_state``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from email import policy as email_policy
from email.generator import BytesGenerator
from email.message import MIMEPart
from email.parser import BytesParser
from io import BytesIO
from pathlib import Path
from typing import Any

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from app import compose
from app.attachments import write_new_file
from app.errors import InviteError
from app.timezone import user_zone
from storage.mime import (
    extract_content,
    html_to_text,
    parse_envelope,
    part_bytes,
    sanitize_filename,
)
from storage.rsvps import Rsvp

__all__ = [
    "ANSWERS",
    "CALENDAR_TYPES",
    "Invite",
    "Participant",
    "Rsvp",
    "build_reply",
    "build_reply_calendar",
    "describe_recurrence",
    "find_invite",
    "newer_invite",
    "parse_invite",
    "user_zone",
]

CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics")
# CLI word -> PARTSTAT; and the word that starts the reply's subject.
ANSWERS = {"accept": "ACCEPTED", "tentative": "TENTATIVE", "decline": "DECLINED"}
_SUBJECT_WORD = {"ACCEPTED": "Accepted", "TENTATIVE": "Tentative", "DECLINED": "Declined"}
_VERB = {
    "ACCEPTED": "accepted",
    "TENTATIVE": "tentatively accepted",
    "DECLINED": "declined",
}
PRODID = "-//Tidings//Tidings mail client//EN"
MAX_NEWER_CANDIDATES = 20  # later calendar messages looked at for a newer version
NEWER_CLOCK_SLACK = timedelta(hours=1)  # how much earlier a newer version may be dated

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
_UNITS = {
    "SECONDLY": "second",
    "MINUTELY": "minute",
    "HOURLY": "hour",
    "DAILY": "day",
    "WEEKLY": "week",
    "MONTHLY": "month",
    "YEARLY": "year",
}
_MSG_ID = re.compile(r"[!-;=?-~]{1,900}")  # what compose accepts in In-Reply-To/References
_HTML_HINT = re.compile(r"<(?:br|p|div|b|i|a|span|html|table)\b[^>]*>", re.I)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Participant:
    """The organiser or an attendee."""

    email: str  # without 'mailto:'; '' when the calendar gave none
    name: str  # CN, '' if none
    partstat: str  # NEEDS-ACTION, ACCEPTED, TENTATIVE, DECLINED, DELEGATED ('' for the organiser)
    role: str  # REQ-PARTICIPANT, OPT-PARTICIPANT, CHAIR, NON-PARTICIPANT
    kind: str  # CUTYPE: INDIVIDUAL, GROUP, RESOURCE, ROOM, UNKNOWN
    rsvp: bool  # the organiser asked for an answer
    is_me: bool  # one of the user's addresses

    def display(self) -> str:
        if self.name and self.email and self.name.casefold() != self.email.casefold():
            return f"{self.name} <{self.email}>"
        return self.email or self.name


@dataclass(frozen=True, slots=True)
class Invite:
    """What a calendar part says, ready to show."""

    method: str  # REQUEST, CANCEL, REPLY, PUBLISH, ADD, COUNTER, ... ('' if none)
    kind: str  # request | update | cancel | reply | publish | add | counter | refresh | ...
    uid: str
    sequence: int
    recurrence_id: str | None  # iCalendar text of RECURRENCE-ID: one occurrence only
    title: str
    start: datetime | date  # aware, in the user's zone; a date for all-day events
    end: datetime | date | None  # exclusive for all-day events (as in iCalendar)
    all_day: bool
    user_zone: str  # label of the user's zone at the start ('CET'), '' for all-day
    organizer_zone: str | None  # set only when the organiser's clock differs (or is unknown)
    organizer_start: datetime | None  # the times as the organiser sees them, then
    organizer_end: datetime | None
    when: str  # the whole time in words
    location: str
    url: str | None
    organizer: Participant | None
    attendees: tuple[Participant, ...]
    me: Participant | None  # the user's own ATTENDEE, if listed
    recurrence: str | None  # in words, None for a single event
    changed_occurrences: int  # overridden occurrences sent along with the series
    description: str
    status: str  # STATUS: CONFIRMED, TENTATIVE, CANCELLED or ''
    part_id: str  # the calendar part (IMAP section number)
    ics: bytes  # the calendar part, decoded: what "Save .ics" writes
    can_reply: bool
    reply_blocker: str | None  # why not, in a few words
    response: Rsvp | None = None  # the user's latest answer to this UID/occurrence
    superseded_by: int | None = None  # a message with a newer version of this invite

    @property
    def cancelled(self) -> bool:
        return self.kind == "cancel"

    @property
    def response_outdated(self) -> bool:
        """The answer was given to an earlier version (the organiser changed the event)."""
        return self.response is not None and self.response.sequence < self.sequence


# --------------------------------------------------------------------------- time zones


def _zone_label(tzid: str) -> str:
    return WINDOWS_TO_OLSON.get(tzid.strip('"'), tzid.strip('"'))


# --------------------------------------------------------------------------- formatting


def _day(d: date) -> str:
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def _short_day(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _span(start: datetime, end: datetime | None) -> str:
    """'Monday 16 March 2026, 14:00–15:00', or with both dates when it spans days."""
    if end is None:
        return f"{_day(start)}, {start:%H:%M}"
    ends_at_midnight = (
        end.date() == start.date() + timedelta(days=1)
        and end.time() == datetime.min.time()
        and end - start < timedelta(hours=24)
    )
    if end.date() == start.date() or ends_at_midnight:
        return f"{_day(start)}, {start:%H:%M}–{end:%H:%M}"
    return f"{_day(start)} {start:%H:%M} – {_day(end)} {end:%H:%M}"


def _when(
    invite_start: datetime | date,
    invite_end: datetime | date | None,
    org: tuple[datetime, datetime | None, str] | None,
) -> str:
    if not isinstance(invite_start, datetime):
        last = invite_start
        if invite_end is not None and not isinstance(invite_end, datetime):
            last = max(invite_start, invite_end - timedelta(days=1))
        if last == invite_start:
            return f"{_day(invite_start)} (all day)"
        return f"{_day(invite_start)} – {_day(last)} (all day)"
    end = invite_end if isinstance(invite_end, datetime) else None
    text = f"{_span(invite_start, end)} {invite_start.tzname() or ''}".rstrip()
    if org is not None:
        org_start, org_end, label = org
        text += f" (organiser's time: {_span(org_start, org_end)} {label})"
    return text


# --------------------------------------------------------------------------- recurrence


def _ints(values: Iterable[object]) -> list[int]:
    out: list[int] = []
    for value in values:
        try:
            out.append(int(str(value).rstrip("Ll")))
        except ValueError:
            continue
    return out


def _weekday(code: str, shift: int) -> str:
    return _DAYS[(_WEEKDAY_CODES.index(code) + shift) % 7]


def _ordinal(n: int) -> str:
    if n in _ORDINALS:
        return _ORDINALS[n]
    if n == -2:
        return "second-to-last"
    if n < 0:
        return f"{_ordinal(-n)}-to-last"
    return f"{n}th"


def _monthday(n: int) -> str:
    if n == -1:
        return "the last day"
    if n < -1:
        return f"the {_ordinal(n)} day"
    return f"day {n}"


def _byday(values: Iterable[Any]) -> list[tuple[int | None, str]]:
    out: list[tuple[int | None, str]] = []
    for value in values:
        match = re.fullmatch(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", str(value).upper())
        if match:
            out.append((int(match.group(1)) if match.group(1) else None, match.group(2)))
    return out


def describe_recurrence(
    rule: Mapping[str, Sequence[Any]],
    start: datetime | date,
    *,
    day_shift: int = 0,
    exdates: int = 0,
    rdates: int = 0,
) -> str:
    """An RRULE in words: 'every week on Monday and Wednesday until 3 March 2027'.

    ``start`` is the first occurrence in the organiser's zone (weekday and day of month
    defaults come from it); ``day_shift`` moves weekly day names to the user's dates.
    """
    parts = {key.upper(): list(value) for key, value in rule.items()}
    freq = str((parts.get("FREQ") or ["?"])[0]).upper()
    unit = _UNITS.get(freq)
    if unit is None:
        raise ValueError(f"no frequency in RRULE {_rule_text(rule)!r}")
    interval = (_ints(parts.get("INTERVAL", [])) or [1])[0]
    byday = _byday(parts.get("BYDAY", []))
    bymonthday = _ints(parts.get("BYMONTHDAY", []))
    bymonth = [m for m in _ints(parts.get("BYMONTH", [])) if 1 <= m <= 12]
    bysetpos = _ints(parts.get("BYSETPOS", []))
    handled = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH"}
    every = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    weekdays = [code for n, code in byday if n is None]
    plain_days = [_weekday(code, day_shift) for code in weekdays]
    is_weekdays = sorted(weekdays, key=_WEEKDAY_CODES.index) == list(_WEEKDAY_CODES[:5])
    start_day = start if not isinstance(start, datetime) else start.date()
    text: str

    if freq in ("DAILY", "WEEKLY") and is_weekdays and interval == 1 and day_shift == 0:
        text = "every weekday"
    elif freq == "DAILY":
        text = every + (f" on {_join(plain_days)}" if plain_days else "")
    elif freq == "WEEKLY":
        days = plain_days or [_DAYS[(start_day.weekday() + day_shift) % 7]]
        text = f"{every} on {_join(days)}"
    elif freq == "MONTHLY":
        if byday and bysetpos and all(n is None for n, _ in byday) and len(bysetpos) == 1:
            which = "weekday" if is_weekdays else _join(plain_days)
            text = f"{every} on the {_ordinal(bysetpos[0])} {which}"
            handled.add("BYSETPOS")
        elif byday and all(n is not None for n, _ in byday):
            text = f"{every} on the " + _join(
                [f"{_ordinal(n or 1)} {_DAYS[_WEEKDAY_CODES.index(code)]}" for n, code in byday]
            )
        elif bymonthday:
            days = [_monthday(n) for n in bymonthday]
            if all(n > 0 for n in bymonthday) and len(bymonthday) > 1:
                days = ["days " + _join([str(n) for n in bymonthday])]
            text = f"{every} on {_join([d for d in days if d])}"
        elif plain_days:
            text = f"{every} on every {_join(plain_days)}"
        else:
            text = f"{every} on day {start_day.day}"
    elif freq == "YEARLY":
        months = [_MONTHS[m - 1] for m in bymonth] or [_MONTHS[start_day.month - 1]]
        if byday and all(n is not None for n, _ in byday):
            ords = _join([f"{_ordinal(n or 1)} {_DAYS[_WEEKDAY_CODES.index(c)]}" for n, c in byday])
            text = f"{every} on the {ords} of {_join(months)}"
        else:
            numbers = bymonthday or [start_day.day]
            if len(months) == 1 and all(n > 0 for n in numbers):
                text = f"{every} on " + _join([f"{n} {months[0]}" for n in numbers])
            else:
                shown = _join([_monthday(n) for n in numbers])
                text = f"{every} on {shown} of {_join(months)}"
    else:  # HOURLY, MINUTELY, SECONDLY
        text = every

    count = _ints(parts.get("COUNT", []))
    if count:
        text += ", once" if count[0] == 1 else f", {count[0]} times"
    until = parts.get("UNTIL")
    if until:
        last = until[0]
        if isinstance(last, datetime):
            if last.tzinfo is not None and isinstance(start, datetime) and start.tzinfo:
                last = last.astimezone(start.tzinfo)
            text += f" until {_short_day(last.date())}"
        elif isinstance(last, date):
            text += f" until {_short_day(last)}"
    if exdates:
        text += ", except on 1 date" if exdates == 1 else f", except on {exdates} dates"
    if rdates:
        text += ", plus 1 more date" if rdates == 1 else f", plus {rdates} more dates"
    unknown = set(parts) - handled
    if unknown:
        text += f" (rule: {_rule_text(rule)})"
    return text


def _rule_text(rule: object) -> str:
    """The rule as written (for rules too exotic, or too broken, to put in words)."""
    try:
        to_ical = getattr(rule, "to_ical", None)
        value = to_ical() if callable(to_ical) else str(rule)
    except (ValueError, TypeError, AttributeError):
        value = str(rule)
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.replace("\\;", ";").replace("\\,", ",").split())


# --------------------------------------------------------------------------- parsing


def _calendar(data: bytes) -> icalendar.Calendar:
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        if "multiple" not in str(exc).lower():
            raise
        found = icalendar.Calendar.from_ical(data, multiple=True)
        cal = found[0]
    if not isinstance(cal, icalendar.Calendar):
        raise ValueError("not a VCALENDAR")
    return cal


def _select_event(cal: icalendar.Calendar) -> tuple[icalendar.Event, int]:
    """The invitation's event (master first) and how many changed occurrences came along."""
    events = [e for e in cal.walk("VEVENT") if isinstance(e, icalendar.Event)]
    if not events:
        raise InviteError("malformed calendar invitation: it has no event (VEVENT)")
    uid = str(events[0].get("UID", ""))
    same = [e for e in events if str(e.get("UID", "")) == uid]
    masters = [e for e in same if e.get("RECURRENCE-ID") is None]
    chosen = masters[0] if masters else same[0]
    return chosen, len(same) - 1 if masters else 0


def _text(event: icalendar.Component, name: str) -> str:
    value = event.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).replace("\r\n", "\n").strip()


def _address(value: Any) -> str:
    text = str(value).strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    if "@" not in text:
        params = getattr(value, "params", {})
        text = str(params.get("EMAIL", "")) if params else ""
    return text.strip()


def _participant(value: Any, me: set[str], organizer: bool = False) -> Participant:
    params = getattr(value, "params", {}) or {}
    email = _address(value)
    return Participant(
        email=email,
        name=str(params.get("CN", "")).strip().strip('"'),
        partstat="" if organizer else str(params.get("PARTSTAT", "NEEDS-ACTION")).upper(),
        role=str(params.get("ROLE", "CHAIR" if organizer else "REQ-PARTICIPANT")).upper(),
        kind=str(params.get("CUTYPE", "INDIVIDUAL")).upper(),
        rsvp=str(params.get("RSVP", "FALSE")).upper() == "TRUE",
        is_me=bool(email) and email.casefold() in me,
    )


def _attendee_values(event: icalendar.Component) -> list[Any]:
    value = event.get("ATTENDEE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _sequence(event: icalendar.Component) -> int:
    try:
        return max(int(str(event.get("SEQUENCE", 0)).strip()), 0)
    except ValueError:
        return 0


def _dt(event: icalendar.Component, name: str) -> tuple[datetime | date | None, str | None]:
    """A DATE or DATE-TIME property, decoded, and its TZID parameter."""
    prop = event.get(name)
    if prop is None:
        return None, None
    try:
        dt = prop.dt
    except (AttributeError, ValueError, TypeError):  # a broken property raises on .dt
        dt = None
    if not isinstance(dt, date):
        raise InviteError(f"malformed calendar invitation: bad {name} ({str(prop)[:40]!r})")
    params = getattr(prop, "params", {}) or {}
    tzid = params.get("TZID")
    return dt, str(tzid) if tzid else None


def _duration(event: icalendar.Component) -> timedelta | None:
    prop = event.get("DURATION")
    try:
        value = prop.dt if prop is not None else None
    except (AttributeError, ValueError, TypeError):
        return None
    return value if isinstance(value, timedelta) else None


def _description(event: icalendar.Component) -> str:
    text = _text(event, "DESCRIPTION")
    if not text:
        html = _text(event, "X-ALT-DESC")
        return html_to_text(html).strip() if html else ""
    if _HTML_HINT.search(text):
        return html_to_text(text).strip()
    return text.strip()


def _recurrence_count(values: object) -> int:
    if not isinstance(values, (list, tuple)):
        return 0
    return len(values)


def _kind(method: str, sequence: int, status: str) -> str:
    if method == "CANCEL" or (method == "REQUEST" and status == "CANCELLED"):
        return "cancel"
    if method == "REQUEST":
        return "update" if sequence > 0 else "request"
    if not method:
        return "publish"
    return method.lower()


def parse_invite(
    ics: bytes,
    *,
    me: Iterable[str] = (),
    zone: tzinfo | None = None,
    part_id: str = "",
) -> Invite:
    """Read one calendar part. ``me``: the user's addresses; ``zone``: default ``user_zone()``.

    Raises ``InviteError`` for a part that is not a usable calendar, and for nothing
    else: the part comes from a stranger, so whatever the library trips over in it is
    reported the same way (in one line) rather than as a crash.
    """
    try:
        return _parse_invite(ics, me=me, zone=zone or user_zone(), part_id=part_id)
    except InviteError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise InviteError(f"malformed calendar invitation: {reason}") from exc


def _parse_invite(ics: bytes, *, me: Iterable[str], zone: tzinfo, part_id: str) -> Invite:
    mine = {address.strip().casefold() for address in me if address.strip()}
    cal = _calendar(ics)
    event, changed = _select_event(cal)
    method = str(cal.get("METHOD", "")).strip().upper()
    uid = _text(event, "UID")
    if not uid:
        raise InviteError("malformed calendar invitation: the event has no UID")
    sequence = _sequence(event)
    rid_prop = event.get("RECURRENCE-ID")
    recurrence_id = rid_prop.to_ical().decode() if rid_prop is not None else None
    status = _text(event, "STATUS").upper()

    start_raw, tzid = _dt(event, "DTSTART")
    if start_raw is None:
        raise InviteError("malformed calendar invitation: the event has no start (DTSTART)")
    end_raw, _end_tzid = _dt(event, "DTEND")
    duration = _duration(event)
    if end_raw is None and duration is not None:
        end_raw = start_raw + duration
    all_day = not isinstance(start_raw, datetime)
    if all_day and end_raw is None:
        end_raw = start_raw + timedelta(days=1)

    organizer_zone: str | None = None
    org_start: datetime | None = None
    org_end: datetime | None = None
    day_shift = 0
    start: datetime | date
    end: datetime | date | None
    if isinstance(start_raw, datetime):
        unknown_zone = start_raw.tzinfo is None and tzid is not None
        local_start = start_raw.replace(tzinfo=zone) if start_raw.tzinfo is None else start_raw
        start = local_start.astimezone(zone)
        if isinstance(end_raw, datetime):
            local_end = end_raw.replace(tzinfo=zone) if end_raw.tzinfo is None else end_raw
            end = local_end.astimezone(zone)
        elif isinstance(end_raw, date):  # a DATE end for a DATE-TIME start: end of that day
            end = datetime.combine(end_raw, datetime.min.time(), zone)
        else:
            end = None
        if end is not None and end < start:  # a DTEND before DTSTART says nothing usable
            end_raw = end = None
        if start_raw.tzinfo is not None:  # the rule's weekdays are the event zone's days
            day_shift = (start.date() - start_raw.date()).days
        if tzid is not None and start_raw.tzinfo is not None and not _is_utc(tzid, start_raw):
            if start_raw.utcoffset() != start.utcoffset():
                organizer_zone = _zone_label(tzid)
                org_start = start_raw
                org_end = end_raw if isinstance(end_raw, datetime) else None
        elif unknown_zone:
            organizer_zone = _zone_label(tzid or "")
    else:
        start = start_raw
        end = end_raw

    rule = event.get("RRULE")
    if isinstance(rule, list):
        rule = rule[0] if rule else None
    recurrence: str | None = None
    if rule is not None and rid_prop is None:
        try:
            recurrence = describe_recurrence(
                rule,
                start_raw if isinstance(start_raw, datetime) and start_raw.tzinfo else start,
                day_shift=day_shift,
                exdates=_recurrence_count(_safe(lambda: event.exdates)),
                rdates=_recurrence_count(_safe(lambda: event.rdates)),
            )
        except (ValueError, TypeError, AttributeError, KeyError):  # a broken RRULE
            shown = _rule_text(rule)[:60]
            recurrence = f"repeats (unreadable rule: {shown})" if shown else "repeats"

    org_value = event.get("ORGANIZER")
    organizer = _participant(org_value, mine, organizer=True) if org_value is not None else None
    attendees = tuple(
        p for p in (_participant(v, mine) for v in _attendee_values(event)) if p.email or p.name
    )
    me_entry = next((a for a in attendees if a.is_me), None)

    blocker: str | None = None
    kind = _kind(method, sequence, status)
    if method not in ("REQUEST", "ADD"):
        blocker = (
            f"nothing to answer (METHOD:{method})" if method else "nothing to answer (no METHOD)"
        )
    elif kind == "cancel":
        blocker = "the event was cancelled"
    elif organizer is None or not organizer.email:
        blocker = "the invitation names no organiser to answer"
    elif organizer.is_me:
        blocker = "you organise this event"

    org = None
    if org_start is not None and organizer_zone is not None:
        org = (org_start, org_end, organizer_zone)
    when = _when(start, end, org)
    if organizer_zone is not None and org is None:
        when += f" (time zone {organizer_zone} is unknown: shown as local time)"
    url = _text(event, "URL") or None
    return Invite(
        method=method,
        kind=kind,
        uid=uid,
        sequence=sequence,
        recurrence_id=recurrence_id,
        title=_text(event, "SUMMARY") or "(no title)",
        start=start,
        end=end,
        all_day=all_day,
        user_zone=(start.tzname() or "") if isinstance(start, datetime) else "",
        organizer_zone=organizer_zone,
        organizer_start=org_start,
        organizer_end=org_end,
        when=when,
        location=_text(event, "LOCATION"),
        url=url,
        organizer=organizer,
        attendees=attendees,
        me=me_entry,
        recurrence=recurrence,
        changed_occurrences=changed,
        description=_description(event),
        status=status,
        part_id=part_id,
        ics=ics,
        can_reply=blocker is None,
        reply_blocker=blocker,
    )


def _safe(get: Callable[[], object]) -> object:
    try:
        return get()
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


_UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu"}
)


def _is_utc(tzid: str, dt: datetime) -> bool:
    """A TZID that only says 'UTC': a transport format, not where the organiser is."""
    return dt.utcoffset() == timedelta(0) and _zone_label(tzid) in _UTC_NAMES


def _candidates(raw: bytes) -> list[tuple[str, bytes]]:
    """Calendar parts in order of preference: body parts, text/calendar, then the rest."""
    found = []
    for index, att in enumerate(extract_content(raw).attachments):
        if att.content_type not in CALENDAR_TYPES and not att.filename.lower().endswith(".ics"):
            continue
        rank = (0 if not att.filename else 1) + (0 if att.content_type == "text/calendar" else 2)
        found.append((rank, index, att.part_id))
    found.sort()
    out: list[tuple[str, bytes]] = []
    for _rank, _index, part_id in found:
        data = part_bytes(raw, part_id)
        if data and data.strip():
            out.append((part_id, data))
    return out


def find_invite(raw: bytes, *, me: Iterable[str] = (), zone: tzinfo | None = None) -> Invite | None:
    """The invitation in a message, None when it has no calendar part.

    Raises ``InviteError`` when it has calendar parts and none of them can be read.
    """
    addresses = list(me)
    first_error: InviteError | None = None
    for part_id, data in _candidates(raw):
        try:
            return parse_invite(data, me=addresses, zone=zone, part_id=part_id)
        except InviteError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return None


# --------------------------------------------------------------------------- the reply


def _used_tzids(event: icalendar.Component) -> set[str]:
    tzids = set()
    for name in ("DTSTART", "DTEND", "RECURRENCE-ID"):
        prop = event.get(name)
        params = getattr(prop, "params", None) if prop is not None else None
        if params and params.get("TZID"):
            tzids.add(str(params["TZID"]))
    return tzids


def build_reply_calendar(
    ics: bytes,
    *,
    partstat: str,
    address: str,
    name: str = "",
    comment: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The METHOD:REPLY calendar answering the invitation ``ics`` for ``address``."""
    if partstat not in _SUBJECT_WORD:
        raise InviteError(f"not an answer: {partstat!r} (accept, tentative or decline)")
    try:
        cal = _calendar(ics)
    except ValueError as exc:
        raise InviteError(f"malformed calendar invitation: {exc}") from exc
    event, _changed = _select_event(cal)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)

    reply = icalendar.Calendar()
    reply.add("PRODID", PRODID)
    reply.add("VERSION", "2.0")
    reply.add("METHOD", "REPLY")
    used = _used_tzids(event)
    for tz in cal.walk("VTIMEZONE"):
        if str(tz.get("TZID", "")) in used:
            reply.add_component(tz)

    answer = icalendar.Event()
    answer["UID"] = event["UID"]
    answer.add("SEQUENCE", _sequence(event))
    for prop in ("RECURRENCE-ID", "DTSTART", "DTEND", "DURATION", "SUMMARY", "ORGANIZER"):
        if event.get(prop) is not None:
            answer[prop] = event[prop]
    answer.add("DTSTAMP", stamp)
    key = address.strip().casefold()
    mine = next((v for v in _attendee_values(event) if _address(v).casefold() == key), None)
    if mine is not None:
        attendee = icalendar.vCalAddress(str(mine))
        for param, value in (getattr(mine, "params", {}) or {}).items():
            if param.upper() in _KEPT_ATTENDEE_PARAMS:
                attendee.params[param] = value
    else:
        attendee = icalendar.vCalAddress(f"mailto:{address.strip()}")
        if name:
            attendee.params["CN"] = name
    attendee.params["PARTSTAT"] = partstat
    answer.add("ATTENDEE", attendee)
    if comment:
        answer.add("COMMENT", comment.strip())
    reply.add_component(answer)
    data: bytes = reply.to_ical()
    return data


_POLICY = email_policy.SMTP.clone(refold_source="none")
# What of the organiser's ATTENDEE line the reply repeats; not RSVP (a question to us),
# SENT-BY, DELEGATED-*, MEMBER or X- parameters (not ours to assert).
_KEPT_ATTENDEE_PARAMS = frozenset({"CN", "CUTYPE", "ROLE", "EMAIL", "LANGUAGE"})


def build_reply(
    invite: Invite,
    identity: compose.Identity,
    original: bytes,
    *,
    partstat: str,
    comment: str | None = None,
    now: datetime | None = None,
) -> tuple[compose.Built, str]:
    """The iMIP reply message to the organiser, and its subject.

    Raises ``InviteError`` when the invitation cannot be answered.
    """
    if not invite.can_reply:
        raise InviteError(f"cannot answer this invitation: {invite.reply_blocker}")
    assert invite.organizer is not None  # can_reply says so
    stamp = now or datetime.now(UTC)
    calendar = build_reply_calendar(
        invite.ics,
        partstat=partstat,
        address=invite.me.email if invite.me else identity.address,
        name=identity.name,
        comment=comment,
        now=stamp,
    )
    who = identity.name or identity.address
    lines = [f"{who} has {_VERB[partstat]} the invitation:", "", invite.title]
    lines.append(f"When: {invite.when}")
    if invite.recurrence:
        lines.append(f"Repeats: {invite.recurrence}")
    if invite.location:
        lines.append(f"Where: {invite.location}")
    if comment and comment.strip():
        lines += ["", comment.strip()]
    subject = f"{_SUBJECT_WORD[partstat]}: {invite.title}"
    env = parse_envelope(original)
    mid = env.message_id if env.message_id and _MSG_ID.fullmatch(env.message_id) else None
    known = dict.fromkeys([*env.references, *([mid] if mid else [])])
    refs = [ref for ref in known if _MSG_ID.fullmatch(ref)]
    if len(refs) > compose.MAX_REFERENCES:
        refs = [refs[0], *refs[-(compose.MAX_REFERENCES - 1) :]]
    draft = compose.Draft(
        to=(invite.organizer.display(),),
        subject=subject,
        text="\n".join(lines) + "\n",
        in_reply_to=mid,
        references=tuple(refs),
    )
    built = compose.build(identity, draft, now=stamp.astimezone() if now else None)
    return replace(built, raw=_with_calendar(built.raw, calendar)), subject


def _with_calendar(raw: bytes, calendar: bytes) -> bytes:
    """Turn the built text message into multipart/alternative: text + text/calendar REPLY."""
    msg: MIMEPart = BytesParser(policy=_POLICY).parsebytes(raw)
    msg.make_alternative()
    part = MIMEPart(policy=_POLICY)
    text = calendar.decode("utf-8")
    part.set_content(
        text,
        subtype="calendar",
        charset="utf-8",
        cte="7bit" if text.isascii() else "base64",
        params={"method": "REPLY"},
    )
    msg.attach(part)
    buffer = BytesIO()
    generator: BytesGenerator[MIMEPart] = BytesGenerator(buffer, mangle_from_=False, policy=_POLICY)
    generator.flatten(msg)
    return buffer.getvalue()


# --------------------------------------------------------------------------- state


def newer_invite(
    invite: Invite, candidates: Iterable[tuple[int, bytes]], *, me: Iterable[str]
) -> int | None:
    """The first candidate message holding a newer version of this invitation, if any.

    ``candidates`` are (message id, raw message) pairs, newest first: the account's
    later calendar messages (``storage.rsvps.later_messages_with_parts``). They are
    read one by one and no further than the first newer version.
    """
    addresses = list(me)
    for other_id, raw in candidates:
        try:
            other = find_invite(raw, me=addresses, zone=UTC)
        except InviteError:
            continue
        if other is None or other.uid != invite.uid or other.method not in ("REQUEST", "CANCEL"):
            continue
        if other.recurrence_id not in (invite.recurrence_id, None):
            continue
        series_update = other.recurrence_id is None and invite.recurrence_id is not None
        if series_update and other.kind != "cancel":
            continue  # a new version of the whole series: the occurrence may still stand
        if other.sequence > invite.sequence or (
            other.kind == "cancel" and invite.kind != "cancel" and other.sequence >= invite.sequence
        ):
            return other_id
    return None


def with_state(invite: Invite, response: Rsvp | None, superseded_by: int | None) -> Invite:
    """The invite with what the store knows about it."""
    blocker = invite.reply_blocker
    if blocker is None and superseded_by is not None:
        blocker = f"the invitation was updated or cancelled since (message {superseded_by})"
    return replace(
        invite,
        response=response,
        superseded_by=superseded_by,
        can_reply=blocker is None,
        reply_blocker=blocker,
    )


def default_ics_name(invite: Invite) -> str:
    title = invite.title.replace("/", "-").replace("\\", "-")  # a title, not a path
    return (sanitize_filename(title)[:100].rstrip(" .") or "invitation") + ".ics"


def save_ics(invite: Invite, destination: Path) -> Path:
    """Write the calendar part as a .ics file; into a folder it gets the event's title."""
    destination = destination.expanduser()
    if destination.is_dir():
        return write_new_file(destination.resolve(), default_ics_name(invite), invite.ics)
    folder = destination.parent.resolve()
    if not folder.is_dir():
        raise InviteError(f"no such folder: {destination.parent}")
    name = destination.name if destination.suffix.lower() == ".ics" else destination.name + ".ics"
    return write_new_file(folder, name, invite.ics)
