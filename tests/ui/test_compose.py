"""The compose window: drafts saved locally, Send into the outbox with an undo window."""

from __future__ import annotations

from app.services import Services
from ui.compose import ComposeWindow


def _window(qtbot, main_window, **kw) -> ComposeWindow:
    w = main_window.compose(**kw)
    qtbot.addWidget(w)
    return w


def test_draft_saved_on_close_and_reopened(qtbot, main_window, demo_services: Services) -> None:
    w = _window(qtbot, main_window)
    w.to_edit.setText("bob@")  # half typed: a draft keeps it anyway
    w.subject_edit.setText("Plans")
    w.body.setPlainText("Draft text")
    w.close()
    drafts = demo_services.list_messages(folder="Drafts", limit=50)
    [mine] = [m for m in drafts if m.subject == "Plans"]
    again = _window(qtbot, main_window, draft_of=mine.id)
    assert again.to_edit.text() == "bob@"
    assert again.body.toPlainText().strip() == "Draft text"
    assert again.fields.draft_key == w.fields.draft_key
    again.body.setPlainText("Draft text, longer")
    again.save_draft()
    drafts = demo_services.list_messages(folder="Drafts", limit=50)
    assert [m.subject for m in drafts].count("Plans") == 1  # replaced, not piled up


def test_send_queues_with_undo_and_undo_cancels(qtbot, main_window, demo_services: Services):
    main_window.settings.setValue("compose/undo_seconds", 30)
    w = _window(qtbot, main_window, to="carol@example.org")
    w.subject_edit.setText("Hello Carol")
    w.body.setPlainText("Hi!")
    w.to_edit.setText("bad@")
    assert w.send() is None
    assert "bad@" in w.error_label.text()
    w.to_edit.setText("Carol <carol@example.org>")
    item = w.send()
    assert item is not None
    [queued] = [o for o in demo_services.outbox() if o.id == item]
    assert queued.state == "scheduled"
    assert main_window.undo_bar.isVisible()
    main_window.undo_button.click()
    [cancelled] = [o for o in demo_services.outbox() if o.id == item]
    assert cancelled.state == "cancelled"
    reopened = [x for x in main_window.compose_windows if x is not w]
    assert not main_window.undo_bar.isVisible()
    del reopened


def test_address_autocomplete_from_contacts(qtbot, main_window) -> None:
    w = _window(qtbot, main_window)
    w.to_edit.setText("bob@example.org, pri")
    w.to_edit.textEdited.emit(w.to_edit.text())
    found = w.to_edit.suggestions()
    assert found
    assert all("pri" in s.lower() for s in found)
    w.to_edit._insert(found[0])
    assert w.to_edit.text().startswith("bob@example.org, ")
    assert w.to_edit.text().endswith(", ")
    w.discard()
