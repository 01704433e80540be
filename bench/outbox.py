"""Outbox benchmark: sending queued mail to a local aiosmtpd.

    .venv/bin/python bench/outbox.py [--count 1000]

The SMTP server (``tests/servers/smtp.py``) runs in a child process, so client and
server do not share a GIL. The account has a Sent folder, so each message sent is
also stored there and queued for APPEND, as in real use. Measured in one run:

  - N small queued messages sent by the outbox (``sync.outbox.send_due``) over one
    reused SMTP session, messages/s -- target >= 200/s;
  - the same with a new SMTP session per message (the session closed after each
    send, nothing else changed), for comparison;
  - N small messages through the send agent, the separate process the sync worker
    starts (process start and imports included);
  - N messages with a 1 MB attachment each: messages/s and peak RSS before and
    after, which must stay flat (each message is read, sent and dropped).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def serve(conn: object, ready: object) -> None:  # runs in the child
    from tests.servers.smtp import SmtpServer

    with SmtpServer(auth={"alice": "secret"}) as server:
        ready.send(server.port)  # type: ignore[attr-defined]
        conn.recv()  # type: ignore[attr-defined]  # wait for "stop"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    args = ap.parse_args()

    from app import sendagent
    from app.compose import AttachmentSpec, Draft, Identity, build
    from app.profile import Profile
    from app.quicksync import smtp_config
    from app.services import Services
    from storage.accounts import NewAccount, ensure_folder
    from sync import outbox as sender
    from sync.smtp import SmtpSession

    class OneShot(SmtpSession):
        """The outbox's session, closed after every message: no reuse."""

        def send(self, *a: Any, **kw: Any) -> Any:
            try:
                return super().send(*a, **kw)
            finally:
                self.close()

    stop_r, stop_w = multiprocessing.Pipe(duplex=False)
    ready_r, ready_w = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=serve, args=(stop_r, ready_w), daemon=True)
    child.start()
    port = ready_r.recv()
    os.environ["TIDINGS_BENCH_PW"] = "secret"
    ident = Identity("alice@example.com", "Alice")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tidings-outbox-") as tmp:
        svc = Services(Profile.open(Path(tmp) / "p"))
        info = svc.add_account(
            NewAccount(
                "bench", "alice@example.com", smtp_host="127.0.0.1", smtp_port=port,
                smtp_security="none", username="alice", secret_source="env",
                secret_ref="TIDINGS_BENCH_PW",
            )
        )  # fmt: skip
        with svc.session() as s:
            ensure_folder(s, info.id, "Sent", role="sent")
        cfg = smtp_config(info)

        def queue(n: int, attachment: bytes | None) -> None:
            atts = (AttachmentSpec("data.bin", attachment),) if attachment else ()
            for i in range(n):
                b = build(ident, Draft(to=(f"r{i % 9}@example.org",), subject=f"m{i}",
                                       text="Hello.\n" * 20, attachments=atts))  # fmt: skip
                svc.queue_mail("bench", raw=b.raw, message_id=b.message_id, sender=b.sender,
                               recipients=b.recipients, subject=f"m{i}",
                               send_at=datetime.now(UTC))  # fmt: skip

        def outbox_run(name: str) -> None:
            t = time.perf_counter()
            summary = sender.send_due(svc.factory, info, cfg, find_sent=None, emit=lambda e: None)
            rows.append((name, summary.sent, time.perf_counter() - t))

        queue(args.count, None)
        outbox_run("outbox, one reused session")
        queue(args.count, None)
        setattr(sender, "SmtpSession", OneShot)  # noqa: B010 - reuse off, nothing else
        outbox_run("outbox, new session each")
        setattr(sender, "SmtpSession", SmtpSession)  # noqa: B010
        queue(args.count, None)
        t = time.perf_counter()
        result = sendagent.run(svc.profile.home, info, lambda e: None)
        rows.append(("send agent process, reused", result.sent, time.perf_counter() - t))

        big = os.urandom(1024 * 1024)
        n_big = min(args.count, 200)
        rss = [rss_mb()]
        for half in (1, 2):
            queue(n_big // 2, big)
            outbox_run(f"1 MB attachment each ({half}/2)")
            rss.append(rss_mb())
        # The same messages through the SMTP session alone: what aiosmtpd (pure
        # Python, line by line) needs to take 1.4 MB of DATA, whoever sends it.
        b = build(ident, Draft(to=("r@example.org",), subject="big", text="x",
                               attachments=(AttachmentSpec("data.bin", big),)))  # fmt: skip
        t = time.perf_counter()
        with SmtpSession.open(cfg) as session:
            for _ in range(20):
                session.send(b.sender, b.recipients, b.raw)
        rows.append(("SMTP alone, 1 MB attachment", 20, time.perf_counter() - t))
        svc.close()
    stop_w.send("stop")
    child.join(timeout=10)

    print("\nOutbox benchmark: aiosmtpd in a child process on loopback; Sent copies stored\n")
    for name, n, secs in rows:
        print(f"{name:<30} {n:>5} messages in {secs:6.2f} s  = {n / secs:7.1f} msg/s")
    print(
        f"\npeak RSS before the 1 MB messages {rss[0]:.0f} MB, after half of them "
        f"{rss[1]:.0f} MB, after all {rss[2]:.0f} MB"
    )
    print("Target: >= 200 msg/s with reuse; memory flat with 1 MB attachments.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
