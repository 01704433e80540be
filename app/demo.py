"""The demo profile: a realistic mailbox a newcomer can open without any account.

The mail comes from ``app.samples`` (generated deterministically, shipped as code, so
the demo is the same everywhere). Building it again replaces the demo account
whole, so ``tidings demo`` always leaves the same mailbox behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from app import samples
from app.importer import Progress, finish_content, index_new
from app.services import Services
from storage import accounts as acc
from storage.errors import NotFound
from storage.ingest import Incoming, ingest_batch


@dataclass(frozen=True, slots=True)
class DemoSummary:
    account: str
    messages: int
    folders: int


def build_demo(services: Services, progress: Progress | None = None) -> DemoSummary:
    with services.session() as s:
        with contextlib.suppress(NotFound):
            acc.remove_account(s, samples.DEMO_ACCOUNT)
        info = acc.add_account(
            s,
            acc.NewAccount(
                samples.DEMO_ACCOUNT, samples.DEMO_ADDRESS, display_name=samples.DEMO_NAME
            ),
        )
        by_folder: dict[str, list[Incoming]] = {}
        for m in samples.demo_messages():
            by_folder.setdefault(m.folder, []).append(Incoming(m.raw, flags=m.flags))
        count = 0
        for name, items in by_folder.items():
            folder_id = acc.ensure_folder(s, info.id, name)
            count += len(ingest_batch(s, info.id, folder_id, items))
    finish_content(services, info.id, progress)
    index_new(services, progress)
    return DemoSummary(info.name, count, len(by_folder))
