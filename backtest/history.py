"""Stored history of one symbol as flat arrays, the backtest's only input.

Everything is keyed by epoch seconds (float, as the engine's reads return them) and sorted
by time: 1-minute candles, the per-minute ``session`` and ``composite`` profile metrics and
the per-minute order flow. ``load_history`` reads them from PostgreSQL for a period plus the
look-back the first minute needs (candle window, the previous sessions' profiles, the
order-flow window); the simulated clock then decides what each minute may see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import psycopg

from analytics.increments import Increments
from backtest.footprint import FootprintHistory, load_footprint

F = npt.NDArray[np.float64]

# profiles older than the session before the current one are never used by the engine
# (``only_current_profiles``); ten days covers the longest gap between two sessions
PROFILE_LOOKBACK = timedelta(days=11)
# the session VWAP needs the candles since the session opened (a long session is < 1 day)
SESSION_LOOKBACK = timedelta(days=2)
FLOW_LOOKBACK = timedelta(minutes=15)


@dataclass(frozen=True)
class Levels:
    """One horizon's profile rows (bucket order): the latest row at or before a minute is
    what the engine would have read then."""

    bucket: F
    poc: F
    vah: F
    val: F
    # the session's initial balance (session rows; empty: none stored)
    ib_high: F = field(default_factory=lambda: np.zeros(0))
    ib_low: F = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def empty(cls) -> Levels:
        return cls(*(np.zeros(0) for _ in range(4)))


@dataclass(frozen=True)
class SymbolHistory:
    symbol_id: int
    symbol: str
    market: str
    asset_type: str
    ts: F  # candle minute starts
    open: F
    high: F
    low: F
    close: F
    volume: F
    vwap: F  # the candle's own VWAP, NaN when unknown
    session: Levels
    composite: Levels
    flow_bucket: F
    buy_pressure: F
    sell_pressure: F
    cvd: F  # cvd_total, else cvd (what the engine reads)
    footprint: FootprintHistory = field(default_factory=FootprintHistory)

    @property
    def minutes(self) -> int:
        return len(self.ts)


def _matrix(rows: list[tuple], width: int) -> F:
    """Rows as one float matrix (NULL → NaN), built in one numpy call."""
    if not rows:
        return np.zeros((0, width))
    return np.array(rows, dtype=np.float64)


CANDLES_SQL = """
select date_part('epoch', ts), open, high, low, close, volume, vwap from candles_1m
where symbol_id = %s and ts > %s and ts < %s order by ts
"""
PROFILES_SQL = """
select date_part('epoch', bucket), poc, vah, val, ib_high, ib_low from profile_metrics
where symbol_id = %s and horizon = %s and bucket > %s and bucket < %s order by bucket
"""
FLOW_SQL = """
select date_part('epoch', bucket), buy_pressure, sell_pressure, coalesce(cvd_total, cvd)
from order_flow where symbol_id = %s and bucket > %s and bucket < %s order by bucket
"""
SYMBOLS_SQL = """
select id, symbol, market, asset_type from symbols
where asset_type <> 'binary_option' and (%s::text[] is null or symbol = any(%s::text[]))
order by id
"""


INCREMENTS_SQL = """
select id, asset_type, price_increment, qty_increment, min_order_qty from symbols
where id = any(%s)
"""


def symbol_increments(conn: psycopg.Connection, ids: list[int]) -> dict[int, Increments]:
    """Each symbol's order steps (``analytics.increments``), by id."""
    rows = conn.execute(INCREMENTS_SQL, (ids,)).fetchall()
    return {int(r[0]): Increments.for_symbol(*r[1:]) for r in rows}


def symbols(conn: psycopg.Connection, wanted: list[str] | None) -> list[tuple[int, str, str, str]]:
    """(id, symbol, market, asset_type) of the wanted symbols (all when None), id order."""
    names = [s.upper() for s in wanted] if wanted else None
    return [tuple(r) for r in conn.execute(SYMBOLS_SQL, (names, names)).fetchall()]


def load_history(
    conn: psycopg.Connection,
    symbol: tuple[int, str, str, str],
    start: datetime,
    end: datetime,
    candle_lookback: timedelta,
) -> SymbolHistory:
    """Rows of one symbol for minutes in [start, end) plus the look-back they need; nothing
    from ``end`` on (a position still open then exits at the last close before it)."""
    sid = symbol[0]
    since = start - max(candle_lookback, SESSION_LOOKBACK)
    with conn.cursor(binary=True) as cur:
        candles = _matrix(cur.execute(CANDLES_SQL, (sid, since, end)).fetchall(), 7)
        levels = {}
        for horizon in ("session", "composite"):
            args = (sid, horizon, start - PROFILE_LOOKBACK, end)
            rows = _matrix(cur.execute(PROFILES_SQL, args).fetchall(), 6)
            levels[horizon] = Levels(*(rows[:, k].copy() for k in range(6)))
        flow = _matrix(cur.execute(FLOW_SQL, (sid, start - FLOW_LOOKBACK, end)).fetchall(), 4)
    footprint = load_footprint(conn, sid, start, end, start - SESSION_LOOKBACK)
    c = [candles[:, k].copy() for k in range(7)]
    return SymbolHistory(
        symbol_id=sid,
        symbol=symbol[1],
        market=symbol[2],
        asset_type=symbol[3],
        ts=c[0],
        open=c[1],
        high=c[2],
        low=c[3],
        close=c[4],
        volume=c[5],
        vwap=c[6],
        session=levels["session"],
        composite=levels["composite"],
        flow_bucket=flow[:, 0].copy(),
        buy_pressure=flow[:, 1].copy(),
        sell_pressure=flow[:, 2].copy(),
        cvd=flow[:, 3].copy(),
        footprint=footprint,
    )
