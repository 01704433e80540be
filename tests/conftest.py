"""Shared fixtures: a migrated template database copied per test, profiles, the CLI.

Migrating costs ~0.2 s, so it runs once per session into a template file; each test
gets its own copy (a file copy is far cheaper and isolates tests completely).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.profile import DB_NAME, Profile
from app.services import Services
from storage import accounts as acc
from storage.db import open_database, session_factory
from tests.servers.dovecot import Dovecot, unavailable_reason
from tests.servers.smtp import SmtpServer

CORPUS_ENV = "TIDINGS_CORPUS"

# No resident search servers (app/searchserver.py) from tests that happen to run
# `tidings search`: tests/test_search_server.py turns them on where it tests them.
os.environ["TIDINGS_SEARCH_SERVER"] = "0"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / DB_NAME
    engine = open_database(path)
    engine.dispose()
    return path


@pytest.fixture
def home(tmp_path: Path, template_db: Path) -> Path:
    """A profile folder with a migrated, empty database."""
    h = tmp_path / "profile"
    h.mkdir()
    shutil.copyfile(template_db, h / DB_NAME)
    return h


@pytest.fixture
def services(home: Path) -> Iterator[Services]:
    svc = Services(Profile.open(home))
    yield svc
    svc.close()


@pytest.fixture
def session(services: Services) -> Iterator[Session]:
    factory = session_factory(services.engine)
    with factory() as s:
        yield s
        s.rollback()


@pytest.fixture
def account_id(session: Session) -> int:
    info = acc.add_account(session, acc.NewAccount("acct", "me@example.com"))
    return info.id


@pytest.fixture
def folder_id(session: Session, account_id: int) -> int:
    return acc.ensure_folder(session, account_id, "INBOX")


@dataclass
class CliResult:
    code: int
    out: str
    err: str
    raw: bytes


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch):
    """Run the CLI in-process against the test profile: cli('list', '--json')."""
    from app.cli import run

    monkeypatch.delenv("TIDINGS_HOME", raising=False)

    def invoke(*args: str, home_dir: Path | None = home) -> CliResult:
        buf = io.BytesIO()
        out = io.TextIOWrapper(buf, encoding="utf-8", write_through=True)
        err = io.StringIO()
        argv = (["--home", str(home_dir)] if home_dir is not None else []) + list(args)
        old = sys.stdout
        sys.stdout = out
        try:
            with redirect_stderr(err):
                try:
                    code = run(argv)
                except SystemExit as exc:  # argparse usage errors
                    code = int(exc.code or 0)
        finally:
            out.flush()
            sys.stdout = old
        raw = buf.getvalue()
        return CliResult(code, raw.decode("utf-8", "replace"), err.getvalue(), raw)

    return invoke


def corpus_dir() -> Path:
    value = os.environ.get(CORPUS_ENV)
    if not value:
        pytest.skip(f"{CORPUS_ENV} is not set")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"{CORPUS_ENV}={value} is not a folder")
    return path


@pytest.fixture
def dovecot_available() -> None:
    """Skip (loudly) without Dovecot; fail instead when TIDINGS_REQUIRE_SERVERS=1."""
    reason = unavailable_reason()
    if reason:
        if os.environ.get("TIDINGS_REQUIRE_SERVERS") == "1":
            pytest.fail(f"Dovecot is required here: {reason}")
        pytest.skip(f"NO IMAP SERVER: {reason} (run `make system-deps`)")


@pytest.fixture
def make_dovecot(dovecot_available: None) -> Iterator[Callable[..., Dovecot]]:
    """make_dovecot(tls=True, capabilities=..., users=...) -> a started private Dovecot."""
    servers: list[Dovecot] = []

    def make(**options: Any) -> Dovecot:
        server = Dovecot(**options)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def dovecot(make_dovecot: Callable[..., Dovecot], request: pytest.FixtureRequest) -> Dovecot:
    """A fresh private Dovecot (alice / secret); parametrize indirectly with a capability list."""
    return make_dovecot(capabilities=getattr(request, "param", None))


@pytest.fixture
def tls_dovecot(make_dovecot: Callable[..., Dovecot]) -> Dovecot:
    return make_dovecot(tls=True)


# The environment variable that holds the test accounts' password (alice / secret).
PASSWORD_ENV = "TIDINGS_TEST_IMAP_PW"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A recording, fault-injecting aiosmtpd that logs in alice / secret."""
    with SmtpServer(auth={"alice": "secret"}) as server:
        yield server


@pytest.fixture
def mail_account(
    cli: Any, dovecot: Dovecot, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> Dovecot:
    """Account ``work`` (alice@example.com, "Alice Ämber") on the private Dovecot and
    aiosmtpd, its password in the environment; returns the Dovecot."""
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    r = cli(
        "account", "add", "work", "--email", "alice@example.com", "--display-name", "Alice Ämber",
        "--imap-host", dovecot.host, "--imap-port", str(dovecot.port), "--imap-security", "none",
        "--smtp-host", smtp.host, "--smtp-port", str(smtp.port), "--smtp-security", "none",
        "--username", "alice", "--password-env", PASSWORD_ENV,
    )  # fmt: skip
    assert r.code == 0, r.err
    return dovecot
