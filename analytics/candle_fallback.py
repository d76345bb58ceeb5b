"""Candle fallback (docs/semantics.md): a bar without ticks becomes a profile that conserves volume.

The bar's volume is spread evenly over every row_size bin from its low to its high (the
original gave each of up to 11 levels a tenth, so 10–110 % of the volume appeared). The
buy/sell split is 60/40 by bar colour: bullish (close >= open: a doji
has the up colour) 60 % buy, bearish (close < open) 60 % sell. Fallback bins carry
trade_count 0: no print was seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.bins import bin_index, bin_price

BULLISH_BUY_SHARE = 0.60
BEARISH_BUY_SHARE = 0.40
# a bar spanning more bins than this is treated as bad input, not spread over millions
MAX_BINS_PER_BAR = 100_000


@dataclass(frozen=True)
class FallbackBins:
    """One entry per (bar, bin): the bar's position, the bin index and its volumes."""

    bar: np.ndarray  # int64 position of the bar in the input
    bin: np.ndarray  # int64 bin index
    volume: np.ndarray  # float64
    buy_volume: np.ndarray  # float64
    rejected: int  # bars skipped as malformed (NaN, high < low, negative volume, too wide)


def buy_share(open_: np.ndarray, close: np.ndarray) -> np.ndarray:
    """Buy share of each bar's volume by colour: 0.6 bullish (close >= open), else 0.4."""
    return np.where(close >= open_, BULLISH_BUY_SHARE, BEARISH_BUY_SHARE)


def spread_bars(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    row_size: float,
) -> FallbackBins:
    """Spread each bar's volume over its bins; the per-bar sum equals the bar's volume."""
    arrays = [np.asarray(a, dtype=np.float64) for a in (open_, high, low, close, volume)]
    open_, high, low, close, volume = arrays
    valid = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    valid &= (high >= low) & (volume >= 0) & (low > 0)
    lo_bin = np.where(valid, bin_index(np.where(valid, low, 1.0), row_size), 0)
    hi_bin = np.where(valid, bin_index(np.where(valid, high, 1.0), row_size), 0)
    count = hi_bin - lo_bin + 1
    valid &= count <= MAX_BINS_PER_BAR
    rejected = int((~valid).sum())
    ok = valid & (volume > 0)  # a zero-volume bar adds nothing and is not an error
    bars = np.flatnonzero(ok)
    count = count[bars]
    bar = np.repeat(bars, count)
    # offset of each entry inside its bar: 0..count-1
    starts = np.cumsum(count) - count
    within = np.arange(bar.shape[0], dtype=np.int64) - np.repeat(starts, count)
    bins = lo_bin[bar] + within
    share = volume[bars] / count
    entry_volume = share[np.searchsorted(bars, bar)] if bar.size else np.zeros(0)
    # the last bin takes the rounding remainder, so each bar's sum is its volume
    last = starts + count - 1
    entry_volume[last] = volume[bars] - share * (count - 1)
    entry_buy = entry_volume * buy_share(open_, close)[bar]
    return FallbackBins(bar, bins.astype(np.int64), entry_volume, entry_buy, rejected)


def candle_profile(candles: pd.DataFrame, row_size: float) -> pd.DataFrame:
    """volume_profile rows from candles (columns ts, open, high, low, close, volume).

    Returns bucket (the candle's minute), price_level, total_volume, buy_volume,
    sell_volume, trade_count (0), summed when several bars share a minute.
    """
    spread = spread_bars(
        candles["open"].to_numpy(),
        candles["high"].to_numpy(),
        candles["low"].to_numpy(),
        candles["close"].to_numpy(),
        candles["volume"].to_numpy(),
        row_size,
    )
    buckets = pd.to_datetime(candles["ts"], utc=True).dt.floor("min").to_numpy()
    frame = pd.DataFrame(
        {
            "bucket": buckets[spread.bar],
            "bin": spread.bin,
            "total_volume": spread.volume,
            "buy_volume": spread.buy_volume,
        }
    )
    frame = frame.groupby(["bucket", "bin"], as_index=False, sort=True).sum()
    frame["sell_volume"] = frame["total_volume"] - frame["buy_volume"]
    frame["trade_count"] = 0
    frame["price_level"] = bin_price(frame["bin"].to_numpy(), row_size)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame[
        ["bucket", "price_level", "total_volume", "buy_volume", "sell_volume", "trade_count"]
    ]
