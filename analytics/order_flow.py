"""Per-minute order flow (docs/semantics.md): delta, buy/sell pressure, CVD and never-reset CVD.

delta = buy − sell; pressure = the buy (sell) share of the minute's volume in %, 50/50 when
the minute is empty; ``cvd`` restarts at each session start of the symbol's market,
``cvd_total`` continues from the value before the window and never resets. The bar
statistics read from the prints themselves (``analytics.bar_stats``) complete the row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analytics.bar_stats import BAR_COLUMNS

ORDER_FLOW_COLUMNS: tuple[str, ...] = (
    "bucket",
    "delta",
    "cvd",
    "cvd_total",
    "buy_volume",
    "sell_volume",
    "buy_pressure",
    "sell_pressure",
    "trade_count",
    *BAR_COLUMNS,
)


def pressure(buy: np.ndarray, sell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Buy and sell pressure in % (they sum to 100; 50/50 when there is no volume)."""
    buy = np.asarray(buy, dtype=np.float64)
    total = buy + np.asarray(sell, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        buy_pct = np.where(total > 0, 100.0 * buy / np.where(total > 0, total, 1.0), 50.0)
    return buy_pct, 100.0 - buy_pct


def cumulative_delta(
    delta: np.ndarray, session_start: np.ndarray | None = None, cvd_before: float = 0.0
) -> np.ndarray:
    """Running sum of delta that restarts at rows where ``session_start`` is True.

    Rows before the first session start continue from ``cvd_before`` (a window that
    begins mid-session); a session start resets to that row's delta.
    """
    delta = np.asarray(delta, dtype=np.float64)
    running = np.cumsum(delta) + cvd_before
    if session_start is None or not np.any(session_start):
        return running
    starts = np.asarray(session_start, dtype=bool)
    # value of the running sum just before each row's latest session start
    before = np.where(starts, running - delta, np.nan)
    before = pd.Series(before).ffill().fillna(0.0).to_numpy()
    # rows before the first start keep the cvd_before offset: their ffill value is 0
    return running - before


def order_flow_frame(
    buckets: pd.DatetimeIndex | np.ndarray,
    buy_volume: np.ndarray,
    sell_volume: np.ndarray,
    trade_count: np.ndarray,
    *,
    session_start: np.ndarray | None = None,
    cvd_before: float = 0.0,
    cvd_total_before: float = 0.0,
    bars: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """order_flow rows (schema columns, no symbol_id) for consecutive minutes; bars: the
    bar statistics' columns (``BAR_COLUMNS``), NaN when not given."""
    buy = np.asarray(buy_volume, dtype=np.float64)
    sell = np.asarray(sell_volume, dtype=np.float64)
    delta = buy - sell
    buy_pct, sell_pct = pressure(buy, sell)
    return pd.DataFrame(
        {
            "bucket": pd.DatetimeIndex(buckets),
            "delta": delta,
            "cvd": cumulative_delta(delta, session_start, cvd_before),
            "cvd_total": np.cumsum(delta) + cvd_total_before,
            "buy_volume": buy,
            "sell_volume": sell,
            "buy_pressure": buy_pct,
            "sell_pressure": sell_pct,
            "trade_count": np.asarray(trade_count, dtype=np.int64),
            **{c: (bars or {}).get(c, np.full(delta.shape[0], np.nan)) for c in BAR_COLUMNS},
        },
        columns=list(ORDER_FLOW_COLUMNS),
    )
