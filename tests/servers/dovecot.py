"""A private, throwaway Dovecot IMAP server for integration tests and benchmarks.

Why this exists: the sync engine must be tested against a real IMAP server, not a mock
-- real servers differ from mocks in literals, flag and EXPUNGE timing, UIDVALIDITY,
capability lists and TLS. Dovecot 2.3 starts in well under a second, so every test (or
benchmark) can have its own server on 127.0.0.1 and a free port, with its whole config,
state and mail under one short temp dir (``/tmp/tdc-XXXXXXXX``). The system Dovecot
instance is never touched: the server runs as ``dovecot -F -c ROOT/dovecot.conf`` with
its own ``base_dir``, ``state_dir``, log file and ``instance_name``.

Mail is placed on the server side without IMAP: ``deliver``/``deliver_many`` write
Maildir files directly (thousands per second), and flag changes, expunges and folder
operations go through ``doveadm`` against the private config, so the client under test
sees them as changes made by "another client".

Usage::

    with Dovecot() as server:
        server.deliver(raw_message)
        client = IMAPClient(server.host, port=server.port, ssl=False)
        client.login("alice", "secret")

Server behaviour worth knowing when writing tests:

* Messages come back with CRLF line ends (bare LF is converted) and NUL bytes become
  0x80 in BODY[] -- use CRLF messages without NULs when comparing bytes.
* IDLE reports changes about 0.5 s after they happen (Dovecot batches notifications).
* ``imap_capability`` only changes what is *advertised*: Dovecot still answers e.g.
  FETCH MODSEQ when CONDSTORE is not in the list.
* Changing UIDVALIDITY of a mailbox that a client has selected disconnects that client.
* Folder names use "/" as the hierarchy separator; "." is not allowed in a name.

This module must stay importable without pytest (benchmarks use it too). Needs root:
mail is owned by Debian's ``mail`` user, as Dovecot refuses uid 0 for mail access.
See /work/shared/DOVECOT.md for the pitfalls this code works around.
"""

from __future__ import annotations

import base64
import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "DEFAULT_CAPABILITIES",
    "NO_CONDSTORE_CAPABILITIES",
    "Dovecot",
    "ImapUser",
    "encode_mutf7",
    "maildir_folder_name",
    "unavailable_reason",
]

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
HOST = "127.0.0.1"
SEPARATOR = "/"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
MAILDIR_FLAGS = "DFRST"  # \Draft \Flagged \Answered(Replied) \Seen \Deleted (Dovecot ignores P)
SPECIAL_USE = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Archive": "\\Archive",
    "Junk": "\\Junk",
}

# What Dovecot 2.3.19 advertises after login with the default config.
DEFAULT_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
)
# The same list without CONDSTORE/QRESYNC: a server that makes the client fall back to
# UID/flag comparison. Pass as Dovecot(capabilities=NO_CONDSTORE_CAPABILITIES).
NO_CONDSTORE_CAPABILITIES = " ".join(
    c for c in DEFAULT_CAPABILITIES.split() if c not in {"CONDSTORE", "QRESYNC"}
)


@dataclass(frozen=True)
class ImapUser:
    name: str
    password: str


def unavailable_reason() -> str | None:
    """Why a private Dovecot cannot run here, or None when it can."""
    for binary in (DOVECOT, DOVEADM):
        if not os.access(binary, os.X_OK):
            return f"{binary} is missing (apt-get install dovecot-imapd)"
    if os.geteuid() != 0:
        return "the private Dovecot needs root (mail runs as the 'mail' user)"
    try:
        if pwd.getpwnam("mail").pw_uid == 0:
            return "the 'mail' user has uid 0"
    except KeyError:
        return "there is no 'mail' user"
    return None


def encode_mutf7(name: str) -> str:
    """RFC 3501 modified UTF-7 -- how Dovecot names non-ASCII folders on disk."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def maildir_folder_name(folder: str, separator: str = SEPARATOR) -> str:
    """The Maildir++ directory Dovecot uses for a user-visible folder name.

    "INBOX" is the Maildir root itself (""); "Projekte/Übersicht" is
    ".Projekte.&ANw-bersicht" (levels joined with ".", each level in mUTF-7).
    """
    parts = folder.split(separator)
    if parts[0].upper() == "INBOX":
        parts[0] = "INBOX"
        if len(parts) == 1:
            return ""
    if folder.startswith("~") or any(not p or "." in p for p in parts):
        raise ValueError(f"Dovecot cannot store a folder named {folder!r} in Maildir++")
    return "." + ".".join(encode_mutf7(p) for p in parts)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _read_greeting(port: int, timeout: float, alive: Callable[[], bool]) -> bytes:
    """Connect and read the first line; give up early when ``alive()`` turns false."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.settimeout(0.05)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in data and time.monotonic() < deadline and alive():
            try:
                chunk = s.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                break
            data += chunk
        with contextlib.suppress(OSError):
            s.sendall(b"x LOGOUT\r\n")
        return data


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat fields after the command name: state, ppid, pgrp, session, ..."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def _session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``; the master leads its own session."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields and fields[0] != "Z" and int(fields[3]) == sid:
                pids.append(int(entry.name))
    return sorted(pids)


