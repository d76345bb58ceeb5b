"""One session as a minute × bin grid: aggregation, running profile and frames.

Prints are classified, binned on integer bins and summed into minute × bin cells by one
compiled pass (``analytics.print_kernel``; no sort, no float keys); candle-fallback entries
are reduced with ``np.bincount`` on the integer key ``minute * n_bins + bin``. The running
session profile is the cumulative sum of the grid over minutes, so the ``session``
horizon costs one ``cumsum`` rather than a recompute per minute. Wide sessions are
processed in blocks of minutes to bound memory; the running sums carry from block to block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import partial

import numpy as np
import pandas as pd

from analytics.aggressor import AggressorState
from analytics.bins import bin_price, row_decimals
from analytics.jit import start
from analytics.order_flow import ORDER_FLOW_COLUMNS, order_flow_frame
from analytics.print_kernel import fill_prints
from analytics.profile import BLOCK_CELLS, BlockMetrics, Nodes, block_metrics, node_dicts

NS_PER_MINUTE = 60_000_000_000
# minute × bin cells aggregated per block (three float64 grids of this size live at once)
GRID_CELLS = 1 << 21

VOLUME_PROFILE_COLUMNS: tuple[str, ...] = (
    "bucket",
    "price_level",
    "total_volume",
    "buy_volume",
    "sell_volume",
    "trade_count",
)
PROFILE_METRICS_COLUMNS: tuple[str, ...] = (
    "horizon",
    "bucket",
    "session_date",
    "poc",
    "vah",
    "val",
    "total_volume",
    "lvns",
    "hvns",
    "value_area_method",
)
SESSION_PROFILE_COLUMNS: tuple[str, ...] = (
    "price_level",
    "total_volume",
    "buy_volume",
    "sell_volume",
    "trade_count",
)


@dataclass(frozen=True)
class GridShape:
    """The session grid: minutes since the first minute × bins from ``first_bin``."""

    first_bin: int
    n_bins: int
    n_minutes: int


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

    side/bid/ask as ``analytics.aggressor.classify`` takes them (None when unknown);
    starts: n_minutes + 1 boundaries, minute m's prints are [starts[m], starts[m+1]).
    """

    price: np.ndarray
    size: np.ndarray
    side: np.ndarray | None
    bid: np.ndarray | None
    ask: np.ndarray | None
    starts: np.ndarray
    row_size: float

    @property
    def count(self) -> int:
        return int(self.price.shape[0])


def minute_starts(ns: np.ndarray, first_minute_ns: int, n_minutes: int) -> np.ndarray:
    """Index of the first entry of each minute (sorted times): n_minutes + 1 boundaries."""
    edges = first_minute_ns + NS_PER_MINUTE * np.arange(n_minutes + 1, dtype=np.int64)
    return np.searchsorted(ns, edges, side="left").astype(np.int64)


def fallback_cells(minute: np.ndarray, bins: np.ndarray, shape: GridShape) -> np.ndarray:
    return minute * shape.n_bins + (bins - shape.first_bin)


@dataclass(frozen=True)
class GridFrames:
    volume_profile: pd.DataFrame
    profile_metrics: pd.DataFrame
    order_flow: pd.DataFrame
    session_profile: pd.DataFrame
    aggressor_state: AggressorState


