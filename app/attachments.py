"""A message's attachments: list them, save them into a folder, open a private copy.

The reader's attachment bar and ``tidings attachments`` both use this module; the
parts themselves come from ``storage.mime`` (``extract_content`` lists them with IMAP
section numbers, ``part_bytes`` decodes one), always from the stored raw bytes, so an
attachment can be saved even before the store has extracted the message's content.

Why it is shaped this way:

* A file name in a message is chosen by the sender, so it is treated as hostile. The
  name shown and the name written are one and the same *safe name*:
  ``storage.mime.sanitize_filename`` decodes it and drops directories (``../../.bashrc``
  keeps only ``.bashrc``), controls, bidi overrides (which make ``fdp.exe`` look like
  ``exe.pdf``), Windows-reserved characters and device names (``CON``, ``LPT1``) and
  leading dots, so nothing becomes a hidden file; what is left here are the defaults:
  a part without a usable name is ``attachment-N`` with an extension from its content
  type (``.eml`` for an attached message). A name is never trusted to stay inside the
  folder on its own: the path written is checked to be a direct child of the folder.
* The *real* extension is the last one, because that is what the file manager and the
  system handler go by: ``invoice.pdf.exe`` is reported as ``.exe``, flagged ``risky``,
  and its ``warning`` says it is a program that looks like a ``.pdf``. Risky means
  "opening it can run code": programs and installers, scripts, shortcuts, disk images
  and Office files with macros.
* Saving never overwrites: a clash gets " (2)", " (3)", ... before the extension
  (``report (2).pdf``, ``backup (2).tar.gz``). Files are created with ``O_EXCL`` and
  ``O_NOFOLLOW``, so neither a file that appears meanwhile nor a planted symlink is
  written through; a failed write leaves no partial file behind. Saving all skips
  pure inline images (a part with a Content-ID, no name and inline disposition: the
  pictures of an HTML mail) because they are part of the text, not attachments; they
  can still be saved one by one.
* "Open" writes a read-only copy into a fresh private directory (mode 0700, under
  ``$TMPDIR/tidings-<uid>``, also 0700 and checked to be ours and not a symlink) for the
  system handler. Nothing is cleaned up while a viewer might still read the file;
  ``purge_open_copies`` removes copies older than a day (the desktop app calls it at
  start).
* Errors a user can act on (an unknown part, a folder that cannot be written) are
  ``AttachmentError`` with one line.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from app.errors import AttachmentError
from storage.dto import AttachmentInfo
from storage.mime import extract_content, part_bytes, sanitize_filename

__all__ = [
    "AttachmentView",
    "SavedFile",
    "describe",
    "list_attachments",
    "open_copy",
    "purge_open_copies",
    "safe_name",
    "save",
    "write_new_file",
]

# Opening one of these can run code: programs, installers, scripts, shortcuts, disk
# images that mount and autorun, and Office documents with macros.
RISKY_EXTENSIONS = frozenset(
    {
        "exe",
        "com",
        "scr",
        "pif",
        "bat",
        "cmd",
        "msi",
        "msp",
        "mst",
        "msc",
        "cpl",
        "dll",
        "sys",
        "ocx",
        "drv",
        "reg",
        "inf",
        "lnk",
        "url",
        "scf",
        "application",
        "appref-ms",
        "gadget",
        "hta",
        "js",
        "jse",
        "vbs",
        "vbe",
        "wsf",
        "wsh",
        "wsc",
        "ps1",
        "psm1",
        "psd1",
        "ps1xml",
        "psc1",
        "jar",
        "class",
        "sh",
        "bash",
        "zsh",
        "csh",
        "ksh",
        "command",
        "tool",
        "run",
        "bin",
        "out",
        "elf",
        "app",
        "pkg",
        "mpkg",
        "dmg",
        "deb",
        "rpm",
        "apk",
        "appimage",
        "snap",
        "flatpakref",
        "desktop",
        "iso",
        "img",
        "vhd",
        "vhdx",
        "xll",
        "xlam",
        "ppam",
        "docm",
        "dotm",
        "xlsm",
        "xltm",
        "xlsb",
        "pptm",
        "potm",
        "ppsm",
        "sldm",
        "chm",
        "msh",
        "msh1",
        "msh2",
        "py",
        "pyw",
        "pl",
        "rb",
        "php",
    }
)
# Extensions that make a risky file look harmless when they come just before its own.
DOCUMENT_EXTENSIONS = frozenset(
    {
        "pdf",
        "doc",
        "docx",
        "odt",
        "rtf",
        "txt",
        "xls",
        "xlsx",
        "ods",
        "csv",
        "ppt",
        "pptx",
        "odp",
        "jpg",
        "jpeg",
        "png",
        "gif",
        "bmp",
        "tif",
        "tiff",
        "webp",
        "heic",
        "svg",
        "mp3",
        "mp4",
        "mov",
        "avi",
        "wav",
        "zip",
        "rar",
        "7z",
        "html",
        "htm",
        "eml",
        "ics",
        "vcf",
    }
)
_COMPOUND = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")
_TYPE_EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "text/calendar": ".ics",
    "application/ics": ".ics",
    "text/plain": ".txt",
    "text/html": ".html",
    "image/jpeg": ".jpg",
    "application/octet-stream": ".bin",
}
OPEN_DIR_PREFIX = "tidings-"
OPEN_COPY_MAX_AGE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """One attachment as the reader and the CLI show it."""

    part_id: str  # IMAP section number ('2', '1.3')
    filename: str  # the safe name: shown, and used when saving
    content_type: str  # lower-case, as declared by the sender
    size: int  # decoded bytes
    inline: bool
    content_id: str | None
    extension: str  # the real (last) extension, lower-case with its dot; '' if none
    risky: bool  # opening it can run code
    warning: str | None  # one line for the user, None when nothing is odd
    named: bool  # the sender gave a usable name (else we chose 'attachment-N.ext')

    @property
    def embedded_image(self) -> bool:
        """A picture of an HTML mail (inline, Content-ID, no name of its own)."""
        return self.inline and self.content_id is not None and not self.named


@dataclass(frozen=True, slots=True)
class SavedFile:
    attachment: AttachmentView
    path: Path


def _default_extension(content_type: str) -> str:
    ext = _TYPE_EXTENSIONS.get(content_type)
    if ext is None:
        ext = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return ext


def safe_name(name: str, content_type: str, number: int) -> str:
    """The name to show and save under; ``attachment-N.ext`` when none is usable."""
    cleaned = sanitize_filename(name)
    if cleaned:
        return cleaned
    return f"attachment-{number}{_default_extension(content_type)}"


def _extensions(name: str) -> list[str]:
    """Extensions from last to first, lower-case, without dots ('a.pdf.exe' -> exe, pdf)."""
    parts = name.lower().split(".")
    return [p.strip() for p in reversed(parts[1:])] if len(parts) > 1 else []


def describe(info: AttachmentInfo, number: int) -> AttachmentView:
    """An attachment row (from ``storage.mime``) as shown to the user."""
    given = sanitize_filename(info.filename)
    name = given or safe_name("", info.content_type, number)
    exts = _extensions(name)
    ext = exts[0] if exts else ""
    risky = ext in RISKY_EXTENSIONS
    warning: str | None = None
    if risky:
        shown_as = exts[1] if len(exts) > 1 and exts[1] in DOCUMENT_EXTENSIONS else None
        if shown_as:
            warning = (
                f"{name} is a .{ext} file that looks like a .{shown_as}: opening it can run code"
            )
        else:
            warning = f"{name} is a .{ext} file: opening it can run code"
    return AttachmentView(
        part_id=info.part_id,
        filename=name,
        content_type=info.content_type,
        size=info.size,
        inline=info.inline,
        content_id=info.content_id,
        extension=f".{ext}" if ext else "",
        risky=risky,
        warning=warning,
        named=bool(given),
    )


def list_attachments(raw: bytes) -> list[AttachmentView]:
    """Every attachment and inline resource of a message, in MIME order."""
    return [
        describe(info, number)
        for number, info in enumerate(extract_content(raw).attachments, start=1)
    ]


def _pick(views: list[AttachmentView], part_ids: Sequence[str] | None) -> list[AttachmentView]:
    if part_ids is None:
        return [v for v in views if not v.embedded_image]
    by_part = {v.part_id: v for v in views}
    picked: list[AttachmentView] = []
    for part in part_ids:
        view = by_part.get(part)
        if view is None:
            have = ", ".join(by_part) or "none"
            raise AttachmentError(f"no attachment with part {part!r} (the message has: {have})")
        if view not in picked:
            picked.append(view)
    return picked


def _split_ext(name: str) -> tuple[str, str]:
    lower = name.lower()
    for compound in _COMPOUND:
        if lower.endswith(compound) and len(name) > len(compound):
            return name[: -len(compound)], name[-len(compound) :]
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        return stem, f".{ext}"
    return name, ""


def _candidates(name: str) -> list[str]:
    stem, ext = _split_ext(name)
    return [name, *(f"{stem} ({n}){ext}" for n in range(2, 1000))]


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def write_new_file(folder: Path, name: str, data: bytes, mode: int = 0o666) -> Path:
    """Write ``data`` to a new file ``name`` in ``folder`` (" (2)" on a clash).

    Never overwrites, never follows a symlink, never leaves a partial file.
    """
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\x00" in name:
        raise AttachmentError(f"refusing to write an unsafe file name: {name!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    for candidate in _candidates(name):
        path = folder / candidate
        if path.parent != folder:  # defence in depth: only direct children
            raise AttachmentError(f"refusing to write outside {folder}: {candidate!r}")
        try:
            fd = os.open(path, flags, mode)
        except FileExistsError:
            continue
        except OSError as exc:
            raise AttachmentError(f"cannot write {path}: {_reason(exc)}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.unlink()
            raise AttachmentError(f"cannot write {path}: {_reason(exc)}") from exc
        return path
    raise AttachmentError(f"too many files named like {name} in {folder}")


def _prepare_folder(folder: Path) -> Path:
    folder = folder.expanduser()
    if folder.exists() and not folder.is_dir():
        raise AttachmentError(f"not a folder: {folder}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AttachmentError(f"cannot create folder {folder}: {_reason(exc)}") from exc
    return folder.resolve()


def _data(raw: bytes, view: AttachmentView) -> bytes:
    data = part_bytes(raw, view.part_id)
    if data is None:  # listed by extract_content, so this is a parser disagreement
        raise AttachmentError(f"cannot read attachment {view.filename} (part {view.part_id})")
    return data


def save(raw: bytes, folder: Path, part_ids: Sequence[str] | None = None) -> list[SavedFile]:
    """Save the given parts (default: every attachment but embedded images) into ``folder``.

    The folder is created if need be. Returns where each file went.
    """
    views = _pick(list_attachments(raw), part_ids)
    if not views:
        raise AttachmentError("the message has no attachments")
    target = _prepare_folder(folder)
    return [
        SavedFile(view, write_new_file(target, view.filename, _data(raw, view))) for view in views
    ]


def _private_base() -> Path:
    """``$TMPDIR/tidings-<uid>``: ours, a real directory, mode 0700."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(tempfile.gettempdir()) / f"{OPEN_DIR_PREFIX}{uid}"
    try:
        base.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        reason = _reason(exc)
        raise AttachmentError(f"cannot create a private folder in {base.parent}: {reason}") from exc
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != uid):
        raise AttachmentError(f"{base} is not a private folder of this user; remove it")
    if stat.S_IMODE(info.st_mode) != 0o700:
        base.chmod(0o700)
    return base