def _asleep(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/wchan").read_text() == "hrtimer_nanosleep"
    except OSError:
        return False


def _pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (what `pgrep -f` sees)."""
    found = []
    needle = text.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        fields = _stat_fields(entry.name)
        if needle in cmdline and fields and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


def _kill_session(sid: int) -> None:
    for pid in _session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _last_resort(popen: subprocess.Popen[bytes] | None, root: Path) -> None:
    """Cleanup at garbage collection / interpreter exit for a server nobody stopped."""
    if popen is not None and popen.poll() is None:
        _kill_session(popen.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=STOP_TIMEOUT)
    shutil.rmtree(root, ignore_errors=True)


class Dovecot:
    """A private Dovecot 2.3 on 127.0.0.1: a context manager, or start()/stop()."""

    host: str
    port: int  # plain IMAP (STARTTLS offered when tls=True); 0 until started
    tls_port: int | None  # implicit TLS when tls=True
    ca_pem: Path | None  # the CA certificate clients must trust when tls=True
    root: Path  # the temp dir holding everything; removed by stop()
    separator: str  # hierarchy separator the server announces
    start_seconds: float  # how long the last start()/restart() took to get a greeting

    def __init__(
        self,
        *,
        users: Sequence[ImapUser] = (ImapUser("alice", "secret"),),
        capabilities: str | None = None,
        tls: bool = False,
        greeting: str | None = None,
    ) -> None:
        """Prepare (not start) a server.

        ``capabilities``: None keeps Dovecot's list; otherwise the exact
        ``imap_capability`` value, e.g. ``NO_CONDSTORE_CAPABILITIES`` (a leading "+"
        appends to Dovecot's list). ``tls``: also listen with implicit TLS on
        ``tls_port`` and offer STARTTLS on ``port``, with a certificate for 127.0.0.1
        and localhost from a trustme CA whose certificate is ``ca_pem``.
        ``greeting``: the text after ``* OK [CAPABILITY ...]`` at connect.

        The Maildirs exist from here on: messages can be delivered before start().
        """
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(f"cannot run a private Dovecot: {reason}")
        if not users:
            raise ValueError("at least one user is needed")
        for user in users:
            for value, bad in ((user.name, ":/\n\r\0"), (user.password, ":\n\r\0")):
                if not value or value != value.strip() or any(c in value for c in bad):
                    raise ValueError(f"unsupported user name or password: {value!r}")
        if len({u.name for u in users}) != len(users):
            raise ValueError("duplicate user names")
        for text in (capabilities, greeting):
            if text is not None and any(c in text for c in '"\\\n\r'):
                raise ValueError(f"unsupported characters in {text!r}")
        self.users = tuple(users)
        self.capabilities = capabilities
        self.tls = tls
        self.greeting = greeting
        self.host = HOST
        self.port = 0
        self.tls_port = None
        self.ca_pem = None
        self.separator = SEPARATOR
        self.start_seconds = 0.0
        entry = pwd.getpwnam("mail")
        self._uid, self._gid = entry.pw_uid, entry.pw_gid
        self._popen: subprocess.Popen[bytes] | None = None
        self._last_stamp = 0
        self._serial = 0
        self.root = Path(tempfile.mkdtemp(prefix="tdc-", dir="/tmp"))
        self._finalizer = weakref.finalize(self, _last_resort, None, self.root)
        try:
            self.root.chmod(0o755)  # auth runs as dovecot, logins as dovenull
            self._prepare_files()
        except BaseException:
            self.stop()
            raise

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Dovecot {self.host}:{self.port} tls_port={self.tls_port} {state} {self.root}>"

    # ------------------------------------------------------------------ paths

    @property
    def conf(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def base_dir(self) -> Path:
        return self.root / "run"

    @property
    def instance_name(self) -> str:
        # Dovecot titles its processes "dovecot-<instance_name>/imap" etc., so every
        # process of this server shows the temp dir's name in `ps` and `pgrep -f`.
        return self.root.name

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def maildir(self, user: str = "alice") -> Path:
        self._check_user(user)
        return self.root / "mail" / user

    def log_text(self) -> str:
        """Dovecot's log, after anything it printed before the log file was open."""
        parts = []
        for path in (self.root / "dovecot.stderr", self.log_path):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def processes(self) -> list[int]:
        """Pids of this server's live processes (command line mentions the temp dir)."""
        return _pids_mentioning(self.instance_name)

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> Dovecot:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config on free ports, start Dovecot, wait for its ``* OK`` greeting."""
        if self.running:
            raise RuntimeError("Dovecot is already running")
        if not self.root.is_dir():
            raise RuntimeError("this server was stopped for good; make a new Dovecot()")
        for attempt in range(5):
            self.port = _free_port()
            self.tls_port = _free_port() if self.tls else None
            if self.tls_port == self.port:
                continue
            try:
                self._launch()
                return
            except RuntimeError as exc:
                # Another process took the port between our probe and Dovecot's bind.
                if "Address already in use" not in str(exc) or attempt == 4:
                    raise
        raise RuntimeError("could not find free ports")  # pragma: no cover

    def restart(self) -> None:
        """Stop the server processes and start again on the same ports; mail stays."""
        if not self.port:
            raise RuntimeError("start() the server first")
        self._terminate()
        self._launch()

    def stop(self) -> None:
        """Stop the server and remove the temp dir. Idempotent."""
        try:
            self._terminate()
        finally:
            self._finalizer.detach()
            shutil.rmtree(self.root, ignore_errors=True)

    def _launch(self) -> None:
        self.conf.write_text(self._config())
        began = time.monotonic()
        with open(self.root / "dovecot.stderr", "ab") as err:
            # -F keeps the master in the foreground as our child, so it can be waited
            # for; its own session lets us find every process it forks.
            popen = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        self._popen = popen
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _last_resort, popen, self.root)
        deadline = began + START_TIMEOUT
        greeting = b""
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                self._popen = None
                raise RuntimeError(
                    f"dovecot exited with status {popen.returncode} at start:\n{self._log_tail()}"
                )
            try:
                # Bounded attempts: a port another program grabbed may accept but never
                # greet, and a master that dies (e.g. bind failed) must be noticed.
                greeting = _read_greeting(self.port, 2.0, lambda: popen.poll() is None)
            except OSError:
                time.sleep(0.005)
                continue
            if greeting.startswith(b"* OK"):
                self.start_seconds = time.monotonic() - began
                return
            time.sleep(0.005)
        self._terminate()
        raise RuntimeError(
            f"dovecot did not greet on {self.host}:{self.port} within {START_TIMEOUT:.0f} s "
            f"(read {greeting!r}):\n{self._log_tail()}"
        )

    def _terminate(self) -> None:
        popen, self._popen = self._popen, None
        if popen is None:
            return
        # base_dir/master.pid names the master; with -F that is our child, so only ever
        # signal popen.pid -- never a pid read from a file that might be stale.
        pid = popen.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        # On SIGTERM the master stops its services, tells the log process to finish and
        # then sleeps a hard-coded second before exiting. Once it sleeps and none of its
        # processes is still exiting, there is nothing left to wait for: kill it. Its
        # children (IMAP sessions included) exit when they see the master gone.
        deadline = time.monotonic() + STOP_TIMEOUT
        previous: list[int] = []
        while popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
            current = _session_pids(pid)
            if current == previous and _asleep(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            previous = current
        try:
            popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            popen.wait(timeout=STOP_TIMEOUT)
        (self.base_dir / "master.pid").unlink(missing_ok=True)
        # The log process would linger for its last writers: SIGTERM after 50 ms,
        # SIGKILL whatever is left after 0.5 s.
        pending = {0.05: signal.SIGTERM, 0.5: signal.SIGKILL}
        began = time.monotonic()
        while left := _session_pids(pid):
            waited = time.monotonic() - began
            for after in [a for a in pending if waited >= a]:
                sig = pending.pop(after)
                for child in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, sig)
            if waited > STOP_TIMEOUT:
                raise RuntimeError(f"Dovecot processes {left} survived SIGKILL")
            time.sleep(0.005)

    def _log_tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines()
        return "\n".join(text[-lines:]) or "(Dovecot's log is empty)"

    # ------------------------------------------------------------------ config

    def _check_user(self, user: str) -> None:
        if user not in {u.name for u in self.users}:
            raise ValueError(
                f"unknown user {user!r}; this server has {[u.name for u in self.users]}"
            )

    def _prepare_files(self) -> None:
        for name in ("mail", "home"):
            path = self.root / name
            path.mkdir()
            os.chown(path, self._uid, self._gid)
            for user in self.users:
                (path / user.name).mkdir(mode=0o700)
                os.chown(path / user.name, self._uid, self._gid)
        passwd = self.root / "passwd"
        passwd.write_text("".join(f"{u.name}:{{PLAIN}}{u.password}::::::\n" for u in self.users))
        try:  # the auth process reads it as group dovecot
            os.chown(passwd, 0, grp.getgrnam("dovecot").gr_gid)
            passwd.chmod(0o640)
        except KeyError:
            passwd.chmod(0o644)
        if self.tls:
            import trustme  # only TLS servers need it

            ca = trustme.CA()
            cert = ca.issue_cert(HOST, "localhost")
            self.ca_pem = self.root / "ca.pem"
            ca.cert_pem.write_to_path(str(self.ca_pem))
            cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
            (self.root / "key.pem").chmod(0o600)
            for i, pem in enumerate(cert.cert_chain_pems):
                pem.write_to_path(str(self.root / "cert.pem"), append=i > 0)

    def _config(self) -> str:
        root = self.root
        mailboxes = "".join(
            f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}\n"
            for name, flag in SPECIAL_USE.items()
        )
        if self.tls:
            ssl = f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem\n"
        else:
            ssl = "ssl = no\n"
        optional = ""
        if self.capabilities is not None:
            optional += f'imap_capability = "{self.capabilities}"\n'
        if self.greeting is not None:
            optional += f'login_greeting = "{self.greeting}"\n'
        return f"""\
# Generated by tests/servers/dovecot.py: a private, throwaway test instance.
instance_name = {self.instance_name}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
shutdown_clients = yes
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Wrong passwords are answered within ~0.5 s (Dovecot waits 2 s by default).
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={self._uid} gid={self._gid} home={root}/home/%u
}}
first_valid_uid = {self._uid}
first_valid_gid = {self._gid}

