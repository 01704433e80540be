"""Sync benchmark: a full IMAP sync against a private Dovecot, next to its peers.

    .venv/bin/python bench/sync.py [--count 10000] [--seed 0]

Loads N synthetic messages (``app.samples``) into a private Dovecot
(``tests/servers/dovecot.py``), then measures, in one run and against the same server:

  floor      a raw FETCH of every body that stores nothing: imaplib, and imapclient
  tidings    ``tidings sync --once`` into a fresh profile, until every message is
             listable (headers, flags, thread, raw stored); content extraction runs
             after that in the same process and is timed apart
  mbsync     Debian's isync into a Maildir (skipped, with a note, when not installed;
             ``make bench`` installs it)
  no-change  ``tidings sync --once`` again with nothing new (process start included)

and prints wall time, messages/s and peak RSS of each, with the ratios to mbsync.
Each contender runs as its own child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import Dovecot  # noqa: E402


def run_child(
    cmd: list[str], env: dict[str, str] | None = None, mark: str | None = None
) -> tuple[float, float, str, float | None]:
    """Wall seconds, peak RSS (MB), stdout of a child; and when ``mark`` first
    appeared in its output (seconds from start), read live."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stderr is not None
    lines: list[bytes] = []
    marked = None
    for line in proc.stdout:
        lines.append(line)
        if mark is not None and marked is None and mark.encode() in line:
            marked = time.perf_counter() - t
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.decode(errors='replace')}")
    return wall, usage.ru_maxrss / 1024, b"".join(lines).decode(errors="replace"), marked


FLOOR = r"""
import imaplib, sys, time, json
from imapclient import IMAPClient
host, port, which = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = time.perf_counter()
n = 0
if which == "imaplib":
    c = imaplib.IMAP4(host, port)
    c.login("alice", "secret")
    c.select("INBOX", readonly=True)
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
    n = sum(1 for d in data if isinstance(d, tuple))
    c.logout()
else:
    c = IMAPClient(host, port=port, ssl=False)
    c.login("alice", "secret")
    c.select_folder("INBOX", readonly=True)
    n = len(c.fetch(c.search("ALL"), ["BODY.PEEK[]"]))
    c.logout()
print(json.dumps({"n": n}))
"""


def mbsync_config(server: Dovecot, maildir: Path) -> str:
    return f"""IMAPAccount bench
Host {server.host}
Port {server.port}
User alice
Pass secret
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel bench
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--tidings-only", action="store_true", help="skip the peers (for RSS checks at large N)"
    )
    args = ap.parse_args()

    from app.samples import synthetic_messages

    rows: list[tuple[str, float, float, int]] = []
    with Dovecot() as server, tempfile.TemporaryDirectory(prefix="tidings-sync-bench-") as tmp:
        tmpdir = Path(tmp)
        t = time.perf_counter()
        n = server.deliver_many(synthetic_messages(args.count, args.seed))
        mb = sum(p.stat().st_size for p in (server.maildir() / "new").iterdir()) / 2**20
        print(
            f"loaded {n} messages ({mb:.0f} MiB) in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
        )
        server.doveadm("mailbox", "status", "-u", "alice", "messages", "INBOX")  # index it

        for which in () if args.tidings_only else ("imaplib", "imapclient"):
            wall, rss, _, _ = run_child(
                [sys.executable, "-c", FLOOR, server.host, str(server.port), which]
            )
            rows.append((f"floor: {which} FETCH", wall, rss, n))

        home = tmpdir / "profile"
        exe = str(Path(sys.executable).parent / "tidings")
        env = dict(os.environ, TIDINGS_BENCH_PW="secret")
        subprocess.run(
            [exe, "--home", str(home), "account", "add", "bench", "--email", "alice@example.com",
             "--imap-host", server.host, "--imap-port", str(server.port), "--imap-security",
             "none", "--username", "alice", "--password-env", "TIDINGS_BENCH_PW"],
            check=True, env=env, capture_output=True,
        )  # fmt: skip
        wall, rss, _, listable = run_child(
            [exe, "--home", str(home), "sync", "--events"], env, mark='"event": "listable"'
        )
        rows.append(("tidings sync --once (listable)", listable or wall, rss, n))
        rows.append(("tidings sync --once (+ content)", wall, rss, n))

        if args.tidings_only:
            pass
        elif shutil.which("mbsync"):
            maildir = tmpdir / "mbsync"
            maildir.mkdir()
            cfg = tmpdir / "mbsyncrc"
            cfg.write_text(mbsync_config(server, maildir))
            wall_m, rss_m, _, _ = run_child(["mbsync", "-c", str(cfg), "-q", "bench"])
            rows.append(("mbsync (isync) into Maildir", wall_m, rss_m, n))
            wall_m0, rss_m0, _, _ = run_child(["mbsync", "-c", str(cfg), "-q", "bench"])
            rows.append(("mbsync, nothing changed", wall_m0, rss_m0, n))
        else:
            print("mbsync not installed (apt-get install isync): no peer", file=sys.stderr)

        wall0, rss0, _, _ = run_child([exe, "--home", str(home), "sync"], env)
        rows.append(("tidings sync --once, nothing changed", wall0, rss0, n))

    mbsync = next((r for r in rows if r[0].startswith("mbsync (")), None)
    print(
        f"\nSync benchmark: {n} messages, {mb:.0f} MiB, one folder, private Dovecot on loopback\n"
    )
    print(f"{'':<40} {'wall s':>8} {'msg/s':>8} {'peak RSS':>9} {'x mbsync':>9}")
    for name, wall, rss, count in rows:
        ratio = f"{wall / mbsync[1]:.2f}" if mbsync and "nothing" not in name else ""
        print(f"{name:<40} {wall:>8.2f} {count / wall:>8.0f} {rss:>6.0f} MB {ratio:>9}")
    print("\nTargets: listable within 2x mbsync (aim: beat it); nothing changed < 0.5 s;")
    print("peak RSS < 250 MB and flat in N.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
