"""mbox / Maildir / .eml readers: exact bytes back, flags, clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.errors import MailboxFormatError
from storage.mailfiles import detect, iter_emldir, iter_maildir, iter_mbox

M1 = b"From: a@x\nSubject: one\n\nbody one\n>From the quoted line\n"
M2 = b"From: b@x\r\nSubject: two\r\n\r\nbody two\r\n"


def test_mbox_messages_come_back_exactly(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    box.write_bytes(
        b"From a@x Mon Nov  2 10:00:00 2026\n" + M1 + b"\n"
        b"From b@x Mon Nov  2 11:00:00 2026\r\n" + M2 + b"\r\n"
        b"From c@x Tue Nov  3 09:00:00 2026\nSubject: three\n\nbody\nFrom here on, text.\n"
    )
    assert detect(box) == "mbox"
    msgs = list(iter_mbox(box))
    assert msgs[0] == M1  # >From quoting is kept: the bytes are what was stored
    assert msgs[1] == M2
    # A body line starting with "From " right after a non-blank line is not a boundary.
    assert msgs[2] == b"Subject: three\n\nbody\nFrom here on, text.\n"
    assert len(msgs) == 3


def test_mbox_envelope_without_blank_line_before_it(tmp_path: Path) -> None:
    box = tmp_path / "mboxo"
    box.write_bytes(
        b"From a@x Mon Nov  2 10:00:00 2026\nSubject: a\n\nx\n"
        b"From b@x Mon Nov  2 11:00:00 2026\nSubject: b\n\ny\n"
    )
    assert [m.split(b"\n")[0] for m in iter_mbox(box)] == [b"Subject: a", b"Subject: b"]


def test_maildir_flags_and_subfolders(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp", ".Work.Projekte/cur", ".Work.Projekte/new"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1.host:2,FS").write_bytes(M1)
    (md / "cur" / "2.host:2,RDT").write_bytes(M2)
    (md / "new" / "3.host").write_bytes(M2 + b"new\r\n")
    (md / ".Work.Projekte" / "cur" / "4.host:2,S").write_bytes(M1)
    assert detect(md) == "maildir"
    got = [(m.folder, m.raw, m.flags) for m in iter_maildir(md)]
    assert got == [
        ("", M1, frozenset({"flagged", "seen"})),
        ("", M2, frozenset({"answered", "draft", "deleted"})),
        ("", M2 + b"new\r\n", frozenset()),
        ("Work/Projekte", M1, frozenset({"seen"})),
    ]


def test_eml_folder_and_single_eml(tmp_path: Path) -> None:
    (tmp_path / "b.eml").write_bytes(M2)
    (tmp_path / "a.eml").write_bytes(M1)
    (tmp_path / "notes.txt").write_text("ignored")
    assert detect(tmp_path) == "emldir"
    assert list(iter_emldir(tmp_path)) == [M1, M2]
    assert detect(tmp_path / "a.eml") == "eml"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not an mbox"),
        (b"just some notes\nwithout headers\n", "not an mbox"),
    ],
)
def test_not_a_mailbox(tmp_path: Path, content: bytes, reason: str) -> None:
    f = tmp_path / "thing"
    f.write_bytes(content)
    with pytest.raises(MailboxFormatError, match=reason):
        detect(f)


def test_missing_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(MailboxFormatError, match="no such file"):
        detect(tmp_path / "nope")
    with pytest.raises(MailboxFormatError, match="not a Maildir"):
        detect(tmp_path)


def test_mbox_chunk_boundaries_do_not_matter(tmp_path: Path) -> None:
    box = tmp_path / "box.mbox"
    parts = []
    for i in range(12):
        eol = b"\r\n" if i % 3 == 0 else b"\n"
        body = eol.join([b"Subject: m%d" % i, b"", b"text " * (i + 1), b"From me, with love", b""])
        parts.append(b"From x@y Mon Nov  2 10:00:%02d 2026" % i + eol + body + eol)
    box.write_bytes(b"".join(parts))
    expected = list(iter_mbox(box))
    assert len(expected) == 12
    assert expected[0] == b"Subject: m0\r\n\r\ntext \r\nFrom me, with love\r\n"
    for size in (1, 5, 7, 64, 333):
        assert list(iter_mbox(box, chunk_size=size)) == expected


def test_mbox_without_final_newline_and_with_leading_blank_lines(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.write_bytes(b"\n\nFrom a@x Mon Nov  2 10:00:00 2026\nSubject: x\n\nno newline at end")
    assert list(iter_mbox(box)) == [b"Subject: x\n\nno newline at end"]
