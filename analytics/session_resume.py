"""Continue a session from its stored footprint instead of re-reading every tick of the day.

``resume_session`` returns the frames of ``compute_session`` over every tick of the session,
bit for bit, from two inputs only: the minute × bin cells already computed for the minutes
before a resume minute (the session's ``volume_profile`` rows, read back exactly) and the
ticks from that minute on, classified from the tick-rule state at the resume point.

Why the whole session's frames and not only the new minutes: a minute's buy and sell
volume are numpy sums over its row of the session grid, whose float rounding depends on
the grid's width, so a later minute that widens the range can move an earlier minute's
sums by an ulp. Recomputing the frames from the cells costs a few milliseconds per symbol
(no tick is read again), and the caller writes only the rows that changed
(docs/profiles-incremental.md). The cells are laid onto the grid here and shaped by the
same code as a full computation (``analytics.grid_frames``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import partial

import numpy as np
import pandas as pd

from analytics.aggressor_side import AggressorState
from analytics.bar_stats import BAR_COLUMNS, BarStats
from analytics.big_prints import SizeHistory
from analytics.bins import bin_index, bin_price
from analytics.footprint_config import DEFAULT_CONFIG, FootprintConfig
from analytics.grid_frames import Block, FrameLabels, GridFrames, GridShape, Horizon, grid_frames
from analytics.order_flow import ORDER_FLOW_COLUMNS
from analytics.pipeline import (
    PrintHistory,
    SessionFrames,
    check_profile_bins,
    compute_session,
    session_date_of,
)
from analytics.session_grid import GRID_CELLS, NS_PER_MINUTE
from analytics.session_vwap import SESSION_OPEN, VwapState

__all__ = ["Footprint", "StoredRows", "first_changed", "resume_session", "resume_state"]


@dataclass(frozen=True)
class Footprint:
    """Minute × bin cells of one session, ordered by minute then bin.

    minute: minutes since the session's first minute; bin: the integer price bin.
    """

    minute: np.ndarray  # int64
    bin: np.ndarray  # int64
    volume: np.ndarray  # float64
    buy: np.ndarray  # float64
    count: np.ndarray  # int64

    @property
    def size(self) -> int:
        return int(self.minute.shape[0])

    def before(self, minute: int) -> Footprint:
        """The cells of the minutes before ``minute``."""
        end = int(np.searchsorted(self.minute, minute, side="left"))
        return Footprint(*(a[:end] for a in self._arrays()))

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.minute, self.bin, self.volume, self.buy, self.count)

    @classmethod
    def from_rows(
        cls, rows: pd.DataFrame, row_size: float, first_minute: pd.Timestamp
    ) -> Footprint:
        """Cells from ``volume_profile``-shaped rows (bucket, price_level, total_volume,
        buy_volume, trade_count), in any order."""
        if rows.empty:
            none = np.zeros(0, dtype=np.int64)
            return cls(none, none, np.zeros(0), np.zeros(0), none)
        buckets = pd.DatetimeIndex(pd.to_datetime(rows["bucket"], utc=True)).as_unit("ns").asi8
        minute = (buckets - first_minute.value) // NS_PER_MINUTE
        bins = bin_index(rows["price_level"].to_numpy(np.float64), row_size)
        order = np.lexsort((bins, minute))
        return cls(
            minute[order].astype(np.int64),
            bins[order].astype(np.int64),
            rows["total_volume"].to_numpy(np.float64)[order],
            rows["buy_volume"].to_numpy(np.float64)[order],
            rows["trade_count"].to_numpy(np.int64)[order],
        )

    @classmethod
    def concat(cls, first: Footprint, second: Footprint) -> Footprint:
        """``first`` then ``second`` (whose minutes all come later)."""
        return cls(
            *(
                np.concatenate([a, b])
                for a, b in zip(first._arrays(), second._arrays(), strict=True)
            )
        )


def resume_session(
    ticks: pd.DataFrame,
    row_size: float,
    session_open: datetime | pd.Timestamp,
    session_close: datetime | pd.Timestamp,
    *,
    resume_at: datetime | pd.Timestamp,
    footprint: Footprint,
    aggressor_state: AggressorState,
    cvd_total_before: float = 0.0,
    method: str = "single",
    candles: pd.DataFrame | None = None,
    stored: StoredRows | None = None,
    config: FootprintConfig = DEFAULT_CONFIG,
) -> SessionFrames:
    """``compute_session`` of the whole session from stored cells plus the newer ticks.

    resume_at: the first minute to compute from ticks (floored to its minute); footprint:
    the session's stored cells (only those before ``resume_at`` are used); ticks and
    candles: the session's rows from ``resume_at`` on; aggressor_state: the tick-rule state
    after the last valid print before ``resume_at`` (``SESSION_START`` when none).
    The frames cover the whole session, except ``session_vwap`` and ``big_prints``, which
    start at the resume minute; ``rejected`` counts only the ticks given.
    stored: the rows already stored before ``resume_at`` (needed when cells are): the
    order flow with its bar statistics, the metrics and the session VWAP there;
    ``first_changed`` is the first minute whose rows differ (at most the resume minute) and
    ``profile_metrics`` holds only the rows from there on (node lists cost the most).
    """
    open_ts = pd.Timestamp(session_open).tz_convert("UTC")
    first_minute = open_ts.floor("min")
    resume = max(pd.Timestamp(resume_at).tz_convert("UTC").floor("min"), first_minute)
    resume_minute = (resume.value - first_minute.value) // NS_PER_MINUTE
    old = footprint.before(resume_minute)
    if old.size == 0:
        # nothing stored before the resume point: the given ticks are the session
        return compute_session(
            ticks,
            row_size,
            open_ts,
            session_close,
            cvd_total_before=cvd_total_before,
            method=method,
            aggressor_state=aggressor_state,
            candles=candles,
            config=config,
        )
    if stored is None:
        raise ValueError("resuming after stored cells needs the rows stored with them")
    before = stored.bar_stats()
    tail = compute_session(
        ticks,
        row_size,
        resume,
        session_close,
        method=method,
        aggressor_state=aggressor_state,
        candles=candles,
        config=config,
        history=PrintHistory(stored.vwap, SizeHistory.of(before, config.big_print_minutes)),
    )
    cells = Footprint.concat(old, Footprint.from_rows(tail.volume_profile, row_size, first_minute))
    labels = FrameLabels(
        row_size, first_minute, session_date_of(open_ts), method, cvd_total_before, config
    )
    compare = partial(_first_changed, stored=stored, resume=resume, row_size=row_size)
    grid = _frames_from_cells(cells, labels, compare, resume_minute)
    if grid.first_changed is not None and grid.first_changed < resume:
        # an earlier row moved by an ulp (docs/profiles-incremental.md): its nodes are
        # shaped too, so shape again with nodes from there (rare)
        changed = (grid.first_changed.value - first_minute.value) // NS_PER_MINUTE
        grid = _frames_from_cells(cells, labels, compare, changed)
    bars = _concat_bars(before, tail.bar_stats, len(grid.order_flow))
    order_flow = grid.order_flow
    for column, values in bars.columns().items():
        order_flow[column] = values
    return SessionFrames(
        volume_profile=grid.volume_profile,
        profile_metrics=grid.profile_metrics,
        order_flow=order_flow,
        session_profile=grid.session_profile,
        aggressor_state=tail.aggressor_state,
        imbalances=grid.imbalances,
        session_vwap=tail.session_vwap,
        big_prints=tail.big_prints,
        bar_stats=bars,
        rejected=tail.rejected,
        first_changed=grid.first_changed,
    )


def _concat_bars(before: BarStats, after: BarStats, n_minutes: int) -> BarStats:
    """The stored minutes' statistics, then the new ones, for a grid of n_minutes (the new
    window's grid ends where the session's data does)."""
    joined = {
        f.name: np.concatenate([getattr(before, f.name), getattr(after, f.name)])[:n_minutes]
        for f in fields(BarStats)
    }
    return BarStats(**joined)


def _frames_from_cells(
    cells: Footprint,
    labels: FrameLabels,
    compare: Callable[..., pd.Timestamp] | None,
    nodes_from: int = 0,
) -> GridFrames:
    """The frames ``compute_session`` shapes from the same grid.

    The grid's shape is the one ``compute_session`` derives from the ticks: every bin and
    minute that holds volume or a trade is a stored cell, so the cells' extremes are the
    ticks' extremes.
    """
    first_bin = int(cells.bin.min())
    shape = GridShape(first_bin, int(cells.bin.max()) - first_bin + 1, int(cells.minute[-1]) + 1)
    check_profile_bins(shape, labels.row_size)
    return grid_frames(
        _cell_blocks(cells, shape),
        shape,
        labels,
        None if compare is None else partial(compare, first_bin=first_bin),
        nodes_from,
    )


def _cell_blocks(cells: Footprint, shape: GridShape) -> Iterator[Block]:
    """The cells laid onto the grid, in the blocks of minutes ``compute_session`` uses."""
    n_bins = shape.n_bins
    rows_per_block = max(1, GRID_CELLS // n_bins)
    for r0 in range(0, shape.n_minutes, rows_per_block):
        r1 = min(r0 + rows_per_block, shape.n_minutes)
        volume = np.zeros((r1 - r0, n_bins))
        buy = np.zeros((r1 - r0, n_bins))
        count = np.zeros((r1 - r0, n_bins), dtype=np.int64)
        c0, c1 = np.searchsorted(cells.minute, [r0, r1]).tolist()
        at = (cells.minute[c0:c1] - r0, cells.bin[c0:c1] - shape.first_bin)
        volume[at] = cells.volume[c0:c1]
        buy[at] = cells.buy[c0:c1]
        count[at] = cells.count[c0:c1]
        yield Block(r0, volume, buy, count)


# --- rows already stored ------------------------------------------------------------------

# what is compared with the stored rows: the order flow's sums of the grid (its bar
# statistics come from the prints and are carried over as stored); of the metrics the
# numbers that carry a float sum (nodes and extremes follow from the same cells and total)
FLOW_COMPARED = tuple(c for c in ORDER_FLOW_COLUMNS if c != "bucket" and c not in BAR_COLUMNS)
METRICS_COMPARED = ("poc", "vah", "val", "total_volume")


@dataclass(frozen=True)
class StoredRows:
    """Rows stored for the minutes before the resume minute, each sorted by its key.

    order_flow: bucket, FLOW_COMPARED and BAR_COLUMNS, one row per minute from the
    session's first; metrics: horizon ('1m', 'session'), bucket and METRICS_COMPARED;
    vwap: the session VWAP through the minute before the resume minute.
    """

    order_flow: pd.DataFrame
    metrics: pd.DataFrame
    vwap: VwapState = SESSION_OPEN

    def bar_stats(self) -> BarStats:
        flow = self.order_flow
        return BarStats.stored(
            flow["trade_count"].to_numpy(),
            *(flow[c].to_numpy(np.float64) for c in BAR_COLUMNS),
        )


def _first_changed(
    order_flow: pd.DataFrame,
    parts: list[Horizon],
    *,
    stored: StoredRows,
    resume: pd.Timestamp,
    row_size: float,
    first_bin: int,
) -> pd.Timestamp:
    """The resume minute, or the first earlier minute whose row moved (by an ulp)."""
    numbers = [
        pd.DataFrame(
            {
                "horizon": part.horizon,
                "bucket": part.buckets,
                "poc": bin_price(first_bin + part.metrics.poc, row_size),
                "vah": bin_price(first_bin + part.metrics.vah, row_size),
                "val": bin_price(first_bin + part.metrics.val, row_size),
                "total_volume": part.metrics.total,
            }
        )
        for part in parts
    ]
    fresh = pd.concat(numbers, ignore_index=True) if numbers else stored.metrics.iloc[:0]
    fresh = fresh[fresh["bucket"] < resume].sort_values(
        ["horizon", "bucket"], kind="stable", ignore_index=True
    )
    changed = [
        first_changed(
            order_flow[order_flow["bucket"] < resume], stored.order_flow, ["bucket"], FLOW_COMPARED
        ),
        first_changed(fresh, stored.metrics, ["horizon", "bucket"], METRICS_COMPARED),
    ]
    return min([resume, *(c for c in changed if c is not None)])


def _key_arrays(frame: pd.DataFrame, keys: Sequence[str]) -> list[np.ndarray]:
    return [
        pd.DatetimeIndex(frame[k]).as_unit("ns").asi8 if k == "bucket" else frame[k].to_numpy()
        for k in keys
    ]


def first_changed(
    fresh: pd.DataFrame, stored: pd.DataFrame, keys: list[str], compared: Sequence[str]
) -> pd.Timestamp | None:
    """The earliest bucket where fresh and stored rows differ (a row on one side only, or a
    compared value not bit-equal); None when they agree. Both sorted by `keys`."""
    if len(fresh) == len(stored) and all(
        np.array_equal(a, b)
        for a, b in zip(_key_arrays(fresh, keys), _key_arrays(stored, keys), strict=True)
    ):
        # the usual case, the same rows: compare column by column without a join
        changed = np.zeros(len(fresh), dtype=bool)
        for column in compared:
            changed |= fresh[column].to_numpy() != stored[column].to_numpy()
        hits = np.flatnonzero(changed)
        return pd.Timestamp(fresh["bucket"].iloc[hits].min()) if hits.size else None
    merged = fresh.loc[:, [*keys, *compared]].merge(
        stored.loc[:, [*keys, *compared]],
        on=keys,
        how="outer",
        suffixes=("", "_stored"),
        indicator=True,
    )
    changed = (merged["_merge"] != "both").to_numpy()
    for column in compared:
        changed |= merged[column].to_numpy() != merged[f"{column}_stored"].to_numpy()
    return pd.Timestamp(merged.loc[changed, "bucket"].min()) if changed.any() else None


def resume_state(last_price: float | None, earlier_price: float | None) -> AggressorState:
    """The tick-rule state after a session's prints, from two prices.

    last_price: the last valid print's price (None: no print yet, the session start);
    earlier_price: the price of the latest print before it at a different price (None: the
    price never changed). Zero ticks continue the last change, so these two decide it.
    """
    if last_price is None:
        return AggressorState()
    if earlier_price is None:
        return AggressorState(float(last_price), 0)
    return AggressorState(float(last_price), 1 if last_price > earlier_price else -1)
