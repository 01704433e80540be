"""Deciding what to ask the server for one folder: pure, no I/O.

``plan(local, remote, caps)`` takes what the store knows about a folder and what
SELECT just said, and returns the steps of a sync. The runner (``sync/engine.py``)
carries them out; everything that can go wrong in the *decision* is tested here,
exhaustively, without a server.

Invariants (RFC 3501/9051, RFC 7162, RFC 4549):

- UIDs are only meaningful under one UIDVALIDITY. A different UIDVALIDITY means the
  folder's UID map is dropped and rebuilt (messages are kept and re-matched by
  content, so bodies are not downloaded again).
- ``uidnext`` and ``highestmodseq`` are stored only when a folder sync *completes*.
  A sync that was killed part way therefore looks incomplete next time, and the
  next run compares UID sets instead of trusting "everything below uidnext is here":
  nothing is skipped, and what is stored is not fetched again.
- With CONDSTORE, an unchanged HIGHESTMODSEQ and UIDNEXT mean nothing changed (with
  QRESYNC enabled an expunge raises HIGHESTMODSEQ too), so an idle folder costs one
  SELECT. Without QRESYNC, expunges are found by comparing UID sets; without
  CONDSTORE, flags are re-read for every message.
- New mail is fetched newest first, in batches bounded by count and bytes, so the
  mail a user wants first is listable first and memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class LocalFolder:
    uidvalidity: int | None  # None: never selected
    uidnext: int | None  # server UIDNEXT at the last *completed* sync
    highestmodseq: int | None  # at the last completed sync
    complete: bool  # the last sync of this folder finished


@dataclass(frozen=True, slots=True)
class RemoteFolder:
    uidvalidity: int
    uidnext: int | None
    highestmodseq: int | None
    exists: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    condstore: bool
    qresync: bool


class Flags(Enum):
    NONE = "none"  # nothing changed
    CHANGEDSINCE = "changedsince"  # CONDSTORE: FETCH FLAGS (CHANGEDSINCE m)
    ALL = "all"  # read every message's flags


class Expunges(Enum):
    NONE = "none"
    VANISHED = "vanished"  # QRESYNC: UID FETCH ... (CHANGEDSINCE m VANISHED)
    COMPARE = "compare"  # UID SEARCH ALL, then what we hold and the server lacks


@dataclass(frozen=True, slots=True)
class SyncPlan:
    reset: bool  # UIDVALIDITY changed: drop the UID map, re-match by content
    list_uids: bool  # need the server's full UID list (UID SEARCH ALL)
    new_from: int | None  # fetch UIDs >= this (when list_uids is False)
    flags: Flags
    expunges: Expunges
    since_modseq: int | None  # for CHANGEDSINCE / VANISHED

    @property
    def nothing_to_do(self) -> bool:
        return (
            not self.reset
            and not self.list_uids
            and self.new_from is None
            and self.flags is Flags.NONE
            and self.expunges is Expunges.NONE
        )


def plan(local: LocalFolder, remote: RemoteFolder, caps: Capabilities) -> SyncPlan:
    """The steps that make the local folder equal to the server's."""
    if local.uidvalidity is not None and local.uidvalidity != remote.uidvalidity:
        return SyncPlan(True, True, None, Flags.NONE, Expunges.COMPARE, None)
    if local.uidvalidity is None or not local.complete or local.uidnext is None:
        # First sync, or an interrupted one: compare UID sets; fetch what is missing,
        # forget what is gone, and read the flags of what we already had.
        had_some = local.uidvalidity is not None
        return SyncPlan(
            False,
            True,
            None,
            Flags.ALL if had_some else Flags.NONE,
            Expunges.COMPARE if had_some else Expunges.NONE,
            None,
        )

    new_from = None
    if remote.uidnext is None or remote.uidnext > local.uidnext:
        new_from = local.uidnext

    modseq_known = (
        caps.condstore and local.highestmodseq is not None and remote.highestmodseq is not None
    )
    if modseq_known:
        assert local.highestmodseq is not None
        assert remote.highestmodseq is not None
        changed = remote.highestmodseq > local.highestmodseq
        since = local.highestmodseq if changed else None
        flags = Flags.CHANGEDSINCE if changed else Flags.NONE
        if caps.qresync:
            expunges = Expunges.VANISHED if changed else Expunges.NONE
        else:
            # CONDSTORE alone does not bump HIGHESTMODSEQ on expunge: compare UID sets.
            expunges = Expunges.COMPARE
        return SyncPlan(False, False, new_from, flags, expunges, since)
    return SyncPlan(False, False, new_from, Flags.ALL, Expunges.COMPARE, None)


def missing(remote_uids: Iterable[int], local_uids: Iterable[int]) -> list[int]:
    """UIDs on the server and not here, newest (highest) first."""
    have = set(local_uids)
    return sorted((u for u in remote_uids if u not in have), reverse=True)


def gone(remote_uids: Iterable[int], local_uids: Iterable[int]) -> list[int]:
    """UIDs held here that the server no longer has."""
    there = set(remote_uids)
    return sorted(u for u in local_uids if u not in there)


def batches(
    uids: Sequence[int], sizes: dict[int, int], *, max_count: int, max_bytes: int
) -> list[list[int]]:
    """Split ``uids`` (in the order given) into batches bounded by count and bytes.

    A message larger than ``max_bytes`` goes alone in its batch; a UID without a
    known size counts as 0 bytes.
    """
    out: list[list[int]] = []
    cur: list[int] = []
    cur_bytes = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if cur and (len(cur) >= max_count or cur_bytes + size > max_bytes):
            out.append(cur)
            cur, cur_bytes = [], 0
        cur.append(uid)
        cur_bytes += size
    if cur:
        out.append(cur)
    return out


def uid_set(uids: Iterable[int]) -> str:
    """Compact IMAP sequence set: [1, 2, 3, 7, 9, 10] -> '1:3,7,9:10'."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("an empty UID set cannot be sent")
    parts: list[str] = []
    start = prev = ordered[0]
    for u in ordered[1:]:
        if u == prev + 1:
            prev = u
            continue
        parts.append(f"{start}:{prev}" if prev > start else str(start))
        start = prev = u
    parts.append(f"{start}:{prev}" if prev > start else str(start))
    return ",".join(parts)
