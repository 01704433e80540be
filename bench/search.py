"""Search benchmark: indexing throughput, time to first results, query latency.

    .venv/bin/python bench/search.py [--count 10000] [--latency-count 100000]
                                     [--seed 0] [--keep DIR] [--skip-notmuch]

On the deterministic synthetic mailbox of the ingest benchmark (``app.samples``;
70% INBOX, 20% Archive, 10% Sent, a quarter unread, one in 37 starred):

  (a) indexing throughput: ``count`` messages stored and content-extracted (not
      timed; that is bench/ingest.py's business), then the whole index built from
      the database by ``SearchIndex.update`` (read, re-parse, Whoosh), messages/s;
  (b) time until the newest 1,000 are searchable after ``tidings import`` of a
      ``count``-message mbox starts (a child process; polled from here);
  (c) query latency of 20 representative queries at ``latency-count`` messages:
      in-process (p50/p95 over 5 runs of each, after one warm-up run) and through
      ``tidings search`` (process start included), both as the command usually
      runs -- answered by the profile's resident search server, which the first
      search started (app/searchserver.py) -- and with no server
      (``TIDINGS_SEARCH_SERVER=0``: every command imports and opens everything);
  (d) index size on disk as a fraction of the mail's size.

When ``notmuch`` is installed (``make bench-deps``), the same messages are written
to a Maildir and ``notmuch new`` indexes them in the same run; the same queries run
through ``notmuch search`` (a process per query, like ours through the CLI), and
the ratios are printed. ``--keep DIR`` keeps (and reuses) the built profiles, so a
second run skips the minutes that building 100,000 messages takes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIDINGS = Path(sys.executable).parent / "tidings"
NOTMUCH = shutil.which("notmuch")
TZ = "Europe/Berlin"


def folder_and_flags(i: int) -> tuple[str, frozenset[str]]:
    r = i % 10
    folder = "INBOX" if r < 7 else "Archive" if r < 9 else "Sent"
    flags = set()
    if i % 4:
        flags.add("seen")
    if i % 37 == 0:
        flags.add("flagged")
    return folder, frozenset(flags)


def build_store(home: Path, count: int, seed: int) -> dict[str, float]:
    """A profile with ``count`` synthetic messages, listable and content-extracted
    (no index). Returns what it took."""
    from app.profile import Profile
    from app.samples import synthetic_messages
    from app.services import Services
    from storage import accounts as acc
    from storage.ingest import Incoming, extract_all, ingest_batch

    svc = Services(Profile.open(home))
    with svc.session() as s:
        account_id = acc.add_account(s, acc.NewAccount("bench", "bench@example.com")).id
        folders = {
            name: acc.ensure_folder(s, account_id, name) for name in ("INBOX", "Archive", "Sent")
        }
    t = time.perf_counter()
    batch: dict[str, list[Incoming]] = {}
    n = nbytes = 0

    def flush() -> None:
        with svc.session() as s:
            for name, items in batch.items():
                ingest_batch(s, account_id, folders[name], items)
        batch.clear()

    for i, raw in enumerate(synthetic_messages(count, seed)):
        folder, flags = folder_and_flags(i)
        batch.setdefault(folder, []).append(Incoming(raw, flags=flags))
        n += 1
        nbytes += len(raw)
        if n % 500 == 0:
            flush()
    flush()
    t_list = time.perf_counter() - t
    t = time.perf_counter()
    extract_all(svc.factory, account_id)
    t_content = time.perf_counter() - t
    svc.close()
    return {"count": n, "bytes": nbytes, "listable_s": t_list, "content_s": t_content}


def index_store(home: Path) -> dict[str, float]:
    """Index everything the profile holds (as ``tidings search`` catching up would)."""
    from app.profile import Profile
    from app.search import catch_up, index_of
    from app.services import Services

    svc = Services(Profile.open(home))
    svc.engine  # noqa: B018 - open (and upgrade) the database before timing
    t = time.perf_counter()
    cpu = time.process_time()
    run = catch_up(svc)
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    assert run is not None
    docs = index_of(svc).doc_count()
    svc.close()
    size = dir_size(home / "index")
    return {
        "indexed": run.indexed,
        "index_s": wall,
        "cpu_s": cpu,
        "docs": docs,
        "index_bytes": size,
    }


def stored_count(home: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{home / 'tidings.db'}?mode=ro", uri=True)
        n = conn.execute("SELECT count(*) FROM messages WHERE content_state = 1").fetchone()[0]
        conn.close()
        return int(n)
    except sqlite3.Error:
        return 0


def write_maildir(root: Path, count: int, seed: int) -> None:
    from app.samples import synthetic_messages

    for name in ("INBOX", "Archive", "Sent"):
        for sub in ("cur", "new", "tmp"):
            (root / ("" if name == "INBOX" else f".{name}") / sub).mkdir(
                parents=True, exist_ok=True
            )
    for i, raw in enumerate(synthetic_messages(count, seed)):
        folder, flags = folder_and_flags(i)
        info = "".join(sorted({"seen": "S", "flagged": "F"}[f] for f in flags))
        d = root / ("" if folder == "INBOX" else f".{folder}") / "cur"
        (d / f"{i}.bench:2,{info}").write_bytes(raw.replace(b"\r\n", b"\n"))


def notmuch_env(base: Path, maildir: Path) -> dict[str, str]:
    cfg = base / "notmuch-config"
    cfg.write_text(
        f"[database]\npath={maildir}\n[user]\nname=Bench\nprimary_email=bench@example.com\n"
        "[new]\ntags=\nignore=\n[search]\nexclude_tags=\n[maildir]\nsynchronize_flags=true\n"
    )
    return dict(os.environ, NOTMUCH_CONFIG=str(cfg))


def notmuch_index(base: Path, count: int, seed: int) -> tuple[float, dict[str, str], Path]:
    maildir = base / "maildir"
    write_maildir(maildir, count, seed)
    env = notmuch_env(base, maildir)
    t = time.perf_counter()
    subprocess.run([NOTMUCH, "new", "--quiet"], env=env, check=True, capture_output=True)
    return time.perf_counter() - t, env, maildir


def newest_searchable(tmp: Path, count: int, seed: int) -> tuple[float, float]:
    """Seconds from the start of ``tidings import`` until the newest 1,000 messages
    are indexed, and until the import (with its indexing) ended."""
    from app.samples import synthetic_messages
    from storage.mime import parse_envelope

    mbox = tmp / f"import-{count}.mbox"
    newest: list[str] = []
    with mbox.open("wb") as f:
        for i, raw in enumerate(synthetic_messages(count, seed)):
            if i < 1000:
                mid = parse_envelope(raw).message_id
                assert mid is not None
                newest.append(mid)
            f.write(b"From bench@example.com Mon Nov  2 10:00:00 2026\n")
            f.write(raw.replace(b"\nFrom ", b"\n>From "))
            f.write(b"\n")
    home = tmp / "import-home"
    shutil.rmtree(home, ignore_errors=True)
    t = time.perf_counter()
    proc = subprocess.Popen(
        [TIDINGS, "--home", str(home), "import", str(mbox)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first: float | None = None
    marks = ",".join("?" * len(newest))
    while first is None:
        time.sleep(0.1)
        try:
            conn = sqlite3.connect(f"file:{home / 'tidings.db'}?mode=ro", uri=True, timeout=1)
            n = conn.execute(
                f"SELECT count(*) FROM messages WHERE index_state = 1 AND message_id IN ({marks})",
                newest,
            ).fetchone()[0]
            conn.close()
        except sqlite3.Error:
            n = 0
        if n >= len(newest):
            first = time.perf_counter() - t
        if proc.poll() is not None and first is None and n < len(newest):
            raise RuntimeError(f"import ended with only {n} of the newest 1,000 indexed")
    proc.wait()
    return first, time.perf_counter() - t


def pick_words(home: Path) -> dict[str, list[str]]:
    """Words of the body field by document frequency: the rarest, ~1% and >= 30%."""
    from whoosh import index

    ix = index.open_dir(str(home / "index"))
    found: list[tuple[int, str]] = []
    with ix.reader() as r:
        total = r.doc_count_all()
        for text, info in r.iter_field("body"):
            word = text.decode("utf-8") if isinstance(text, bytes) else text
            if word.isalpha() and word.isascii() and len(word) >= 5:
                found.append((info.doc_frequency(), word))
    found.sort()
    medium = [w for df, w in found if total * 0.005 <= df <= total * 0.02]
    common = [w for df, w in found if df >= total * 0.3]
    return {"rare": [w for _df, w in found[:4]], "medium": medium[:4], "common": common[-4:]}


def sender(home: Path) -> tuple[str, str]:
    conn = sqlite3.connect(home / "tidings.db")
    name, email = conn.execute(
        "SELECT from_name, from_email FROM messages WHERE from_name != ''"
        " GROUP BY from_email ORDER BY count(*) DESC LIMIT 1 OFFSET 3"
    ).fetchone()
    conn.close()
    return name.split()[-1], email


def queries(home: Path) -> list[tuple[str, str]]:
    """(tidings query, notmuch query) pairs."""
    w = pick_words(home)
    last, email = sender(home)
    rare, med, com = w["rare"], w["medium"], w["common"]
    return [
        (rare[0], rare[0]),
        (rare[1], rare[1]),
        (med[0], med[0]),
        (com[0], com[0]),
        (com[1], com[1]),
        (f"from:{last}", f"from:{last}"),
        (f"from:{email}", f"from:{email}"),
        (f"subject:{med[1]}", f"subject:{med[1]}"),
        (f'"{com[0]} {com[1]}"', f'"{com[0]} {com[1]}"'),
        (f"{com[2]} {med[2]}", f"{com[2]} and {med[2]}"),
        (f"{med[0]} OR {rare[2]}", f"{med[0]} or {rare[2]}"),
        (f"{com[3]} -{com[0]}", f"{com[3]} and not {com[0]}"),
        ("after:2026-06-01 before:2026-07-01", "date:2026-06-01..2026-06-30"),
        ("newer_than:30d", "date:30d.."),
        ("is:unread has:attachment", "tag:unread and tag:attachment"),
        ("is:starred", "tag:flagged"),
        (f"in:Archive {med[3]}", f"folder:.Archive and {med[3]}"),
        (f"{com[1]} is:unread", f"{com[1]} and tag:unread"),
        ("filename:pdf", "attachment:pdf"),
        (
            f"from:{last} {com[2]} after:2026-01-01",
            f"from:{last} and {com[2]} and date:2026-01-01..",
        ),
    ]


def latency_inprocess(
    home: Path, qs: list[tuple[str, str]], runs: int = 5
) -> list[tuple[str, int, list[float]]]:
    from app.profile import Profile
    from app.search import search
    from app.services import Services

    svc = Services(Profile.open(home))
    out = []
    for q, _ in qs:
        rows = search(svc, q, limit=50)  # warm-up (opens the index on the first one)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            rows = search(svc, q, limit=50)
            times.append(time.perf_counter() - t)
        out.append((q, len(rows), times))
    svc.close()
    return out


def latency_cli(
    home: Path, qs: list[tuple[str, str]], runs: int = 3, *, server: bool
) -> list[float]:
    """Median wall time per query of ``tidings search`` (a process per run)."""
    from app import searchserver

    env = dict(os.environ)
    env[searchserver.ENV] = "1" if server else "0"
    if server:  # the first search of the profile starts it; wait until it answers
        subprocess.run(
            [TIDINGS, "--home", str(home), "search", "warm-up"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while (
            searchserver.ask(home, "warm-up", account=None, limit=1, sort="date", as_json=True)
            is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    out = []
    for q, _ in qs:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(
                [TIDINGS, "--home", str(home), "search", "--limit", "50", "--json", q],
                check=True,
                capture_output=True,
                env=env,
            )
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times))
    if server:
        searchserver.stop(home)
    return out


def latency_notmuch(env: dict[str, str], qs: list[tuple[str, str]], runs: int = 3) -> list[float]:
    out = []
    for _, q in qs:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            subprocess.run(
                [NOTMUCH, "search", "--limit=50", "--sort=newest-first", "--output=threads", q],
                env=env,
                check=True,
                capture_output=True,
            )
            times.append(time.perf_counter() - t)
        out.append(statistics.median(times))
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--latency-count", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", metavar="DIR", help="keep built profiles here (and reuse them)")
    ap.add_argument("--skip-notmuch", action="store_true")
    ap.add_argument("--skip-import", action="store_true", help="skip (b)")
    args = ap.parse_args()
    os.environ["TZ"] = TZ
    time.tzset()
    use_notmuch = NOTMUCH is not None and not args.skip_notmuch

    tmpdir = tempfile.TemporaryDirectory(prefix="tidings-bench-search-")
    base = Path(args.keep) if args.keep else Path(tmpdir.name)
    base.mkdir(parents=True, exist_ok=True)

    # (a) indexing throughput
    home = base / f"home-{args.count}"
    shutil.rmtree(home, ignore_errors=True)
    built = build_store(home, args.count, args.seed)
    print(
        f"stored {built['count']} messages ({built['bytes'] / 1e6:.1f} MB): listable in "
        f"{built['listable_s']:.1f} s, content in {built['content_s']:.1f} s",
        file=sys.stderr,
    )
    idx = index_store(home)
    rate = idx["indexed"] / idx["index_s"]
    nm_rate = None
    if use_notmuch:
        nm_base = base / f"notmuch-{args.count}"
        shutil.rmtree(nm_base, ignore_errors=True)
        nm_base.mkdir()
        nm_s, _env, _md = notmuch_index(nm_base, args.count, args.seed)
        nm_rate = args.count / nm_s

    # (b) newest 1,000 searchable after an import starts
    first = total = None
    if not args.skip_import:
        first, total = newest_searchable(base, args.count, args.seed)

    # (c) latency at latency-count messages
    lhome = base / f"home-{args.latency_count}"
    if stored_count(lhome) != args.latency_count:
        shutil.rmtree(lhome, ignore_errors=True)
        print(
            f"building {args.latency_count} messages (once; use --keep to reuse)...",
            file=sys.stderr,
        )
        lbuilt = build_store(lhome, args.latency_count, args.seed)
        print(
            f"  listable {lbuilt['listable_s']:.0f} s, content {lbuilt['content_s']:.0f} s",
            file=sys.stderr,
        )
    lidx = index_store(lhome)  # nothing to do when a kept index is current
    if lidx["indexed"]:
        print(
            f"  indexed {lidx['indexed']} in {lidx['index_s']:.0f} s "
            f"({lidx['indexed'] / lidx['index_s']:.0f} msg/s, merges included)",
            file=sys.stderr,
        )
    # Like an installed application: the modules' bytecode is compiled.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "app", "storage", "sync"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        check=True,
        capture_output=True,
    )
    qs = queries(lhome)
    inproc = latency_inprocess(lhome, qs)
    cli = latency_cli(lhome, qs, server=True)
    cold = latency_cli(lhome, qs, server=False)
    nm_lat = None
    if use_notmuch:
        nm_lbase = base / f"notmuch-{args.latency_count}"
        if (
            not (nm_lbase / "maildir" / ".notmuch").exists()
            and not (nm_lbase / "maildir" / ".notmuch" / "xapian").exists()
        ):
            shutil.rmtree(nm_lbase, ignore_errors=True)
            nm_lbase.mkdir()
            notmuch_index(nm_lbase, args.latency_count, args.seed)
        nm_lat = latency_notmuch(notmuch_env(nm_lbase, nm_lbase / "maildir"), qs)

    mail_mb = built["bytes"] / 1e6
    cores = os.cpu_count()
    print(f"\nSearch benchmark (synthetic mailbox, seed {args.seed}, {cores} cores)\n")
    print(
        f"(a) indexing {args.count} stored messages: {idx['index_s']:.1f} s, {rate:.0f} msg/s "
        f"(CPU {idx['cpu_s']:.1f} s); target >= 300 msg/s"
    )
    if nm_rate is not None:
        print(
            f"    notmuch new, the same messages as a Maildir: {args.count / nm_rate:.1f} s, "
            f"{nm_rate:.0f} msg/s; tidings/notmuch = {rate / nm_rate:.2f}x"
        )
    if first is not None and total is not None:
        print(
            f"(b) newest 1,000 searchable {first:.1f} s after `tidings import` of {args.count} "
            f"started (import and indexing done after {total:.1f} s); target < 10 s"
        )
    print(
        f"(d) index size: {idx['index_bytes'] / 1e6:.1f} MB for {mail_mb:.1f} MB of mail "
        f"= {idx['index_bytes'] / built['bytes']:.2f}x the mail"
    )
    all_times = [t for _, _, ts in inproc for t in ts]
    print(f"\n(c) latency at {args.latency_count} messages, 50 results, newest first:")
    head = f"  {'query':<48} {'hits':>4} {'in-proc ms':>10} {'CLI ms':>7} {'no server':>9}"
    if nm_lat is not None:
        head += f" {'notmuch CLI ms':>14}"
    print(head)
    for i, (q, hits, ts) in enumerate(inproc):
        median = statistics.median(ts) * 1000
        line = f"  {q[:48]:<48} {hits:>4} {median:>10.1f} {cli[i] * 1000:>7.0f}"
        line += f" {cold[i] * 1000:>9.0f}"
        if nm_lat is not None:
            line += f" {nm_lat[i] * 1000:>14.0f}"
        print(line)
    p50, p95 = pct(all_times, 50) * 1000, pct(all_times, 95) * 1000
    print(f"\n  in-process: p50 {p50:.1f} ms, p95 {p95:.1f} ms (targets: p50 < 20, p95 < 100)")
    c50 = statistics.median(cli) * 1000
    print(
        f"  CLI, process start included: median {c50:.0f} ms, max {max(cli) * 1000:.0f} ms "
        "(target < 300 ms), answered by the profile's search server"
    )
    print(
        f"  CLI without a search server (each process imports and opens everything): "
        f"median {statistics.median(cold) * 1000:.0f} ms, max {max(cold) * 1000:.0f} ms"
    )
    if nm_lat is not None:
        n50 = statistics.median(nm_lat) * 1000
        print(
            f"  notmuch search, process start included: median {n50:.0f} ms; "
            f"tidings CLI/notmuch = {c50 / n50:.2f}x"
        )
    tmpdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
