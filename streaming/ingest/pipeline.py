"""The ingest pipeline: provider events → validated rows → PostgreSQL, candles, Redis.

One asyncio program (docs/architecture.md), two concurrent loops:

* **consume**: iterates the provider; ``accept`` validates each event (pure checks in
  ``validate``), resolves the symbol and stages the row; live trades are noted for
  ``ticks:trades`` at once. Events never raise out of ``accept``: bad ones are counted.
* **flush** (every ``flush_ms`` or ``flush_rows``): seals staged rows into a chunk, folds it
  into the candle builder (running candles → ``ticks:candles``), pushes it into the
  durable buffer and writes the buffer in order through ``store.IngestStore`` (binary
  COPY, idempotent) in a worker thread; then the candle work of minutes whose timer
  fired, bars, and bad-input counters.

PostgreSQL unreachable → the chunk stays in the buffer (memory, then the spool file), the
writer reconnects with backoff, and the buffer drains oldest first. Writes are at least once
and storage is exactly once (the key (symbol_id, ts, trade_id)). When the writer reports that
a chunk held rows stored before (replay, reconnect overlap), the minutes of that chunk are
rebuilt from the stored ticks instead of merged, so candles never count a print twice.

A venue's corrections and cancels are applied after the prints sealed before them are
written, and the candles of the minutes they changed are rebuilt (``amendments``,
docs/corrections.md).

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
import logging
import time
from collections.abc import Callable

import psycopg

from core.candle import Candle
from core.events import Rejects
from core.timestamps import MINUTE_NS, NS
from streaming.ingest import rejects as reject_store
from streaming.ingest.amendments import AmendmentQueue
from streaming.ingest.candle_builder import CandleBuilder
from streaming.ingest.config import PipelineConfig
from streaming.ingest.counters import Counters
from streaming.ingest.intake import Intake, Row
from streaming.ingest.plausibility import PriceBand
from streaming.ingest.publish import Publisher
from streaming.ingest.spool import DurableBuffer
from streaming.ingest.store import IngestStore, db_call
from streaming.ingest.symbols import SymbolMap
from streaming.providers.base import Provider, ProviderError, TradeBatch

log = logging.getLogger(__name__)


PREPARE_TIMEOUT_S = 15.0  # a venue's metadata lookups before the first print


class IngestError(ProviderError):
    """Ingest cannot start; the message says what to do next."""


class IngestPipeline:
    def __init__(
        self,
        database_url: str,
        redis_url: str | None,
        config: PipelineConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = config
        self.clock = clock
        self.rejects = Rejects(config.source)
        self.counters = Counters()
        self.publisher = Publisher(redis_url, config.publish_interval_s)
        self.builder = CandleBuilder(config.candle_grace_s)
        self.buffer = DurableBuffer(config.spool_dir / f"{config.source}.spool", config.memory_rows)
        self.symbols = SymbolMap()
        self.ledger = reject_store.RejectLedger()
        self.amendments = AmendmentQueue(
            config.spool_dir / f"{config.source}.amendments.jsonl", self.rejects
        )
        self.provider: Provider | None = None
        self._candle_ops: list[Candle] = []
        self._dirty: set[tuple[int, int]] = set()
        self._kick = asyncio.Event()
        self._drained = asyncio.Event()
        self._last_log = time.monotonic()
        self._last_rejects = time.monotonic()
        self._last_symbol_refresh = time.monotonic()
        self._consuming = False
        self.band: PriceBand[Row] | None = (
            PriceBand(config.price_band, config.price_band_confirm)
            if config.price_band > 0
            else None
        )
        self.store = IngestStore(
            database_url,
            config,
            counters=self.counters,
            rejects=self.rejects,
            symbols=self.symbols,
            buffer=self.buffer,
            band=self.band,
            pending_rows=lambda: self.pending_rows,
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
            amendments=self.amendments,
        )

    def accept(self, event: object) -> None:
        """Validate and stage one event (see ``intake.Intake.accept``); never raises."""
        self.intake.accept(event)

    # --- seal: staged rows → candles + buffer ---------------------------------------
    def seal(self) -> int:
        rows = self.intake.take()
        # amendments received so far follow the prints sealed now through the buffer
        self.amendments.seal()
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

    async def flush_once(self, final: bool = False) -> None:
        self.seal()
        now = self.clock()
        final_c, late = self.builder.due(now) if not final else (self.builder.drain(), [])
        self._candle_ops.extend(final_c)
        self._candle_ops.extend(late)
        if not await self.store.ensure_db():
            self._drained.set()  # never hold the provider back while the database is down
            return
        try:
            while (chunk := self.buffer.next_chunk(self.cfg.flush_rows)) is not None:
                try:
                    inserted = await self.store.write_chunk(chunk)
                except psycopg.OperationalError:
                    self.buffer.release()
                    raise
                except psycopg.Error as exc:
                    self.buffer.release()
                    conn = self.store.conn
                    if conn is None or conn.closed or conn.broken:
                        raise
                    inserted, refused = await db_call(self.store.write_rejecting, chunk, exc)
                else:
                    refused = 0
                self.buffer.commit()
                self.counters.stored += int(inserted)
                if inserted + refused < len(chunk):
                    self.counters.duplicates += len(chunk) - int(inserted) - refused
                    minutes = chunk.ts_ns - chunk.ts_ns % MINUTE_NS
                    self._dirty.update(zip(chunk.symbol_id.tolist(), minutes.tolist(), strict=True))
                self._drained.set()
            if self.amendments.ready:
                await self._apply_amendments()
            if self._candle_ops or self.intake.bars:
                await self._write_candle_ops()
            await self._housekeeping(final)
        except psycopg.Error as exc:
            self.store.down(exc)
            self._drained.set()

    async def _apply_amendments(self) -> None:
        """The ready amendments (their prints are stored), then the candles they changed. A
        minute still held by the builder, or finalised but not written yet, is marked so
        its candle is rebuilt from the amended ticks instead of merged."""
        rows = self.amendments.take_ready()
        try:
            results = await db_call(self.store.apply_amendments, rows)
        except psycopg.Error:
            self.amendments.put_back(rows)  # idempotent: applied ones come back duplicate
            raise
        keys = self.amendments.settle(results)
        if not keys:
            return
        await db_call(self.store.rebuild_amended, keys)
        pending = {(c.symbol_id, c.minute_ns) for c in self._candle_ops}
        held = set(self.builder.open) | set(self.builder.late) | pending
        self._dirty |= keys & held
        if self.publisher.redis_url is not None:
            changed = [Candle(sid, m, 0.0, 0.0, 0.0, 0.0, 0.0) for sid, m in sorted(keys)]
            for c in await db_call(self.store.read_candles, changed):
                self.publisher.note_candle(self.symbols.name(c.symbol_id), c)

    async def _write_candle_ops(self) -> None:
        ops, dirty = self._candle_ops, set(self._dirty)
        bars = self.intake.take_bars()
        self._candle_ops = []
        try:
            await db_call(self.store.write_candles, ops, dirty)
            if bars:
                await db_call(self.store.upsert_bars, bars)
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
            stored = await db_call(self.store.read_candles, changed)
            for c in stored:
                self.publisher.note_candle(self.symbols.name(c.symbol_id), c)

    async def _housekeeping(self, final: bool) -> None:
        mono = time.monotonic()
        if final or mono - self._last_rejects >= self.cfg.rejects_interval_s:
            self._last_rejects = mono
            deltas = self.ledger.deltas(self._reject_sources())
            if deltas:
                await db_call(reject_store.persist, self.store.conn, deltas)
                self.ledger.mark(deltas)
        if mono - self._last_symbol_refresh >= 60.0:
            self._last_symbol_refresh = mono
            await db_call(self.store.refresh_symbols)
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
            "db_up": int(self.store.db_up),
            "db_errors": c.db_errors,
            "candles_written": c.candles_written,
            "amendments_applied": self.amendments.counts["applied"],
            "amendments_unmatched": self.amendments.counts["unmatched"],
            "amendments_duplicate": self.amendments.counts["duplicate"],
            "amendments_pending": len(self.amendments),
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
        try:  # the venue's metadata for symbols it knows better (never blocks ingest)
            await asyncio.wait_for(provider.prepare(), PREPARE_TIMEOUT_S)
        except Exception as exc:
            log.warning("%s: symbol metadata not prepared (%s)", provider.name, type(exc).__name__)
        while not provider.stopping:
            try:
                await db_call(self.store.connect)
                self.amendments.restore()
                await db_call(self.store.declare, provider)
                await db_call(self.store.seed_band)
                self.store.db_up = True
                return
            except psycopg.OperationalError as exc:  # not reachable (yet): keep trying
                self.store.down(exc)
                await asyncio.sleep(max(0.05, self.store.retry_at - time.monotonic()))
            except psycopg.Error as exc:  # reachable but not usable: retrying will not help
                await asyncio.to_thread(self.store.close)
                first = (str(exc).strip().splitlines() or [""])[0][:200]
                raise IngestError(
                    f"the market database is not ready ({type(exc).__name__}: {first}); "
                    "run `marketflow migrate`"
                ) from exc
        raise IngestError("stopped before PostgreSQL was reachable")

    async def _flush_loop(self) -> None:
        interval = self.cfg.flush_ms / 1000.0
        while self._consuming:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=interval)
            self._kick.clear()
            await self.flush_once()

    async def run(self, provider: Provider) -> None:
        """Consume ``provider`` until it ends or is stopped, then flush everything."""
        if self.provider is not provider or not self.store.db_up:
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
                    while self.store.db_up and self.pending_rows > backlog and not flusher.done():
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
            if not self.store.db_up:
                self.buffer.spill_all()  # on disk before anything can block
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_once(final=True), left)
            if self.buffer.empty and not self._candle_ops and not self.amendments:
                break
            wait = min(0.25, max(0.0, self.store.retry_at - time.monotonic()))
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        if not self.buffer.empty:
            rows = len(self.buffer)
            lost = self.buffer.spill_all()
            log.warning("PostgreSQL still down at shutdown: %d rows kept in the spool", rows)
            if lost:
                log.error("spool not writable at shutdown: %d rows could not be kept", lost)
        if self._candle_ops:
            log.warning("%d candle updates not written (reconciled later)", len(self._candle_ops))
        if self.amendments:
            kept = self.amendments.spill()
            log.warning("PostgreSQL still down at shutdown: %d corrections/cancels kept", kept)
        await self.publisher.stop()
        await asyncio.to_thread(self.store.close)
        self.buffer.close()