def open_copy(raw: bytes, part_id: str) -> Path:
    """A read-only copy of one attachment in a new private directory, for the system handler."""
    [view] = _pick(list_attachments(raw), [part_id])
    data = _data(raw, view)
    try:
        private = Path(tempfile.mkdtemp(prefix="open-", dir=_private_base()))
    except OSError as exc:
        raise AttachmentError(f"cannot create a private folder: {_reason(exc)}") from exc
    path = write_new_file(private, view.filename, data, mode=0o600)
    path.chmod(0o400)
    return path


def purge_open_copies(max_age: timedelta = OPEN_COPY_MAX_AGE) -> int:
    """Remove private copies older than ``max_age``; returns how many folders went."""
    try:
        base = _private_base()
    except (AttachmentError, OSError):
        return 0
    cutoff = time.time() - max_age.total_seconds()
    removed = 0
    for entry in base.iterdir():
        try:
            if entry.is_symlink() or entry.lstat().st_mtime >= cutoff:
                continue
        except OSError:
            continue
        if entry.is_dir():
            for inner in entry.iterdir():  # read-only files in a writable dir: unlink works
                with contextlib.suppress(OSError):
                    inner.chmod(0o600)
            shutil.rmtree(entry, ignore_errors=True)
            removed += not entry.exists()
    return removed
