"""The frames of a session from its minute × bin grid: the one shaping step.

Both ways to a session's grid end here: ``session_grid`` sums prints (and candle-fallback
bins) into it, ``session_resume`` lays stored cells and new ones onto it. The grid comes
in blocks of minutes (volume, buy volume and trade count per cell); per block this module
takes the volume-profile rows, the footprint imbalances, the per-minute sums, each traded
minute's own profile metrics (horizon ``1m``) and the running session profile's (horizon
``session``) with what their extreme rows say, the running sums carried from block to
block. After the last block come the order flow, the whole session's profile, and the
metrics frames (``analytics.metrics_frames``), which hold the node lists, the costliest
part to shape: a caller comparing with stored rows gets them only from the first minute
that changed, and asks for nodes only from the minute it expects that to be.

A block's independent reductions run on every core at once (``analytics.compiled.start``):
numpy releases the GIL in its loops and the compiled profile pass runs without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import partial

import numpy as np
import pandas as pd

from analytics.aggressor_side import AggressorState
from analytics.bins import bin_price
from analytics.compiled import start
from analytics.extremes import (
    ExtremesCarry,
    first_sides,
    initial_balance,
    minute_unfinished,
    unfinished,
)
from analytics.footprint_config import DEFAULT_CONFIG, FootprintConfig
from analytics.imbalances import cell_imbalances, empty_imbalances, imbalance_frame
from analytics.metrics_frames import (
    PROFILE_METRICS_COLUMNS,
    Extremes,
    Horizon,
    empty_metrics,
    horizon_from,
    metrics_frame,
)
from analytics.nodes import node_rule
from analytics.order_flow import ORDER_FLOW_COLUMNS, order_flow_frame
from analytics.profile import grid_metrics, running_metrics

__all__ = [
    "PROFILE_METRICS_COLUMNS",
    "SESSION_PROFILE_COLUMNS",
    "VOLUME_PROFILE_COLUMNS",
    "Block",
    "FrameLabels",
    "GridFrames",
    "GridShape",
    "Horizon",
    "empty_frames",
    "flow_and_session_profile",
    "grid_frames",
]

VOLUME_PROFILE_COLUMNS: tuple[str, ...] = (
    "bucket",
    "price_level",
    "total_volume",
    "buy_volume",
    "sell_volume",
    "trade_count",
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
class FrameLabels:
    """What the grid's rows are named and continued with: the bin width, the first
    minute's bucket, the session date, the value-area method and the session's cumulative
    delta before the grid's first minute."""

    row_size: float
    first_minute: pd.Timestamp
    session_date: date
    method: str
    cvd_total_before: float
    config: FootprintConfig = DEFAULT_CONFIG


@dataclass(frozen=True)
class Block:
    """Minutes [r0, r1) of the grid: per cell volume, buy volume and trade count."""

    r0: int
    volume: np.ndarray
    buy: np.ndarray
    count: np.ndarray


@dataclass(frozen=True)
class GridFrames:
    volume_profile: pd.DataFrame
    profile_metrics: pd.DataFrame
    order_flow: pd.DataFrame  # the bar statistics' columns NaN: they come from the prints
    session_profile: pd.DataFrame
    imbalances: pd.DataFrame = field(default_factory=empty_imbalances)
    # set when the caller compared with stored rows (see ``grid_frames``)
    first_changed: pd.Timestamp | None = None


# (order flow, every block's metrics) → the first minute whose rows differ from the stored
# ones, or None to shape every row
Compare = Callable[[pd.DataFrame, list[Horizon]], pd.Timestamp | None]


