"""Attachments: safe names, the real extension, saving without surprises, private copies."""

from __future__ import annotations

import os
import stat
import tempfile
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from app.attachments import list_attachments, open_copy, purge_open_copies, save
from app.errors import AttachmentError

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
EXE = b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00"


def message(*files: tuple[str | None, bytes, str], inline_image: bool = False) -> bytes:
    """A mail with these (name, data, content type) attachments; name None: no name."""
    msg = EmailMessage()
    msg["From"] = "Mallory <mallory@example.net>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "files"
    msg["Message-ID"] = "<files@example.net>"
    msg.set_content("See attached.\n")
    if inline_image:
        msg.add_alternative('<p>Hi <img src="cid:logo@x"></p>', subtype="html")
        html = msg.get_payload()[1]
        html.add_related(b"\x89PNG\r\n\x1a\nfake", maintype="image", subtype="png", cid="<logo@x>")
    for name, data, ctype in files:
        maintype, subtype = ctype.split("/")
        if name is None:
            msg.add_attachment(data, maintype=maintype, subtype=subtype)
        else:
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=policy.SMTP)


def test_path_traversal_name_is_saved_as_a_visible_file_inside_the_folder(tmp_path: Path) -> None:
    raw = message(("../../.bashrc", b"alias ls='rm -rf ~'\n", "text/plain"))
    [view] = list_attachments(raw)
    assert view.filename == "bashrc"
    target = tmp_path / "home" / "alice" / "Downloads"  # created on demand
    [saved] = save(raw, target)
    assert saved.path == target.resolve() / "bashrc"
    assert saved.path.read_bytes() == b"alias ls='rm -rf ~'\n"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["bashrc"]
    assert not (tmp_path / "home" / ".bashrc").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("..\\..\\Windows\\System32\\evil.dll", "evil.dll"),
        ("/etc/passwd", "passwd"),
        (".hidden", "hidden"),
        ("...", "attachment-1.bin"),
        ("CON.txt", "_CON.txt"),
        ("report\x00\x07.pdf", "report.pdf"),
        ("a\tb\x7fc.pdf", "abc.pdf"),
        ('what?<is>:"this"|*.txt', "what__is___this___.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("=?utf-8?q?R=C3=A9sum=C3=A9.pdf?=", "Résumé.pdf"),
    ],
)
def test_names_are_sanitised(name: str, shown: str) -> None:
    [view] = list_attachments(message((name, b"x", "application/octet-stream")))
    assert view.filename == shown


def test_the_real_extension_is_reported() -> None:
    raw = message(
        ("invoice.pdf.exe", EXE, "application/pdf"),
        ("invoice\u202efdp.exe", EXE, "application/pdf"),
        ("setup.exe", EXE, "application/octet-stream"),
        ("macro.docm", b"PK", "application/vnd.ms-word.document.macroEnabled.12"),
        ("report.PDF", PDF, "application/pdf"),
        ("archive.tar.gz", b"\x1f\x8b", "application/gzip"),
    )
    views = {v.filename: v for v in list_attachments(raw)}
    disguised = views["invoice.pdf.exe"]
    assert disguised.extension == ".exe"
    assert disguised.risky
    assert disguised.warning == (
        "invoice.pdf.exe is a .exe file that looks like a .pdf: opening it can run code"
    )
    assert views["invoicefdp.exe"].extension == ".exe"
    assert views["invoicefdp.exe"].risky
    assert views["setup.exe"].warning == "setup.exe is a .exe file: opening it can run code"
    assert views["macro.docm"].risky
    assert views["report.PDF"].extension == ".pdf"
    assert not views["report.PDF"].risky
    assert views["report.PDF"].warning is None
    assert views["archive.tar.gz"].extension == ".gz"
    assert not views["archive.tar.gz"].risky


