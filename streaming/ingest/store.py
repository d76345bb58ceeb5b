"""The PostgreSQL side of the ingest pipeline (``IngestStore``): its connections, the
outage state (backoff, reconnect), and the writes run in a worker thread: ticks by binary
COPY (``storage.tick_writer.TickWriter``) split over several connections when a chunk is
large, a refused chunk bisected to its bad rows, candles merged or rebuilt, bars upserted,
a venue's corrections and cancels applied and stored candles read back (docs/ingest.md)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import psycopg

from core.candle import Candle
from core.events import Rejects
from core.timestamps import NS, to_datetime
from storage import db
from storage.candle_writes import (
    merge_candles,
    rebuild_amended_minutes,
    rebuild_minutes,
    replace_bars,
)
from storage.queries import last_closes
from storage.tick_amendments import AmendmentResult, AmendmentRow, apply_amendments
from storage.tick_writer import TickWriter
from streaming.ingest.config import PipelineConfig
from streaming.ingest.counters import Counters
from streaming.ingest.intake import Row
from streaming.ingest.plausibility import PriceBand
from streaming.ingest.rows import TickRows, utc_days
from streaming.ingest.spool import DurableBuffer
from streaming.ingest.symbols import SymbolMap
from streaming.providers.base import Provider

log = logging.getLogger(__name__)
T = TypeVar("T")
PARALLEL_MIN_ROWS = 10_000  # smaller chunks are not worth splitting over connections


async def db_call(fn: Callable[..., T], *args: object) -> T:
    """Run a blocking database call in a worker thread."""
    return await asyncio.to_thread(fn, *args)


class IngestStore:
    def __init__(
        self,
        database_url: str,
        cfg: PipelineConfig,
        *,
        counters: Counters,
        rejects: Rejects,
        symbols: SymbolMap,
        buffer: DurableBuffer,
        band: PriceBand[Row] | None,
        pending_rows: Callable[[], int],
    ) -> None:
        """``pending_rows``: the rows staged or buffered, for the outage log."""
        self.database_url = database_url
        self.cfg = cfg
        self.counters = counters
        self.rejects = rejects
        self.symbols = symbols
        self.buffer = buffer
        self.band = band
        self.pending_rows = pending_rows
        self.conn: psycopg.Connection | None = None
        self.writer: TickWriter | None = None
        self.more: list[TickWriter] = []
        self.db_up = False
        self.retry_at = 0.0
        self._retry_s = 0.25
        self._last_down_log = -1e9

    def open(self) -> psycopg.Connection:
        conn = psycopg.connect(
            db.libpq_url(self.database_url),
            autocommit=True,
            connect_timeout=self.cfg.connect_timeout_s,
            application_name=f"marketflow-{self.cfg.source}",
            # a server that vanishes mid-write (host down, network cut) is noticed in about
            # 30 s instead of a blocking read forever: the rows stay buffered meanwhile
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
            tcp_user_timeout=30_000,
        )
        return conn

    def connect(self) -> None:
        self.close()
        self.conn = self.open()
        self.writer = TickWriter(self.conn, source=self.cfg.source)
        # extra COPY connections: a second backend indexes ticks while the first is busy
        # (the server side of a COPY into the partitioned, indexed table is the bottleneck)
        self.more = [
            TickWriter(self.open(), source=self.cfg.source)
            for _ in range(max(0, self.cfg.writers - 1))
        ]

    def close(self) -> None:
        for conn in [self.conn, *(w.conn for w in self.more)]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self.conn = None
        self.writer = None
        self.more = []

    def write_ticks(self, rows: TickRows, writer: TickWriter | None = None) -> int:
        writer = writer or self.writer
        assert writer is not None
        # encoded a column at a time (storage.binary_copy): no Python work per row
        return writer.write_columns(rows, utc_days(rows))[0]

    async def write_chunk(self, chunk: TickRows) -> int:
        """One chunk, split over the writer connections when it is large. All or nothing
        for the buffer: if a part fails the whole chunk is retried (idempotent)."""
        writers = [self.writer, *self.more]
        if len(writers) == 1 or len(chunk) < 2 * PARALLEL_MIN_ROWS:
            return int(await db_call(self.write_ticks, chunk))
        bounds = np.linspace(0, len(chunk), len(writers) + 1).astype(int)
        parts = [chunk.take(np.arange(a, b)) for a, b in itertools.pairwise(bounds)]
        results = await asyncio.gather(
            *(db_call(self.write_ticks, p, w) for p, w in zip(parts, writers, strict=True)),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        # every r is a count now (any exception was raised above)
        return sum(int(r) for r in results if not isinstance(r, BaseException))

    def write_candles(self, ops: list[Candle], dirty: set[tuple[int, int]]) -> list[tuple]:
        assert self.conn is not None
        merges = [c for c in ops if (c.symbol_id, c.minute_ns) not in dirty]
        rebuild = {(c.symbol_id, c.minute_ns) for c in ops if (c.symbol_id, c.minute_ns) in dirty}
        n = merge_candles(self.conn, merges, self.cfg.source) if merges else 0
        r = rebuild_minutes(self.conn, rebuild, self.cfg.source)
        return [(n, r)]

    async def ensure_db(self) -> bool:
        if self.db_up and self.conn is not None and not self.conn.closed:
            return True
        if time.monotonic() < self.retry_at:
            return False
        try:
            await db_call(self.connect)
            await db_call(self.refresh_symbols)
            await db_call(self.seed_band)
        except psycopg.Error as exc:
            self.down(exc)
            return False
        if self.counters.db_errors:
            log.info("PostgreSQL reachable again; draining %d buffered rows", len(self.buffer))
        self.db_up = True
        self._retry_s = 0.25
        return True

    def down(self, exc: BaseException) -> None:
        self.counters.db_errors += 1
        mono = time.monotonic()
        # the first failure of an outage, then a reminder every 30 s: a long outage is
        # visible in the log without flooding it
        if self.db_up or mono - self._last_down_log >= 30.0:
            self._last_down_log = mono
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            log.warning(
                "PostgreSQL unavailable (%s%s); buffering %d rows (spool beyond %d), "
                "%d spilled so far",
                type(exc).__name__,
                f": {detail}" if detail else "",
                self.pending_rows(),
                self.cfg.memory_rows,
                self.buffer.spilled_rows,
            )
        self.db_up = False
        self.retry_at = mono + self._retry_s
        self._retry_s = min(self._retry_s * 2, self.cfg.retry_max_s)
        self.close()

    def refresh_symbols(self) -> None:
        assert self.conn is not None
        self.symbols.load(self.conn)

    def seed_band(self) -> None:
        """Plausibility references from the last stored prices (symbols without one)."""
        if self.band is not None and self.conn is not None:
            self.band.seed(last_closes(self.conn))

    def write_rejecting(self, chunk: TickRows, first: BaseException) -> tuple[int, int]:
        """A chunk the server refused for its content (not a lost connection): store the
        good rows, count the refused ones as ``storage_refused`` (bisecting to find them)."""
        log.warning("PostgreSQL refused a chunk (%s); isolating the bad rows", type(first).__name__)
        stored = refused = 0
        stack = [chunk]
        while stack:
            part = stack.pop()
            try:
                stored += self.write_ticks(part)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                if len(part) == 1:
                    self.rejects.add("storage_refused", (part.trade_id[0], str(exc)[:120]))
                    refused += 1
                    continue
                half = len(part) // 2
                stack.append(part.take(np.arange(half, len(part))))
                stack.append(part.take(np.arange(half)))
        return stored, refused

    def apply_amendments(self, rows: list[AmendmentRow]) -> list[AmendmentResult]:
        assert self.conn is not None
        return apply_amendments(self.conn, rows, self.cfg.source)

    def rebuild_amended(self, keys: set[tuple[int, int]]) -> int:
        assert self.conn is not None
        return rebuild_amended_minutes(self.conn, keys, self.cfg.source)

    def upsert_bars(self, bars: list) -> None:
        assert self.conn is not None
        replace_bars(self.conn, bars, self.cfg.source)

    def read_candles(self, candles: list[Candle]) -> list[Candle]:
        assert self.conn is not None
        keys = sorted({(c.symbol_id, c.minute_ns) for c in candles})
        with self.conn.cursor() as cur:
            cur.execute(
                "select symbol_id, ts, open, high, low, close, volume, trade_count"
                " from candles_1m where (symbol_id, ts) in"
                " (select * from unnest(%s::bigint[], %s::timestamptz[]))",
                ([k[0] for k in keys], [to_datetime(k[1]) for k in keys]),
            )
            out = []
            for sid, ts, o, h, lo, c, vol, n in cur.fetchall():
                m = int(ts.timestamp()) * NS
                out.append(Candle(sid, m, o, h, lo, c, vol, n, 0.0, m, m))
            return out

    def declare(self, provider: Provider) -> None:
        assert self.conn is not None
        self.symbols.declare(
            self.conn, provider.name, provider.symbols, provider.symbol_info, provider.feed
        )
