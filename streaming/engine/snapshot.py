"""What one loop reads for every symbol at once, and the per-symbol metrics computed from it.

``Snapshot`` holds the rows of the few set-based queries (``queries.py``) as flat numpy
arrays grouped by symbol (``offsets``, see ``analytics.indicators``). ``compute_metrics``
turns it into one value per symbol with the shared pure formulas; no I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from analytics.aggression import aggression_scores
from analytics.indicators import (
    atr_grouped,
    first_per_group,
    last_per_group,
    slope_grouped,
    sma_grouped,
)
from analytics.market_state import MOMENTUM_WINDOW_MINUTES, detect_states, momentum_pct_grouped

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Universe:
    """The active symbols, ordered by id (every per-symbol array follows this order)."""

    ids: I64
    symbols: tuple[str, ...]
    markets: tuple[str, ...]
    asset_types: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.symbols)

    def index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols)}


@dataclass(frozen=True)
class Profile:
    """Latest session or composite profile per symbol (NaN / empty when none)."""

    poc: F
    vah: F
    val: F
    bucket: F  # epoch seconds
    lvns: list[list[dict[str, float]]]

    @classmethod
    def empty(cls, n: int) -> Profile:
        nan = np.full(n, np.nan)
        return cls(nan, nan.copy(), nan.copy(), nan.copy(), [[] for _ in range(n)])


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    universe: Universe
    # candles of the window, (symbol, ts) order
    candle_offsets: I64
    candle_ts: F  # epoch seconds
    high: F
    low: F
    close: F
    volume: F
    session: Profile
    composite: Profile
    # recent order_flow buckets (at most FLOW_WINDOW_BUCKETS per symbol), (symbol, bucket)
    flow_offsets: I64
    buy_pressure: F
    sell_pressure: F
    cvd: F  # cvd_total (never resets), so a window across a session start stays continuous
    session_vwap: F = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class Metrics:
    """One value per symbol (Universe order); NaN where the inputs are missing."""

    price: F
    momentum_pct: F
    atr: F
    sma: dict[int, F]
    vwap: F
    poc: F
    vah: F
    val: F
    composite_poc: F
    composite_vah: F
    composite_val: F
    buy_pressure: F
    sell_pressure: F
    cvd_momentum: F
    cvd_slope: F
    aggression: F
    direction: npt.NDArray[np.int8]  # 1 buy, −1 sell, 0 neutral
    state: npt.NDArray[np.int8]  # analytics.market_state codes
    confidence: F
    distance_pct: F


def json_number(value: float) -> float | None:
    """A metric for a JSON message or row: the float, or None (null) when it is missing."""
    return float(value) if math.isfinite(value) else None


def _select(offsets: I64, keep: npt.NDArray[np.bool_]) -> I64:
    """Offsets of the rows that ``keep`` selects, per group."""
    cs = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    counts = cs[offsets[1:]] - cs[offsets[:-1]]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def compute_metrics(snap: Snapshot, sma_periods: frozenset[int] = frozenset()) -> Metrics:
    n = snap.universe.size
    off = snap.candle_offsets
    price = last_per_group(snap.close, off)

    # momentum over the closes of the last 60 minutes only (the window may be longer for SMAs)
    since = snap.now.timestamp() - MOMENTUM_WINDOW_MINUTES * 60
    recent = snap.candle_ts > since
    mom = momentum_pct_grouped(snap.close[recent], _select(off, recent))

    flow_off = snap.flow_offsets
    buy = last_per_group(snap.buy_pressure, flow_off)
    sell = last_per_group(snap.sell_pressure, flow_off)
    # the query returns at most FLOW_WINDOW_BUCKETS rows per symbol: momentum = last − first
    has_two = np.diff(flow_off) >= 2
    cvd_mom = np.where(
        has_two, last_per_group(snap.cvd, flow_off) - first_per_group(snap.cvd, flow_off), 0.0
    )
    cvd_mom = np.nan_to_num(cvd_mom, nan=0.0)
    score, direction = aggression_scores(buy, sell, cvd_mom)

    s = snap.session
    state, conf, dist = detect_states(price, s.poc, s.vah, s.val, mom, buy, sell)
    vwap = snap.session_vwap if len(snap.session_vwap) == n else np.full(n, np.nan)
    return Metrics(
        price=price,
        momentum_pct=mom,
        atr=atr_grouped(snap.high, snap.low, snap.close, off),
        sma={p: sma_grouped(snap.close, off, p) for p in sorted(sma_periods)},
        vwap=vwap,
        poc=s.poc,
        vah=s.vah,
        val=s.val,
        composite_poc=snap.composite.poc,
        composite_vah=snap.composite.vah,
        composite_val=snap.composite.val,
        buy_pressure=buy,
        sell_pressure=sell,
        cvd_momentum=cvd_mom,
        cvd_slope=slope_grouped(snap.cvd, flow_off),
        aggression=score,
        direction=direction,
        state=state,
        confidence=conf,
        distance_pct=dist,
    )
