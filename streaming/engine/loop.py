"""The engine daemon: a 1-second loop over every symbol (docs/architecture.md).

Scheduling: ticks sit on absolute deadlines (start + k seconds), so the work time never
adds drift; a tick that overruns makes the loop skip the deadlines it missed and log the
lag instead of bunching up. Tasks have their own cadences measured on the tick clock:
market state every 5 s, LVN and footprint alerts every 2 s (the footprint re-read every
5 s), aggressive flow and strategies every tick, reference data (symbols, strategies,
configs) every 30 s. Alerts also go to the webhooks (``webhooks.py``), queued, never
awaited by the tick.

Each tick reads with a few set-based statements for all symbols (``queries.py``), computes
with the shared pure formulas (``snapshot.compute_metrics``), then runs its tasks, each
in a module of its own (``state``, ``alerts``, ``signals``, ``intents``, ``publishing``).
PostgreSQL or Redis going away never stops the loop: a failed read skips the tick (the
connection is reopened on the next one), a failed publish is counted, and everything the
engine remembers (edges, cooldowns, alert latches, last written states) stays in memory.

One engine per database acts (``lease.py``): an engine that cannot take the engine lock
stays read-only, writing, publishing and trading nothing, until the holder ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import redis.asyncio as aioredis

from core.contracts import Channel
from core.settings import Settings
from storage.db import libpq_url
from strategies.edges import EdgeTracker
from strategies.evaluation import target_mask
from strategies.intents import order_intent
from strategies.model import Strategy, SymbolConfig, sma_periods
from strategies.session_clock import current_session, session_opens
from strategies.snapshot import (
    PROFILE_STALE,
    Metrics,
    Snapshot,
    Universe,
    candle_window,
    compute_metrics,
    only_current_profiles,
)
from streaming.engine import killswitch, queries
from streaming.engine.alerts import OnceLatch, flow_alerts, lvn_alerts
from streaming.engine.footprint_alerts import FootprintAlerts
from streaming.engine.lease import EngineLease
from streaming.engine.publishing import publish
from streaming.engine.report import Counters, TickReport
from streaming.engine.signals import fire_signals, record_signals, signal_messages
from streaming.engine.state import StateRecorder, refresh_states
from streaming.engine.trader import Trader
from streaming.engine.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

PERIOD_S = 1.0
STATE_EVERY_S = 5.0
LVN_EVERY_S = 2.0
REFERENCE_EVERY_S = 30.0
VWAP_EVERY_S = 15.0
RECONCILE_EVERY_S = 5.0
DB_RETRY_S = 2.0  # after a failed connect, wait this long before trying again


class Engine:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        redis_url: str,
        *,
        trader: Trader | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        channel_prefix: str = "",
    ) -> None:
        """``channel_prefix`` goes before every channel the engine publishes on; empty in
        production (the ``Channel`` names), set by the benchmark so its fake symbols'
        messages reach no live subscriber of the Redis it uses."""
        self.settings = settings
        self.channel_prefix = channel_prefix
        self.database_url = database_url
        self.redis = aioredis.Redis.from_url(
            redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self.clock = clock
        self.counters = Counters()
        self._trader = trader
        self._trader_failed = False
        self._conn: psycopg.AsyncConnection | None = None
        self._next_connect = 0.0
        self._due: dict[str, float] = {}
        self.universe: Universe | None = None
        self.strategies: list[Strategy] = []
        self.configs: dict[tuple[int, str], SymbolConfig] = {}
        self._bad_logged: set[tuple[str, str]] = set()
        self.edges = EdgeTracker()
        self._seeded = False
        self.recorder = StateRecorder(settings.engine_state_refresh_seconds)
        self.lvn_latch = OnceLatch()
        self.flow_latch = OnceLatch()
        self.footprint_alerts = FootprintAlerts(settings)
        self.webhooks = WebhookDispatcher.from_settings(settings)
        # current market state per symbol id, refreshed on the state cadence
        self.current_state: dict[int, tuple[int, float]] = {}
        self._vwap: dict[int, float] = {}
        self.reader = queries.SnapshotReader()
        self._targets: dict[int, np.ndarray] = {}
        self._stale_logged: dict[int, datetime] = {}  # symbol id → session open logged
        self.lease = EngineLease(database_url)
        self._standby_logged = False

    # --- connections --------------------------------------------------------------------
    async def _db(self) -> psycopg.AsyncConnection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if time.monotonic() < self._next_connect:
            raise psycopg.OperationalError("waiting before reconnecting")
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                libpq_url(self.database_url),
                autocommit=True,
                connect_timeout=3,
                application_name="marketflow-engine",
            )
        except psycopg.Error:
            self._next_connect = time.monotonic() + DB_RETRY_S
            raise
        log.info("engine: connected to PostgreSQL")
        return self._conn

    async def _drop_db(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self.webhooks.close()
        await self.lease.release()
        await self._drop_db()
        await self.redis.aclose()

    def trader(self) -> Trader | None:
        if not self.settings.auto_trading_enabled:
            return None
        if self._trader is None and not self._trader_failed:
            try:
                self._trader = Trader(self.settings, self.redis)
            except Exception as exc:  # no keys, bad URL: trading off, the engine runs on
                self._trader_failed = True
                log.error("auto-trading disabled: %s", exc)
        return self._trader

    # --- cadences -------------------------------------------------------------------------
    def _is_due(self, task: str, every: float, t: float) -> bool:
        # a 50 ms tolerance keeps "every 5 s" on the 5th tick despite float jitter; a
        # deadline further away than one period means the wall clock stepped back
        due = self._due.get(task, float("-inf"))
        if t + 0.05 >= due or due - t > every:
            self._due[task] = t + every
            return True
        return False

    # --- one tick ---------------------------------------------------------------------------
    async def tick(self, now: datetime | None = None) -> TickReport:
        started = time.perf_counter()
        now = now or self.clock()
        t = now.timestamp()
        report = TickReport(ok=False)
        try:
            conn = await self._db()
            if not await self._active():
                report.read_only = True
                report.error = f"read-only: {self.lease.holder} holds the engine lock"
                return report
            if self.universe is None or self._is_due("reference", REFERENCE_EVERY_S, t):
                await self._load_reference(conn)
                report.ran.append("reference")
            snap = await self._read(conn, now, t)
        except (psycopg.Error, OSError) as exc:
            self.counters.db_errors += 1
            report.error = f"{exc.__class__.__name__}: {exc}"[:200]
            log.warning("engine tick skipped, database unavailable: %s", exc.__class__.__name__)
            await self._drop_db()
            return report
        metrics = compute_metrics(snap, sma_periods(self.strategies))
        try:
            await self._run_tasks(conn, snap, metrics, now, t, report)
            report.ok = True
        except (psycopg.Error, OSError) as exc:
            self.counters.db_errors += 1
            report.error = f"{exc.__class__.__name__}: {exc}"[:200]
            log.warning("engine tick cut short, database unavailable: %s", exc.__class__.__name__)
            await self._drop_db()
        self.counters.loops += 1
        self.counters.last_loop_ms = (time.perf_counter() - started) * 1000
        return report

    async def _active(self) -> bool:
        """Whether this engine holds the engine lock (taking it when free); the first
        tick after a takeover reloads reference data and the signals' cooldowns, which
        the other engine moved on while this one stood by."""
        was = self.lease.held
        held = await self.lease.check()
        if not held and not self._standby_logged:
            self._standby_logged = True
            log.warning(
                "engine: %s holds the engine lock; this engine stays read-only (no writes,"
                " no orders) until it ends",
                self.lease.holder,
            )
        elif held and not was:
            if self._standby_logged:
                log.warning("engine: took the engine lock; now writing and trading")
            self._standby_logged = False
            self._seeded = False
            self.universe = None
        return held

    async def _load_reference(self, conn: psycopg.AsyncConnection) -> None:
        # read everything first: a read failing half way must not leave a new universe
        # beside target masks sized for the old one, nor strategies running without the
        # cooldowns of the signals they sent before a restart
        universe = await queries.load_universe(conn)
        strategies, bad = await queries.load_strategies(conn)
        configs = await queries.load_configs(conn)
        if not self._seeded:
            self.edges.seed(await queries.load_last_signals(conn))
            self._seeded = True
        self.universe, self.strategies, self.configs = universe, strategies, configs
        self._targets = {s.id: target_mask(s, universe, configs) for s in strategies}
        for name, why in bad.items():
            if (name, why) not in self._bad_logged:
                self._bad_logged.add((name, why))
                log.error("strategy %r skipped: %s", name, why)
        self.counters.symbols = self.universe.size
        self.counters.strategies = len(self.strategies)
        self.counters.bad_strategies = len(bad)

    def _window(self) -> timedelta:
        return candle_window(sma_periods(self.strategies))

    async def _read(self, conn: psycopg.AsyncConnection, now: datetime, t: float) -> Snapshot:
        assert self.universe is not None
        wants_vwap = any(s.uses_vwap() for s in self.strategies)
        starts = (
            session_opens(self.universe.markets, now)
            if wants_vwap and self._is_due("vwap", VWAP_EVERY_S, t)
            else None
        )
        footprint = self.footprint_alerts.enabled or any(
            st.uses_footprint() for st in self.strategies
        )
        snap = await self.reader.read(conn, self.universe, now, self._window(), starts, footprint)
        ids = self.universe.ids.tolist()
        if starts is not None:
            self._vwap = {sid: float(v) for sid, v in zip(ids, snap.session_vwap, strict=True)}
        elif wants_vwap:
            cached = np.array([self._vwap.get(sid, np.nan) for sid in ids])
            snap = Snapshot(**{**snap.__dict__, "session_vwap": cached})
        return self._current_profiles(snap, now)

    def _current_profiles(self, snap: Snapshot, now: datetime) -> Snapshot:
        """Only profiles of each symbol's current session (``only_current_profiles``);
        the staleness is counted for the heartbeat and logged once per symbol per session."""
        universe = snap.universe
        by_market = {m: current_session(m, now) for m in set(universe.markets)}
        sessions = [by_market[m] for m in universe.markets]
        opens = np.array([s.open.timestamp() if s else np.nan for s in sessions])
        previous = np.array(
            [s.previous_open.timestamp() if s and s.previous_open else np.nan for s in sessions]
        )
        snap = only_current_profiles(snap, opens, previous)
        stale = np.flatnonzero(snap.session_status == PROFILE_STALE)
        self.counters.stale_session_profiles = len(stale)
        self.counters.stale_composite_profiles = int(snap.composite_stale.sum())
        for k in stale.tolist():
            sid, session = int(universe.ids[k]), sessions[k]
            if session is not None and self._stale_logged.get(sid) != session.open:
                self._stale_logged[sid] = session.open
                log.warning(
                    "engine: %s has no session profile for its %s session (newest is from %s);"
                    " market state UNKNOWN until profile runs catch up",
                    universe.symbols[k],
                    session.day.isoformat(),
                    datetime.fromtimestamp(float(snap.session.bucket[k]), UTC).isoformat(),
                )
        return snap

    async def _run_tasks(
        self,
        conn: psycopg.AsyncConnection,
        snap: Snapshot,
        metrics: Metrics,
        now: datetime,
        t: float,
        report: TickReport,
    ) -> None:
        universe = snap.universe
        ids = universe.ids.tolist()
        if self._is_due("state", STATE_EVERY_S, t) or any(
            sid not in self.current_state for sid in ids
        ):
            report.ran.append("state")
            rows = await refresh_states(
                conn, self.recorder, self.current_state, universe, metrics, now
            )
            report.state_rows = len(rows)
            self.counters.state_rows += len(rows)
            await self._publish(Channel.MARKET_STATE, [r.message() for r in rows])
        state = np.array([self.current_state[sid][0] for sid in ids], dtype=np.int8)
        confidence = np.array([self.current_state[sid][1] for sid in ids], dtype=np.float64)

        alerts: list[dict[str, Any]] = []
        if self._is_due("lvn", LVN_EVERY_S, t):
            report.ran.append("lvn")
            alerts += lvn_alerts(
                snap, metrics, now, self.lvn_latch, self.settings.engine_lvn_alert_pct
            )
        report.ran.append("flow")
        alerts += flow_alerts(
            universe, metrics, now, self.flow_latch, self.settings.engine_aggression_alert_score
        )
        if metrics.footprint is not None and self._is_due("footprint alerts", LVN_EVERY_S, t):
            alerts += self.footprint_alerts.due(universe, metrics, metrics.footprint, now)
        report.alerts = alerts
        self.counters.alerts += len(alerts)
        await self._publish(Channel.ALERTS, alerts)
        self.webhooks.submit(alerts)

        report.ran.append("strategies")
        fired = fire_signals(
            self.strategies,
            universe,
            metrics,
            state,
            confidence,
            self.configs,
            self.settings.min_aggression_score,
            self._targets,
            self.edges,
            now,
        )
        if fired:
            await record_signals(conn, fired, universe, self.edges, now)
            messages = signal_messages(fired, universe, now)
            report.signals = messages
            self.counters.signals += len(messages)
            await self._publish(Channel.SIGNALS, messages)

        trader = self.trader()
        if trader is not None:
            maybe = [order_intent(snap, s, c, self.configs, now) for s, c in fired if s.trade]
            intents = [i for i in maybe if i is not None]
            report.intents = intents
            await trader.process(conn, intents, self.counters.loops, now)
            if self._is_due("reconcile", RECONCILE_EVERY_S, t):
                await trader.reconcile(conn)

    async def _publish(self, channel: Channel, messages: list[dict[str, Any]]) -> None:
        if not await publish(self.redis, self.channel_prefix + channel.value, messages):
            self.counters.redis_errors += 1

    # --- the loop -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None, once: bool = False) -> None:
        stop = stop or asyncio.Event()
        switch_ready = False
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        while not stop.is_set():
            if not switch_ready:  # until Redis answers once; orders stay blocked meanwhile
                switch_ready = await killswitch.initialise(self.redis, self.settings.kill_switch)
            try:
                await self.tick()
            except Exception:  # a bug in one task must not end the daemon
                log.exception("engine tick failed")
            if once:
                return
            k += 1
            late = loop.time() - (start + k * PERIOD_S)
            if late > 0:
                missed = int(late // PERIOD_S) + 1
                k += missed
                self.counters.skipped_ticks += missed
                self.counters.lag_ms = late * 1000
                log.warning("engine loop %.0f ms late: skipping %d tick(s)", late * 1000, missed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, start + k * PERIOD_S - loop.time()))

    def status(self) -> dict[str, int | float | str]:
        out: dict[str, int | float | str] = dict(self.counters.as_dict())
        out["db_connected"] = int(self._conn is not None and not self._conn.closed)
        trader = self._trader
        if trader is not None:
            c = trader.counters
            out.update(
                orders_submitted=c.submitted,
                orders_rejected=c.rejected,
                orders_blocked=c.blocked,
                broker_calls=c.broker_calls,
                paper=int(trader.paper),
            )
        out.update(self.webhooks.counters())
        out["auto_trading"] = int(self.settings.auto_trading_enabled)
        out["engine_lock"] = "held" if self.lease.held else "read-only"
        return out
