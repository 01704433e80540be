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
    rb"From \S+ +(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),? +)?"
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


def iter_mbox(path: Path, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Messages of an mbox file, streaming.

    A line starting with ``From `` begins a new message when the line before it is
    empty (or it is the first line), or when it looks like an envelope line
    (``From addr Mon Nov  2 10:00:00 2026``), for mboxes written without the blank
    separator. The file is scanned in large chunks with ``bytes.find``: reading it
    line by line in Python costs more than parsing the messages.
    """
    with path.open("rb") as f:
        buf = bytearray(f.read(chunk_size))
        start = 0
        while True:
            while start < len(buf) and buf[start] in b"\r\n":
                start += 1
            if len(buf) - start >= 5:
                break
            more = f.read(chunk_size)
            if not more:
                break
            buf += more
        if not buf.startswith(b"From ", start):
            return
        del buf[:start]
        scan = 0
        while True:
            i = buf.find(b"\nFrom ", scan)
            eol = -1 if i == -1 else buf.find(b"\n", i + 1)
            if i == -1 or eol == -1:
                more = f.read(chunk_size)
                if more:
                    if i == -1:
                        scan = max(0, len(buf) - 6)
                    buf += more
                    continue
                if i == -1:
                    yield _finish(buf[_body_start(buf) :])
                    return
            prev_blank = i > 0 and (
                buf[i - 1] == 0x0A or (buf[i - 1] == 0x0D and i > 1 and buf[i - 2] == 0x0A)
            )
            if prev_blank or _ENVELOPE.match(buf, i + 1):
                yield _finish(buf[_body_start(buf) : i + 1])
                del buf[: i + 1]
                scan = 0
            else:
                scan = i + 1


def _body_start(buf: bytearray) -> int:
    """Where the message begins: after the ``From `` envelope line at the start."""
    eol = buf.find(b"\n")
    return len(buf) if eol == -1 else eol + 1


def _finish(msg: bytearray) -> bytes:
    # The line ending before the next "From " belongs to the mbox, not the message.
    if msg.endswith(b"\r\n") and (len(msg) == 2 or msg[-3] == 0x0A):
        del msg[-2:]
    elif msg.endswith(b"\n") and (len(msg) == 1 or msg[-2] == 0x0A):
        del msg[-1:]
    return bytes(msg)


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
