"""The invitation card shown above a message that carries a calendar invitation.

Why it is shaped this way:

* Everything the card says comes from ``Services.invite`` (``app/invites.py``): the
  time is already in the user's zone, with the organiser's own time noted when their
  clock differs; the recurrence is already in words; updates, cancellations and
  invitations replaced by a newer one are already decided there. The card only lays
  it out, so the card and ``tidings show --invite`` never disagree.
* Reading the invite parses the raw message (and looks for newer versions in the
  account), so it runs on the thread pool; so does answering, which writes the outbox
  row and the recorded answer in one transaction (``Services.rsvp``). After an answer
  the card reads the invite again and shows the recorded state ("You accepted: the
  answer will be sent in 10 s"), the same state it shows when the message is opened
  again later.
* The answer goes through the outbox with the compose undo window
  (``compose/undo_seconds``), like any mail the user sends: cancelling it in the
  outbox also withdraws the answer shown here.
* A cancelled, superseded, or otherwise unanswerable invitation keeps its buttons
  hidden and says why in one line (``Invite.reply_blocker``). "Save .ics" is always
  there: a cancellation is worth importing too (it removes the event).

Signals:
    invite_loaded(object): the Invite for the current message (or None: no card).
    answered(int): an answer was queued; the outbox id.
    failed(str): a one-line error was shown on the card.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.mailbox import find_invite
from ui.bridge import TaskHandle, known_error, report_error, run_task

if TYPE_CHECKING:
    from app.invites import Invite, Participant
    from app.services import Services

__all__ = ["InviteCard", "answer_text", "heading_text"]

DEFAULT_UNDO_SECONDS = 10.0
MAX_ATTENDEES_SHOWN = 6

_HEADINGS = {
    "request": "Invitation",
    "update": "Updated invitation",
    "cancel": "Cancelled",
    "reply": "Answer to your invitation",
    "publish": "Event",
    "add": "Added occurrences",
    "counter": "Proposed new time",
    "refresh": "Request for the latest version",
    "declinecounter": "Proposal declined",
}
_PARTSTAT_WORDS = {
    "ACCEPTED": "accepted",
    "TENTATIVE": "tentatively accepted",
    "DECLINED": "declined",
    "NEEDS-ACTION": "needs action",
    "DELEGATED": "delegated",
}
_LIST_WORDS = {**_PARTSTAT_WORDS, "TENTATIVE": "tentative"}
_OUTBOX_WORDS = {
    "scheduled": "the answer will be sent shortly",
    "queued": "the answer is waiting to be sent",
    "sending": "the answer is being sent",
    "sent": "the answer was sent",
    "delivered": "the answer was sent",
    "failed": "the answer could not be sent (see the outbox)",
    None: "the answer was withdrawn",
}
_STYLE = """
#inviteCard { background: #eef3fd; border: 1px solid #c6d6f7; border-radius: 6px; }
#inviteCard[kind="cancel"] { background: #fdeeee; border-color: #f1c0c0; }
#inviteCard[kind="update"] { background: #fff8e1; border-color: #f0dca0; }
#inviteHeading { color: #3c4a6b; font-weight: bold; }
#inviteCard[kind="cancel"] #inviteHeading { color: #b3261e; }
#inviteTitle { font-weight: bold; }
#inviteCard[kind="cancel"] #inviteTitle { text-decoration: line-through; }
"""


def heading_text(invite: Invite) -> str:
    """'Invitation', 'Updated invitation', 'Cancelled', ... plus a superseded note."""
    text = _HEADINGS.get(invite.kind, invite.method.title() or "Calendar event")
    if invite.superseded_by is not None:
        text += " (a newer version arrived)"
    return text


def answer_text(invite: Invite) -> str:
    """The user's answer as the card states it; '' when there is none."""
    r = invite.response
    if r is None:
        if invite.me is not None and invite.me.partstat not in ("", "NEEDS-ACTION"):
            return f"You {_PARTSTAT_WORDS.get(invite.me.partstat, invite.me.partstat.lower())}."
        return ""
    word = _PARTSTAT_WORDS.get(r.partstat, r.partstat.lower())
    text = f"You {word}: {_OUTBOX_WORDS.get(r.outbox_state, r.outbox_state or '')}."
    if invite.response_outdated:
        text += " The organiser changed the event since: answer again."
    return text


