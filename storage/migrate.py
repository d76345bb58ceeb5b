"""Run the Alembic migrations in-process: ``upgrade(url)``, ``downgrade(url, revision)``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

INI = Path(__file__).resolve().parent / "alembic.ini"


def _config(database_url: str) -> Config:
    config = Config(str(INI))
    # script_location in the ini is %(here)s-relative, so the cwd does not matter
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at ``database_url`` up to ``revision`` (default: the head)."""
    command.upgrade(_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"`` removes every table marketflow owns)."""
    command.downgrade(_config(database_url), revision)


def head_revision() -> str:
    """The single head of the migration scripts."""
    heads = ScriptDirectory.from_config(Config(str(INI))).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have one head, found {heads}")
    return heads[0]


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from sqlalchemy import create_engine, pool
    from sqlalchemy.exc import ProgrammingError

    from storage.db import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            try:
                row = conn.exec_driver_sql("select version_num from alembic_version").first()
            except ProgrammingError:
                return None
            return None if row is None else str(row[0])
    finally:
        engine.dispose()
