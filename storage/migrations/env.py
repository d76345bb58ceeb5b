"""Alembic environment: online migrations only, against the URL ``storage.migrate`` passes.

The URL travels in ``config.attributes`` (not the ini file) so passwords with ``%`` survive
ConfigParser interpolation and never land in a file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from storage.db import sqlalchemy_url

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or context.get_x_argument(as_dictionary=True).get(
        "url"
    )
    if not url:
        raise RuntimeError("no database URL: call storage.migrate.upgrade(url) or pass -x url=")
    return sqlalchemy_url(str(url))


def run_migrations_online() -> None:
    # NullPool: nothing stays connected afterwards, so a migrated database can serve as a
    # CREATE DATABASE ... TEMPLATE right away (the test fixtures clone it).
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported; run against a database")
run_migrations_online()
