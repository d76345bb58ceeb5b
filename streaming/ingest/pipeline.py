"""The ingest pipeline: provider events → validated rows → PostgreSQL, candles, Redis.

One asyncio program (docs/architecture.md), two concurrent loops:

* **consume**: iterates the provider; ``accept`` validates each event (pure checks in
  ``validate``), resolves the symbol and stages the row; live trades are noted for
  ``ticks:trades`` at once. Events never raise out of ``accept``: bad ones are counted.
* **flush** (every ``flush_ms`` or ``flush_rows``): seals staged rows into a chunk, folds it
  into the candle builder (running candles → ``ticks:candles``), pushes it into the
  durable buffer and writes the buffer in order through ``storage.tick_writer.TickWriter``
  (binary COPY, idempotent) in a worker thread; then the candle work of minutes whose timer
  fired, bars, and bad-input counters.

PostgreSQL unreachable → the chunk stays in the buffer (memory, then the spool file), the
writer reconnects with backoff, and the buffer drains oldest first. Writes are at least once
and storage is exactly once (the key (symbol_id, ts, trade_id)). When the writer reports that
a chunk held rows stored before (replay, reconnect overlap), the minutes of that chunk are
rebuilt from the stored ticks instead of merged, so candles never count a print twice.

Redis is best effort (``publish.Publisher``) and never blocks any of this.

Shutdown fits the stop budget (``core.settings.STOP_TIMEOUT_S``, the time ``marketflow up``
gives a child between SIGTERM and SIGKILL): prints the plausibility band still holds are
rejected, staged rows are sealed, and when PostgreSQL is down everything buffered goes to the
spool *first*; the database is then tried until the budget's end, each attempt bounded by
what is left of it, and whatever it did not take is spooled again (docs/ingest.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import psycopg

from core.candles import Candle
from core.events import Rejects
from core.settings import STOP_TIMEOUT_S
from core.timestamps import MINUTE_NS, NS, to_datetime
from storage import db
from storage.tick_writer import TickWriter
from streaming.ingest import candle_store
from streaming.ingest import rejects as reject_store
from streaming.ingest.candles import CandleBuilder
from streaming.ingest.epoch_dumper import register_epoch_dumper
from streaming.ingest.intake import Intake, Row
from streaming.ingest.plausibility import PriceBand
from streaming.ingest.publish import Publisher
from streaming.ingest.rows import TickRows, to_writer_rows
from streaming.ingest.spool import DurableBuffer
from streaming.ingest.symbols import SymbolMap
from streaming.providers.base import Provider, ProviderError, TradeBatch

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
DAY_NS = 86_400 * NS
QUOTE_FRESH_NS = 10 * NS  # a quote older than this is not "the quote at the print"
PARALLEL_MIN_ROWS = 10_000  # smaller chunks are not worth splitting over connections
# of the stop budget, what is left after the shutdown's database attempts and spills for the
# provider to stop reading and the process to exit
EXIT_MARGIN_S = 2.0


class IngestError(ProviderError):
    """Ingest cannot start; the message says what to do next."""


@dataclass
class PipelineConfig:
    source: str = "ingest"
    flush_ms: int = 200
    flush_rows: int = 50_000
    memory_rows: int = 1_000_000
    max_age_s: float = 2 * 86_400.0
    max_ahead_s: float = 300.0
    candle_grace_s: float = 2.0
    publish_interval_s: float = 0.02
    spool_dir: Path = Path(".marketflow/spool")
    log_interval_s: float = 60.0
    rejects_interval_s: float = 10.0
    retry_max_s: float = 10.0
    connect_timeout_s: int = 3
    writers: int = 2  # COPY connections used for large chunks
    # from SIGTERM: then what PostgreSQL did not take goes to the spool
    shutdown_timeout_s: float = STOP_TIMEOUT_S - EXIT_MARGIN_S
    price_band: float = 0.5  # 0: no plausibility band
    price_band_confirm: int = 5

    @classmethod
    def from_settings(cls, settings: Settings, source: str) -> PipelineConfig:
        return cls(
            source=source,
            flush_ms=settings.ingest_flush_ms,
            flush_rows=settings.ingest_flush_rows,
            memory_rows=settings.ingest_memory_rows,
            max_age_s=settings.ingest_max_age_s,
            max_ahead_s=settings.ingest_max_ahead_s,
            candle_grace_s=settings.candle_grace_s,
            publish_interval_s=settings.publish_interval_ms / 1000.0,
            spool_dir=settings.state_dir / "spool",
            price_band=settings.ingest_price_band,
            price_band_confirm=settings.ingest_price_band_confirm,
        )


@dataclass
class Counters:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    candles_written: int = 0
    candles_recomputed: int = 0
    bars_written: int = 0
    db_errors: int = 0
    last_print_ns: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class IngestPipeline:
    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        config: PipelineConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.database_url = database_url
        self.cfg = config
        self.clock = clock
        self.rejects = Rejects(config.source)
        self.counters = Counters()
        self.publisher = Publisher(redis_url, config.publish_interval_s)
        self.builder = CandleBuilder(config.candle_grace_s)
        self.buffer = DurableBuffer(config.spool_dir / f"{config.source}.spool", config.memory_rows)
        self.symbols = SymbolMap()
        self.ledger = reject_store.RejectLedger()
        self.provider: Provider | None = None
        self._candle_ops: list[Candle] = []
        self._dirty: set[tuple[int, int]] = set()
        self._kick = asyncio.Event()
        self._drained = asyncio.Event()
        self._conn: psycopg.Connection | None = None
        self._writer: TickWriter | None = None
        self._more: list[TickWriter] = []
        self.db_up = False
        self._retry_at = 0.0
        self._retry_s = 0.25
        self._last_down_log = -1e9
        self._last_log = time.monotonic()
        self._last_rejects = time.monotonic()
        self._last_symbol_refresh = time.monotonic()
        self._consuming = False
        self.band: PriceBand[Row] | None = (
            PriceBand(config.price_band, config.price_band_confirm)
            if config.price_band > 0
            else None
        )
        self.intake = Intake(
            self.symbols,
            self.rejects,
            self.publisher,
            self.counters,
            clock=clock,
            max_age_s=config.max_age_s,
            max_ahead_s=config.max_ahead_s,
            flush_rows=config.flush_rows,
            on_full=self._kick.set,
            band=self.band,
        )

    def accept(self, event: object) -> None:
        """Validate and stage one event (see ``intake.Intake.accept``); never raises."""
        self.intake.accept(event)

    # --- seal: staged rows → candles + buffer ---------------------------------------
    def seal(self) -> int:
        rows = self.intake.take()
        if rows is None:
            return 0
        now = self.clock()
        for c in self.builder.add(rows.symbol_id, rows.ts_ns, rows.price, rows.size, now):
            self.publisher.note_candle(self.symbols.name(c.symbol_id), c)
        self.buffer.push(rows)
        self.counters.last_print_ns = max(self.counters.last_print_ns, int(rows.ts_ns.max()))
        return len(rows)

    @property
    def pending_rows(self) -> int:
        return self.intake.staged_rows + len(self.buffer)

    # --- database (worker thread) -----------------------------------------------
    def _open(self) -> psycopg.Connection:
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
        register_epoch_dumper(conn)
        return conn

    def _connect(self) -> None:
        self._close()
        self._conn = self._open()
        self._writer = TickWriter(self._conn, source=self.cfg.source)
        # extra COPY connections: a second backend indexes ticks while the first is busy
        # (the server side of a COPY into the partitioned, indexed table is the bottleneck)
        self._more = [
            TickWriter(self._open(), source=self.cfg.source)
            for _ in range(max(0, self.cfg.writers - 1))
        ]

    def _close(self) -> None:
        for conn in [self._conn, *(w.conn for w in self._more)]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._conn = None
        self._writer = None
        self._more = []

    def _write_ticks(self, rows: TickRows, writer: TickWriter | None = None) -> int:
        writer = writer or self._writer
        assert writer is not None
        return writer.write_rows(*to_writer_rows(rows))[0]

    async def _write_chunk(self, chunk: TickRows) -> int:
        """One chunk, split over the writer connections when it is large. All or nothing
        for the buffer: if a part fails the whole chunk is retried (idempotent)."""
        writers = [self._writer, *self._more]
        if len(writers) == 1 or len(chunk) < 2 * PARALLEL_MIN_ROWS:
            return int(await self._db_call(self._write_ticks, chunk))
        bounds = np.linspace(0, len(chunk), len(writers) + 1).astype(int)
        parts = [chunk.take(np.arange(a, b)) for a, b in itertools.pairwise(bounds)]
        results = await asyncio.gather(
            *(self._db_call(self._write_ticks, p, w) for p, w in zip(parts, writers, strict=True)),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r
        # every r is a count now (any exception was raised above)
        return sum(int(r) for r in results if not isinstance(r, BaseException))

    def _write_candles(self, ops: list[Candle], dirty: set[tuple[int, int]]) -> list[tuple]:
        assert self._conn is not None
        merges = [c for c in ops if (c.symbol_id, c.minute_ns) not in dirty]
        rebuild = {(c.symbol_id, c.minute_ns) for c in ops if (c.symbol_id, c.minute_ns) in dirty}
        n = candle_store.merge(self._conn, merges, self.cfg.source)
        r = candle_store.recompute(self._conn, rebuild, self.cfg.source)
        return [(n, r)]

    # --- flush loop ---------------------------------------------------------------
    async def _db_call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.to_thread(fn, *args)

    async def _ensure_db(self) -> bool:
        if self.db_up and self._conn is not None and not self._conn.closed:
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            await self._db_call(self._connect)
            await self._db_call(self._refresh_symbols)
            await self._db_call(self._seed_band)
        except psycopg.Error as exc:
            self._db_down(exc)
            return False
        if self.counters.db_errors:
            log.info("PostgreSQL reachable again; draining %d buffered rows", len(self.buffer))
        self.db_up = True
        self._retry_s = 0.25
        return True

    def _db_down(self, exc: BaseException) -> None:
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
                self.pending_rows,
                self.cfg.memory_rows,
                self.buffer.spilled_rows,
            )
        self.db_up = False
        self._retry_at = mono + self._retry_s
        self._retry_s = min(self._retry_s * 2, self.cfg.retry_max_s)
        self._close()

    def _refresh_symbols(self) -> None:
        assert self._conn is not None
        self.symbols.load(self._conn)

    def _seed_band(self) -> None:
        """Plausibility references from the last stored prices (symbols without one)."""
        if self.band is not None and self._conn is not None:
            self.band.seed(candle_store.last_closes(self._conn))

    async def flush_once(self, final: bool = False) -> None:
        self.seal()
        now = self.clock()
        final_c, late = self.builder.due(now) if not final else (self.builder.drain(), [])
        self._candle_ops.extend(final_c)
        self._candle_ops.extend(late)
        if not await self._ensure_db():
            self._drained.set()  # never hold the provider back while the database is down
            return
        try:
            while (chunk := self.buffer.next_chunk(self.cfg.flush_rows)) is not None:
                try:
                    inserted = await self._write_chunk(chunk)
                except psycopg.OperationalError:
                    self.buffer.release()
                    raise
                except psycopg.Error as exc:
                    self.buffer.release()
                    if self._conn is None or self._conn.closed or self._conn.broken:
                        raise
                    inserted, refused = await self._db_call(self._write_rejecting, chunk, exc)
                else:
                    refused = 0
                self.buffer.commit()
                self.counters.stored += int(inserted)
                if inserted + refused < len(chunk):
                    self.counters.duplicates += len(chunk) - int(inserted) - refused
                    minutes = chunk.ts_ns - chunk.ts_ns % MINUTE_NS
                    self._dirty.update(zip(chunk.symbol_id.tolist(), minutes.tolist(), strict=True))
                self._drained.set()
            if self._candle_ops or self.intake.bars:
                await self._write_candle_ops()
            await self._housekeeping(final)
        except psycopg.Error as exc:
            self._db_down(exc)
            self._drained.set()

    def _write_rejecting(self, chunk: TickRows, first: BaseException) -> tuple[int, int]:
        """A chunk the server refused for its content (not a lost connection): store the
        good rows, count the refused ones as ``storage_refused`` (bisecting to find them)."""
        log.warning("PostgreSQL refused a chunk (%s); isolating the bad rows", type(first).__name__)
        stored = refused = 0
        stack = [chunk]
        while stack:
            part = stack.pop()
            try:
                stored += self._write_ticks(part)
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

    async def _write_candle_ops(self) -> None:
        ops, dirty = self._candle_ops, set(self._dirty)
        bars = self.intake.take_bars()
        self._candle_ops = []
        try:
            await self._db_call(self._write_candles, ops, dirty)
            if bars:
                await self._db_call(self._upsert_bars, bars)
        except psycopg.Error:
            self._candle_ops = ops + self._candle_ops
            self.intake.bars[:0] = bars
            raise
        rebuilt = {(c.symbol_id, c.minute_ns) for c in ops} & dirty
        self._dirty -= rebuilt
        self.counters.candles_written += len(ops) - len(rebuilt)
        self.counters.candles_recomputed += len(rebuilt)
        self.counters.bars_written += len(bars)
        # a late merge or a rebuild changed a stored candle: publish what is stored now
        changed = [c for c in ops if c.minute_ns + MINUTE_NS < self.clock() - self.builder.grace_ns]
        if changed and self.publisher.redis_url is not None:
            stored = await self._db_call(self._read_candles, changed)
            for c in stored:
                self.publisher.note_candle(self.symbols.name(c.symbol_id), c)

    def _upsert_bars(self, bars: list) -> None:
        assert self._conn is not None
        candle_store.upsert_bars(self._conn, bars, self.cfg.source)

    def _read_candles(self, candles: list[Candle]) -> list[Candle]:
        assert self._conn is not None
        keys = sorted({(c.symbol_id, c.minute_ns) for c in candles})
        with self._conn.cursor() as cur:
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

    async def _housekeeping(self, final: bool) -> None:
        mono = time.monotonic()
        if final or mono - self._last_rejects >= self.cfg.rejects_interval_s:
            self._last_rejects = mono
            deltas = self.ledger.deltas(self._reject_sources())
            if deltas:
                await self._db_call(reject_store.persist, self._conn, deltas)
                self.ledger.mark(deltas)
        if mono - self._last_symbol_refresh >= 60.0:
            self._last_symbol_refresh = mono
            await self._db_call(self._refresh_symbols)
        if final or mono - self._last_log >= self.cfg.log_interval_s:
            self._last_log = mono
            log.info(self.status_line())

    def _reject_sources(self) -> list[Rejects]:
        sources = [self.rejects]
        if self.provider is not None and self.provider.rejects is not self.rejects:
            sources.append(self.provider.rejects)
        return sources

    def status_line(self) -> str:
        c = self.counters
        rej = sum(r.total for r in self._reject_sources())
        line = (
            f"ingest {self.cfg.source}: received {c.received:,} stored {c.stored:,} "
            f"duplicates {c.duplicates:,} rejected {rej:,} pending {self.pending_rows:,} "
            f"spilled {self.buffer.spilled_rows:,}, candles merged {c.candles_written:,} "
            f"rebuilt {c.candles_recomputed:,}, redis published {self.publisher.published:,} "
            f"dropped {self.publisher.dropped:,}"
        )
        summary = reject_store.summary(self._reject_sources())
        return line + (f" | rejects: {summary}" if summary else "")

    def status_counters(self) -> dict[str, float | int | str]:
        c = self.counters
        lag = (self.clock() - c.last_print_ns) / NS if c.last_print_ns else -1.0
        out: dict[str, float | int | str] = {
            "provider": self.cfg.source,
            "received": c.received,
            "stored": c.stored,
            "duplicates": c.duplicates,
            "rejected": sum(r.total for r in self._reject_sources()),
            "pending_rows": self.pending_rows,
            "spilled_rows": self.buffer.spilled_rows,
            "spill_failures": self.buffer.spill_failures,
            "spool_torn": self.buffer.spool.torn,
            "band_held": self.band.held() if self.band is not None else 0,
            "db_up": int(self.db_up),
            "db_errors": c.db_errors,
            "candles_written": c.candles_written,
            "candles_recomputed": c.candles_recomputed,
            "late_prints": self.builder.late_prints,
            "redis_published": self.publisher.published,
            "redis_dropped": self.publisher.dropped,
            "lag_s": round(lag, 3),
        }
        if self.provider is not None:
            out.update({f"provider_{k}": val for k, val in self.provider.counters.items()})
        return out

    # --- run ---------------------------------------------------------------------
    async def start(self, provider: Provider) -> None:
        """Connect (retrying until reachable or the provider is stopped), declare symbols."""
        self.provider = provider
        self.intake.provider = provider
        while not provider.stopping:
            try:
                await self._db_call(self._connect)
                await self._db_call(self._declare, provider)
                await self._db_call(self._seed_band)
                self.db_up = True
                return
            except psycopg.OperationalError as exc:  # not reachable (yet): keep trying
                self._db_down(exc)
                await asyncio.sleep(max(0.05, self._retry_at - time.monotonic()))
            except psycopg.Error as exc:  # reachable but not usable: retrying will not help
                await asyncio.to_thread(self._close)
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise IngestError(
                    f"the market database is not ready ({type(exc).__name__}: {first}); "
                    "run `marketflow migrate`"
                ) from exc
        raise IngestError("stopped before PostgreSQL was reachable")

    def _declare(self, provider: Provider) -> None:
        assert self._conn is not None
        self.symbols.declare(self._conn, provider.name, provider.symbols, provider.symbol_info)

    async def _flush_loop(self) -> None:
        interval = self.cfg.flush_ms / 1000.0
        while self._consuming:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=interval)
            self._kick.clear()
            await self.flush_once()

    async def run(self, provider: Provider) -> None:
        """Consume ``provider`` until it ends or is stopped, then flush everything."""
        if self.provider is not provider or not self.db_up:
            await self.start(provider)
        self.publisher.start()
        self._consuming = True
        flusher = asyncio.create_task(self._flush_loop(), name="ingest-flush")
        backlog = max(self.cfg.flush_rows * 4, 200_000)
        try:
            count = 0
            async for event in provider:
                self.intake.accept(event)
                count += 1
                if count % 64 == 0 or isinstance(event, TradeBatch):
                    await asyncio.sleep(0)
                    # backpressure while the database keeps up; never while it is down
                    while self.db_up and self.pending_rows > backlog and not flusher.done():
                        self._drained.clear()
                        self._kick.set()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._drained.wait(), timeout=1.0)
                if flusher.done():
                    flusher.result()  # surface a crash of the flush loop
        finally:
            stopped_at = time.monotonic()
            self._consuming = False
            self._kick.set()
            # a flush blocked on an unreachable server must not eat the stop budget
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(flusher, self.cfg.shutdown_timeout_s / 2)
            await self.shutdown(started=stopped_at)

    async def shutdown(self, timeout_s: float | None = None, started: float | None = None) -> None:
        """Final flush within ``timeout_s`` counted from ``started`` (the stop request):
        candles of running minutes merged, buffer drained; when PostgreSQL is down the
        buffer goes to the spool first, and what is not stored by the deadline is there."""
        if timeout_s is None:
            timeout_s = self.cfg.shutdown_timeout_s
        deadline = (time.monotonic() if started is None else started) + timeout_s
        rejected = self.intake.drain_held()
        if rejected:
            log.warning("%d prints outside the plausibility band unconfirmed: rejected", rejected)
        self.seal()
        while True:
            if not self.db_up:
                self.buffer.spill_all()  # on disk before anything can block
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_once(final=True), left)
            if self.buffer.empty and not self._candle_ops:
                break
            wait = min(0.25, max(0.0, self._retry_at - time.monotonic()))
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        if not self.buffer.empty:
            rows = len(self.buffer)
            lost = self.buffer.spill_all()
            log.warning("PostgreSQL still down at shutdown: %d rows kept in the spool", rows)
            if lost:
                log.error("spool not writable at shutdown: %d rows could not be kept", lost)
        if self._candle_ops:
            log.warning("%d candle updates not written (reconciled later)", len(self._candle_ops))
        await self.publisher.stop()
        await asyncio.to_thread(self._close)
        self.buffer.close()