def test_unnamed_parts_get_names_from_their_type(tmp_path: Path) -> None:
    inner = b"From: a@example.org\r\nSubject: inner\r\n\r\nbody\r\n"
    raw = message((None, PDF, "application/pdf"), (None, inner, "message/rfc822"))
    views = list_attachments(raw)
    assert [v.filename for v in views] == ["attachment-1.pdf", "attachment-2.eml"]
    assert [v.named for v in views] == [False, False]
    saved = save(raw, tmp_path)
    assert saved[0].path.read_bytes() == PDF
    assert saved[1].path.read_bytes().startswith(b"From: a@example.org")


def test_clashes_get_numbers_and_nothing_is_overwritten(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"mine")
    raw = message(
        ("report.pdf", PDF, "application/pdf"),
        ("report.pdf", PDF[:10], "application/pdf"),
        ("backup.tar.gz", b"1", "application/gzip"),
        ("README", b"2", "text/plain"),
    )
    saved = save(raw, tmp_path)
    assert [s.path.name for s in saved] == [
        "report (2).pdf",
        "report (3).pdf",
        "backup.tar.gz",
        "README",
    ]
    assert (tmp_path / "report.pdf").read_bytes() == b"mine"
    assert (tmp_path / "report (2).pdf").read_bytes() == PDF
    again = save(raw, tmp_path, ["4", "5"])
    assert [s.path.name for s in again] == ["backup (2).tar.gz", "README (2)"]


def test_a_planted_symlink_is_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    folder = tmp_path / "save"
    folder.mkdir()
    (folder / "notes.txt").symlink_to(outside)
    [saved] = save(message(("notes.txt", b"attacker", "text/plain")), folder)
    assert saved.path == folder.resolve() / "notes (2).txt"
    assert outside.read_bytes() == b"precious"
    assert saved.path.read_bytes() == b"attacker"


def test_save_one_part_and_embedded_images(tmp_path: Path) -> None:
    raw = message(("a.pdf", PDF, "application/pdf"), inline_image=True)
    views = list_attachments(raw)
    image = next(v for v in views if v.content_type == "image/png")
    assert image.embedded_image
    assert image.inline
    assert image.content_id == "logo@x"
    pdf = next(v for v in views if v.filename == "a.pdf")
    assert not pdf.embedded_image
    assert [s.path.name for s in save(raw, tmp_path / "all")] == ["a.pdf"]
    [one] = save(raw, tmp_path / "one", [image.part_id])
    assert one.path.name.startswith("attachment-")
    assert one.path.suffix == ".png"
    assert one.path.read_bytes() == b"\x89PNG\r\n\x1a\nfake"


def test_bad_requests_are_one_line_errors_and_write_nothing(tmp_path: Path) -> None:
    raw = message(("a.pdf", PDF, "application/pdf"))
    with pytest.raises(
        AttachmentError, match=r"no attachment with part '9' \(the message has: 2\)"
    ):
        save(raw, tmp_path / "x", ["9"])
    assert not (tmp_path / "x").exists()
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(AttachmentError, match="not a folder"):
        save(raw, a_file)
    with pytest.raises(AttachmentError, match="the message has no attachments"):
        save(message(), tmp_path / "y")
    with pytest.raises(AttachmentError, match=r"cannot create folder .*: not a directory"):
        save(raw, a_file / "sub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_open_copy_is_private_and_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    raw = message(("../secret plan.pdf", PDF, "application/pdf"))
    path = open_copy(raw, "2")
    assert path.name == "secret plan.pdf"
    assert path.read_bytes() == PDF
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    base = path.parent.parent
    assert base.name == f"tidings-{os.getuid()}"
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    second = open_copy(raw, "2")
    assert second.parent != path.parent
    assert second.name == path.name
    assert purge_open_copies(timedelta(days=1)) == 0
    assert path.exists()
    assert purge_open_copies(timedelta(0)) == 2
    assert not path.exists()
    assert not second.exists()


def test_open_copy_refuses_a_base_folder_that_is_not_ours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"tidings-{os.getuid()}").symlink_to(elsewhere)
    with pytest.raises(AttachmentError, match="is not a private folder of this user"):
        open_copy(message(("a.pdf", PDF, "application/pdf")), "2")
    assert list(elsewhere.iterdir()) == []
