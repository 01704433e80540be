"""Attachments and safety in the reader: safe names and real extensions, thumbnails,
the PDF preview, risky files; deceptive links warn; tracking pixels are counted and
never fetched; the always-load list; a message saved as PDF."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from PySide6.QtCore import QBuffer, QIODevice, QTimer, QUrl
from PySide6.QtGui import QColor, QImage, QPainter, QPdfWriter
from PySide6.QtWidgets import QApplication, QMessageBox

from app.services import Services
from tests.ui.test_reader import _store, web_server  # noqa: F401 - web_server is a fixture
from ui.safety import analyse, host_of, is_tracker_url, link_mismatch, looks_like_address


def _png(size: int = 40) -> bytes:
    img = QImage(size, size, QImage.Format.Format_RGB32)
    img.fill(QColor("#3366cc"))
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    return bytes(buf.data().data())


def _pdf() -> bytes:
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buf)
    p = QPainter(writer)
    p.drawText(200, 200, "Quarterly report")
    writer.newPage()
    p.drawText(200, 200, "Page two")
    p.end()
    return bytes(buf.data().data())


def _part(name: str, ctype: str, data: bytes) -> str:
    return (
        f'--B\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; filename="{name}"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{base64.encodebytes(data).decode()}\r\n"
    )


def _attachment_mail() -> bytes:
    return (
        "From: Bob <bob@example.org>\r\nTo: you@tidings.example\r\nSubject: Files\r\n"
        "Date: Mon, 1 Jan 2035 10:00:00 +0000\r\nMessage-ID: <files@test>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        + _part("../../.bashrc", "text/plain", b"alias ls='rm -rf ~'\n")
        + _part("photo.png", "image/png", _png())
        + _part("report.pdf", "application/pdf", _pdf())
        + _part("invoice.pdf.exe", "application/octet-stream", b"MZ\x90\x00")
        + "--B--\r\n"
    ).encode()


def test_attachments_safe_names_thumbnails_pdf_preview_and_risky_warning(
    qtbot, main_window, demo_services: Services, tmp_path: Path
) -> None:
    reader = main_window.reader
    mid = _store(demo_services, _attachment_mail())
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.show_message(mid)
    bar = reader.attach_bar
    assert bar.isVisible()
    by_name = {v.filename: v for v in bar.views}
    assert set(by_name) == {"bashrc", "photo.png", "report.pdf", "invoice.pdf.exe"}
    exe = by_name["invoice.pdf.exe"]
    chip = bar.chips[exe.part_id]
    assert chip.text().startswith("⚠ invoice.pdf.exe\nEXE · ")
    assert "looks like a .pdf: opening it can run code" in chip.toolTip()
    assert bar.chips[by_name["report.pdf"].part_id].text().startswith("report.pdf\nPDF · ")
    # Thumbnails for the image and the PDF's first page, drawn off the GUI thread.
    wanted = {by_name["photo.png"].part_id, by_name["report.pdf"].part_id}
    qtbot.waitUntil(lambda: set(bar.thumbnail_parts()) == wanted, timeout=10_000)

    # ../../.bashrc is saved under a safe, visible name inside the chosen folder.
    folder = tmp_path / "out" / "chosen"
    folder.mkdir(parents=True)
    [saved] = bar.save(by_name["bashrc"], folder)
    assert saved == folder / "bashrc"
    assert saved.read_bytes() == b"alias ls='rm -rf ~'\n"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["bashrc", "chosen"]

    # The PDF previews inside Tidings with QtPdf.
    dialog = bar.preview(by_name["report.pdf"])
    assert dialog is not None
    assert dialog.page_count() == 2
    dialog.close()

    # A risky file asks first; cancelling hands nothing to the system.
    opened: list[str] = []
    bar.opened.connect(opened.append)
    seen: list[str] = []

    def cancel() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append(box.text())
        box.reject()

    QTimer.singleShot(0, cancel)
    assert bar.open_external(exe) is None
    assert seen
    assert seen[0].startswith("invoice.pdf.exe is a .exe file that looks like a .pdf")
    assert opened == []


def _html_mail(base: str) -> bytes:
    html = f"""<html><body><p>Monthly news</p>
