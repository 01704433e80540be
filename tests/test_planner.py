"""The folder-sync planner: every decision, without a server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.planner import (
    Capabilities,
    Expunges,
    Flags,
    LocalFolder,
    RemoteFolder,
    SyncPlan,
    batches,
    gone,
    missing,
    plan,
    uid_set,
)

FULL = Capabilities(condstore=True, qresync=True)
CONDSTORE = Capabilities(condstore=True, qresync=False)
PLAIN = Capabilities(condstore=False, qresync=False)


def synced(uidvalidity: int = 7, uidnext: int = 101, modseq: int | None = 500) -> LocalFolder:
    return LocalFolder(uidvalidity, uidnext, modseq, complete=True)


def remote(uidvalidity: int = 7, uidnext: int = 101, modseq: int | None = 500) -> RemoteFolder:
    return RemoteFolder(uidvalidity, uidnext, modseq, exists=100)


def test_first_sync_lists_uids_and_fetches_everything() -> None:
    p = plan(LocalFolder(None, None, None, complete=False), remote(), FULL)
    assert p == SyncPlan(False, True, None, Flags.NONE, Expunges.NONE, None)


def test_interrupted_sync_compares_uid_sets_and_rereads_flags() -> None:
    p = plan(LocalFolder(7, None, None, complete=False), remote(), FULL)
    assert p.list_uids
    assert not p.reset
    assert p.flags is Flags.ALL
    assert p.expunges is Expunges.COMPARE


@pytest.mark.parametrize("caps", [FULL, CONDSTORE, PLAIN])
def test_uidvalidity_change_resets(caps: Capabilities) -> None:
    p = plan(synced(uidvalidity=7), remote(uidvalidity=8), caps)
    assert p.reset
    assert p.list_uids
    assert p.expunges is Expunges.COMPARE


def test_nothing_changed_with_condstore_is_free() -> None:
    assert plan(synced(), remote(), FULL).nothing_to_do


def test_nothing_changed_without_qresync_still_compares_for_expunges() -> None:
    p = plan(synced(), remote(), CONDSTORE)
    assert p.flags is Flags.NONE
    assert p.expunges is Expunges.COMPARE
    assert not p.nothing_to_do


def test_new_mail_and_flag_changes_with_qresync() -> None:
    p = plan(synced(uidnext=101, modseq=500), remote(uidnext=105, modseq=530), FULL)
    assert p.new_from == 101
    assert p.flags is Flags.CHANGEDSINCE
    assert p.expunges is Expunges.VANISHED
    assert p.since_modseq == 500
    assert not p.list_uids


def test_without_condstore_every_flag_is_read() -> None:
    p = plan(synced(modseq=None), remote(modseq=None), PLAIN)
    assert p.flags is Flags.ALL
    assert p.expunges is Expunges.COMPARE
    assert p.new_from is None


def test_server_without_uidnext_is_asked_for_new_mail() -> None:
    assert plan(synced(), remote(uidnext=None), PLAIN).new_from == 101


@given(
    st.one_of(st.none(), st.integers(1, 5)),
    st.one_of(st.none(), st.integers(1, 300)),
    st.one_of(st.none(), st.integers(1, 900)),
    st.booleans(),
    st.integers(1, 5),
    st.one_of(st.none(), st.integers(1, 300)),
    st.one_of(st.none(), st.integers(1, 900)),
    st.booleans(),
    st.booleans(),
)
def test_plan_is_always_safe(
    l_uv: int | None,
    l_next: int | None,
    l_mod: int | None,
    complete: bool,
    r_uv: int,
    r_next: int | None,
    r_mod: int | None,
    condstore: bool,
    qresync: bool,
) -> None:
    local = LocalFolder(l_uv, l_next, l_mod, complete)
    rem = RemoteFolder(r_uv, r_next, r_mod, exists=10)
    p = plan(local, rem, Capabilities(condstore, condstore and qresync))
    # A different UIDVALIDITY always resets.
    assert p.reset == (l_uv is not None and l_uv != r_uv)
    # We never skip fetching: either the full UID list is compared, or new mail
    # above the last completed UIDNEXT is asked for whenever there may be any.
    if not p.list_uids:
        assert complete
        assert l_next is not None
        assert l_uv == r_uv
        if r_next is None or r_next > l_next:
            assert p.new_from == l_next
    # Expunges are never ignored unless QRESYNC proved nothing changed.
    if p.expunges is Expunges.NONE and l_uv is not None:
        assert condstore
        assert qresync
        assert r_mod is not None
        assert l_mod is not None
    # CHANGEDSINCE always carries the modseq to ask from.
    if p.flags is Flags.CHANGEDSINCE or p.expunges is Expunges.VANISHED:
        assert p.since_modseq is not None


def test_missing_is_newest_first_and_gone_is_the_rest() -> None:
    assert missing([1, 2, 3, 5, 8], [2, 5]) == [8, 3, 1]
    assert gone([1, 2, 3], [2, 4, 6]) == [4, 6]


def test_batches_bounded_by_count_and_bytes() -> None:
    sizes = dict.fromkeys(range(1, 11), 10) | {5: 1000}
    got = batches([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], sizes, max_count=3, max_bytes=100)
    assert got == [[10, 9, 8], [7, 6], [5], [4, 3, 2], [1]]
    assert [u for b in got for u in b] == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]


@given(st.lists(st.integers(1, 50), max_size=40), st.integers(1, 7), st.integers(1, 200))
def test_batches_keep_order_and_bounds(uids: list[int], count: int, max_bytes: int) -> None:
    sizes = {u: (u * 7) % 60 for u in uids}
    got = batches(uids, sizes, max_count=count, max_bytes=max_bytes)
    assert [u for b in got for u in b] == uids
    for b in got:
        assert 1 <= len(b) <= count
        assert len(b) == 1 or sum(sizes[u] for u in b) <= max_bytes


def test_uid_set() -> None:
    assert uid_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"
    assert uid_set([3, 1, 2, 2]) == "1:3"
    with pytest.raises(ValueError, match="empty"):
        uid_set([])


@given(st.sets(st.integers(1, 10_000), min_size=1, max_size=200))
def test_uid_set_round_trips(uids: set[int]) -> None:
    back: set[int] = set()
    for part in uid_set(uids).split(","):
        lo, _, hi = part.partition(":")
        back.update(range(int(lo), int(hi or lo) + 1))
    assert back == uids
