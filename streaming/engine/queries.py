"""The engine's reads: a few set-based queries per loop for ALL symbols, never one per symbol.

Per loop: the candle window (one range scan), the latest session and composite profile
(one LATERAL probe of the primary key per symbol, inside a single statement) and the
recent order flow (likewise). Reference data (symbols, strategies, configs) is reloaded
on its own slower cadence. Timestamps come back as epoch seconds (float8) so building
numpy arrays never creates Python datetimes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from analytics.aggressive_flow import FLOW_WINDOW_BUCKETS
from analytics.increments import Increments
from core.contracts import Horizon
from strategies.definitions import parse_config, parse_strategy
from strategies.footprint import Footprint
from strategies.model import DefinitionError, Strategy, SymbolConfig
from strategies.snapshot import FLOW_MAX_AGE, Profile, Snapshot, Universe
from streaming.engine.alerts import nodes as alert_nodes
from streaming.engine.footprint_reads import read_footprint

log = logging.getLogger(__name__)


UNIVERSE_SQL = """
select id, symbol, market, asset_type, price_increment, qty_increment, min_order_qty
from symbols
where active and asset_type <> 'binary_option' order by id
"""

CANDLES_SQL = """
select symbol_id, date_part('epoch', ts), high, low, close, volume
from candles_1m
where symbol_id = any(%(ids)s) and ts > %(since)s and ts <= %(now)s
order by symbol_id, ts
"""

PROFILES_SQL = """
select s.id, h.horizon, date_part('epoch', p.bucket), p.poc, p.vah, p.val, p.lvns::text,
       p.ib_high, p.ib_low
from unnest(%(ids)s::bigint[]) as s (id)
cross join (values ('session'), ('composite')) as h (horizon)
cross join lateral (
    select bucket, poc, vah, val, lvns, ib_high, ib_low from profile_metrics
    where symbol_id = s.id and horizon = h.horizon and bucket <= %(now)s
    order by bucket desc limit 1
) as p
"""

FLOW_SQL = """
select f.symbol_id, f.buy_pressure, f.sell_pressure, coalesce(f.cvd_total, f.cvd)
from unnest(%(ids)s::bigint[]) as s (id)
cross join lateral (
    select symbol_id, bucket, buy_pressure, sell_pressure, cvd_total, cvd from order_flow
    where symbol_id = s.id and bucket <= %(now)s and bucket > %(since)s
    order by bucket desc limit %(limit)s
) as f
order by f.symbol_id, f.bucket
"""

# the tail of every symbol plus the whole window of a rotating slice of symbols
CANDLES_TAIL_SQL = """
select symbol_id, date_part('epoch', ts), high, low, close, volume
from candles_1m
where symbol_id = any(%(ids)s) and ts > %(cut)s and ts <= %(now)s
union all
select symbol_id, date_part('epoch', ts), high, low, close, volume
from candles_1m
where symbol_id = any(%(slice)s) and ts > %(since)s and ts <= %(cut)s
"""

VWAP_SQL = """
select c.symbol_id,
       sum(coalesce(c.vwap, (c.high + c.low + c.close) / 3) * c.volume)
       / nullif(sum(c.volume), 0)
