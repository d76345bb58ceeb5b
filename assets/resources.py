"""The Dagster resources of the market-data PostgreSQL database and of Alpaca's REST API for
the history (the dbt CLI resource is in ``assets.dbt_marts``).

It lives with the assets, the lowest layer that uses it as a type; ``orchestration``
binds it in ``definitions.py``. The URL is resolved when a run or sensor first needs it,
never at import: the code server must load the definitions even while PostgreSQL is
still starting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg
import psycopg
from pydantic import Field

if TYPE_CHECKING:
    from streaming.venues.alpaca.rest import AlpacaRestClient


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


class AlpacaResource(dg.ConfigurableResource):
    """Alpaca's market-data REST API for the history (docs/history.md). Unset fields come
    from the settings: ALPACA_DATA_URL, ALPACA_API_KEY / ALPACA_SECRET_KEY, ALPACA_FEED."""

    data_url: str | None = Field(default=None, description="REST base URL; unset = settings")
    api_key: str | None = Field(default=None, description="key id; unset = ALPACA_API_KEY")
    secret_key: str | None = Field(default=None, description="unset = ALPACA_SECRET_KEY")
    feed: str | None = Field(default=None, description="equity feed; unset = ALPACA_FEED")
    attempts: int = Field(default=6, ge=1, description="tries of a page that fails (5xx)")
    backoff_s: float = Field(default=1.0, gt=0, description="first wait before a retry")

    def equity_feed(self) -> str:
        from core.settings import get_settings

        return (self.feed or get_settings().alpaca_feed).strip().lower()

    def client(self) -> AlpacaRestClient:
        """A REST trades client; raises with the variables to set when keys are missing."""
        from pydantic import SecretStr

        from core.settings import get_settings
        from streaming.providers.base import MissingCredential
        from streaming.venues.alpaca.rest import AlpacaRestClient

        settings = get_settings()
        key = SecretStr(self.api_key) if self.api_key else settings.alpaca_api_key
        secret = SecretStr(self.secret_key) if self.secret_key else settings.alpaca_secret_key
        if key is None or secret is None:
            raise MissingCredential(
                "alpaca history", "ALPACA_API_KEY (or APCA_API_KEY_ID)",
                "ALPACA_SECRET_KEY (or APCA_API_SECRET_KEY)",
            )  # fmt: skip
        return AlpacaRestClient(
            key,
            secret,
            data_url=self.data_url or settings.alpaca_data_url,
            attempts=self.attempts,
            backoff_base=self.backoff_s,
        )
