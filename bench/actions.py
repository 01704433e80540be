"""Local-first actions benchmark: how fast a change is local, and how fast it replays.

    .venv/bin/python bench/actions.py [--count 2000]

Against a private Dovecot (``tests/servers/dovecot.py``) holding N synthetic messages,
synced into a fresh profile, it measures in one process:

  - marking 1 message read locally (store + queued action, one transaction): median
    and p95 over 200 toggles; target < 5 ms
  - marking 1,000 selected messages read locally: target < 200 ms
  - replaying those 1,000 flag changes to the server (one UID STORE per flag and
    folder, not one per message): target < 2 s
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import Dovecot  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    args = ap.parse_args()

    from sqlalchemy import select

    from app.profile import Profile
    from app.quicksync import server_config
    from app.samples import synthetic_messages
    from app.services import Services
    from storage.models import Message
    from sync.engine import AccountSync
    from sync.imap import ImapConnection

    os.environ["TIDINGS_BENCH_PW"] = "secret"
    with Dovecot() as server, tempfile.TemporaryDirectory(prefix="tidings-actions-") as tmp:
        server.deliver_many(synthetic_messages(args.count, 0), flags="S")
        svc = Services(Profile.open(Path(tmp) / "p"))
        from storage.accounts import NewAccount

        info = svc.add_account(
            NewAccount(
                "bench", "alice@example.com", imap_host=server.host, imap_port=server.port,
                imap_security="none", username="alice", secret_source="env",
                secret_ref="TIDINGS_BENCH_PW",
            )
        )  # fmt: skip
        with ImapConnection.connect(server_config(info)) as conn:
            AccountSync(svc.factory, info, conn).run()
        with svc.session() as s:
            ids = list(s.scalars(select(Message.id).order_by(Message.date.desc())))

        one = []
        for i in range(200):
            t = time.perf_counter()
            svc.mark([ids[0]], "seen", i % 2 == 0)
            one.append(time.perf_counter() - t)
        svc.mark([ids[0]], "seen", True)
        svc.retry_action(None)

        batch = ids[1:1001]
        t = time.perf_counter()
        changed = svc.mark(batch, "seen", False)
        local_1000 = time.perf_counter() - t

        with ImapConnection.connect(server_config(info)) as conn:
            t = time.perf_counter()
            AccountSync(svc.factory, info, conn).replay()
            replay_s = time.perf_counter() - t
        unseen = int(server.status("INBOX")["unseen"])
        svc.close()

    one.sort()
    print(f"\nLocal-first actions ({args.count} messages synced from a private Dovecot)\n")
    print(f"mark 1 message read (local):      median {statistics.median(one) * 1000:6.2f} ms, "
          f"p95 {one[int(len(one) * 0.95)] * 1000:6.2f} ms   (target < 5 ms)")  # fmt: skip
    print(
        f"mark {changed} messages unread (local): {local_1000 * 1000:9.1f} ms   (target < 200 ms)"
    )
    print(f"replay those {changed} flag changes:  {replay_s * 1000:9.1f} ms   (target < 2 s)")
    print(f"server now reports {unseen} unseen in INBOX")
    return 0


if __name__ == "__main__":
    sys.exit(main())
