"""Fills and bracket exits on 1-minute candles, with slippage and commissions.

- Entry: a market order filled at the next print after the signal when the prints are
  stored (``backtest.prints``), else at the open of the first candle after it, moved
  against the trade by the slippage.
- Exit: the bracket's stop or target, from the entry candle on (its open is the fill, its
  range comes after). A candle that opens through a level fills there at that open (a gap
  through the stop loses more than the stop; a gap through the target gains more). When a
  candle's range reaches both levels its prints decide which came first; without prints
  the stop is taken (the conservative answer). Stops, session-close and end-of-data exits are market
  orders and pay the slippage; a target is a limit order and does not.
- Optional exit at the session close: the close of the last candle before it.
- Commission per order and per share, on the entry and on the exit.

Long P&L is ``(exit − entry) × qty``, short P&L ``(entry − exit) × qty``, both after costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.contracts import Side

F = npt.NDArray[np.float64]

STOP, TARGET, SESSION_CLOSE, END_OF_DATA = "stop", "target", "session_close", "end_of_data"
EXIT_REASONS = (STOP, TARGET, SESSION_CLOSE, END_OF_DATA)
MINUTE_S = 60.0
SCAN_CHUNK = 256  # candles looked at first for a bracket's exit, doubling after


@dataclass(frozen=True)
class Costs:
    slippage_bps: float = 0.0  # basis points of the price, against the trade, market orders
    commission_per_share: float = 0.0
    commission_per_order: float = 0.0

    def slipped(self, price: float, side: Side, entering: bool) -> float:
        """A market fill: buying pays more, selling gets less."""
        buying = (side is Side.BUY) == entering
        s = self.slippage_bps / 10_000.0
        return price * (1 + s) if buying else price * (1 - s)

    def commission(self, qty: float) -> float:
        """Both orders of a round trip."""
        return 2 * (self.commission_per_order + self.commission_per_share * qty)


@dataclass(frozen=True)
class Candles:
    ts: F  # minute starts, epoch seconds, sorted
    open: F
    high: F
    low: F
    close: F


@dataclass(frozen=True)
class Exit:
    index: int  # the candle it happened in
    ts: float  # epoch seconds
    raw_price: float  # the level or print, before slippage
    reason: str


def entry_index(ts: F, signal_ts: float) -> int | None:
    """The first candle after the signal's instant (None when the history ends first)."""
    i = int(np.searchsorted(ts, signal_ts, side="right"))
    return i if i < len(ts) else None


def find_exit(
    c: Candles,
    side: Side,
    stop: float,
    target: float,
    start: int,
    close_at: float | None = None,
    decide: Callable[[int], str | None] | None = None,
) -> Exit:
    """Where the bracket of a position entered at the open of candle ``start`` ends
    (``decide``: which level candle ``j`` reached first when it spans both, from its
    prints; None or no answer: the stop)."""
    end = len(c.ts) if close_at is None else int(np.searchsorted(c.ts, close_at, side="left"))
    end = max(end, start + 1)  # the entry candle is always part of the trade
    # most brackets end within hours: look a chunk ahead at a time, not to the end of the data
    lo_, step = start, SCAN_CHUNK
    while lo_ < end:
        hi_ = min(end, lo_ + step)
        hit = _first_hit(c, side, stop, target, lo_, hi_, decide)
        if hit is not None:
            return hit
        lo_, step = hi_, step * 2
    j = end - 1
    closed = close_at is not None and (end < len(c.ts) or c.ts[j] + MINUTE_S >= close_at)
    reason = SESSION_CLOSE if closed else END_OF_DATA
    return Exit(j, float(c.ts[j]) + MINUTE_S, float(c.close[j]), reason)


def _first_hit(
    c: Candles,
    side: Side,
    stop: float,
    target: float,
    a: int,
    b: int,
    decide: Callable[[int], str | None] | None,
) -> Exit | None:
    """The first candle in [a, b) that opens through or reaches a level, as an exit."""
    o, h, lo = c.open[a:b], c.high[a:b], c.low[a:b]
    if side is Side.BUY:
        gap_stop, gap_target, hit_stop, hit_target = o <= stop, o >= target, lo <= stop, h >= target
    else:
        gap_stop, gap_target, hit_stop, hit_target = o >= stop, o <= target, h >= stop, lo <= target
    any_hit = gap_stop | gap_target | hit_stop | hit_target
    if not any_hit.any():
        return None
    k = int(np.argmax(any_hit))
    j = a + k
    if gap_stop[k]:
        return Exit(j, float(c.ts[j]), float(o[k]), STOP)
    if gap_target[k]:
        return Exit(j, float(c.ts[j]), float(o[k]), TARGET)
    if hit_stop[k] and hit_target[k] and decide is not None and decide(j) == TARGET:
        return Exit(j, float(c.ts[j]), float(target), TARGET)  # the prints say so
    if hit_stop[k]:  # both inside one candle: the stop first
        return Exit(j, float(c.ts[j]), float(stop), STOP)
    return Exit(j, float(c.ts[j]), float(target), TARGET)


@dataclass(frozen=True)
class Fill:
    entry_index: int
    entry_ts: float
    entry_price: float  # after slippage
    exit: Exit
    exit_price: float  # after slippage
    qty: float  # whole shares for equities, fractional for crypto
    gross: float
    commission: float
    pnl: float
    mae: float  # worst open loss on the way, money (≥ 0)
    mfe: float  # best open gain on the way, money (≥ 0)
    bars_held: int


def fill_trade(
    c: Candles,
    side: Side,
    qty: float,
    stop: float,
    target: float,
    start: int,
    costs: Costs,
    close_at: float | None = None,
    decide: Callable[[int], str | None] | None = None,
    entry_print: tuple[float, float] | None = None,
) -> Fill:
    """A bracket entered at the open of candle ``start`` with ``qty`` shares (or at
    ``entry_print``, the (time, price) of the first print after the signal, when known)."""
    raw, entry_ts = (float(c.open[start]), float(c.ts[start]))
    if entry_print is not None:
        entry_ts, raw = entry_print
    entry = costs.slipped(raw, side, entering=True)
    out = find_exit(c, side, stop, target, start, close_at, decide)
    exit_price = (
        out.raw_price if out.reason == TARGET else costs.slipped(out.raw_price, side, False)
    )
    sign = 1.0 if side is Side.BUY else -1.0
    gross = sign * (exit_price - entry) * qty
    commission = costs.commission(qty)
    # excursions over the candles fully lived through, then the exit itself
    lows = np.append(c.low[start : out.index], exit_price)
    highs = np.append(c.high[start : out.index], exit_price)
    if side is Side.BUY:
        mfe, mae = float(highs.max()) - entry, entry - float(lows.min())
    else:
        mfe, mae = entry - float(lows.min()), float(highs.max()) - entry
    return Fill(
        entry_index=start,
        entry_ts=entry_ts,
        entry_price=entry,
        exit=out,
        exit_price=exit_price,
        qty=qty,
        gross=gross,
        commission=commission,
        pnl=gross - commission,
        mae=max(mae, 0.0) * qty,
        mfe=max(mfe, 0.0) * qty,
        bars_held=out.index - start + 1,
    )