def empty_frames(state: AggressorState) -> GridFrames:
    utc = pd.DatetimeTZDtype("ns", "UTC")
    vp = pd.DataFrame({c: pd.Series(dtype="float64") for c in VOLUME_PROFILE_COLUMNS})
    vp["bucket"] = pd.Series(dtype=utc)
    vp["trade_count"] = pd.Series(dtype="int64")
    pm = pd.DataFrame({c: pd.Series(dtype="object") for c in PROFILE_METRICS_COLUMNS})
    pm["bucket"] = pd.Series(dtype=utc)
    for c in ("poc", "vah", "val", "total_volume"):
        pm[c] = pd.Series(dtype="float64")
    of = pd.DataFrame({c: pd.Series(dtype="float64") for c in ORDER_FLOW_COLUMNS})
    of["bucket"] = pd.Series(dtype=utc)
    of["trade_count"] = pd.Series(dtype="int64")
    sp = pd.DataFrame({c: pd.Series(dtype="float64") for c in SESSION_PROFILE_COLUMNS})
    sp["trade_count"] = pd.Series(dtype="int64")
    return GridFrames(vp, pm, of, sp, state)


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
    prints: Prints, r0: int, r1: int, shape: GridShape, state: AggressorState
) -> tuple[np.ndarray, np.ndarray, np.ndarray, AggressorState]:
    """(volume, buy, count) grids for minutes [r0, r1) of the prints, and the tick-rule state.

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
    )
    buy = signed
    buy += volume
    buy *= 0.5
    return volume, buy, count, AggressorState(last_price, last_sign)


def _node_lists(
    nodes: Nodes, n_rows: int, first_bin: int, row_size: float, decimals: int
) -> list[list[dict[str, float]]]:
    """Per-row lists of {"price", "low", "high"} (price = the run's centre)."""
    if nodes.row.size == 0:
        return [[] for _ in range(n_rows)]
    # nodes come in row order: each row's list is one slice of the flat list
    dicts = node_dicts(nodes, first_bin, row_size, decimals)
    ends = np.cumsum(np.bincount(nodes.row, minlength=n_rows)).tolist()
    return [dicts[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def _metrics_frame(
    horizon: str,
    buckets: pd.DatetimeIndex,
    metrics: BlockMetrics,
    first_bin: int,
    row_size: float,
    session_date: date,
    method: str,
) -> pd.DataFrame:
    decimals = row_decimals(row_size)
    n = len(buckets)
    return pd.DataFrame(
        {
            "horizon": horizon,
            "bucket": buckets,
            "session_date": [session_date] * n,
            "poc": bin_price(first_bin + metrics.poc, row_size),
            "vah": bin_price(first_bin + metrics.vah, row_size),
            "val": bin_price(first_bin + metrics.val, row_size),
            "total_volume": metrics.total,
            "lvns": _node_lists(metrics.lvns, n, first_bin, row_size, decimals),
            "hvns": _node_lists(metrics.hvns, n, first_bin, row_size, decimals),
            "value_area_method": method,
        },
        columns=list(PROFILE_METRICS_COLUMNS),
    )


def _horizon_frame(
    horizon: str,
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rows: np.ndarray,
    buckets: pd.DatetimeIndex,
    method: str,
    *,
    first_bin: int,
    row_size: float,
    date: date,
) -> pd.DataFrame | None:
    """profile_metrics rows of one horizon for the given grid rows (None when no rows)."""
    if rows.size == 0:
        return None
    metrics = block_metrics(volumes[rows], lo[rows], hi[rows], method)
    return _metrics_frame(horizon, buckets[rows], metrics, first_bin, row_size, date, method)


def _block_sums(volume: np.ndarray, buy: np.ndarray, count: np.ndarray) -> list[np.ndarray]:
    """Per-minute volume, buy, count sums, then per-bin buy and count sums of a block."""
    per_minute = [grid.sum(axis=1) for grid in (volume, buy, count)]
    return [*per_minute, buy.sum(axis=0), count.sum(axis=0)]


def _cells_frame(
    volume: np.ndarray,
    buy: np.ndarray,
    count: np.ndarray,
    traded: np.ndarray,
    buckets: pd.DatetimeIndex,
    first_bin: int,
    row_size: float,
) -> pd.DataFrame | None:
    """volume_profile rows of a block: its cells with volume or trades (None when none)."""
    # one flat scan (a 2-D nonzero costs several times more), rows and columns from it
    rows, cols = np.divmod(np.flatnonzero(traded | (count > 0)), volume.shape[1])
    if rows.size == 0:
        return None
    cell_volume = volume[rows, cols]
    cell_buy = buy[rows, cols]
    return pd.DataFrame(
        {
            "bucket": buckets[rows],
            "price_level": bin_price(first_bin + cols, row_size),
            "total_volume": cell_volume,
            "buy_volume": cell_buy,
            "sell_volume": cell_volume - cell_buy,
            "trade_count": count[rows, cols],
        },
        columns=list(VOLUME_PROFILE_COLUMNS),
    )


def _ranges_and_running(
    volume: np.ndarray, traded: np.ndarray, run_volume: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's traded column range, and the running volume through each row."""
    lo, hi = _row_ranges(traded)
    return lo, hi, running_volume(volume, run_volume)


def running_volume(volume: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Each row's running profile: the rows' cumulative sum, then the volume ``before``.

    The same additions as ``np.cumsum(volume, axis=0) + before``, in the same order, a row
    at a time: numpy's cumulative sum down the columns of a C-ordered grid strides across
    memory and costs about eight times more.
    """
    cumulative = np.empty_like(volume)
    if volume.shape[0]:
        cumulative[0] = volume[0]
    for r in range(1, volume.shape[0]):
        np.add(cumulative[r - 1], volume[r], out=cumulative[r])
    if before.any():  # adding zeros changes no bit: volumes are never negative
        cumulative += before
    return cumulative


def _row_ranges(traded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last traded column per row (rows without trades: n_cols, -1)."""
    n_cols = traded.shape[1]
    has = traded.any(axis=1)
    lo = np.where(has, np.argmax(traded, axis=1), n_cols)
    hi = np.where(has, n_cols - 1 - np.argmax(traded[:, ::-1], axis=1), -1)
    return lo.astype(np.int64), hi.astype(np.int64)


def build_frames(
    prints: Prints,
    fallback: Entries,
    shape: GridShape,
    *,
    row_size: float,
    first_minute: pd.Timestamp,
    session_date: date,
    method: str,
    cvd_total_before: float,
    aggressor_state: AggressorState,
) -> GridFrames:
    """Aggregate prints and fallback entries onto the session grid; shape the output frames.

    aggressor_state: the tick-rule state before the first print; the frames carry the
    state after the last one.
    """
    state = aggressor_state
    if prints.count == 0 and fallback.size == 0:
        return empty_frames(state)
    b0, n_bins, n_minutes = shape.first_bin, shape.n_bins, shape.n_minutes
    rows_per_block = max(1, GRID_CELLS // n_bins)

    run_volume = np.zeros(n_bins)
    run_buy = np.zeros(n_bins)
    run_count = np.zeros(n_bins, dtype=np.int64)
    run_lo, run_hi = n_bins, -1
    minute_volume = np.zeros(n_minutes)
    minute_buy = np.zeros(n_minutes)
    minute_count = np.zeros(n_minutes, dtype=np.int64)
    vp_parts: list[pd.DataFrame] = []
    pm_parts: list[pd.DataFrame] = []

    for r0 in range(0, n_minutes, rows_per_block):
        r1 = min(r0 + rows_per_block, n_minutes)
        volume, buy, count, state = _print_block(prints, r0, r1, shape, state)
        if fallback.size:
            f_volume, f_buy, _ = _grid_block(fallback, r0, r1, n_bins)
            volume += f_volume
            buy += f_buy
        buckets = first_minute + pd.to_timedelta(np.arange(r0, r1), unit="min")
        traded = volume > 0
        # the block's independent reductions run on every core at once (numpy releases the
        # GIL in its loops): sums and volume_profile rows on the pool while this thread
        # takes the row ranges and running profile, then the horizons' metrics
        sums = start(partial(_block_sums, volume, buy, count))
        cells = start(partial(_cells_frame, volume, buy, count, traded, buckets, b0, row_size))
        lo, hi, cumulative = _ranges_and_running(volume, traded, run_volume)
        # horizon 1m: each traded minute's own profile; horizon session: the running
        # profile since the open, through the end of each minute
        active = np.flatnonzero(hi >= 0)
        lo_run = np.minimum.accumulate(np.minimum(lo, run_lo))
        hi_run = np.maximum.accumulate(np.maximum(hi, run_hi))
        started = np.flatnonzero(hi_run >= 0)
        # the session rows go in block_metrics' own row chunks: its results depend on
        # the chunk a row is in
        make = partial(_horizon_frame, first_bin=b0, row_size=row_size, date=session_date)
        chunk = max(1, BLOCK_CELLS // n_bins)
        metrics = [
            start(partial(make, "session", cumulative, lo_run, hi_run, part, buckets, method))
            for part in (started[k : k + chunk] for k in range(0, started.size, chunk))
        ]
        frames = [make("1m", volume, lo, hi, active, buckets, method)]
        frames += [job.result() for job in metrics]
        block_sums = sums.result()
        minute_volume[r0:r1], minute_buy[r0:r1], minute_count[r0:r1] = block_sums[:3]
        if (cell_rows := cells.result()) is not None:
            vp_parts.append(cell_rows)
        pm_parts += [frame for frame in frames if frame is not None]
        run_volume = cumulative[-1].copy()
        run_buy += block_sums[3]
        run_count += block_sums[4]
        run_lo, run_hi = int(lo_run[-1]), int(hi_run[-1])

    order_flow, session_profile = flow_and_session_profile(
        first_minute,
        (minute_volume, minute_buy, minute_count),
        cvd_total_before,
        (run_volume, run_buy, run_count, run_lo, run_hi),
        b0,
        row_size,
    )
    if vp_parts:
        volume_profile = pd.concat(vp_parts, ignore_index=True)
    else:
        volume_profile = empty_frames(state).volume_profile
    if pm_parts:
        metrics = pd.concat(pm_parts, ignore_index=True)
        metrics = metrics.sort_values(["horizon", "bucket"], kind="stable", ignore_index=True)
    else:
        metrics = empty_frames(state).profile_metrics
    return GridFrames(volume_profile, metrics, order_flow, session_profile, state)


def flow_and_session_profile(
    first_minute: pd.Timestamp,
    minutes: tuple[np.ndarray, np.ndarray, np.ndarray],
    cvd_total_before: float,
    running: tuple[np.ndarray, np.ndarray, np.ndarray, int, int],
    first_bin: int,
    row_size: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The order flow of the grid's minutes (volume, buy, count per minute) and the whole
    session's profile from the running sums (volume, buy, count per bin, traded bin range);
    shared by the full computation and the incremental resume."""
    minute_volume, minute_buy, minute_count = minutes
    run_volume, run_buy, run_count, run_lo, run_hi = running
    n_minutes = minute_volume.shape[0]
    session_start = np.zeros(n_minutes, dtype=bool)
    session_start[0] = True  # the grid starts at the session open: cvd restarts here
    order_flow = order_flow_frame(
        first_minute + pd.to_timedelta(np.arange(n_minutes), unit="min"),
        minute_buy,
        minute_volume - minute_buy,
        minute_count,
        session_start=session_start,
        cvd_total_before=cvd_total_before,
    )
    span = slice(run_lo, run_hi + 1)
    session_profile = pd.DataFrame(
        {
            "price_level": bin_price(
                np.arange(first_bin + run_lo, first_bin + run_hi + 1), row_size
            ),
            "total_volume": run_volume[span],
            "buy_volume": run_buy[span],
            "sell_volume": run_volume[span] - run_buy[span],
            "trade_count": run_count[span],
        },
        columns=list(SESSION_PROFILE_COLUMNS),
    )
    return order_flow, session_profile
