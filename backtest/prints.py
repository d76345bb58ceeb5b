"""Prints (ticks) where the history has them: the entry fill and which bracket level a
candle reached first.

Candles alone cannot say whether a minute that spans both the stop and the target touched
the stop first; the prints of that minute can. ``first_touch`` walks them in time order.
``StoredPrints`` reads them from the ``ticks`` table only for the minutes that need them (an
entry, an ambiguous candle), so a backtest over candles pays nothing for the others.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt
import psycopg

from core.contracts import Side

F = npt.NDArray[np.float64]
STOP, TARGET = "stop", "target"  # as backtest.fills names them


class Prints(Protocol):
    def next_print(self, symbol_id: int, after: float, before: float) -> tuple[float, float] | None:
        """(epoch s, price) of the first print in (after, before), None when there is none."""
        ...

    def minute(self, symbol_id: int, start: float) -> F:
        """Prices of the minute [start, start + 60) in time order (empty: none stored)."""
        ...


def first_touch(prices: F, side: Side, stop: float, target: float) -> str | None:
    """Which level the prints reach first (None: neither, the candle and the prints disagree)."""
    p = np.asarray(prices, dtype=np.float64)
    if side is Side.BUY:
        hit_stop, hit_target = p <= stop, p >= target
    else:
        hit_stop, hit_target = p >= stop, p <= target
    either = hit_stop | hit_target
    if not either.any():
        return None
    k = int(np.argmax(either))
    return STOP if hit_stop[k] else TARGET


def _t(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class StoredPrints:
    NEXT_SQL = """
    select date_part('epoch', ts), price from ticks
    where symbol_id = %s and ts > %s and ts < %s order by ts, seq limit 1
    """
    MINUTE_SQL = """
    select price from ticks where symbol_id = %s and ts >= %s and ts < %s order by ts, seq
    """

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.reads = 0

    def next_print(self, symbol_id: int, after: float, before: float) -> tuple[float, float] | None:
        self.reads += 1
        row = self.conn.execute(self.NEXT_SQL, (symbol_id, _t(after), _t(before))).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def minute(self, symbol_id: int, start: float) -> F:
        self.reads += 1
        rows = self.conn.execute(self.MINUTE_SQL, (symbol_id, _t(start), _t(start + 60))).fetchall()
        return np.array([r[0] for r in rows], dtype=np.float64)


class MemoryPrints:
    """Prints held in arrays per symbol id (time order), for tests and synthetic runs."""

    def __init__(self, by_symbol: dict[int, tuple[F, F]]) -> None:
        self.by_symbol = by_symbol

    def next_print(self, symbol_id: int, after: float, before: float) -> tuple[float, float] | None:
        ts, price = self.by_symbol.get(symbol_id, (np.zeros(0), np.zeros(0)))
        k = int(np.searchsorted(ts, after, side="right"))
        return (float(ts[k]), float(price[k])) if k < len(ts) and ts[k] < before else None

    def minute(self, symbol_id: int, start: float) -> F:
        ts, price = self.by_symbol.get(symbol_id, (np.zeros(0), np.zeros(0)))
        a, b = np.searchsorted(ts, [start, start + 60], side="left")
        return price[a:b]
