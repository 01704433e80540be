"""A resident search process for ``tidings search``, so the command answers in tens of
milliseconds instead of a third of a second.

Why it exists: a fresh ``tidings search`` spends ~250 ms before it can look at the
index -- starting Python, importing Whoosh and our modules, opening every segment of
the index -- against 10-20 ms for the query itself in a warm process. So, like
Mercurial's chg or mypy's dmypy, the first search of a profile answers itself and
then starts a server for that profile in the background; later searches send their
query over a Unix socket and print its answer. The server exits after
:data:`IDLE_EXIT` seconds without a request, when the code it runs has changed on
disk, when its socket file is taken away, or when asked to (``{"op": "stop"}``).
``TIDINGS_SEARCH_SERVER=0`` turns it off (the command then always answers itself).

What it answers is exactly what the command would print: it runs the same fast path
(:func:`app.search.quick_search`) on the latest committed data -- a new read
transaction per query, the index searcher refreshed when a commit made it stale --
in the client's time zone. When that path can't answer (index work waiting with no
worker running, a damaged index, an older schema) or anything unexpected happens,
the server says so and the command answers itself, exactly as without a server.

Safety: the socket lives in ``$XDG_RUNTIME_DIR`` or a private ``/tmp/tidings-<uid>``
folder (mode 0700, checked), and the server only answers its own user (checked with
``SO_PEERCRED`` where the system has it). A request names the profile's real path;
a server of another profile (a hash collision) declines.

The client half (:func:`ask`, :func:`start`) imports only the standard library's
lightest modules: it runs in every ``tidings search``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import zlib
from pathlib import Path
from typing import Any

__all__ = ["Answer", "ask", "enabled", "serve", "socket_path", "start", "stop"]

ENV = "TIDINGS_SEARCH_SERVER"  # "0": no server
IDLE_ENV = "TIDINGS_SEARCH_SERVER_IDLE"  # seconds (tests use a few)
IDLE_EXIT = 600.0
PROTOCOL = 1
CONNECT_TIMEOUT = 0.5
ANSWER_TIMEOUT = 30.0
MAX_REQUEST = 1 << 20


class Answer:
    """What the server printed for a request: stdout, stderr and the exit code."""

    __slots__ = ("code", "err", "out")

    def __init__(self, out: str, err: str, code: int) -> None:
        self.out, self.err, self.code = out, err, code


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "no", "false")


def _runtime_dir() -> Path | None:
    """A folder only this user can enter, for the socket; None when there is none."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    # /tmp is safe here: the folder must be ours and closed to others (checked below).
    base = Path(runtime) if runtime else Path("/tmp") / f"tidings-{os.getuid()}"  # noqa: S108
    try:
        if not runtime:
            base.mkdir(mode=0o700, exist_ok=True)
        st = base.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, or open to others: no server
    return base


def socket_path(home: Path) -> Path | None:
    folder = _runtime_dir()
    if folder is None:
        return None
    real = os.path.realpath(home)
    return folder / f"tidings-search-{zlib.crc32(real.encode()):08x}.sock"


