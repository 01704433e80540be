"""The resident search server (app/searchserver.py): later `tidings search` commands
get the same answer from it, fresh after every change, in the caller's time zone; a
dead, stale or outdated server never stands in the way of an answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import searchserver
from app.profile import Profile
from app.services import Services
from tests.test_search_cli import MBOX

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / "tidings"


@pytest.fixture
def served(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A profile with three indexed messages, and search servers allowed for it."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv(searchserver.ENV, "1")
    monkeypatch.setenv(searchserver.IDLE_ENV, "60")
    monkeypatch.setenv("TZ", "UTC")
    box = tmp_path / "inbox.mbox"
    box.write_bytes(MBOX)
    assert tidings(home, "import", str(box)).returncode == 0
    yield home
    searchserver.stop(home)


def tidings(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EXE), "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def wait_for_server(home: Path, timeout: float = 20.0) -> int:
    path = searchserver.socket_path(home)
    assert path is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = searchserver._exchange(path, {"op": "ping"}, 0.5)
        if reply is not None:
            return int(reply["pid"])
        time.sleep(0.05)
    raise AssertionError("no search server answered")


def ask(home: Path, query: str, *, as_json: bool = True) -> searchserver.Answer | None:
    return searchserver.ask(home, query, account=None, limit=50, sort="date", as_json=as_json)


def subjects(out: str) -> list[str]:
    return [json.loads(line)["subject"] for line in out.splitlines()]


def test_the_first_search_starts_a_server_that_answers_the_next_ones_alike(served: Path) -> None:
    home = served
    assert ask(home, "budget") is None  # none yet
    first = tidings(home, "search", "--json", "budget")
    assert first.returncode == 0, first.stderr
    assert subjects(first.stdout) == ["Réunion d’équipe", "Budget meeting"]
    wait_for_server(home)
    for query in ("budget", "from:zoe", "is:unread", "-photos", "budget OR photos", "in:inbox"):
        for as_json in (True, False):
            answer = ask(home, query, as_json=as_json)
            assert answer is not None, query
            args = ["search", *(["--json"] if as_json else []), query]
            alone = tidings(home, *args, env={**os.environ, searchserver.ENV: "0"})
            assert (answer.out, answer.err, answer.code) == (alone.stdout, "", 0), query
    # Through the command: the same lines, from the server.
    again = tidings(home, "search", "--json", "budget")
    assert again.stdout == first.stdout


def test_answers_follow_changes_at_once(served: Path) -> None:
    home = served
    tidings(home, "search", "budget")
    wait_for_server(home)
    answer = ask(home, "is:starred")
    assert answer is not None
    assert answer.out == ""
    svc = Services(Profile.open(home))
    try:
        budget = [m.id for m in svc.search("budget meeting")]
        svc.mark(budget, "flagged", True)
    finally:
        svc.close()
    answer = ask(home, "is:starred")
    assert answer is not None
    assert subjects(answer.out) == ["Budget meeting"]
    # New mail, indexed by the command line (no worker runs): found by the server.
    box = home.parent / "more.mbox"
    box.write_bytes(MBOX.replace(b"Holiday photos", b"Harvest festival"))
    assert tidings(home, "import", str(box)).returncode == 0
    answer = ask(home, "harvest")
    assert answer is not None
    assert subjects(answer.out) == ["Harvest festival"]


def test_dates_are_read_and_shown_in_the_callers_time_zone(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = served
    tidings(home, "search", "budget")
    wait_for_server(home)  # started with TZ=UTC
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # Tue 03 Nov 10:00 UTC is 19:00 there
    answer = ask(home, "from:zoe", as_json=False)
    assert answer is not None
    assert "2026-11-03 19:00" in answer.out
    alone = tidings(home, "search", "from:zoe", env={**os.environ, searchserver.ENV: "0"})
    assert answer.out == alone.stdout
    # A day in the caller's zone: 10:00 UTC is the same day in Tokyo, the day before
    # in Pago Pago (UTC-11).
    on_the_3rd = ask(home, "after:2026-11-03 before:2026-11-04")
    assert on_the_3rd is not None
    assert subjects(on_the_3rd.out) == ["Réunion d’équipe"]
    monkeypatch.setenv("TZ", "Pacific/Pago_Pago")
    on_the_3rd = ask(home, "after:2026-11-03 before:2026-11-04")
    assert on_the_3rd is not None
    assert subjects(on_the_3rd.out) == ["Holiday photos"]


def test_a_bad_query_fails_in_one_line_through_the_server(served: Path) -> None:
    home = served
    tidings(home, "search", "budget")
    wait_for_server(home)
    r = tidings(home, "search", "before:2026-13-45")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("tidings: error: "), r.stderr
    assert r.stderr.count("\n") == 1
    alone = tidings(home, "search", "before:2026-13-45", env={**os.environ, searchserver.ENV: "0"})
    assert (r.returncode, r.stderr) == (alone.returncode, alone.stderr)


def test_a_killed_server_leaves_a_stale_socket_that_is_replaced(served: Path) -> None:
    home = served
    tidings(home, "search", "budget")
    pid = wait_for_server(home)
    os.kill(pid, signal.SIGKILL)
    path = searchserver.socket_path(home)
    assert path is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ask(home, "budget") is not None:
        time.sleep(0.05)
    assert path.exists()  # left behind
    r = tidings(home, "search", "--json", "budget")  # answers itself, starts a new one
    assert r.returncode == 0
    assert subjects(r.stdout) == ["Réunion d’équipe", "Budget meeting"]
    assert wait_for_server(home) != pid


def test_a_second_server_for_the_same_profile_steps_aside(served: Path) -> None:
    home = served
    tidings(home, "search", "budget")
    pid = wait_for_server(home)
    second = subprocess.run(
        [sys.executable, "-m", "app.searchserver", str(home)], timeout=30, check=False
    )
    assert second.returncode == 0
    assert wait_for_server(home) == pid


def test_an_idle_server_exits_and_removes_its_socket(
    served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = served
    monkeypatch.setenv(searchserver.IDLE_ENV, "1")
    tidings(home, "search", "budget")
    wait_for_server(home)
    path = searchserver.socket_path(home)
    assert path is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and path.exists():
        time.sleep(0.1)
    assert not path.exists()
    assert ask(home, "budget") is None


def test_no_server_when_turned_off_or_the_socket_folder_is_not_private(
    served: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = served
    monkeypatch.setenv(searchserver.ENV, "0")
    assert tidings(home, "search", "budget").returncode == 0
    time.sleep(0.5)
    monkeypatch.setenv(searchserver.ENV, "1")
    assert ask(home, "budget") is None
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert searchserver.socket_path(home) is None
    assert tidings(home, "search", "budget").returncode == 0
    assert list(shared.iterdir()) == []


def test_code_changes_on_disk_change_the_stamp(tmp_path: Path) -> None:
    module = tmp_path / "mod.py"
    module.write_text("x = 1\n")
    files = [str(module)]
    before = searchserver._code_stamp(files)
    assert searchserver._code_stamp(files) == before
    module.write_text("x = 22\n")
    assert searchserver._code_stamp(files) != before
    module.unlink()
    assert searchserver._code_stamp(files) == (-1,)


def test_a_server_of_another_profile_declines(served: Path, tmp_path: Path) -> None:
    home = served
    tidings(home, "search", "budget")
    wait_for_server(home)
    path = searchserver.socket_path(home)
    assert path is not None
    request = {"op": "search", "home": str(tmp_path / "elsewhere"), "query": "budget",
               "limit": 5, "sort": "date", "json": True, "tz": None}  # fmt: skip
    assert searchserver._exchange(path, request, 5.0) == {"status": "decline"}
