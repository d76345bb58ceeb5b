"""The seam the Dagster assets (and replay, the engine, the CLI) call: one session in, rows out.

Every formula lives once, in the sibling modules (docs/semantics.md):
``bins`` (price → integer bin), ``aggressor_side`` (venue side / quote rule / tick rule),
``profile`` and ``nodes`` (POC, value area, LVN/HVN), ``order_flow`` (delta, pressure,
CVD), the footprint (``imbalances``, ``bar_stats``, ``session_vwap``, ``extremes``,
``big_prints``), ``candle_fallback`` (bars without ticks) and ``sessions`` (market
calendars). This module only wires them together and shapes the output as the storage
schema wants it, so a caller can insert each frame of ``SessionFrames`` directly after
adding ``symbol_id``.

Typical asset code::

    bounds = sessions.session_bounds(symbol.market, day)          # None → no session
    if bounds:
        frames = compute_session(ticks, symbol.row_size, *bounds,
                                 cvd_total_before=last_cvd_total)
        write(frames.volume_profile, frames.profile_metrics, frames.order_flow)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial

import numpy as np
import pandas as pd

from analytics.aggressor_side import SESSION_START, AggressorState
from analytics.bar_stats import BarStats
from analytics.big_prints import BIG_PRINT_COLUMNS, SizeHistory, WindowPrints, big_prints
from analytics.bins import bin_index
from analytics.footprint_config import DEFAULT_CONFIG, FootprintConfig
from analytics.grid_frames import (
    PROFILE_METRICS_COLUMNS,
    SESSION_PROFILE_COLUMNS,
    VOLUME_PROFILE_COLUMNS,
    FrameLabels,
    GridShape,
)
from analytics.imbalances import IMBALANCE_COLUMNS
from analytics.order_flow import ORDER_FLOW_COLUMNS
from analytics.print_kernel import PrintsFailedCheck
from analytics.profile import check_method
from analytics.session_grid import (
    NS_PER_MINUTE,
    Prints,
    build_frames,
    fallback_bars,
    minute_starts,
)
from analytics.session_vwap import (
    SESSION_OPEN,
    SESSION_VWAP_COLUMNS,
    VwapState,
    session_vwap_frame,
)
from analytics.tick_input import prepare_ticks

__all__ = [
    "BIG_PRINT_COLUMNS",
    "IMBALANCE_COLUMNS",
    "ORDER_FLOW_COLUMNS",
    "PROFILE_METRICS_COLUMNS",
    "SESSION_PROFILE_COLUMNS",
    "SESSION_VWAP_COLUMNS",
    "VOLUME_PROFILE_COLUMNS",
    "PrintHistory",
    "SessionFrames",
    "compute_session",
]

# a session profile wider than this is a configuration or input error, not a market
MAX_PROFILE_BINS = 2_000_000


@dataclass(frozen=True)
class PrintHistory:
    """What a window continuing a session needs of the session's earlier prints: the
    session VWAP after them and the print-size statistics of the minutes just before it
    (the big-print reference)."""

    vwap: VwapState = SESSION_OPEN
    sizes: SizeHistory = field(default_factory=SizeHistory.none)


@dataclass(frozen=True)
class SessionFrames:
    """Everything one session (or the part of it seen so far) produces.

    volume_profile  one row per (minute, bin) that traded: bucket (minute start, UTC),
                    price_level (bin price, rounded to the row size's decimals),
                    total_volume, buy_volume, sell_volume, trade_count.
    profile_metrics horizon '1m' (one row per minute that traded, its own profile) and
                    horizon 'session' (one row per minute from the first traded minute to
                    the last minute with data: the running profile since the session
                    open up to the end of that minute): horizon, bucket, session_date,
                    poc, vah, val, total_volume, lvns, hvns (lists of
                    {"price", "low", "high"}), value_area_method.
    order_flow      one row per minute from the session open to the last minute with
                    data (empty minutes: delta 0, pressure 50/50, CVD carried): bucket,
                    delta, cvd (reset at the session open), cvd_total
                    (cvd_total_before + cvd), buy_volume, sell_volume, buy_pressure,
                    sell_pressure (0–100), trade_count.
    session_profile the whole window's profile, every bin from the lowest to the highest
                    traded bin (empty bins included): price_level, total_volume,
                    buy_volume, sell_volume, trade_count — composite/naked-POC input.
    imbalances      footprint_imbalances rows: bucket, price, side, volume, opposite,
                    stack_len (analytics.imbalances).
    session_vwap    one row per minute from the window's first print on (from its first
                    minute when ``history`` carries prints in): bucket, session_date,
                    vwap, sd, volume (analytics.session_vwap).
    big_prints      big_prints rows: bucket, print_no, ts, price, size, side, threshold
                    (analytics.big_prints).
    bar_stats       the window's per-minute print statistics, to continue a later window.
    aggressor_state the tick-rule state after the last print, to continue a later window.
    first_changed   set by ``session_resume.resume_session`` only (see there).
    rejected        reason → number of input rows skipped (bad price/size/time, outside
                    the session); never silently lost.
    """

    volume_profile: pd.DataFrame
    profile_metrics: pd.DataFrame
    order_flow: pd.DataFrame
    session_profile: pd.DataFrame
    aggressor_state: AggressorState
    imbalances: pd.DataFrame
    session_vwap: pd.DataFrame
    big_prints: pd.DataFrame
    bar_stats: BarStats
    rejected: dict[str, int] = field(default_factory=dict)
    # a session resumed against its stored rows (analytics.session_resume): the first minute
    # whose order flow or metrics differ from them, profile_metrics then starting there;
    # None when every row is new
    first_changed: pd.Timestamp | None = None


def compute_session(
    ticks: pd.DataFrame,
    row_size: float,
    session_open: datetime | pd.Timestamp,
    session_close: datetime | pd.Timestamp,
    *,
    cvd_total_before: float = 0.0,
    method: str = "single",
    aggressor_state: AggressorState | None = None,
    candles: pd.DataFrame | None = None,
    config: FootprintConfig = DEFAULT_CONFIG,
    history: PrintHistory | None = None,
) -> SessionFrames:
    """Profiles, footprint and order flow of one symbol's session (docs/semantics.md).

    ticks: columns ts (UTC timestamps), price, size, side (+1 buy / -1 sell / NaN unknown),
    bid, ask (NaN when unknown); one symbol, in time order (sorted here when it is not).
    Only ticks with session_open <= ts < session_close are used; others, and ticks with a
    non-finite or non-positive price or size, are counted in ``rejected`` and skipped.
    row_size: the symbol's price bin. method: value-area method, "single" (default) or
    "dual". cvd_total_before: the never-resetting CVD before this session.
    aggressor_state: tick-rule state carried in from an earlier window of the same session
    (None at the session start: the first print without a reference is split half/half).
    candles: optional candles_1m rows (ts, open, high, low, close, volume) used, per
    minute, only for minutes without any tick (candle fallback, volume conserved).
    config: the symbol's imbalance, big-print and node parameters. history: the session's
    VWAP and recent print sizes before a window that starts after the open.
    """
    check_method(method)
    open_ts, close_ts = _utc(session_open), _utc(session_close)
    run = partial(
        _session,
        ticks,
        row_size,
        open_ts,
        close_ts,
        cvd_total_before=cvd_total_before,
        method=method,
        aggressor_state=aggressor_state,
        candles=candles,
        config=config,
        history=history or PrintHistory(),
    )
    try:
        return run(trusting=True)
    except PrintsFailedCheck:
        # times out of order or a bad size: check every print first, counting the bad ones
        return run(trusting=False)


def _session(
    ticks: pd.DataFrame,
    row_size: float,
    open_ts: pd.Timestamp,
    close_ts: pd.Timestamp,
    *,
    cvd_total_before: float,
    method: str,
    aggressor_state: AggressorState | None,
    candles: pd.DataFrame | None,
    config: FootprintConfig,
    history: PrintHistory,
    trusting: bool,
) -> SessionFrames:
    rejected: dict[str, int] = {}
    arrays = prepare_ticks(ticks, open_ts.value, close_ts.value, rejected, trusting=trusting)
    first_minute = open_ts.floor("min")
    session_minutes = max(0, -(-(close_ts.value - first_minute.value) // NS_PER_MINUTE))
    # per-minute boundaries of the (sorted) ticks instead of a per-tick minute array
    tick_starts = minute_starts(arrays.ns, first_minute.value, session_minutes)
    traded_minutes = np.flatnonzero(np.diff(tick_starts))
    bars = fallback_bars(candles, row_size, first_minute, close_ts, traded_minutes, rejected)

    if arrays.price.size == 0 and bars.minute.size == 0:
        shape = GridShape(first_bin=0, n_bins=1, n_minutes=0)
    else:
        bin_ranges = [int(bars.bins.min()), int(bars.bins.max())] if bars.minute.size else []
        if arrays.price.size:
            # rounding is monotone: the extreme prices give the extreme bins
            bin_ranges += bin_index(arrays.extremes(), row_size).tolist()
        last_minute = max(
            int(traded_minutes[-1]) if traded_minutes.size else -1,
            int(bars.minute[-1]) if bars.minute.size else -1,
        )
        first_bin = min(bin_ranges)
        shape = GridShape(first_bin, max(bin_ranges) - first_bin + 1, last_minute + 1)
        try:
            check_profile_bins(shape, row_size)
        except ValueError:
            if arrays.unchecked:  # prints out of order may have widened it: check them first
                raise PrintsFailedCheck from None
            raise
    tick_starts = tick_starts[: shape.n_minutes + 1]
    if arrays.unchecked and (tick_starts[0], tick_starts[-1]) != (0, arrays.ns.size):
        raise PrintsFailedCheck  # the minutes do not cover every print: not in time order
    # the prints are classified (venue side / quote / tick rule) and binned chunk by chunk
    prints = Prints(
        arrays.price,
        arrays.size,
        arrays.side,
        arrays.bid,
        arrays.ask,
        tick_starts,
        row_size,
        ns=arrays.ns if arrays.unchecked else None,
    )
    session_date = session_date_of(open_ts)
    state_before = aggressor_state or SESSION_START
    grid, state_after, sums = build_frames(
        prints,
        bars.entries(shape),
        shape,
        FrameLabels(row_size, first_minute, session_date, method, cvd_total_before, config),
        state_before,
    )
    bar_stats = BarStats.from_sums(sums, grid.order_flow["trade_count"].to_numpy())
    for column, values in bar_stats.columns().items():
        grid.order_flow[column] = values
    vwap, _ = session_vwap_frame(first_minute, bar_stats, session_date, history.vwap)
    window = WindowPrints(
        arrays.ns, arrays.price, arrays.size, arrays.side, arrays.bid, arrays.ask, tick_starts
    )
    return SessionFrames(
        volume_profile=grid.volume_profile,
        profile_metrics=grid.profile_metrics,
        order_flow=grid.order_flow,
        session_profile=grid.session_profile,
        aggressor_state=state_after,
        imbalances=grid.imbalances,
        session_vwap=vwap,
        big_prints=big_prints(window, bar_stats, history.sizes, config, first_minute, state_before),
        bar_stats=bar_stats,
        rejected=rejected,
    )


def check_profile_bins(shape: GridShape, row_size: float) -> None:
    """Raise ValueError when a session grid is wider than MAX_PROFILE_BINS."""
    if shape.n_bins > MAX_PROFILE_BINS:
        last_bin = shape.first_bin + shape.n_bins - 1
        low, high = (round(b * row_size, 10) for b in (shape.first_bin, last_bin))
        raise ValueError(
            f"a profile from {low} to {high} in rows of {row_size} needs {shape.n_bins:,} "
            f"bins (limit {MAX_PROFILE_BINS:,}): the symbol's row_size is too small for "
            "its price range, or absurd prints reached the analytics"
        )


def session_date_of(session_open: datetime | pd.Timestamp) -> date:
    """The session's date: every supported session lies inside one UTC day (docs/semantics.md)."""
    stamp = pd.Timestamp(session_open)
    return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp).date()


def _utc(moment: datetime | pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
