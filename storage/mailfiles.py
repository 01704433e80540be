"""Reading mail out of local files: mbox, Maildir (with Maildir++ subfolders), .eml.

Readers stream: one message in memory at a time, whatever the size of the mailbox.
They hand back the message bytes exactly as stored — for mbox, without the ``From ``
envelope line and the blank line that separates messages, and *without* undoing
``>From`` quoting (mboxo and mboxrd cannot be told apart, and the stored bytes must
stay the bytes that were given). The standard library's ``mailbox`` module is not
used because it builds a table of contents of the whole file before the first
message and rewrites line endings.

A path that is none of these raises :class:`MailboxFormatError` with a one-line
reason, before anything is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storage.errors import MailboxFormatError

_ENVELOPE = re.compile(
    rb"^From \S+ +(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +)?"
    rb"(?:\w{3} +\d{1,2}|\d{1,2} +\w{3})"
)
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]{1,100}:")
_MAILDIR_FLAGS = {"S": "seen", "F": "flagged", "R": "answered", "D": "draft", "T": "deleted"}


@dataclass(frozen=True, slots=True)
class FileMessage:
    folder: str  # '' for the mailbox itself, 'Sub/Folder' for Maildir++ subfolders
    raw: bytes
    flags: frozenset[str]


def detect(path: Path) -> str:
    """'mbox', 'maildir', 'emldir' or 'eml'; MailboxFormatError otherwise."""
    try:
        if path.is_dir():
            if (path / "cur").is_dir() and (path / "new").is_dir():
                return "maildir"
            if any(p.suffix.lower() == ".eml" for p in path.iterdir()):
                return "emldir"
            raise MailboxFormatError(f"{path}: not a Maildir (no cur/ and new/) or .eml folder")
        if not path.exists():
            raise MailboxFormatError(f"{path}: no such file or folder")
        with path.open("rb") as f:
            head = f.read(4096)
    except PermissionError as exc:
        raise MailboxFormatError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise MailboxFormatError(f"{path}: {exc.strerror or exc}") from exc
    first = head.lstrip(b"\r\n").split(b"\n", 1)[0]
    if first.startswith(b"From "):
        return "mbox"
    if not head.strip():
        raise MailboxFormatError(f"{path}: empty file, not an mbox")
    if _HEADER_LINE.match(first) and b"\0" not in head[:1024]:
        return "eml"
    raise MailboxFormatError(f"{path}: not an mbox file, Maildir or .eml message")


def iter_mbox(path: Path) -> Iterator[bytes]:
    """Messages of an mbox file, streaming."""
    with path.open("rb") as f:
        lines: list[bytes] = []
        prev_blank = True
        started = False
        for line in f:
            if line.startswith(b"From ") and (prev_blank or _ENVELOPE.match(line)):
                if started:
                    yield _finish(lines)
                lines = []
                started = True
                prev_blank = False
                continue
            if started:
                lines.append(line)
            prev_blank = line in (b"\n", b"\r\n")
        if started:
            yield _finish(lines)


def _finish(lines: list[bytes]) -> bytes:
    # The line ending before the next "From " belongs to the mbox, not the message.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def iter_maildir(path: Path) -> Iterator[FileMessage]:
    """Messages of a Maildir and its Maildir++ subfolders (``.Sub.Folder``)."""
    yield from _maildir_folder(path, "")
    for sub in sorted(path.iterdir()):
        if sub.name.startswith(".") and sub.name not in (".", "..") and (sub / "cur").is_dir():
            name = "/".join(part for part in sub.name[1:].split(".") if part)
            yield from _maildir_folder(sub, name)


def _maildir_folder(path: Path, folder: str) -> Iterator[FileMessage]:
    for sub in ("cur", "new"):
        try:
            names = sorted(os.listdir(path / sub))
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith("."):
                continue
            flags: set[str] = set()
            if ":2," in name:
                flags = {_MAILDIR_FLAGS[c] for c in name.rsplit(":2,", 1)[1] if c in _MAILDIR_FLAGS}
            yield FileMessage(folder, (path / sub / name).read_bytes(), frozenset(flags))


def iter_emldir(path: Path) -> Iterator[bytes]:
    for p in sorted(path.iterdir()):
        if p.suffix.lower() == ".eml" and p.is_file():
            yield p.read_bytes()
