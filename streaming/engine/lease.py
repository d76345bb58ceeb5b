"""One active engine per database: a PostgreSQL session advisory lock on its own connection.

The engine that holds the lock writes, publishes and trades. Any other engine on the same
database stays read-only (standby): it writes nothing, sends no order, says so once in
its log and in its status (``engine_lock``), and tries the lock again every tick, so it
takes over within a second of the holder ending. The lock lives on a dedicated
connection, never the engine's work connection, which is dropped and reopened on any
error: losing the dedicated connection means losing the lock, and the engine stops acting
at once (docs/trading-safety.md).
"""

from __future__ import annotations

import contextlib
import logging
import time

import psycopg

from storage.db import libpq_url

log = logging.getLogger(__name__)

LOCK_KEY = "marketflow.engine"
RETRY_S = 2.0  # after a failed connect, wait this long before trying again

HOLDER_SQL = """
select a.pid, a.application_name, a.client_addr::text
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted and l.database = (
    select oid from pg_database where datname = current_database())
  and l.objsubid = 1 and l.objid = (hashtext(%s)::bigint & 4294967295)::oid
limit 1
"""


class EngineLease:
    def __init__(self, database_url: str, application_name: str = "marketflow-engine-lock"):
        self.database_url = database_url
        self.application_name = application_name
        self._conn: psycopg.AsyncConnection | None = None
        self._next_connect = 0.0
        self.held = False
        self.holder: str | None = None  # who holds it while we do not (for the message)

    async def _connect(self) -> psycopg.AsyncConnection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if time.monotonic() < self._next_connect:
            raise psycopg.OperationalError("waiting before reconnecting (engine lock)")
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                libpq_url(self.database_url),
                autocommit=True,
                connect_timeout=3,
                application_name=self.application_name,
            )
        except psycopg.Error:
            self._next_connect = time.monotonic() + RETRY_S
            raise
        return self._conn

    async def check(self) -> bool:
        """True while this engine holds the lock; tries to take it when it does not.
        A connection error means the lock is gone: False is returned after closing it
        (the error is raised, so the caller counts a database failure)."""
        try:
            conn = await self._connect()
            if self.held:
                await conn.execute("select 1")  # the session, and with it the lock, lives
                return True
            cur = await conn.execute("select pg_try_advisory_lock(hashtext(%s))", (LOCK_KEY,))
            row = await cur.fetchone()
            self.held = bool(row and row[0])
            if not self.held:
                cur = await conn.execute(HOLDER_SQL, (LOCK_KEY,))
                who = await cur.fetchone()
                self.holder = (
                    f"pid {who[0]} ({who[1] or 'no name'}"
                    + (f" from {who[2]}" if who[2] else "")
                    + ")"
                    if who
                    else "another session"
                )
            else:
                self.holder = None
            return self.held
        except (psycopg.Error, OSError):
            self.held = False
            await self._drop()
            raise

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def release(self) -> None:
        """Give the lock up (closing the session releases it even when unlock fails)."""
        if self._conn is not None and self.held and not self._conn.closed:
            with contextlib.suppress(Exception):
                await self._conn.execute("select pg_advisory_unlock(hashtext(%s))", (LOCK_KEY,))
        self.held = False
        await self._drop()
