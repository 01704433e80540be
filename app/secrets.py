"""Account secrets: the system keyring, a password command, or an environment variable.

The database stores only *where* a secret lives (``secret_source`` + ``secret_ref``),
never the secret, and no secret is ever logged. When no keyring backend is available
(a headless box without Secret Service, say), storing a typed password is refused
with a clear message rather than falling back to a plain-text file: the user can
point at a password command or a variable instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

from app.errors import SecretError
from storage.dto import AccountInfo

SERVICE = "tidings"
COMMAND_TIMEOUT = 30


def keyring_usable() -> bool:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return False
    priority = getattr(backend, "priority", 0)
    try:
        return float(priority) > 0
    except (TypeError, ValueError):
        return False


def store_in_keyring(entry: str, secret: str) -> None:
    import keyring
    from keyring.errors import KeyringError

    if not keyring_usable():
        raise SecretError(
            "no system keyring is available to store the password; "
            "use --password-cmd 'pass show ...' or --password-env VAR instead"
        )
    try:
        keyring.set_password(SERVICE, entry, secret)
    except KeyringError as exc:
        raise SecretError(f"the system keyring refused the password: {exc}") from exc


def forget(account: AccountInfo) -> None:
    """Remove a keyring entry of a removed account (best effort)."""
    if account.secret_source != "keyring" or not account.secret_ref:
        return
    import keyring
    from keyring.errors import KeyringError

    with contextlib.suppress(KeyringError):
        keyring.delete_password(SERVICE, account.secret_ref)


def get_secret(account: AccountInfo) -> str:
    """The account's secret, from wherever it lives; SecretError if unavailable."""
    source, ref = account.secret_source, account.secret_ref or ""
    if source == "env":
        value = os.environ.get(ref)
        if value is None:
            raise SecretError(f"account {account.name}: environment variable {ref} is not set")
        return value
    if source == "command":
        return _run_command(account.name, ref)
    if source == "keyring":
        import keyring
        from keyring.errors import KeyringError

        try:
            value = keyring.get_password(SERVICE, ref)
        except KeyringError as exc:
            raise SecretError(f"account {account.name}: keyring error: {exc}") from exc
        if value is None:
            raise SecretError(f"account {account.name}: no password in the keyring")
        return value
    raise SecretError(f"account {account.name} has no password configured")


def _run_command(name: str, command: str) -> str:
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise SecretError(f"account {name}: password command timed out") from exc
    except OSError as exc:
        raise SecretError(f"account {name}: password command failed: {exc.strerror}") from exc
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        detail = f": {err[-1]}" if err else ""
        raise SecretError(f"account {name}: password command exited {done.returncode}{detail}")
    lines = done.stdout.decode(errors="replace").splitlines()
    if not lines or not lines[0]:
        raise SecretError(f"account {name}: password command printed nothing")
    return lines[0]
