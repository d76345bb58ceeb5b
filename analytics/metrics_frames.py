"""``profile_metrics`` rows from a block's metrics: the shaping step of ``grid_frames``.

A block's profiles come in two horizons: each traded minute's own profile (``1m``) and
the running session profile through each minute (``session``). Their numbers (POC, value
area, total, nodes) come from ``analytics.profile``; what the extreme rows say
(unfinished auctions, and for the session the initial balance) from
``analytics.extremes``. Node lists are the costliest part to shape, so a caller comparing
with stored rows shapes only the rows from the first minute that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np
import pandas as pd

from analytics.bins import bin_price, row_decimals
from analytics.nodes import Nodes
from analytics.profile import BlockMetrics, node_dicts

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
    "unfinished_high",
    "unfinished_low",
    "ib_high",
    "ib_low",
    "ib_extension_up",
    "ib_extension_down",
)
EXTREME_COLUMNS = PROFILE_METRICS_COLUMNS[10:]


@dataclass(frozen=True)
class Extremes:
    """Per profile row: unfinished high/low, and for the session horizon the initial
    balance's columns and the session range's (None for a minute's own profile)."""

    unfinished_high: np.ndarray
    unfinished_low: np.ndarray
    ib: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = (
        None  # lo, hi, lo_run, hi_run
    )

    def rows_from(self, k: int) -> Extremes:
        if self.ib is None:
            return Extremes(self.unfinished_high[k:], self.unfinished_low[k:])
        return Extremes(
            self.unfinished_high[k:],
            self.unfinished_low[k:],
            (self.ib[0][k:], self.ib[1][k:], self.ib[2][k:], self.ib[3][k:]),
        )


@dataclass(frozen=True)
class Horizon:
    """One horizon's metrics of one block, before they are shaped into rows."""

    horizon: str
    buckets: pd.DatetimeIndex
    metrics: BlockMetrics
    extremes: Extremes


def rows_from(metrics: BlockMetrics, k: int) -> BlockMetrics:
    """Rows k.. of a block's metrics (node rows renumbered from k)."""
    if k == 0:
        return metrics
    return BlockMetrics(
        total=metrics.total[k:],
        poc=metrics.poc[k:],
        val=metrics.val[k:],
        vah=metrics.vah[k:],
        lvns=metrics.lvns.select(metrics.lvns.row >= k, k),
        hvns=metrics.hvns.select(metrics.hvns.row >= k, k),
    )


def horizon_from(part: Horizon, k: int) -> Horizon:
    if k == 0:
        return part
    return replace(
        part,
        buckets=part.buckets[k:],
        metrics=rows_from(part.metrics, k),
        extremes=part.extremes.rows_from(k),
    )


def node_lists(
    nodes: Nodes, n_rows: int, first_bin: int, row_size: float, decimals: int
) -> list[list[dict[str, float]]]:
    """Per-row lists of {"price", "low", "high", "prominence"}."""
    if nodes.row.size == 0:
        return [[] for _ in range(n_rows)]
    # nodes come in row order: each row's list is one slice of the flat list
    dicts = node_dicts(nodes, first_bin, row_size, decimals)
    ends = np.cumsum(np.bincount(nodes.row, minlength=n_rows)).tolist()
    return [dicts[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def metrics_frame(
    part: Horizon, first_bin: int, row_size: float, session_date: date, method: str
) -> pd.DataFrame:
    decimals = row_decimals(row_size)
    metrics, n = part.metrics, len(part.buckets)
    columns: dict[str, object] = {
        "horizon": part.horizon,
        "bucket": part.buckets,
        "session_date": [session_date] * n,
        "poc": bin_price(first_bin + metrics.poc, row_size),
        "vah": bin_price(first_bin + metrics.vah, row_size),
        "val": bin_price(first_bin + metrics.val, row_size),
        "total_volume": metrics.total,
        "lvns": node_lists(metrics.lvns, n, first_bin, row_size, decimals),
        "hvns": node_lists(metrics.hvns, n, first_bin, row_size, decimals),
        "value_area_method": method,
        "unfinished_high": part.extremes.unfinished_high,
        "unfinished_low": part.extremes.unfinished_low,
    }
    if part.extremes.ib is None:
        for name in EXTREME_COLUMNS[2:]:
            columns[name] = np.full(n, np.nan)
    else:
        ib_lo, ib_hi, lo_run, hi_run = part.extremes.ib
        # no print in the session's first hour (a 24/7 market quiet after midnight): none
        has = ib_hi >= 0
        columns["ib_high"] = np.where(has, bin_price(first_bin + ib_hi, row_size), np.nan)
        columns["ib_low"] = np.where(has, bin_price(first_bin + ib_lo, row_size), np.nan)
        up, down = np.maximum(hi_run - ib_hi, 0), np.maximum(ib_lo - lo_run, 0)
        columns["ib_extension_up"] = np.where(has, bin_price(up, row_size), np.nan)
        columns["ib_extension_down"] = np.where(has, bin_price(down, row_size), np.nan)
    return pd.DataFrame(columns, columns=list(PROFILE_METRICS_COLUMNS))


def empty_metrics() -> pd.DataFrame:
    utc = pd.DatetimeTZDtype("ns", "UTC")
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in PROFILE_METRICS_COLUMNS})
    frame["bucket"] = pd.Series(dtype=utc)
    for c in ("poc", "vah", "val", "total_volume", *EXTREME_COLUMNS[2:]):
        frame[c] = pd.Series(dtype="float64")
    for c in EXTREME_COLUMNS[:2]:
        frame[c] = pd.Series(dtype="bool")
    return frame