mail_location = maildir:{root}/mail/%u
# The mail is disposable: no fsync.
mail_fsync = never
# IDLE learns of changes through inotify; this is only the fallback poll.
mailbox_idle_check_interval = 1 secs
namespace inbox {{
  inbox = yes
  separator = {self.separator}
{mailboxes}}}
protocol imap {{
  mail_max_userip_connections = 100
}}
{optional}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.tls_port or 0}
    ssl = yes
  }}
}}
# Failed logins make anvil's auth penalty delay every later login from 127.0.0.1 by
# 2-15 s; without its socket (mode 0 = no listener) the auth process skips it.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# Only IMAP is enabled; make sure nothing else would listen on a public port either.
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
"""

    # ------------------------------------------------------- server-side mail

    def _folder_dir(self, user: str, folder: str) -> Path:
        base = self.maildir(user)
        path = base / maildir_folder_name(folder, self.separator)
        if not (path / "tmp").is_dir():
            for sub in (path, path / "cur", path / "new", path / "tmp"):
                sub.mkdir(mode=0o700, exist_ok=True)
                os.chown(sub, self._uid, self._gid)
            if path != base:  # Dovecot marks Maildir++ subfolders like this
                (path / "maildirfolder").touch()
                os.chown(path / "maildirfolder", self._uid, self._gid)
        return path

    def _unique_name(self) -> str:
        # Dovecot gives new files UIDs in filename order (seconds, then microseconds),
        # so names carry strictly increasing fixed-width timestamps: delivery order is
        # UID order.
        stamp = max(time.time_ns() // 1000, self._last_stamp + 1)
        self._last_stamp = stamp
        self._serial += 1
        sec, usec = divmod(stamp, 1_000_000)
        return f"{sec:010d}.M{usec:06d}P{os.getpid()}Q{self._serial}.tidings"

    def _write(self, folder_dir: Path, raw: bytes, flags: str) -> None:
        name = f"{self._unique_name()},S={len(raw)}"
        tmp = folder_dir / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchown(fd, self._uid, self._gid)
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        # Maildir delivery: complete in tmp/, then one atomic rename.
        if flags:
            os.rename(tmp, folder_dir / "cur" / f"{name}:2,{flags}")
        else:
            os.rename(tmp, folder_dir / "new" / name)

    @staticmethod
    def _maildir_flags(flags: str) -> str:
        unknown = set(flags) - set(MAILDIR_FLAGS)
        if unknown:
            raise ValueError(
                f"Maildir flags are letters of {MAILDIR_FLAGS!r}, not {sorted(unknown)}"
            )
        return "".join(sorted(set(flags)))

    def deliver(
        self, raw: bytes, *, user: str = "alice", folder: str = "INBOX", flags: str = ""
    ) -> None:
        """Put one message into ``folder`` (its Maildir is created when missing).

        ``flags`` are Maildir letters: D=\\Draft F=\\Flagged R=\\Answered
        S=\\Seen T=\\Deleted. Without flags the message goes to new/ (\\Recent, unseen).
        """
        self._write(self._folder_dir(user, folder), raw, self._maildir_flags(flags))

    def deliver_many(
        self,
        raws: Iterable[bytes],
        *,
        user: str = "alice",
        folder: str = "INBOX",
        flags: str = "",
    ) -> int:
        """Bulk-load messages; UIDs follow the iteration order. Returns the count."""
        folder_dir = self._folder_dir(user, folder)
        letters = self._maildir_flags(flags)
        count = 0
        for raw in raws:
            self._write(folder_dir, raw, letters)
            count += 1
        return count

    # ------------------------------------------------------------------ doveadm

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm -c CONF ARGS`` against this server and return its stdout."""
        if not self.conf.exists():
            raise RuntimeError("start() the server first")
        proc = subprocess.run(
            [DOVEADM, "-c", str(self.conf), *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed with status {proc.returncode}: "
                f"{proc.stderr.decode(errors='replace').strip()}"
            )
        return proc.stdout.decode("utf-8", errors="replace")

    def create_folder(self, name: str, user: str = "alice") -> None:
        self._check_user(user)
        self.doveadm("mailbox", "create", "-u", user, name)

    def delete_folder(self, name: str, user: str = "alice") -> None:
        """Delete ``name`` and its messages (not its subfolders)."""
        self._check_user(user)
        self.doveadm("mailbox", "delete", "-u", user, name)

    def rename_folder(self, old: str, new: str, user: str = "alice") -> None:
        self._check_user(user)
        self.doveadm("mailbox", "rename", "-u", user, old, new)

    def expunge(self, folder: str, uids: str, user: str = "alice") -> None:
        """Expunge by UID set, e.g. "3", "1:10", "2,5,9:*"."""
        self._check_user(user)
        self.doveadm("expunge", "-u", user, "mailbox", folder, "uid", uids)

    def set_flags(
        self, folder: str, uids: str, flags: str, *, add: bool = True, user: str = "alice"
    ) -> None:
        """Add (``add=False``: remove) IMAP flags such as ``"\\\\Seen \\\\Flagged"``."""
        self._check_user(user)
        verb = "add" if add else "remove"
        self.doveadm("flags", verb, "-u", user, flags, "mailbox", folder, "uid", uids)

    def recreate_folder(self, name: str, user: str = "alice") -> None:
        """Delete and create ``name`` again: empty, with a different UIDVALIDITY."""
        if name.upper() == "INBOX":
            raise ValueError("INBOX cannot be deleted; use bump_uidvalidity('INBOX')")
        before = self.uidvalidity(name, user)
        self.delete_folder(name, user)
        self.create_folder(name, user)
        if self.uidvalidity(name, user) == before:
            raise RuntimeError(f"UIDVALIDITY of {name!r} did not change")

    def bump_uidvalidity(self, folder: str, user: str = "alice") -> int:
        """Give ``folder`` (INBOX too) a higher UIDVALIDITY, keeping its messages.

        Clients that have the folder selected are disconnected by Dovecot."""
        new = self.uidvalidity(folder, user) + 1
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new), folder)
        return new

    def status(self, folder: str, user: str = "alice") -> dict[str, int]:
        """messages, recent, uidnext, uidvalidity, unseen, highestmodseq of ``folder``."""
        self._check_user(user)
        fields = ["messages", "recent", "uidnext", "uidvalidity", "unseen", "highestmodseq"]
        out = self.doveadm("-f", "tab", "mailbox", "status", "-u", user, " ".join(fields), folder)
        header, values = (line.split("\t") for line in out.splitlines()[:2])
        row = dict(zip(header, values, strict=True))
        return {field: int(row[field]) for field in fields}

    def uidvalidity(self, folder: str, user: str = "alice") -> int:
        return self.status(folder, user)["uidvalidity"]