def _exchange(path: Path, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(CONNECT_TIMEOUT)
        try:
            s.connect(str(path))
            s.settimeout(timeout)
            s.sendall(json.dumps(request).encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := s.recv(1 << 16):
                chunks.append(chunk)
        except OSError:
            return None
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def ask(
    home: Path,
    query: str,
    *,
    account: str | None,
    limit: int,
    sort: str,
    as_json: bool,
    timeout: float = ANSWER_TIMEOUT,
) -> Answer | None:
    """The running server's answer to this search, or None (no server, or it can't
    answer: the command answers itself then)."""
    path = socket_path(home) if enabled() else None
    if path is None:
        return None
    request = {
        "op": "search",
        "protocol": PROTOCOL,
        "home": os.path.realpath(home),
        "query": query,
        "account": account,
        "limit": limit,
        "sort": sort,
        "json": as_json,
        "tz": os.environ.get("TZ"),
    }
    reply = _exchange(path, request, timeout)
    if reply is None or reply.get("status") != "ok":
        return None
    try:
        return Answer(str(reply["out"]), str(reply["err"]), int(reply["code"]))
    except (KeyError, TypeError, ValueError):
        return None


def start(home: Path) -> None:
    """Start a server for this profile in the background (if none answers yet)."""
    path = socket_path(home) if enabled() else None
    if path is None or _exchange(path, {"op": "ping"}, CONNECT_TIMEOUT) is not None:
        return
    import subprocess

    with contextlib.suppress(OSError):  # no server: searches answer themselves
        subprocess.Popen(
            [sys.executable, "-m", "app.searchserver", os.path.realpath(home)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def stop(home: Path) -> int | None:
    """Ask this profile's server to exit; its pid, or None when none answered."""
    path = socket_path(home)
    reply = None if path is None else _exchange(path, {"op": "stop"}, CONNECT_TIMEOUT)
    return int(reply["pid"]) if reply and "pid" in reply else None


# --------------------------------------------------------------------------- the server


class _Server:
    def __init__(self, home: Path, sock: socket.socket, path: Path) -> None:
        from storage.search import SearchIndex

        self.home = home
        self.real = os.path.realpath(home)
        self.sock = sock
        self.path = path
        self.inode = path.stat().st_ino
        self.index = SearchIndex(home / "index")
        # Ready before the first request: what a search imports, the index opened.
        import app.cli
        import app.search  # noqa: F401

        self.index.readable()
        self.code = _code_files()
        self.stamp = _code_stamp(self.code)

    def run(self, idle: float) -> None:
        self.sock.settimeout(idle)
        try:
            while True:
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    return
                with conn:
                    if not self._handle(conn) or not self._still_ours():
                        return
        finally:
            self.index.close()
            if self._still_ours():
                self.path.unlink(missing_ok=True)
            self.sock.close()

    def _still_ours(self) -> bool:
        try:
            return self.path.stat().st_ino == self.inode
        except OSError:
            return False

    def _handle(self, conn: socket.socket) -> bool:
        """Answer one request; False when the server should exit now."""
        conn.settimeout(5.0)
        if not _same_user(conn):
            return True
        try:
            data = b""
            while len(data) <= MAX_REQUEST and (chunk := conn.recv(1 << 16)):
                data += chunk
            request = json.loads(data)
        except (OSError, ValueError):
            return True
        if not isinstance(request, dict):
            return True
        op = request.get("op")
        keep = True
        if op == "ping":
            reply: dict[str, Any] = {"status": "ok", "pid": os.getpid()}
        elif op == "stop":
            reply, keep = {"status": "ok", "pid": os.getpid()}, False
        elif op == "search" and _code_stamp(self.code) != self.stamp:
            reply, keep = {"status": "restart"}, False  # the code changed: a new server
        elif op == "search" and request.get("home") == self.real:
            reply = self._search(request)
        else:
            reply = {"status": "decline"}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply, ensure_ascii=False).encode())
        return keep

    def _search(self, request: dict[str, Any]) -> dict[str, Any]:
        import time

        from app.cli import PROG, format_messages
        from app.errors import TidingsError
        from app.search import quick_search
        from storage.errors import StorageError
        from storage.search import SearchUnavailable

        tz = request.get("tz")
        if os.environ.get("TZ") != tz:
            if isinstance(tz, str):
                os.environ["TZ"] = tz
            else:
                os.environ.pop("TZ", None)
            time.tzset()
        try:
            rows = quick_search(
                self.home,
                str(request["query"]),
                account=request.get("account"),
                limit=int(request["limit"]),
                sort=str(request["sort"]),
                index=self.index,
            )
        except SearchUnavailable:
            return {"status": "fallback"}  # the command rebuilds the index, then answers
        except (TidingsError, StorageError) as exc:
            err = f"{PROG}: error: {exc}\n"
            return {"status": "ok", "out": "", "err": err, "code": getattr(exc, "exit_code", 1)}
        except Exception:
            return {"status": "fallback"}  # the command answers (and reports) it itself
        if rows is None:
            return {"status": "fallback"}
        out = format_messages(rows, bool(request.get("json")))
        return {"status": "ok", "out": out, "err": "", "code": 0}


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # the socket's folder is private to the user
    import struct

    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def _code_files() -> list[str]:
    """The files of the server's own modules (loaded by now: see ``_Server``)."""
    root = Path(__file__).resolve().parents[1]
    files = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        top = name.split(".")[0]
        if top in ("app", "storage", "sync") and file and Path(file).resolve().is_relative_to(root):
            files.append(file)
    return sorted(files)


def _code_stamp(files: list[str]) -> tuple[int, ...]:
    """When and how big those files are: an upgrade or an edit of Tidings changes it,
    and the server makes way for a new one."""
    out = []
    for file in files:
        try:
            st = os.stat(file)
        except OSError:
            out.append(-1)
        else:
            out.append(st.st_mtime_ns ^ st.st_size)
    return tuple(out)


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(CONNECT_TIMEOUT)
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def _claim(path: Path) -> socket.socket | None:
    """Bind the socket, unless a live server holds it (a stale file is replaced)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(2):
        try:
            sock.bind(str(path))
            sock.listen(16)
            return sock
        except OSError:
            if _listening(path):
                break  # another server (perhaps still starting) serves this profile
            try:
                path.unlink()  # left behind by a server that died
            except OSError:
                break
    sock.close()
    return None


def serve(home: Path, *, idle: float | None = None) -> int:
    """Run the server of this profile until it is idle for ``idle`` seconds."""
    path = socket_path(home)
    if path is None:
        return 1
    sock = _claim(path)
    if sock is None:
        return 0
    if idle is None:
        try:
            idle = float(os.environ.get(IDLE_ENV, IDLE_EXIT))
        except ValueError:
            idle = IDLE_EXIT
    _Server(home, sock, path).run(idle)
    return 0


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1])))
