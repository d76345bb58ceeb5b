"""Stored history of one symbol as flat arrays, the backtest's only input.

Everything is keyed by epoch seconds (float, as the engine's reads return them) and sorted
by time: 1-minute candles, the per-minute ``session`` and ``composite`` profile metrics and
the per-minute order flow. ``load_history`` reads them from PostgreSQL for a period plus the
look-back the first minute needs (candle window, the previous sessions' profiles, the
order-flow window); the simulated clock then decides what each minute may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import psycopg

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

    @property
    def minutes(self) -> int:
        return len(self.ts)


def _f(rows: list[tuple], col: int) -> F:
    return np.array([np.nan if r[col] is None else r[col] for r in rows], dtype=np.float64)


CANDLES_SQL = """
select date_part('epoch', ts), open, high, low, close, volume, vwap from candles_1m
where symbol_id = %s and ts > %s and ts < %s order by ts
"""
PROFILES_SQL = """
select date_part('epoch', bucket), poc, vah, val from profile_metrics
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
    candles = conn.execute(CANDLES_SQL, (sid, since, end)).fetchall()
    levels = {}
    for horizon in ("session", "composite"):
        rows = conn.execute(PROFILES_SQL, (sid, horizon, start - PROFILE_LOOKBACK, end)).fetchall()
        levels[horizon] = Levels(*(_f(rows, k) for k in range(4))) if rows else Levels.empty()
    flow = conn.execute(FLOW_SQL, (sid, start - FLOW_LOOKBACK, end)).fetchall()
    return SymbolHistory(
        symbol_id=sid,
        symbol=symbol[1],
        market=symbol[2],
        asset_type=symbol[3],
        ts=_f(candles, 0),
        open=_f(candles, 1),
        high=_f(candles, 2),
        low=_f(candles, 3),
        close=_f(candles, 4),
        volume=_f(candles, 5),
        vwap=_f(candles, 6),
        session=levels["session"],
        composite=levels["composite"],
        flow_bucket=_f(flow, 0),
        buy_pressure=_f(flow, 1),
        sell_pressure=_f(flow, 2),
        cvd=_f(flow, 3),
    )
