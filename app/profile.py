"""Where a profile lives, and opening its database.

A profile is one folder: ``tidings.db`` (SQLite), the search index and logs. It is
picked by ``--home``, else ``$TIDINGS_HOME``, else the platform's user data folder.
The demo profile lives apart (``<data dir>/demo``) so that trying the demo never
touches a real profile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from app.errors import ProfileError

DB_NAME = "tidings.db"


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tidings", appauthor=False))


def demo_home() -> Path:
    return default_home() / "demo"


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    if home is None:
        env = os.environ.get("TIDINGS_HOME")
        home = env if env else default_home()
    return Path(home).expanduser()


class Profile(NamedTuple):
    """A profile folder (a NamedTuple, not a dataclass: ``tidings search`` starts without
    importing ``dataclasses``)."""

    home: Path

    @property
    def db_path(self) -> Path:
        return self.home / DB_NAME

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None, *, create: bool = True) -> Profile:
        """The profile at ``home``; ProfileError when it can't be used."""
        path = resolve_home(home)
        if path.exists() and not path.is_dir():
            raise ProfileError(f"profile folder {path} is a file, not a folder")
        if not path.exists():
            if not create:
                raise ProfileError(f"no profile at {path}")
            try:
                path.mkdir(parents=True, mode=0o700)
            except OSError as exc:
                raise ProfileError(f"cannot create profile folder {path}: {exc.strerror}") from exc
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise ProfileError(f"profile folder {path} is not writable")
        return cls(path)
