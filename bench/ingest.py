"""Ingest benchmark: how fast raw mail becomes listable, then fully parsed.

    .venv/bin/python bench/ingest.py [--count 10000] [--seed 0] [--sizes 2500,5000,10000]

A deterministic synthetic mailbox (``app.samples``) is written to an mbox file first
(not timed), then streamed through the same code path as ``tidings import``:

  (a) to listable: headers decoded, addresses, thread, flags, raw stored
      (compressed), committed per batch of 500;
  (b) full content: text body, snippet, attachments list (``extract_pending``).

Each count runs in a fresh child process so that its peak RSS is its own; RSS must
stay flat as the count grows (streaming, never the mailbox in memory). Peers run in
the same process on the same messages: the standard library's parsers, for scale.
Also timed: ``tidings --help`` (process start to exit).
"""

from __future__ import annotations

import argparse
import email
import email.parser
import email.policy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_HEADERS_ONLY = 4000  # msg/s, the figure for this kind of machine
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_mbox(path: Path, count: int, seed: int) -> int:
    from app.samples import synthetic_messages

    total = 0
    with path.open("wb") as f:
        for raw in synthetic_messages(count, seed):
            f.write(b"From bench@example.com Mon Nov  2 10:00:00 2026\n")
            f.write(raw.replace(b"\nFrom ", b"\n>From "))  # mboxo quoting, as MTAs write
            f.write(b"\n")
            total += len(raw)
    return total


def run_one(mbox: Path, home: Path) -> dict[str, float]:
    """Ingest the mbox into a fresh profile; returns figures (runs in a child)."""
    from app.importer import BATCH_COUNT
    from app.profile import Profile
    from app.services import Services
    from storage import accounts as acc
    from storage.ingest import Incoming, extract_pending, ingest_batch
    from storage.mailfiles import iter_mbox

    peer_before = headers_only_rate(mbox)
    svc = Services(Profile.open(home))
    with svc.session() as s:
        account_id = acc.add_account(s, acc.NewAccount("bench", "bench@example.com")).id
        folder_id = acc.ensure_folder(s, account_id, "INBOX")
    rss_before = rss_mb()

    n = nbytes = 0
    t0 = time.perf_counter()
    batch: list[Incoming] = []
    for raw in iter_mbox(mbox):
        batch.append(Incoming(raw, flags=frozenset({"seen"}) if n % 3 else frozenset()))
        n += 1
        nbytes += len(raw)
        if len(batch) >= BATCH_COUNT:
            with svc.session() as s:
                ingest_batch(s, account_id, folder_id, batch)
            batch = []
    if batch:
        with svc.session() as s:
            ingest_batch(s, account_id, folder_id, batch)
    t_list = time.perf_counter() - t0
    rss_listable = rss_mb()

    t1 = time.perf_counter()
    done = 0
    while True:
        with svc.session() as s:
            got = len(extract_pending(s, limit=200, account_id=account_id))
        if not got:
            break
        done += got
    t_content = time.perf_counter() - t1
    svc.close()
    peer_after = headers_only_rate(mbox)
    db_size = sum(p.stat().st_size for p in home.iterdir() if p.name.startswith("tidings.db"))
    return {
        "count": n,
        "mb": nbytes / 1e6,
        "listable_s": t_list,
        "content_s": t_content,
        "content_count": done,
        "rss_start_mb": rss_before,
        "rss_listable_mb": rss_listable,
        "rss_peak_mb": rss_mb(),
        "db_mb": db_size / 1e6,
        "peer_rate": (peer_before + peer_after) / 2,
    }


def headers_only_rate(mbox: Path, limit: int = 1500) -> float:
    """The stdlib headers-only parse on the first messages: this VM's speed right now."""
    from storage.mailfiles import iter_mbox

    msgs = []
    for raw in iter_mbox(mbox):
        msgs.append(raw)
        if len(msgs) >= limit:
            break
    parse = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes
    t = time.perf_counter()
    for raw in msgs:
        parse(raw)
    return len(msgs) / (time.perf_counter() - t)