def grid_frames(
    blocks: Iterable[Block],
    shape: GridShape,
    labels: FrameLabels,
    compare: Compare | None = None,
    nodes_from: int = 0,
) -> GridFrames:
    """The session's frames from its grid, given as consecutive blocks of minutes.

    nodes_from: the first minute (grid row) whose profiles get nodes; a caller comparing
    with stored rows passes the minute it expects to be the first that changed.
    """
    first_bin, n_bins, n_minutes = shape.first_bin, shape.n_bins, shape.n_minutes
    row_size, first_minute, method = labels.row_size, labels.first_minute, labels.method
    config = labels.config
    rule = node_rule(config)
    run_volume = np.zeros(n_bins)
    run_buy = np.zeros(n_bins)
    run_count = np.zeros(n_bins, dtype=np.int64)
    run_lo, run_hi = n_bins, -1
    carry = ExtremesCarry.start(n_bins)
    minute_volume = np.zeros(n_minutes)
    minute_buy = np.zeros(n_minutes)
    minute_count = np.zeros(n_minutes, dtype=np.int64)
    vp_parts: list[pd.DataFrame] = []
    imbalance_parts: list[pd.DataFrame] = []
    horizons: list[Horizon] = []

    for block in blocks:
        r0, r1 = block.r0, block.r0 + block.volume.shape[0]
        volume, buy, count = block.volume, block.buy, block.count
        buckets = first_minute + pd.to_timedelta(np.arange(r0, r1), unit="min")
        traded = volume > 0
        lo, hi = _row_ranges(traded)
        active = np.flatnonzero(hi >= 0)
        # on the pool: sums, cells, each minute's own profile; here: the running profile
        sums = start(partial(_block_sums, volume, buy, count))
        # one flat scan (a 2-D nonzero costs several times more): cells with volume or
        # trades, and of them those with prints
        flat = np.flatnonzero(traded | (count > 0))
        printed = flat[count.reshape(-1)[flat] > 0]
        cells = start(partial(_cells_frame, block, flat, buckets, first_bin, row_size))
        found = start(
            partial(
                cell_imbalances,
                printed,
                volume,
                buy,
                n_bins,
                config.imbalance_ratio,
                config.imbalance_min_volume,
            )
        )
        own_from = int(np.searchsorted(active, nodes_from - r0))
        own = start(
            partial(grid_metrics, volume, active, lo[active], hi[active], method, rule, own_from)
        )
        before_lo, before_hi = run_lo, run_hi
        session, first, (run_volume, run_lo, run_hi) = running_metrics(
            volume, lo, hi, (run_volume, run_lo, run_hi), method, rule, nodes_from - r0
        )
        printed_buy = buy.reshape(-1)[printed]
        printed_sell = volume.reshape(-1)[printed] - printed_buy
        first_buy, first_sell = first_sides(printed, printed_buy, printed_sell, n_bins, r0, carry)
        ib_lo, ib_hi, ib_lo_after, ib_hi_after = initial_balance(lo, hi, r0, carry)
        carry = ExtremesCarry(ib_lo_after, ib_hi_after, first_buy, first_sell)
        block_sums = sums.result()
        minute_volume[r0:r1], minute_buy[r0:r1], minute_count[r0:r1] = block_sums[:3]
        run_buy += block_sums[3]
        run_count += block_sums[4]
        if (cell_rows := cells.result()) is not None:
            vp_parts.append(cell_rows)
        if (
            rows := imbalance_frame(found.result(), buckets, n_bins, first_bin, row_size)
        ) is not None:
            imbalance_parts.append(rows)
        if active.size:
            own_extremes = Extremes(
                minute_unfinished(volume, buy, count, active, hi[active]),
                minute_unfinished(volume, buy, count, active, lo[active]),
            )
            horizons.append(Horizon("1m", buckets[active], own.result(), own_extremes))
        if first < buckets.size:
            lo_run = np.minimum.accumulate(np.minimum(lo, before_lo))[first:]
            hi_run = np.maximum.accumulate(np.maximum(hi, before_hi))[first:]
            minutes = np.arange(r0 + first, r1)
            session_extremes = Extremes(
                unfinished(first_buy, first_sell, hi_run, minutes),
                unfinished(first_buy, first_sell, lo_run, minutes),
                (ib_lo[first:], ib_hi[first:], lo_run, hi_run),
            )
            horizons.append(Horizon("session", buckets[first:], session, session_extremes))

    order_flow, session_profile = flow_and_session_profile(
        first_minute,
        (minute_volume, minute_buy, minute_count),
        labels.cvd_total_before,
        (run_volume, run_buy, run_count, run_lo, run_hi),
        first_bin,
        row_size,
    )
    first_changed = compare(order_flow, horizons) if compare is not None else None
    metric_frames = []
    # horizon by horizon ("1m" before "session"), blocks in minute order: rows sorted
    for part in sorted(horizons, key=lambda h: h.horizon):
        # rows before the first changed minute stay as stored: no frame (nor node lists)
        k = int(part.buckets.searchsorted(first_changed)) if first_changed is not None else 0
        if k < len(part.buckets):
            metric_frames.append(
                metrics_frame(
                    horizon_from(part, k), first_bin, row_size, labels.session_date, method
                )
            )
    empty = empty_frames(AggressorState())
    return GridFrames(
        _concat(vp_parts) if vp_parts else empty.volume_profile,
        _concat(metric_frames) if metric_frames else empty.profile_metrics,
        order_flow,
        session_profile,
        _concat(imbalance_parts) if imbalance_parts else empty_imbalances(),
        first_changed,
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class EmptyFrames:
    volume_profile: pd.DataFrame
    profile_metrics: pd.DataFrame
    order_flow: pd.DataFrame
    session_profile: pd.DataFrame
    aggressor_state: AggressorState


def empty_frames(state: AggressorState) -> EmptyFrames:
    utc = pd.DatetimeTZDtype("ns", "UTC")
    vp = pd.DataFrame({c: pd.Series(dtype="float64") for c in VOLUME_PROFILE_COLUMNS})
    vp["bucket"] = pd.Series(dtype=utc)
    vp["trade_count"] = pd.Series(dtype="int64")
    pm = empty_metrics()
    of = pd.DataFrame({c: pd.Series(dtype="float64") for c in ORDER_FLOW_COLUMNS})
    of["bucket"] = pd.Series(dtype=utc)
    of["trade_count"] = pd.Series(dtype="int64")
    sp = pd.DataFrame({c: pd.Series(dtype="float64") for c in SESSION_PROFILE_COLUMNS})
    sp["trade_count"] = pd.Series(dtype="int64")
    return EmptyFrames(vp, pm, of, sp, state)


def flow_and_session_profile(
    first_minute: pd.Timestamp,
    minutes: tuple[np.ndarray, np.ndarray, np.ndarray],
    cvd_total_before: float,
    running: tuple[np.ndarray, np.ndarray, np.ndarray, int, int],
    first_bin: int,
    row_size: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The order flow of the grid's minutes (volume, buy, count per minute) and the whole
    session's profile from the running sums (volume, buy, count per bin, traded bin range)."""
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


def _row_ranges(traded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last traded column per row (rows without trades: n_cols, -1)."""
    n_cols = traded.shape[1]
    has = traded.any(axis=1)
    lo = np.where(has, np.argmax(traded, axis=1), n_cols)
    hi = np.where(has, n_cols - 1 - np.argmax(traded[:, ::-1], axis=1), -1)
    return lo.astype(np.int64), hi.astype(np.int64)


def _block_sums(volume: np.ndarray, buy: np.ndarray, count: np.ndarray) -> list[np.ndarray]:
    """Per-minute volume, buy, count sums, then per-bin buy and count sums of a block."""
    per_minute = [grid.sum(axis=1) for grid in (volume, buy, count)]
    return [*per_minute, buy.sum(axis=0), count.sum(axis=0)]


def _cells_frame(
    block: Block,
    flat: np.ndarray,
    buckets: pd.DatetimeIndex,
    first_bin: int,
    row_size: float,
) -> pd.DataFrame | None:
    """volume_profile rows of a block: its cells with volume or trades, ``flat`` (None
    when none)."""
    volume, buy, count = block.volume, block.buy, block.count
    if flat.size == 0:
        return None
    rows, cols = np.divmod(flat, volume.shape[1])
    cell_volume = volume.reshape(-1)[flat]
    cell_buy = buy.reshape(-1)[flat]
    return pd.DataFrame(
        {
            "bucket": buckets[rows],
            "price_level": bin_price(first_bin + cols, row_size),
            "total_volume": cell_volume,
            "buy_volume": cell_buy,
            "sell_volume": cell_volume - cell_buy,
            "trade_count": count.reshape(-1)[flat],
        },
        columns=list(VOLUME_PROFILE_COLUMNS),
    )
