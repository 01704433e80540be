"""The unsubscribe bar over a mailing-list message (List-Unsubscribe, RFC 2369/8058).

Why it is shaped this way:

* The way out is chosen by ``Services.unsubscribe_plan`` (one-click POST, else the
  ``mailto:`` through the outbox, else the https page in the browser) and the bar's
  confirmation names it in words ("one-click unsubscribe at news.example.org"), so the
  user knows what will happen before anything leaves the machine.
* Nothing happens without that confirmation. The one-click POST is the only network
  request the reader ever makes on its own, and it runs on the thread pool
  (``Services.unsubscribe``), never on the GUI thread: a list server that hangs for
  ten seconds must not freeze the window. The ``mailto:`` way queues a message in the
  outbox (sent at once: the user has just confirmed); the browser way opens the https
  page with the system browser, which is the one place a person can finish it.
* What was done is recorded by the service, for the message and its List-Id, so every
  later message of the same list opens with "Unsubscribed on 3 March" instead of the
  button (and can still be unsubscribed again if the list keeps writing).
* The confirmation is a window-modal ``QMessageBox`` opened with ``open()`` (not
  ``exec()``), kept as ``confirm_box`` so the event loop keeps running and tests can
  press its buttons.

Signals:
    unsubscribed(object): an UnsubscribeResult after a successful unsubscribe.
    failed(str): a one-line error shown in the bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from ui.bridge import TaskHandle, known_error, report_error, run_task

if TYPE_CHECKING:
    from app.services import Services
    from app.unsubscribe import Plan, UnsubscribeResult
    from storage.dto import MessageDetail

__all__ = ["UnsubscribeBar", "result_text"]

_METHOD_WORDS = {"one-click": "one-click", "mailto": "by mail", "browser": "in the browser"}


def result_text(result: UnsubscribeResult) -> str:
    """'Unsubscribed on 3 March 2026 (one-click, HTTP 200 OK).' and the like."""
    day = result.at.astimezone().strftime("%-d %B %Y")
    if result.outcome == "done":
        extra = f", {result.detail}" if result.detail else ""
        return f"Unsubscribed on {day} ({_METHOD_WORDS.get(result.method, result.method)}{extra})."
    if result.outcome == "queued":
        return f"Unsubscribe message queued on {day}: the list should stop writing soon."
    return f"Unsubscribe page opened on {day}; finish there if the page asked for more."


class UnsubscribeBar(QFrame):
    unsubscribed = Signal(object)
    failed = Signal(str)

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.services = services
        self.message_id: int | None = None
        self.plan: Plan | None = None
        self.result: UnsubscribeResult | None = None
        self.confirm_box: QMessageBox | None = None
        self.busy = False
        # Tests talk to a plain-http server on 127.0.0.1; never set in the app.
        self.allow_http_loopback = False
        self._task: TaskHandle | None = None
        self.setObjectName("unsubscribeBar")
        self.setStyleSheet("#unsubscribeBar { background: #eef1f5; border-radius: 4px; }")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.button = QPushButton("Unsubscribe", self)
        self.button.clicked.connect(self.request_unsubscribe)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.button)
        self.hide()

    def clear(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.message_id = None
        self.plan = None
        self.result = None
        self.busy = False
        self.hide()

    def show_message(self, message_id: int, detail: MessageDetail) -> None:
        """Show the bar when the message names a way to leave its list."""
        self.clear()
        if not detail.list_unsubscribe:
            return
        self.message_id = message_id
        services, loopback = self.services, self.allow_http_loopback

        def read() -> tuple[Plan | None, str | None, UnsubscribeResult | None]:
            state = services.unsubscribe_state(message_id)
            try:
                plan = services.unsubscribe_plan(message_id, allow_http_loopback=loopback)
            except Exception as exc:
                text = known_error(exc)
                if text is None:
                    raise
                return None, text, state
            return plan, None, state

        self._task = run_task(
            read, lambda got: self._loaded(message_id, *got), self._on_error, owner=self
        )

    def _loaded(
        self,
        message_id: int,
        plan: Plan | None,
        problem: str | None,
        state: UnsubscribeResult | None,
    ) -> None:
        if message_id != self.message_id:
            return
        self.plan, self.result = plan, state
        self._render(problem)
        self.show()

    def _render(self, problem: str | None = None) -> None:
        plan, state = self.plan, self.result
        if state is not None:
            self.label.setText(result_text(state))
            self.button.setText("Unsubscribe again")
            self.button.setVisible(plan is not None)
        elif plan is None:
            self.label.setText(f"This message is from a mailing list, but: {problem}.")
            self.button.hide()
        else:
            self.label.setText("This message is from a mailing list.")
            self.button.setText("Unsubscribe")
            self.button.setToolTip(plan.description)
            self.button.show()
        self.button.setEnabled(not self.busy)

    def request_unsubscribe(self) -> None:
        """Ask first (what will be done, in words); unsubscribe when confirmed."""
        if self.plan is None or self.message_id is None or self.busy:
            return
        plan = self.plan
        box = QMessageBox(self.window())
        box.setObjectName("unsubscribeConfirm")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Unsubscribe")
        if plan.method == "one-click":
            text = f"Unsubscribe now? Tidings will send a {plan.description}."
        elif plan.method == "mailto":
            text = f"Unsubscribe? Tidings will {plan.description}."
        else:
            text = f"Unsubscribe? This list unsubscribes on its web page: {plan.target}"
        box.setText(text)
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText(
            "Open page" if plan.method == "browser" else "Unsubscribe"
        )
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        mid = self.message_id
        box.finished.connect(lambda code: self._confirmed(mid, code))
        self.confirm_box = box
        box.open()

    def _confirmed(self, message_id: int, code: int) -> None:
        self.confirm_box = None
        if code != int(QMessageBox.StandardButton.Yes.value) or message_id != self.message_id:
            return
        self.busy = True
        self.button.setEnabled(False)
        self.label.setText("Unsubscribing…")
        services, loopback = self.services, self.allow_http_loopback
        self._task = run_task(
            lambda: services.unsubscribe(message_id, allow_http_loopback=loopback),
            lambda result: self._done(message_id, result),
            self._on_error,
            owner=self,
        )

    def _done(self, message_id: int, result: UnsubscribeResult) -> None:
        self.busy = False
        if result.outcome == "link":
            QDesktopServices.openUrl(QUrl(result.target))
        if message_id == self.message_id:
            self.result = result
            self._render()
        self.unsubscribed.emit(result)

    def _on_error(self, exc: BaseException) -> None:
        self.busy = False
        text = known_error(exc)
        if text is None:
            report_error(exc)
            return
        self._render()
        self.label.setText(f"Not unsubscribed: {text}")
        self.show()
        self.failed.emit(text)
