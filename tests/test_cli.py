"""The `tidings` command line: every command, its JSON shape, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from tests.conftest import CliResult
from tests.mailmaker import mail

MBOX = (
    b"From a@x Mon Nov  2 10:00:00 2026\n"
    + mail("one@x", "First", date="Mon, 02 Nov 2026 10:00:00 +0000").replace(b"\r\n", b"\n")
    + b"\nFrom b@x Tue Nov  3 10:00:00 2026\n"
    + mail(
        "two@x",
        "=?iso-8859-1?q?R=E9union?=",
        sender="=?utf-8?b?WsO2ZQ==?= <zoe@example.org>",
        date="Tue, 03 Nov 2026 10:00:00 +0000",
        body="Bonjour à tous.\n",
    ).replace(b"\r\n", b"\n")
)


def lines(r: CliResult) -> list[dict[str, object]]:
    return [json.loads(line) for line in r.out.splitlines() if line.strip()]


@pytest.fixture
def mbox(tmp_path: Path) -> Path:
    p = tmp_path / "inbox.mbox"
    p.write_bytes(MBOX)
    return p


def test_import_list_show(cli, mbox: Path) -> None:
    r = cli("import", str(mbox))
    assert r.code == 0, r.err
    assert "imported 2, skipped 0" in r.out
    assert "flagged as malformed 0" in r.out

    r = cli("list", "--json")
    assert r.code == 0
    rows = lines(r)
    assert [m["subject"] for m in rows] == ["Réunion", "First"]
    first = rows[0]
    for key in (
        "id",
        "date",
        "from",
        "to",
        "subject",
        "folders",
        "flags",
        "has_attachments",
        "snippet",
        "thread_id",
    ):
        assert key in first
    assert first["date"] == "2026-11-03T10:00:00+00:00"
    assert first["from"] == "Zöe <zoe@example.org>"
    assert first["folders"] == ["inbox"]
    assert first["flags"] == []
    assert first["snippet"] == "Bonjour à tous."

    r = cli("show", str(first["id"]), "--raw")
    assert r.code == 0
    assert r.raw == MBOX.split(b"\nFrom b@x Tue Nov  3 10:00:00 2026\n")[1]

    r = cli("show", str(first["id"]), "--json")
    detail = lines(r)[0]
    assert detail["message_id"] == "two@x"
    assert "Bonjour" in str(detail["text"])

    r = cli("show", str(first["id"]), "--text")
    assert r.out.strip() == "Bonjour à tous."

    r = cli("show", str(first["id"]))
    assert "Subject: Réunion" in r.out
    assert "Bonjour à tous." in r.out

    r = cli("list", "--limit", "1")
    assert r.code == 0
    assert len(r.out.splitlines()) == 1
    assert "Réunion" in r.out


def test_import_is_resumable(cli, mbox: Path) -> None:
    assert cli("import", str(mbox)).code == 0
    r = cli("import", str(mbox))
    assert "imported 0, skipped 2" in r.out
    with mbox.open("ab") as f:  # the mailbox grows; a re-run takes only the new one
        f.write(b"\nFrom c@x Wed Nov  4 10:00:00 2026\n" + mail("three@x", "Third"))
    r = cli("import", str(mbox))
    assert "imported 1, skipped 2" in r.out
    assert len(lines(cli("list", "--json"))) == 3


def test_import_maildir_with_flags_into_named_account_and_folder(cli, tmp_path: Path) -> None:
    md = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1.h:2,FS").write_bytes(mail("f1@x", "flagged and read"))
    (md / "new" / "2.h").write_bytes(mail("f2@x", "brand new"))
    assert cli("account", "add", "arch", "--email", "me@example.com").code == 0
    r = cli("import", str(md), "--account", "arch", "--folder", "Projekte/Übersicht")
    assert r.code == 0, r.err
    rows = {m["subject"]: m for m in lines(cli("list", "--json", "--account", "arch"))}
    assert rows["flagged and read"]["flags"] == ["seen", "flagged"]
    assert rows["brand new"]["flags"] == []
    assert rows["brand new"]["folders"] == ["Projekte/Übersicht"]
    unread = lines(cli("list", "--json", "--unread", "--folder", "Projekte/Übersicht"))
    assert [m["subject"] for m in unread] == ["brand new"]
    folders = lines(cli("folders", "--json"))
    assert folders == [
        {
            "id": folders[0]["id"],
            "account": "arch",
            "name": "Projekte/Übersicht",
            "role": None,
            "total": 2,
            "unread": 1,
            "sync_state": "initial",
            "last_error": None,
            "next_retry": None,
        }
    ]
    r = cli("folders")
    assert "Projekte/Übersicht" in r.out
    assert "1 unread / 2" in r.out


def test_account_add_list_remove(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    r = cli(
        "account",
        "add",
        "work",
        "--email",
        "me@work.example",
        "--imap-host",
        "imap.work.example",
        "--smtp-host",
        "smtp.work.example",
        "--smtp-security",
        "starttls",
        "--password-env",
        "WORK_PW",
    )
    assert r.code == 0, r.err
    r = cli(
        "account",
        "add",
        "home",
        "--email",
        "me@home.example",
        "--imap-host",
        "h",
        "--imap-security",
        "starttls",
        "--password-cmd",
        "pass show mail/home",
    )
    assert r.code == 0, r.err
    accounts = {a["name"]: a for a in lines(cli("account", "list", "--json"))}
    assert accounts["work"]["imap"] == "imap.work.example:993"
    assert accounts["work"]["smtp"] == "smtp.work.example:587"
    assert accounts["work"]["secret"] == "env"
    assert accounts["home"]["imap"] == "h:143"
    assert accounts["home"]["secret"] == "command"
    assert "WORK_PW" not in json.dumps(accounts["work"])  # where, not what: no secret shown
    r = cli("account", "add", "work", "--email", "x@y.z")
    assert r.code == 1
    assert "exists already" in r.err
    assert cli("account", "remove", "work").code == 0
    assert [a["name"] for a in lines(cli("account", "list", "--json"))] == ["home"]
    r = cli("account", "remove", "work")
    assert r.code == 1
    assert "no account named 'work'" in r.err


class _MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


def test_account_password_prompt_goes_to_keyring(
    cli, services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.secrets import get_secret

    ring = _MemoryKeyring()
    old = keyring.get_keyring()
    keyring.set_keyring(ring)
    try:
        monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
        monkeypatch.setattr("getpass.getpass", lambda prompt="": "s3cret")
        r = cli("account", "add", "k", "--email", "me@k.example", "--imap-host", "imap.k.example")
        assert r.code == 0, r.err
        assert ring.store == {("tidings", "k:me@k.example"): "s3cret"}
        info = services.account("k")
        assert (info.secret_source, info.secret_ref) == ("keyring", "k:me@k.example")
        assert get_secret(info) == "s3cret"
        assert cli("account", "remove", "k").code == 0
        assert ring.store == {}  # removing the account forgets its password
    finally:
        keyring.set_keyring(old)


def test_account_without_keyring_refuses_plain_text(cli) -> None:
    from keyring.backends import fail

    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        r = cli(
            "account", "add", "nokr", "--email", "me@x.example", "--imap-host", "imap.x.example"
        )
    finally:
        keyring.set_keyring(old)
    assert r.code == 1
    assert "no system keyring" in r.err
    assert "--password-cmd" in r.err
    assert lines(cli("account", "list", "--json")) == []


def test_secret_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.errors import SecretError
    from app.secrets import get_secret
    from storage.dto import AccountInfo

    def acct(source: str, ref: str) -> AccountInfo:
        return AccountInfo(
            1,
            "a",
            "a@x",
            "",
            "imap",
            "h",
            993,
            "ssl",
            None,
            None,
            None,
            "u",
            "password",
            source,
            ref,
            None,
            False,
        )

    monkeypatch.setenv("TIDINGS_TEST_PW", "from-env")
    assert get_secret(acct("env", "TIDINGS_TEST_PW")) == "from-env"
    assert get_secret(acct("command", "printf 'from-cmd\\nsecond line\\n'")) == "from-cmd"
    with pytest.raises(SecretError, match="exited 3"):
        get_secret(acct("command", "echo oops >&2; exit 3"))
    with pytest.raises(SecretError, match="not set"):
        get_secret(acct("env", "TIDINGS_TEST_UNSET_VAR"))
    with pytest.raises(SecretError, match="no password configured"):
        get_secret(acct("none", ""))


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--limit", "0"),
        ("list", "--limit", "many"),
        ("show",),
        ("frobnicate",),
        ("account", "add", "x"),
        ("account", "add", "x", "--email", "a@b", "--imap-security", "tls"),
    ],
)
def test_usage_errors_exit_2(cli, args: tuple[str, ...]) -> None:
    r = cli(*args)
    assert r.code == 2
    assert "usage" in r.err


def test_invalid_email_is_a_usage_error(cli) -> None:
    r = cli("account", "add", "x", "--email", "not-an-address")
    assert r.code == 2
    assert "not an email address" in r.err


def test_unknown_things_fail_with_one_line(cli, mbox: Path) -> None:
    for args, words in [
        (("list", "--account", "nope"), "no account named 'nope'"),
        (("folders", "--account", "nope"), "no account named 'nope'"),
        (("show", "999"), "no message with id 999"),
        (("show", "999", "--raw"), "no message with id 999"),
        (("import", str(mbox), "--account", "nope"), "no account named 'nope'"),
    ]:
        r = cli(*args)
        assert r.code == 1, args
        assert words in r.err
        assert len(r.err.strip().splitlines()) == 1, r.err
        assert "Traceback" not in r.err
    assert cli("import", str(mbox)).code == 0
    r = cli("list", "--folder", "Nowhere")
    assert r.code == 1
    assert "no folder named 'Nowhere'" in r.err


def test_bad_home(cli, tmp_path: Path) -> None:
    f = tmp_path / "a-file"
    f.write_text("x")
    r = cli("list", home_dir=f)
    assert r.code == 1
    assert "is a file, not a folder" in r.err
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "tidings.db").write_bytes(b"garbage, not sqlite " * 50)
    r = cli("list", home_dir=tmp_path / "h")
    assert r.code == 1
    assert "cannot open database" in r.err
    assert "Traceback" not in r.err


def _no_messages(cli) -> bool:
    return lines(cli("list", "--json")) == [] and lines(cli("account", "list", "--json")) == []


def test_import_refusals_write_nothing(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    png = tmp_path / "pic.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    r = cli("import", str(png))
    assert r.code == 1
    assert "not an mbox file, Maildir or .eml message" in r.err
    r = cli("import", str(tmp_path / "missing.mbox"))
    assert r.code == 1
    assert "no such file" in r.err
    secret = tmp_path / "locked.mbox"
    secret.write_bytes(MBOX)
    real_open = Path.open

    def deny(self: Path, *a, **k):
        if self == secret:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *a, **k)

    monkeypatch.setattr(Path, "open", deny)  # root reads anything: simulate the denial
    r = cli("import", str(secret))
    assert r.code == 1
    assert "permission denied" in r.err
    assert _no_messages(cli)


def test_unexpected_errors_are_one_line_unless_debug(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.services

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(app.services.Services, "folders", boom)
    r = cli("folders")
    assert r.code == 1
    assert (
        r.err.strip()
        == "tidings: internal error: RuntimeError: kaboom (run with --debug for details)"
    )
    with pytest.raises(RuntimeError):
        cli("--debug", "folders")


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from app.cli import build_parser; build_parser().format_help();"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'PySide6', 'whoosh', 'keyring')"
        " if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_script_help_and_exit_codes(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "tidings"
    env = dict(os.environ, TIDINGS_HOME=str(tmp_path / "p"))
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0
    assert "import" in r.stdout
    assert "demo" in r.stdout
    r = subprocess.run([exe, "bogus"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 2
    r = subprocess.run([exe, "list"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0
    assert r.stdout == ""
    assert (tmp_path / "p" / "tidings.db").exists()  # TIDINGS_HOME picked the profile