<img src="{base}/open.gif?u=alice" width="1" height="1">
<img src="{base}/hidden.png" style="display:none">
<img src="https://ea.list-manage.com/track/open.php?u=1" alt="">
<img src="{base}/banner.png" width="600" height="200">
<a id="fake" href="https://evil.example.net/login">https://www.mybank.example/login</a>
<a id="fine" href="https://www.mybank.example/help">www.mybank.example/help</a>
<a id="words" href="https://evil.example.net/x">Click here</a>
</body></html>"""
    return (
        "From: Bank <news@mybank.example>\r\nTo: you@tidings.example\r\n"
        "Subject: News\r\nDate: Mon, 1 Jan 2035 10:00:00 +0000\r\n"
        "Message-ID: <news@test>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n\r\n' + html
    ).encode()


def test_tracking_pixels_counted_not_fetched_and_mismatched_link_warns(
    qtbot,
    main_window,
    demo_services: Services,
    web_server,  # noqa: F811
) -> None:
    base, hits = web_server
    reader = main_window.reader
    mid = _store(demo_services, _html_mail(base))
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.show_message(mid)
    qtbot.waitUntil(lambda: len(set(reader.blocker.blocked_for(mid))) == 4, timeout=10_000)
    qtbot.waitUntil(lambda: len(reader.analysis.pixels) == 3, timeout=10_000)
    assert reader.remote_label.text() == (
        "Remote content blocked: 4 resources, including 3 known tracking pixels. "
        "It would tell the sender when and where you read this."
    )
    assert hits == []  # nothing was fetched, the pixels least of all

    # A link that shows one address and opens another warns before opening.
    dialogs: list[tuple[str, str]] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        dialogs.append((box.windowTitle(), box.text()))
        box.reject()

    QTimer.singleShot(0, answer)
    main_window.open_link(QUrl("https://evil.example.net/login"))
    [(title, text)] = dialogs
    assert title == "Suspicious link"
    assert text.startswith(
        "This link shows https://www.mybank.example/login but leads to evil.example.net."
    )
    assert text.endswith("It really opens:\nhttps://evil.example.net/login")
    # An honest link (and one with ordinary words) gets the usual question only.
    for url in ("https://www.mybank.example/help", "https://evil.example.net/x"):
        QTimer.singleShot(0, answer)
        main_window.open_link(QUrl(url))
        assert dialogs[-1][0] == "Open link"
    assert hits == []


def test_always_load_list_is_managed_in_settings(qtbot, main_window, settings) -> None:
    settings.setValue("reader/remote_senders", ["news@mybank.example", "bob@example.org"])
    dialog = main_window.edit_remote_senders()
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    assert dialog.senders() == ["bob@example.org", "news@mybank.example"]
    dialog.list.item(0).setSelected(True)
    dialog.remove_selected()
    dialog.entry.setText("not an address")
    dialog.add_entry()
    assert dialog.error.text() == "Not an email address: 'not an address'"
    dialog.entry.setText("Carol@Example.org")
    dialog.add_entry()
    dialog.accept()
    assert settings.value("reader/remote_senders") == ["carol@example.org", "news@mybank.example"]
    assert main_window.reader.sender_allowed("news@mybank.example")
    assert not main_window.reader.sender_allowed("bob@example.org")


def test_message_saved_as_pdf_with_its_headers(
    qtbot, main_window, demo_services: Services, tmp_path: Path
) -> None:
    from PySide6.QtPdf import QPdfDocument

    reader = main_window.reader
    mid = _store(demo_services, _attachment_mail())
    with qtbot.waitSignal(reader.message_shown, timeout=20_000):
        reader.show_message(mid)
    target = tmp_path / "message.pdf"
    job = main_window.save_pdf(str(target))
    with qtbot.waitSignal(job.finished, timeout=20_000) as finished:
        pass
    assert finished.args == [True, str(target)]
    doc = QPdfDocument()
    doc.load(str(target))
    text = doc.getAllText(0).text()
    doc.close()
    assert "Files" in text
    assert "Bob <bob@example.org>" in text
    assert "see attached" in text


@pytest.mark.parametrize(
    ("href", "text", "warns"),
    [
        ("https://evil.example/login", "https://bank.example/login", True),
        ("https://evil.example/login", "bank.example", True),
        ("https://bank.example/a", "https://www.bank.example/b", False),
        ("http://bank.example/a", "https://bank.example/a", True),  # https shown, http real
        ("https://evil.example/", "Click here", False),
        ("https://evil.example/", "Bob Smith", False),
        ("mailto:a@b.example", "https://bank.example", False),
        ("https://xn--bcher-kva.example/", "bücher.example", False),
    ],
)
def test_link_mismatch_rules(href: str, text: str, warns: bool) -> None:
    assert (link_mismatch(href, text) is not None) is warns


def test_tracker_and_pixel_detection() -> None:
    assert is_tracker_url("https://ea.list-manage.com/track/open.php?u=1")
    assert is_tracker_url("https://www.facebook.com/tr?id=1")
    assert not is_tracker_url("https://www.facebook.com/somepage")
    assert not is_tracker_url("https://example.org/banner.png")
    assert host_of("WWW.Example.ORG:8443/x") == "example.org"
    assert looks_like_address("www.example.org/path")
    assert not looks_like_address("hello world")
    found = analyse(
        '<img src="https://a.example/p.gif" width="1" height="1">'
        '<img src="https://a.example/q.gif" style="width:0px;height:0px">'
        '<img src="https://a.example/big.png" width="300">'
        '<img src="tidings://message/1/cid/x" width="1" height="1">'
    )
    assert found.pixels == {"https://a.example/p.gif", "https://a.example/q.gif"}
    assert found.remote_images == 3