from unnest(%(ids)s::bigint[], %(starts)s::timestamptz[]) as s (id, start)
join candles_1m as c on c.symbol_id = s.id and c.ts >= s.start and c.ts <= %(now)s
group by c.symbol_id
"""

STRATEGIES_SQL = "select id, name, definition, cooldown_seconds from strategies where active"
CONFIGS_SQL = """
select symbol_id, strategy_name, enabled, parameters, risk_per_trade_pct, max_positions
from strategy_configs
"""
LAST_SIGNALS_SQL = (
    "select strategy_id, symbol_id, extract(epoch from max(ts))::float8 "
    "from signals group by strategy_id, symbol_id"
)


async def load_universe(conn: psycopg.AsyncConnection) -> Universe:
    rows = await (await conn.execute(UNIVERSE_SQL)).fetchall()
    return Universe(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        symbols=tuple(r[1] for r in rows),
        markets=tuple(r[2] for r in rows),
        asset_types=tuple(r[3] for r in rows),
        increments=tuple(Increments.for_symbol(*r[3:7]) for r in rows),
    )


async def load_strategies(
    conn: psycopg.AsyncConnection,
) -> tuple[list[Strategy], dict[str, str]]:
    """Valid strategies, and the reason for each one skipped (name → error)."""
    rows = await (await conn.execute(STRATEGIES_SQL)).fetchall()
    good: list[Strategy] = []
    bad: dict[str, str] = {}
    for sid, name, definition, cooldown in rows:
        try:
            good.append(parse_strategy(sid, name, definition, cooldown))
        except DefinitionError as exc:
            bad[name] = str(exc)
    return good, bad


async def load_configs(
    conn: psycopg.AsyncConnection,
) -> dict[tuple[int, str], SymbolConfig]:
    """Config rows by (symbol id, strategy name); a row whose trading keys are out of
    bounds disables its symbol for that strategy (logged once per reason)."""
    rows = await (await conn.execute(CONFIGS_SQL)).fetchall()
    out: dict[tuple[int, str], SymbolConfig] = {}
    for sid, name, enabled, params, risk, positions in rows:
        try:
            out[(int(sid), name)] = parse_config(enabled, params, risk, positions)
        except DefinitionError as exc:
            out[(int(sid), name)] = SymbolConfig(enabled=False)
            if (sid, name, str(exc)) not in _BAD_CONFIGS_LOGGED:
                _BAD_CONFIGS_LOGGED.add((sid, name, str(exc)))
                log.error("strategy_configs %s / symbol id %s disabled: %s", name, sid, exc)
    return out


_BAD_CONFIGS_LOGGED: set[tuple[int, str, str]] = set()


async def load_last_signals(conn: psycopg.AsyncConnection) -> dict[tuple[int, int], float]:
    rows = await (await conn.execute(LAST_SIGNALS_SQL)).fetchall()
    return {(int(a), int(b)): float(ts) for a, b, ts in rows}


def _offsets(row_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    starts = np.searchsorted(row_ids, ids, side="left")
    return np.concatenate([starts, [len(row_ids)]]).astype(np.int64)


def _matrix(rows: Sequence[Sequence[Any]], width: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, width))
    return np.array(rows, dtype=np.float64)  # None → nan


class SnapshotReader:
    """Reads a ``Snapshot`` per loop, keeping what does not change between loops.

    Candles: the whole window is read once; then each loop re-reads the last
    ``CANDLE_TAIL`` of every symbol (the minute being built and late prints) plus the whole
    window of a rotating slice of symbols, so every symbol is re-read in full about every
    ``full_every_s`` seconds (older candles rewritten by reconciliation are picked up)
    without one loop paying for all of them. LVN lists are parsed from JSON only when a
    profile's bucket changed; the footprint is re-read every ``FOOTPRINT_EVERY``.
    """

    CANDLE_TAIL = timedelta(minutes=3)
    # the footprint tables change once a minute (the Dagster minute run): read them every
    # few seconds, not every loop
    FOOTPRINT_EVERY = timedelta(seconds=5)

    def __init__(self, full_every_s: float = 60.0) -> None:
        self.full_every_s = full_every_s
        self._rows: np.ndarray | None = None
        self._key: tuple[tuple[int, ...], timedelta] | None = None
        self._last_now: datetime | None = None
        self._cursor = 0
        self._lvns: dict[tuple[int, str], tuple[float, list[Any]]] = {}
        self._footprint: tuple[tuple[int, ...], datetime, Footprint] | None = None
        self.full_reads = 0

    def _needs_full(self, key: tuple[tuple[int, ...], timedelta], now: datetime) -> bool:
        if self.full_every_s <= 0 or self._rows is None or key != self._key:
            return True
        assert self._last_now is not None
        since_last = (now - self._last_now).total_seconds()
        # a gap longer than the tail would leave minutes nobody re-read
        return since_last < 0 or since_last >= self.CANDLE_TAIL.total_seconds() - 60

    async def _candles(
        self, cur: psycopg.AsyncCursor[Any], ids: list[int], now: datetime, window: timedelta
    ) -> np.ndarray:
        key = (tuple(ids), window)
        if self._needs_full(key, now):
            await cur.execute(CANDLES_SQL, {"ids": ids, "since": now - window, "now": now})
            rows = _matrix(await cur.fetchall(), 6)
            self.full_reads += 1
        else:
            assert self._rows is not None
            per_loop = max(1, math.ceil(len(ids) / self.full_every_s))
            start = self._cursor if self._cursor < len(ids) else 0  # wrap, skip nobody
            chunk = ids[start : start + per_loop]
            self._cursor = start + per_loop
            cut = now - self.CANDLE_TAIL
            await cur.execute(
                CANDLES_TAIL_SQL,
                {"ids": ids, "cut": cut, "now": now, "slice": chunk, "since": now - window},
            )
            fresh = _matrix(await cur.fetchall(), 6)
            old = self._rows
            keep = (old[:, 1] > (now - window).timestamp()) & (old[:, 1] <= cut.timestamp())
            if chunk:
                keep &= ~np.isin(old[:, 0], np.asarray(chunk, dtype=np.float64))
            rows = np.concatenate([old[keep], fresh])
            rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
        self._rows, self._key, self._last_now = rows, key, now
        return rows

    def _parse_lvns(self, sid: int, horizon: str, bucket: float, text: str | None) -> list[Any]:
        cached = self._lvns.get((sid, horizon))
        if cached is not None and cached[0] == bucket:
            return cached[1]
        try:
            value = json.loads(text) if text else []
        except ValueError:
            value = []
        nodes: list[Any] = alert_nodes(value)
        self._lvns[(sid, horizon)] = (bucket, nodes)
        return nodes

    async def _read_footprint(
        self, cur: psycopg.AsyncCursor[Any], ids: list[int], now: datetime
    ) -> Footprint:
        cached = self._footprint
        if (
            self.full_every_s > 0
            and cached is not None
            and cached[0] == tuple(ids)
            and timedelta(0) <= now - cached[1] < self.FOOTPRINT_EVERY
        ):
            return cached[2]
        fp = await read_footprint(cur, ids, now)
        self._footprint = (tuple(ids), now, fp)
        return fp

    async def read(
        self,
        conn: psycopg.AsyncConnection,
        universe: Universe,
        now: datetime,
        window: timedelta,
        vwap_starts: Sequence[datetime | None] | None = None,
        footprint: bool = False,
    ) -> Snapshot:
        """Everything one loop needs for every symbol, in three statements; one more with
        the candle VWAP (``vwap_starts``), three more with the ``footprint``."""
        ids = universe.ids.tolist()
        n = universe.size
        async with conn.cursor(binary=True) as cur:
            candles = await self._candles(cur, ids, now, window)
            await cur.execute(PROFILES_SQL, {"ids": ids, "now": now})
            profiles = await cur.fetchall()
            await cur.execute(
                FLOW_SQL,
                {"ids": ids, "now": now, "since": now - FLOW_MAX_AGE, "limit": FLOW_WINDOW_BUCKETS},
            )
            flow = _matrix(await cur.fetchall(), 4)
            session_vwap = np.zeros(0)
            if vwap_starts is not None:
                pairs = [(i, s) for i, s in zip(ids, vwap_starts, strict=True) if s is not None]
                session_vwap = np.full(n, np.nan)
                if pairs:
                    await cur.execute(
                        VWAP_SQL,
                        {"ids": [p[0] for p in pairs], "starts": [p[1] for p in pairs], "now": now},
                    )
                    where = {int(i): k for k, i in enumerate(ids)}
                    for sid, value in await cur.fetchall():
                        if value is not None:
                            session_vwap[where[int(sid)]] = float(value)
            prints = await self._read_footprint(cur, ids, now) if footprint else None

        index = {int(i): k for k, i in enumerate(ids)}
        by_horizon = {
            Horizon.SESSION.value: Profile.empty(n),
            Horizon.COMPOSITE.value: Profile.empty(n),
        }
        for sid, horizon, bucket, poc, vah, val, lvns, ib_high, ib_low in profiles:
            k, prof = index[int(sid)], by_horizon[horizon]
            prof.ib_high[k] = np.nan if ib_high is None else ib_high
            prof.ib_low[k] = np.nan if ib_low is None else ib_low
            prof.bucket[k] = bucket
            prof.poc[k] = np.nan if poc is None else poc
            prof.vah[k] = np.nan if vah is None else vah
            prof.val[k] = np.nan if val is None else val
            prof.lvns[k] = self._parse_lvns(int(sid), horizon, float(bucket), lvns)

        return Snapshot(
            now=now,
            universe=universe,
            candle_offsets=_offsets(candles[:, 0].astype(np.int64), universe.ids),
            candle_ts=candles[:, 1].copy(),
            high=candles[:, 2].copy(),
            low=candles[:, 3].copy(),
            close=candles[:, 4].copy(),
            volume=candles[:, 5].copy(),
            session=by_horizon[Horizon.SESSION.value],
            composite=by_horizon[Horizon.COMPOSITE.value],
            flow_offsets=_offsets(flow[:, 0].astype(np.int64), universe.ids),
            buy_pressure=flow[:, 1].copy(),
            sell_pressure=flow[:, 2].copy(),
            cvd=flow[:, 3].copy(),
            session_vwap=session_vwap,
            footprint=prints,
        )


async def load_snapshot(
    conn: psycopg.AsyncConnection,
    universe: Universe,
    now: datetime,
    window: timedelta,
    vwap_starts: Sequence[datetime | None] | None = None,
    footprint: bool = False,
) -> Snapshot:
    """One snapshot read from scratch (no state kept between calls)."""
    reader = SnapshotReader(full_every_s=0.0)
    return await reader.read(conn, universe, now, window, vwap_starts, footprint)
