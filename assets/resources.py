"""The Dagster resource of the market-data PostgreSQL database (the dbt CLI resource is in
``assets.dbt_marts``).

It lives with the assets, the lowest layer that uses it as a type; ``orchestration``
binds it in ``definitions.py``. The URL is resolved when a run or sensor first needs it,
never at import: the code server must load the definitions even while PostgreSQL is
still starting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from pydantic import Field


class PostgresResource(dg.ConfigurableResource):
    """The market-data database; `database_url` unset → `core.service_urls.resolve_urls`."""

    database_url: str | None = Field(
        default=None,
        description="Market-data database URL; unset = DATABASE_URL or the embedded server.",
    )

    def url(self) -> str:
        if self.database_url:
            return self.database_url
        from core.service_urls import resolve_urls
        from core.settings import get_settings

        settings = get_settings()
        # DATABASE_URL alone is enough here; resolve_urls also insists on a Redis
        return settings.database_url or resolve_urls(settings).database_url

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[psycopg.Connection]:
        """One connection; the block is one transaction (committed on success)."""
        from storage.db import libpq_url

        with psycopg.connect(
            libpq_url(self.url()),
            application_name="marketflow-dagster",
            # timestamps leave COPY as UTC text, whatever the server's default time zone
            options="-c timezone=UTC",
        ) as conn:
            if read_only:
                # One snapshot for every query of the block: ticks counted by a check and
                # read by an asset belong to the same instant even while ingest writes.
                conn.execute("set transaction isolation level repeatable read read only")
            yield conn
