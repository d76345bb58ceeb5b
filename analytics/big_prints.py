"""Big prints (docs/semantics.md): prints far larger than the symbol's recent print sizes.

A print of minute m is big when its size is at least k standard deviations above the
mean print size of the previous ``big_print_minutes`` minutes of the session (its own
minute excluded, so one threshold holds through each minute and is known at its open),
and above that mean. The reference needs ``MIN_REFERENCE_PRINTS`` prints; before that
(the session's first minutes, a quiet market) no print is judged.

The reference is merged from each minute's count, mean size and standard deviation (the
``order_flow`` columns ``trade_count``, ``mean_trade_size``, ``trade_size_sd``), oldest
minute first, by the pairwise update of Chan, Golub and LeVeque; a run resumed from
stored minutes therefore sets the same thresholds as one that read every print.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.aggressor_side import AggressorState, classify, state_after
from analytics.bar_stats import BarStats
from analytics.footprint_config import FootprintConfig

MIN_REFERENCE_PRINTS = 20
BIG_PRINT_COLUMNS: tuple[str, ...] = (
    "bucket",
    "print_no",
    "ts",
    "price",
    "size",
    "side",
    "threshold",
)
SIDE_NAMES = {1: "buy", -1: "sell", 0: None}


@dataclass(frozen=True)
class SizeHistory:
    """Print-size statistics of the minutes just before a window (oldest first, one
    entry per minute, quiet minutes with 0 trades): what its thresholds look back on."""

    trades: np.ndarray
    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def none(cls) -> SizeHistory:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))

    @classmethod
    def of(cls, bars: BarStats, minutes: int) -> SizeHistory:
        """The last ``minutes`` minutes of ``bars``."""
        tail = slice(max(0, len(bars) - minutes), len(bars))
        return cls(bars.trades[tail], bars.mean_size[tail], bars.size_sd[tail])


def thresholds(
    trades: np.ndarray, mean: np.ndarray, sd: np.ndarray, minutes: int, k: float
) -> tuple[np.ndarray, np.ndarray]:
    """(threshold, reference mean) per minute from the ``minutes`` minutes before it in
    these arrays; NaN where the reference holds fewer than MIN_REFERENCE_PRINTS prints."""
    n = trades.shape[0]
    count = np.zeros(n)
    ref_mean = np.zeros(n)
    squares = np.zeros(n)
    index = np.arange(n)
    for back in range(minutes, 0, -1):  # oldest first: a fixed order of merges
        j = index - back
        inside = j >= 0
        j = np.where(inside, j, 0)
        n_j = np.where(inside, trades[j], 0).astype(np.float64)
        use = n_j > 0
        m_j = np.where(use, mean[j], 0.0)
        sd_j = np.where(use, sd[j], 0.0)
        m2_j = sd_j * sd_j * n_j
        merged = count + n_j
        safe = np.where(use, merged, 1.0)
        delta = m_j - ref_mean
        first = use & (count == 0)
        more = use & (count > 0)
        ref_mean = np.where(first, m_j, np.where(more, ref_mean + delta * (n_j / safe), ref_mean))
        squares = np.where(
            first,
            m2_j,
            np.where(more, squares + m2_j + delta * delta * (count * n_j / safe), squares),
        )
        count = np.where(use, merged, count)
    enough = count >= MIN_REFERENCE_PRINTS
    spread = np.sqrt(squares / np.where(enough, count, 1.0))
    threshold = np.where(enough, ref_mean + k * spread, np.nan)
    return threshold, np.where(enough, ref_mean, np.nan)


@dataclass(frozen=True)
class WindowPrints:
    """A window's valid prints in time order, as ``compute_session`` holds them."""

    ns: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray | None
    bid: np.ndarray | None
    ask: np.ndarray | None
    starts: np.ndarray  # minute m's prints are [starts[m], starts[m + 1])


def big_prints(
    prints: WindowPrints,
    bars: BarStats,
    history: SizeHistory,
    config: FootprintConfig,
    first_minute: pd.Timestamp,
    state: AggressorState,
) -> pd.DataFrame:
    """big_prints rows of a window: the window's minutes are judged against ``history``
    and their own earlier minutes; sides as the profile classified them (tick rule from
    ``state``, the tick-rule state before the window's first print)."""
    h = history.trades.shape[0]
    threshold, ref_mean = thresholds(
        np.concatenate([history.trades, bars.trades]),
        np.concatenate([history.mean, bars.mean_size]),
        np.concatenate([history.sd, bars.size_sd]),
        config.big_print_minutes,
        config.big_print_sd,
    )
    threshold, ref_mean = threshold[h:], ref_mean[h:]
    # only minutes whose largest print reaches the threshold are read again
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero((bars.largest >= threshold) & (bars.largest > ref_mean))
    parts = []
    for m in candidates.tolist():
        i0, i1 = int(prints.starts[m]), int(prints.starts[m + 1])
        size = prints.size[i0:i1]
        hits = np.flatnonzero((size >= threshold[m]) & (size > ref_mean[m]))
        before = state_after(prints.price[:i0], state) if i0 else state
        side, bid, ask = (
            None if a is None else a[i0:i1] for a in (prints.side, prints.bid, prints.ask)
        )
        signs, _ = classify(prints.price[i0:i1], side, bid, ask, before)
        parts.append((m, hits, i0 + hits, signs[hits]))
    if not parts:
        return empty_big_prints()
    minute = np.concatenate([np.full(p[1].size, p[0]) for p in parts])
    at = np.concatenate([p[2] for p in parts])
    signs = np.concatenate([p[3] for p in parts])
    return pd.DataFrame(
        {
            "bucket": first_minute + pd.to_timedelta(minute, unit="min"),
            "print_no": np.concatenate([p[1] for p in parts]).astype(np.int64),
            "ts": pd.to_datetime(prints.ns[at], utc=True),
            "price": prints.price[at],
            "size": prints.size[at],
            "side": [SIDE_NAMES[int(s)] for s in signs],
            "threshold": threshold[minute],
        },
        columns=list(BIG_PRINT_COLUMNS),
    )


def empty_big_prints() -> pd.DataFrame:
    utc = pd.DatetimeTZDtype("ns", "UTC")
    return pd.DataFrame(
        {
            "bucket": pd.Series(dtype=utc),
            "print_no": pd.Series(dtype="int64"),
            "ts": pd.Series(dtype=utc),
            "price": pd.Series(dtype="float64"),
            "size": pd.Series(dtype="float64"),
            "side": pd.Series(dtype="object"),
            "threshold": pd.Series(dtype="float64"),
        }
    )
