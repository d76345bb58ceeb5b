"""Database access for the web server: a few reused connections, JSON-ready rows, marts.

Connections are opened on demand, at most ``max_connections`` at once, kept idle for the next
request (a page load asks several times) and dropped on any error. Every connection reads in
UTC, so times come back as ISO 8601 with ``+00:00``. The dbt marts live in their own schema
(``MARKETFLOW_DBT_SCHEMA``, ``analytics`` by default) and may not exist yet: ``mart()`` finds a
relation by name and says None when it is absent, so callers fall back to the raw tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from storage.db import libpq_url

MART_SCHEMA_ENV = "MARKETFLOW_DBT_SCHEMA"
MART_CACHE_S = 30.0
Params = Mapping[str, Any]


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = float(value)
        out[key] = value
    return out


class Database:
    def __init__(self, database_url: str | None, max_connections: int = 4) -> None:
        self.database_url = database_url
        self._gate = asyncio.Semaphore(max_connections)
        self._idle: list[psycopg.AsyncConnection[dict[str, Any]]] = []
        self._marts: dict[str, tuple[float, sql.Composable | None]] = {}

    @contextlib.asynccontextmanager
    async def connection(
        self, fresh: bool = False
    ) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        if not self.database_url:
            raise psycopg.OperationalError("no database configured")
        async with self._gate:
            conn = self._idle.pop() if self._idle and not fresh else None
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(
                    libpq_url(self.database_url),
                    connect_timeout=5,
                    row_factory=dict_row,
                    autocommit=True,
                    options="-c TimeZone=UTC",
                    application_name="marketflow-web",
                )
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
            self._idle.append(conn)

    async def fetch(
        self, query: sql.Composable | str, params: Params | None = None
    ) -> list[dict[str, Any]]:
        """Rows of one statement. An idle connection the server dropped meanwhile (a restart,
        an idle timeout) fails on first use: the statement is tried once more on a new
        connection (every statement here is a read or an idempotent write)."""
        for fresh in (False, True):
            reused = bool(self._idle) and not fresh
            try:
                async with self.connection(fresh) as conn:
                    # callers pass whole statements (sql.SQL / Composed), never a bare Identifier
                    cur = await conn.execute(query, params or {})  # type: ignore[arg-type]
                    return [jsonable(row) for row in await cur.fetchall()]
            except psycopg.OperationalError:
                if not reused:
                    raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def fetch_one(
        self, query: sql.Composable | str, params: Params | None = None
    ) -> dict[str, Any] | None:
        rows = await self.fetch(query, params)
        return rows[0] if rows else None

    async def mart(self, name: str) -> sql.Composable | None:
        """``schema.name`` of a dbt relation when it exists, else None (cached briefly)."""
        now = time.monotonic()
        cached = self._marts.get(name)
        if cached is not None and now - cached[0] < MART_CACHE_S:
            return cached[1]
        row = await self.fetch_one(
            "select table_schema from information_schema.tables where table_name = %(name)s "
            "order by (table_schema = %(preferred)s) desc, table_schema limit 1",
            {"name": name, "preferred": os.environ.get(MART_SCHEMA_ENV, "analytics")},
        )
        found = sql.Identifier(row["table_schema"], name) if row else None
        self._marts[name] = (now, found)
        return found

    async def close(self) -> None:
        while self._idle:
            with contextlib.suppress(Exception):
                await self._idle.pop().close()
