"""Prints (ticks) where the history has them: the entry fill and which bracket level a
candle reached first.

Candles alone cannot say whether a minute that spans both the stop and the target touched
the stop first; the prints of that minute can. ``first_touch`` walks them in time order.
``StoredPrints`` reads them from the ``ticks`` table only for the minutes that need them (an
entry, an ambiguous candle), so a backtest over candles pays nothing for the others. Days in
the tick archive (docs/retention.md) are read whole, once per symbol, through the one tick
reader, so a backtest over archived days fills exactly as it did before they were archived.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt
import psycopg

from core.contracts import Side
from storage.tick_archive import TickArchive, day_bounds
from storage.tick_reads import tick_columns

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


def _us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (the unit ticks are stored in)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StoredPrints:
    NEXT_SQL = """
    select date_part('epoch', ts), price from ticks
    where symbol_id = %s and ts > %s and ts < %s order by ts, seq limit 1
    """
    MINUTE_SQL = """
    select price from ticks where symbol_id = %s and ts >= %s and ts < %s order by ts, seq
    """

    def __init__(self, conn: psycopg.Connection, archive: TickArchive | None = None) -> None:
        self.conn = conn
        self.reads = 0
        self.archive = archive or TickArchive.configured()
        self.archived = self.archive.days()
        # (symbol_id, archived day) → (µs since the epoch, price) in (ts, seq) order
        self._days: dict[tuple[int, date], tuple[npt.NDArray[np.int64], F]] = {}

    def _archived_span(self, after: datetime, before: datetime) -> list[date]:
        if not self.archived:
            return []
        days, day = [], after.date()
        while day <= before.date():
            if day in self.archived:
                days.append(day)
            day += timedelta(days=1)
        return days

    def _day(self, symbol_id: int, day: date) -> tuple[npt.NDArray[np.int64], F]:
        key = (symbol_id, day)
        if key not in self._days:
            cols = tick_columns(self.conn, *day_bounds(day), symbol_id, self.archive)
            self._days[key] = (cols.ts // 1000, cols.price)
        return self._days[key]

    def _archived_prices(
        self, symbol_id: int, lo: datetime, hi: datetime, first_after: bool
    ) -> list[tuple[int, float]]:
        """Prints with lo < ts < hi (``first_after``) or lo <= ts < hi, as (µs, price)."""
        lo_us, hi_us = _us(lo), _us(hi)
        out: list[tuple[int, float]] = []
        for day in self._archived_span(lo, hi):
            ts, price = self._day(symbol_id, day)
            a = int(np.searchsorted(ts, lo_us, side="right" if first_after else "left"))
            b = int(np.searchsorted(ts, hi_us, side="left"))
            out += zip(ts[a:b].tolist(), price[a:b].tolist(), strict=True)
        return out

    def next_print(self, symbol_id: int, after: float, before: float) -> tuple[float, float] | None:
        self.reads += 1
        lo, hi = _t(after), _t(before)
        row = self.conn.execute(self.NEXT_SQL, (symbol_id, lo, hi)).fetchone()
        stored = None if row is None else (float(row[0]), float(row[1]))
        archived = self._archived_prices(symbol_id, lo, hi, first_after=True)
        if archived and (stored is None or archived[0][0] / 1e6 <= stored[0]):
            return archived[0][0] / 1e6, archived[0][1]
        return stored

    def minute(self, symbol_id: int, start: float) -> F:
        self.reads += 1
        lo, hi = _t(start), _t(start + 60)
        archived = self._archived_prices(symbol_id, lo, hi, first_after=False)
        if archived:  # the archive's reader already merged any row stored again
            return np.array([p for _, p in archived], dtype=np.float64)
        rows = self.conn.execute(self.MINUTE_SQL, (symbol_id, lo, hi)).fetchall()
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
