"""Alembic environment: batch mode for SQLite, the models' naming convention.

Called with an engine in ``config.attributes['engine']`` (see ``runner.py``), or, from
the ``alembic`` command line, with ``-x db=PATH``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from storage.db import make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        db = context.get_x_argument(as_dictionary=True).get("db", "tidings.db")
        engine = make_engine(db)
    with engine.connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
run_migrations_online()
