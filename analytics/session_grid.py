"""One session as a minute × bin grid: prints and candle-fallback bins summed into cells.

Prints are classified, binned on integer bins and summed into minute × bin cells by one
compiled pass (``analytics.print_kernel``; no sort, no float keys); candle-fallback entries
are reduced with ``np.bincount`` on the integer key ``minute * n_bins + bin``. Wide
sessions are aggregated in blocks of minutes to bound memory, and each block is shaped
into frames as it comes (``analytics.grid_frames``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.aggressor_side import AggressorState
from analytics.bar_stats import empty_sums
from analytics.candle_fallback import spread_bars
from analytics.grid_frames import (
    Block,
    FrameLabels,
    GridFrames,
    GridShape,
    empty_frames,
    grid_frames,
)
from analytics.print_kernel import fill_prints
from analytics.tick_input import count_rejected, utc_ns

NS_PER_MINUTE = 60_000_000_000
# minute × bin cells aggregated per block (three float64 grids of this size live at once)
GRID_CELLS = 1 << 21


@dataclass(frozen=True)
class Entries:
    """Volume entries placed on the grid (ticks, or candle-fallback bins)."""

    cell: np.ndarray  # int64 minute * n_bins + (bin - first_bin), minutes non-decreasing
    starts: np.ndarray  # int64, n_minutes + 1: minute m's entries are [starts[m], starts[m+1])
    volume: np.ndarray  # float64
    signed: np.ndarray  # float64: buy − sell volume of the entry
    counts: bool  # True: each entry is one trade (adds to trade_count)

    @property
    def size(self) -> int:
        return int(self.cell.shape[0])


@dataclass(frozen=True)
class Prints:
    """The session's valid prints, time-sorted; classified and binned in one compiled pass.

    side/bid/ask as ``analytics.aggressor_side.classify`` takes them (None when unknown);
    starts: n_minutes + 1 boundaries, minute m's prints are [starts[m], starts[m+1]).
    """

    price: np.ndarray
    size: np.ndarray
    side: np.ndarray | None
    bid: np.ndarray | None
    ask: np.ndarray | None
    starts: np.ndarray
    row_size: float
    # the times, when the print pass is to check their order and the sizes
    ns: np.ndarray | None = None

    @property
    def count(self) -> int:
        return int(self.price.shape[0])


def minute_starts(ns: np.ndarray, first_minute_ns: int, n_minutes: int) -> np.ndarray:
    """Index of the first entry of each minute (sorted times): n_minutes + 1 boundaries."""
    edges = first_minute_ns + NS_PER_MINUTE * np.arange(n_minutes + 1, dtype=np.int64)
    return np.searchsorted(ns, edges, side="left").astype(np.int64)


def fallback_cells(minute: np.ndarray, bins: np.ndarray, shape: GridShape) -> np.ndarray:
    return minute * shape.n_bins + (bins - shape.first_bin)


def _grid_block(entries: Entries, r0: int, r1: int, n_bins: int) -> tuple:
    """(volume, buy, count) grids for minutes [r0, r1) of one set of entries."""
    rows = r1 - r0
    t0, t1 = (int(entries.starts[r0]), int(entries.starts[r1])) if entries.size else (0, 0)
    if t1 == t0:  # (bincount of nothing would come back as int64)
        zeros = np.zeros((rows, n_bins))
        return zeros, zeros.copy(), np.zeros((rows, n_bins), dtype=np.int64)
    key = entries.cell[t0:t1]
    if r0:
        key = key - r0 * n_bins
    cells = rows * n_bins
    volume = np.bincount(key, weights=entries.volume[t0:t1], minlength=cells)
    signed = np.bincount(key, weights=entries.signed[t0:t1], minlength=cells)
    # fallback bins saw no print: they add volume but no trade count
    count = np.bincount(key, minlength=cells) if entries.counts else np.zeros(cells, np.int64)
    buy: np.ndarray = signed  # float64: bincount with weights (the stubs say intp)
    buy += volume
    buy *= 0.5
    return (
        volume.reshape(rows, n_bins),
        buy.reshape(rows, n_bins),
        count.reshape(rows, n_bins),
    )


def _print_block(
    prints: Prints, r0: int, r1: int, shape: GridShape, state: AggressorState, bars: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, AggressorState]:
    """(volume, buy, count) grids for minutes [r0, r1) of the prints, and the tick-rule state;
    the minutes' bar sums are written into ``bars`` (the session's, minutes × BAR_SUMS).

    One compiled pass classifies, bins and adds every print to its cell in print order
    (``analytics.print_kernel``): the same sums as a ``bincount`` per grid, bit for bit.
    """
    rows, n_bins = r1 - r0, shape.n_bins
    volume = np.zeros((rows, n_bins))
    signed = np.zeros((rows, n_bins))
    count = np.zeros((rows, n_bins), dtype=np.int64)
    last_price, last_sign = fill_prints(
        prints.price,
        prints.size,
        prints.side,
        prints.bid,
        prints.ask,
        prints.starts[r0 : r1 + 1],
        prints.row_size,
        shape.first_bin,
        (volume, signed, count),
        (state.last_price, state.last_sign),
        prints.ns,
        bars[r0:r1],
    )
    buy = signed
    buy += volume
    buy *= 0.5
    return volume, buy, count, AggressorState(last_price, last_sign)


def build_frames(
    prints: Prints,
    fallback: Entries,
    shape: GridShape,
    labels: FrameLabels,
    aggressor_state: AggressorState,
) -> tuple[GridFrames, AggressorState, np.ndarray]:
    """Aggregate prints and fallback entries onto the session grid and shape the frames.

    aggressor_state: the tick-rule state before the first print; returned with the frames
    are the state after the last one and the minutes' bar sums (``analytics.bar_stats``).
    """
    bars = empty_sums(shape.n_minutes)
    if prints.count == 0 and fallback.size == 0:
        empty = empty_frames(aggressor_state)
        frames = GridFrames(
            empty.volume_profile, empty.profile_metrics, empty.order_flow, empty.session_profile
        )
        return frames, aggressor_state, bars
    states = [aggressor_state]
    frames = grid_frames(_blocks(prints, fallback, shape, states, bars), shape, labels)
    return frames, states[-1], bars


def _blocks(
    prints: Prints,
    fallback: Entries,
    shape: GridShape,
    states: list[AggressorState],
    bars: np.ndarray,
) -> Iterator[Block]:
    """The grid in blocks of whole minutes; the tick-rule state after each is appended
    to ``states``, the minutes' bar sums written into ``bars``."""
    rows_per_block = max(1, GRID_CELLS // shape.n_bins)
    for r0 in range(0, shape.n_minutes, rows_per_block):
        r1 = min(r0 + rows_per_block, shape.n_minutes)
        volume, buy, count, state = _print_block(prints, r0, r1, shape, states[-1], bars)
        states.append(state)
        if fallback.size:
            f_volume, f_buy, _ = _grid_block(fallback, r0, r1, shape.n_bins)
            volume += f_volume
            buy += f_buy
        yield Block(r0, volume, buy, count)


@dataclass(frozen=True)
class FallbackBars:
    """Candle-fallback bins, sorted by minute (bins sorted within a bar)."""

    minute: np.ndarray
    bins: np.ndarray
    volume: np.ndarray
    signed: np.ndarray

    def entries(self, shape: GridShape) -> Entries:
        return Entries(
            cell=fallback_cells(self.minute, self.bins, shape),
            starts=np.searchsorted(self.minute, np.arange(shape.n_minutes + 1)).astype(np.int64),
            volume=self.volume,
            signed=self.signed,
            counts=False,
        )


def fallback_bars(
    candles: pd.DataFrame | None,
    row_size: float,
    first_minute: pd.Timestamp,
    close_ts: pd.Timestamp,
    traded_minutes: np.ndarray,
    rejected: dict[str, int],
) -> FallbackBars:
    """Candle-fallback bins for in-session minutes that have no tick (docs/semantics.md)."""
    none = np.zeros(0, dtype=np.int64)
    empty = FallbackBars(none, none, np.zeros(0), np.zeros(0))
    if candles is None or candles.empty:
        return empty
    ns = utc_ns(candles["ts"])
    minute = (ns - first_minute.value) // NS_PER_MINUTE
    in_session = (ns >= first_minute.value) & (ns < close_ts.value)
    use = np.flatnonzero(in_session & ~np.isin(minute, traded_minutes))
    if use.size == 0:
        return empty
    chosen = candles.iloc[use]
    ohlcv = [chosen[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]
    spread = spread_bars(ohlcv[0], ohlcv[1], ohlcv[2], ohlcv[3], ohlcv[4], row_size)
    count_rejected(rejected, "bad_candle", spread.rejected)
    if spread.bar.size == 0:
        return empty
    entry_minute = minute[use][spread.bar]
    order = np.lexsort((spread.bin, entry_minute))  # by minute; bins ascending within
    volume = spread.volume[order]
    return FallbackBars(
        minute=entry_minute[order],
        bins=spread.bin[order],
        volume=volume,
        signed=2.0 * spread.buy_volume[order] - volume,
    )
