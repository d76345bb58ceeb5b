"""Per-minute statistics of a session's prints (docs/semantics.md, "Bar statistics").

The print pass (``analytics.print_kernel``) keeps, per minute with prints and in the
order the prints were stored: the running delta's highest and lowest value after each
print, the prints' total size, the sizes and size-weighted prices as sums of differences
from the minute's first print (shifted sums: the differences are small, so their squares
keep their precision, where raw sums of p² would cancel), and the largest print. This
module turns those sums into the bar's statistics:

* ``max_delta`` / ``min_delta``: the running delta's extremes (null without prints);
* ``mean_trade_size`` / ``trade_size_sd``: the mean and population standard deviation of
  the minute's print sizes, the big-print reference (``analytics.big_prints``);
* the minute's own volume, VWAP and ``Σ v·(p − vwap)²``, which the session VWAP merges
  minute by minute (``analytics.session_vwap``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.print_kernel import BAR_SUMS

BAR_SUM_NAMES = (
    "max_delta",
    "min_delta",
    "volume",
    "price_sum",  # Σ v·(p − p0)
    "price_squares",  # Σ v·(p − p0)²
    "size_sum",  # Σ (v − v0)
    "size_squares",  # Σ (v − v0)²
    "first_price",  # p0
    "first_size",  # v0
    "largest",  # the largest print
)
assert len(BAR_SUM_NAMES) == BAR_SUMS

# the order_flow columns these statistics fill
BAR_COLUMNS: tuple[str, ...] = ("max_delta", "min_delta", "mean_trade_size", "trade_size_sd")


def empty_sums(n_minutes: int) -> np.ndarray:
    """Per-minute sums of minutes without prints (every later minute's are written over)."""
    return np.full((n_minutes, BAR_SUMS), np.nan)


@dataclass(frozen=True)
class BarStats:
    """Per minute of a window: trades (print count) and the statistics above; minutes
    without prints have trades 0, NaN statistics, volume 0 and price_m2 0."""

    trades: np.ndarray
    max_delta: np.ndarray
    min_delta: np.ndarray
    mean_size: np.ndarray
    size_sd: np.ndarray
    largest: np.ndarray
    volume: np.ndarray
    vwap: np.ndarray
    price_m2: np.ndarray

    @classmethod
    def from_sums(cls, sums: np.ndarray, trades: np.ndarray) -> BarStats:
        """From the print pass's sums (minutes × BAR_SUMS) and each minute's print count."""
        trades = np.asarray(trades, dtype=np.int64)
        has = trades > 0
        n = np.where(has, trades, 1).astype(np.float64)
        (high, low, volume, price_sum, price_squares, size_sum, size_squares, p0, w0, largest) = (
            np.where(has, sums[:, k], np.nan) for k in range(BAR_SUMS)
        )
        weight = np.where(has, volume, 1.0)
        # variances from shifted sums: never below 0 however the rounding falls
        size_m2 = np.maximum(size_squares - size_sum * size_sum / n, 0.0)
        price_m2 = np.maximum(price_squares - price_sum * price_sum / weight, 0.0)
        return cls(
            trades=trades,
            max_delta=high,
            min_delta=low,
            mean_size=w0 + size_sum / n,
            size_sd=np.sqrt(size_m2 / n),
            largest=largest,
            volume=np.where(has, volume, 0.0),
            vwap=p0 + price_sum / weight,
            price_m2=np.where(has, price_m2, 0.0),
        )

    @classmethod
    def stored(
        cls, trades: np.ndarray, high: np.ndarray, low: np.ndarray, mean: np.ndarray, sd: np.ndarray
    ) -> BarStats:
        """Minutes as order_flow stored them: what a continuing window needs of them (the
        size statistics; the VWAP comes from the stored session VWAP instead)."""
        nan = np.full(len(trades), np.nan)
        return cls(
            trades=np.asarray(trades, dtype=np.int64),
            max_delta=np.asarray(high, dtype=np.float64),
            min_delta=np.asarray(low, dtype=np.float64),
            mean_size=np.asarray(mean, dtype=np.float64),
            size_sd=np.asarray(sd, dtype=np.float64),
            largest=nan,
            volume=np.zeros(len(trades)),
            vwap=nan,
            price_m2=np.zeros(len(trades)),
        )

    def __len__(self) -> int:
        return int(self.trades.shape[0])

    def columns(self) -> dict[str, np.ndarray]:
        """The order_flow columns (BAR_COLUMNS)."""
        return {
            "max_delta": self.max_delta,
            "min_delta": self.min_delta,
            "mean_trade_size": self.mean_size,
            "trade_size_sd": self.size_sd,
        }
