"""Run Alembic from code, on an engine we already hold (no alembic.ini needed).

The script location is this package's folder, so upgrades work from an installed
tidings as well as from a checkout.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


def make_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def run_upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(make_config(engine), revision)


def run_downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(make_config(engine), revision)