def _people(attendees: tuple[Participant, ...]) -> tuple[str, str]:
    """(shown text, full tooltip) for the attendee list."""
    lines = []
    for p in attendees:
        line = p.display() + (" (you)" if p.is_me else "")
        state = _LIST_WORDS.get(p.partstat, p.partstat.lower())
        extra = [state] if state else []
        if p.role == "OPT-PARTICIPANT":
            extra.append("optional")
        if p.role == "CHAIR":
            extra.append("chair")
        lines.append(f"{line}: {', '.join(extra)}" if extra else line)
    shown = lines[:MAX_ATTENDEES_SHOWN]
    if len(lines) > MAX_ATTENDEES_SHOWN:
        shown.append(f"and {len(lines) - MAX_ATTENDEES_SHOWN} more")
    return "\n".join(shown), "\n".join(lines)


class InviteCard(QFrame):
    invite_loaded = Signal(object)
    answered = Signal(int)
    failed = Signal(str)

    def __init__(
        self, services: Services, settings: QSettings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.settings = settings
        self.message_id: int | None = None
        self.invite: Invite | None = None
        self._task: TaskHandle | None = None
        self.setObjectName("inviteCard")
        self.setStyleSheet(_STYLE)

        self.heading = QLabel(self)
        self.heading.setObjectName("inviteHeading")
        self.title = QLabel(self)
        self.title.setObjectName("inviteTitle")
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)

        self.when = self._value("inviteWhen")
        self.repeats = self._value("inviteRepeats")
        self.where = self._value("inviteWhere")
        self.organizer = self._value("inviteOrganizer")
        self.attendees = self._value("inviteAttendees")
        self.form = QFormLayout()
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setHorizontalSpacing(10)
        self.form.setVerticalSpacing(2)
        for label, widget in (
            ("When", self.when),
            ("Repeats", self.repeats),
            ("Where", self.where),
            ("Organiser", self.organizer),
            ("Attendees", self.attendees),
        ):
            self.form.addRow(label, widget)

        self.state = QLabel(self)
        self.state.setObjectName("inviteState")
        self.state.setWordWrap(True)
        self.accept_button = QPushButton("Accept", self)
        self.tentative_button = QPushButton("Maybe", self)
        self.tentative_button.setToolTip("Tentatively accept")
        self.decline_button = QPushButton("Decline", self)
        self.save_button = QPushButton("Save .ics…", self)
        self.accept_button.clicked.connect(lambda: self.answer("accept"))
        self.tentative_button.clicked.connect(lambda: self.answer("tentative"))
        self.decline_button.clicked.connect(lambda: self.answer("decline"))
        self.save_button.clicked.connect(lambda _checked=False: self.save_ics())
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.accept_button, self.tentative_button, self.decline_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)
        layout.addWidget(self.heading)
        layout.addWidget(self.title)
        layout.addLayout(self.form)
        layout.addWidget(self.state)
        layout.addLayout(buttons)
        self.hide()

    def _value(self, name: str) -> QLabel:
        label = QLabel(self)
        label.setObjectName(name)
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    @property
    def answer_buttons(self) -> tuple[QPushButton, QPushButton, QPushButton]:
        return self.accept_button, self.tentative_button, self.decline_button

    # -- loading -------------------------------------------------------------------------

    def clear(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.message_id = None
        self.invite = None
        self.hide()

    def show_message(self, message_id: int) -> None:
        """Look for an invitation in the message (on the pool); the card shows if found."""
        self.clear()
        self.message_id = message_id
        self._load(message_id)

    def _load(self, message_id: int) -> None:
        services = self.services
        if self._task is not None:
            self._task.cancel()
        # find_invite: most mail is answered without importing the iCalendar stack,
        # whose import on a pool thread stalled the GUI thread (app.mailbox).
        self._task = run_task(
            lambda: find_invite(services, message_id),
            lambda invite: self._loaded(message_id, invite),
            lambda exc: self._failed_load(message_id, exc),
            owner=self,
        )

    def _failed_load(self, message_id: int, exc: BaseException) -> None:
        if message_id != self.message_id:
            return
        text = known_error(exc)
        if text is None:
            report_error(exc)
            return
        # A malformed invitation: say so on the card rather than hide it.
        self.invite = None
        self.heading.setText("Calendar invitation")
        self.title.setText("This invitation cannot be read")
        for row in range(self.form.rowCount()):
            self.form.setRowVisible(row, False)
        self.state.setText(text)
        self.state.show()
        for b in (*self.answer_buttons, self.save_button):
            b.hide()
        self.show()
        self.failed.emit(text)
        self.invite_loaded.emit(None)

    def _loaded(self, message_id: int, invite: Invite | None) -> None:
        if message_id != self.message_id:
            return
        self.invite = invite
        if invite is None:
            self.hide()
            self.invite_loaded.emit(None)
            return
        self.setProperty("kind", invite.kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.heading.setText(heading_text(invite))
        self.title.setText(invite.title or "(no title)")
        self.when.setText(invite.when)
        self.repeats.setText(invite.recurrence or "")
        if invite.recurrence and invite.changed_occurrences:
            n = invite.changed_occurrences
            self.repeats.setText(
                f"{invite.recurrence} ({n} changed occurrence{'s' if n != 1 else ''})"
            )
        self.where.setText(invite.location)
        self.organizer.setText(invite.organizer.display() if invite.organizer else "")
        shown, full = _people(invite.attendees)
        self.attendees.setText(shown)
        self.attendees.setToolTip(full)
        for row, value in enumerate(
            (invite.when, invite.recurrence, invite.location, invite.organizer, shown)
        ):
            self.form.setRowVisible(row, bool(value))

        answering = invite.kind in ("request", "update")
        state = answer_text(invite)
        if not invite.can_reply and invite.reply_blocker and answering:
            state = (state + " " if state else "") + f"Cannot answer: {invite.reply_blocker}."
        elif invite.cancelled:
            state = "The organiser cancelled this event."
        self.state.setText(state)
        self.state.setVisible(bool(state))
        current = invite.response.partstat if invite.response is not None else None
        for button, partstat in zip(
            self.answer_buttons, ("ACCEPTED", "TENTATIVE", "DECLINED"), strict=True
        ):
            button.setVisible(answering and invite.can_reply)
            button.setEnabled(True)
            chosen = current == partstat and not invite.response_outdated
            button.setText(("✓ " if chosen else "") + button.text().removeprefix("✓ "))
        self.save_button.show()
        self.show()
        self.invite_loaded.emit(invite)

    # -- acting --------------------------------------------------------------------------

    def answer(self, word: str) -> None:
        """Queue the iMIP REPLY ('accept', 'tentative', 'decline') through the outbox."""
        mid = self.message_id
        if mid is None or self.invite is None:
            return
        seconds = float(self.settings.value("compose/undo_seconds", DEFAULT_UNDO_SECONDS))
        send_at = datetime.now(UTC) + timedelta(seconds=max(0.0, seconds))
        services = self.services
        for b in self.answer_buttons:
            b.setEnabled(False)
        self.state.setText("Sending your answer…")
        self.state.show()

        def done(item: int) -> None:
            self.answered.emit(int(item))
            if mid == self.message_id:
                self._load(mid)

        def failed(exc: BaseException) -> None:
            text = known_error(exc)
            if text is None:
                report_error(exc)
                return
            for b in self.answer_buttons:
                b.setEnabled(True)
            self.state.setText(f"Not answered: {text}")
            self.failed.emit(text)

        run_task(lambda: services.rsvp(mid, word, send_at=send_at), done, failed, owner=self)

    def save_ics(self, target: str | None = None) -> Path | None:
        """Export the invitation; without ``target`` the user picks where."""
        if self.message_id is None or self.invite is None:
            return None
        if target is None:
            from app.invites import default_ics_name

            start = str(Path.home() / default_ics_name(self.invite))
            target, _ = QFileDialog.getSaveFileName(
                self, "Save invitation", start, "Calendar files (*.ics)"
            )
            if not target:
                return None
        try:
            path = self.services.save_ics(self.message_id, Path(target))
        except Exception as exc:
            text = known_error(exc)
            if text is None:
                raise
            self.state.setText(f"Not saved: {text}")
            self.state.show()
            self.failed.emit(text)
            return None
        self.state.setText(f"Saved to {path}")
        self.state.show()
        return path