def peers(mbox: Path, limit: int) -> dict[str, float]:
    """Messages/s of the standard library's parsers on the same mail."""
    from storage.mailfiles import iter_mbox

    msgs = []
    for raw in iter_mbox(mbox):
        msgs.append(raw)
        if len(msgs) >= limit:
            break
    out: dict[str, float] = {}
    parsers = {
        "stdlib policy.default": email.parser.BytesParser(policy=email.policy.default).parsebytes,
        "stdlib compat32": email.parser.BytesParser(policy=email.policy.compat32).parsebytes,
        "stdlib headers only": email.parser.BytesHeaderParser(
            policy=email.policy.compat32
        ).parsebytes,
    }
    for name, parse in parsers.items():
        t = time.perf_counter()
        for raw in msgs:
            parse(raw)
        out[name] = len(msgs) / (time.perf_counter() - t)

    from storage import mime

    t = time.perf_counter()
    for raw in msgs:
        mime.parse_envelope(raw)
    out["tidings parse_envelope"] = len(msgs) / (time.perf_counter() - t)
    t = time.perf_counter()
    for raw in msgs:
        mime.extract_content(raw)
    out["tidings extract_content"] = len(msgs) / (time.perf_counter() - t)
    return out


def help_startup(runs: int = 7) -> float:
    exe = Path(sys.executable).parent / "tidings"
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([exe, "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--sizes", default="", help="comma-separated counts to check RSS scaling")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", nargs=2, metavar=("MBOX", "HOME"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(run_one(Path(args.child[0]), Path(args.child[1]))))
        return 0

    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.count})
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as tmp:
        tmpdir = Path(tmp)
        rows = []
        for count in sizes:
            mbox = tmpdir / f"synthetic-{count}.mbox"
            t = time.perf_counter()
            mb = write_mbox(mbox, count, args.seed) / 1e6
            gen = time.perf_counter() - t
            print(f"generated {count} messages, {mb:.1f} MB, in {gen:.1f} s", file=sys.stderr)
            home = tmpdir / f"home-{count}"
            child = subprocess.run(
                [sys.executable, __file__, "--child", str(mbox), str(home)],
                capture_output=True,
                text=True,
                check=True,
                env=dict(os.environ, PYTHONHASHSEED="0"),
            )
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        peer = peers(tmpdir / f"synthetic-{args.count}.mbox", min(args.count, 2000))

    print(f"\nIngest benchmark (synthetic mailbox, seed {args.seed}, one process, one core)\n")
    print(
        f"{'messages':>9} {'MB':>7} | {'(a) listable':>13} {'msg/s':>7} {'MB/s':>6} | "
        f"{'(b) content':>12} {'msg/s':>6} | {'peak RSS':>9} {'DB MB':>6} | "
        f"{'stdlib hdr':>10} {'(a) scaled':>10} {'(b) scaled':>10}"
    )
    for r in rows:
        a = r["count"] / r["listable_s"]
        b = r["content_count"] / r["content_s"] if r["content_s"] else 0.0
        # This VM's speed swings up to 2x from minute to minute; the reference
        # machine parsed headers-only at ~4,000 msg/s, so scale by that peer, measured
        # in the same child right before and after the run.
        scale = REFERENCE_HEADERS_ONLY / r["peer_rate"]
        print(
            f"{r['count']:>9} {r['mb']:>7.1f} | {r['listable_s']:>11.2f} s {a:>7.0f} "
            f"{r['mb'] / r['listable_s']:>6.1f} | {r['content_s']:>10.2f} s {b:>6.0f} | "
            f"{r['rss_peak_mb']:>6.0f} MB {r['db_mb']:>6.1f} | "
            f"{r['peer_rate']:>6.0f}/s {a * scale:>10.0f} {b * scale:>10.0f}"
        )
    print(
        "\nTargets: (a) >= 2,000 msg/s, (b) >= 400 msg/s, peak RSS < 200 MB and flat."
        ' "scaled": at the reference speed (stdlib headers-only = 4,000 msg/s).'
    )
    print(f"\nParsers on the first {min(args.count, 2000)} of these messages (same process):")
    base = peer["stdlib headers only"]
    for name, rate in peer.items():
        print(f"  {name:<26} {rate:>8.0f} msg/s   ({rate / base:.2f}x stdlib headers-only)")
    print(f"\n`tidings --help`: {help_startup() * 1000:.0f} ms (median of 7; target < 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
