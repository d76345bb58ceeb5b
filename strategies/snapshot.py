"""What one loop reads for every symbol at once, and the per-symbol metrics computed from it.

``Snapshot`` holds the rows of the few set-based queries (``queries.py``) as flat numpy
arrays grouped by symbol (``offsets``, see ``analytics.indicators``). ``compute_metrics``
turns it into one value per symbol with the shared pure formulas; no I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import SupportsFloat

import numpy as np
import numpy.typing as npt

from analytics.aggressive_flow import aggression_scores
from analytics.increments import Increments
from analytics.indicators import (
    atr_grouped,
    first_per_group,
    last_per_group,
    slope_grouped,
    sma_grouped,
)
from analytics.market_state import MOMENTUM_WINDOW_MINUTES, detect_states, momentum_pct_grouped
from strategies.footprint import Footprint

F = npt.NDArray[np.float64]

# order flow older than this is not "recent" aggression: the engine reads no older buckets
# and the backtester drops them the same way
FLOW_MAX_AGE = timedelta(minutes=15)
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

# why a symbol has (or lacks) a session profile this tick
PROFILE_CURRENT, PROFILE_NONE, PROFILE_STALE = 0, 1, 2


@dataclass(frozen=True)
class Universe:
    """The active symbols, ordered by id (every per-symbol array follows this order)."""

    ids: I64
    symbols: tuple[str, ...]
    markets: tuple[str, ...]
    asset_types: tuple[str, ...]
    # the price and quantity steps of each symbol's orders; empty: each asset type's rule
    increments: tuple[Increments, ...] = ()

    def increments_of(self, index: int) -> Increments:
        if self.increments:
            return self.increments[index]
        return Increments.for_symbol(self.asset_types[index])

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
    # the session's initial balance (session rows only; empty: not read)
    ib_high: F = field(default_factory=lambda: np.zeros(0))
    ib_low: F = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def empty(cls, n: int) -> Profile:
        nan = np.full(n, np.nan)
        return cls(
            nan, nan.copy(), nan.copy(), nan.copy(), [[] for _ in range(n)], nan.copy(), nan.copy()
        )


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
    # set by ``only_current_profiles``: PROFILE_* per symbol, and which composites were
    # dropped as too old (empty = not checked)
    session_status: I8 = field(default_factory=lambda: np.zeros(0, np.int8))
    composite_stale: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    # epoch seconds per symbol when the groups stand at different instants (a backtest
    # evaluates many minutes of one symbol as one snapshot, one group per minute); empty:
    # every group stands at ``now``
    asof: F = field(default_factory=lambda: np.zeros(0))
    # read only when a strategy or an alert uses it (None: not read)
    footprint: Footprint | None = None


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
    # PROFILE_* per symbol and the newest session profile's bucket (epoch s, NaN: none),
    # kept even when that profile was dropped as stale so the state row can say so
    profile_status: I8 = field(default_factory=lambda: np.zeros(0, np.int8))
    profile_bucket: F = field(default_factory=lambda: np.zeros(0))
    # the footprint (current session's VWAP row only), the session's initial balance and
    # the instant each symbol stands at (epoch s), for the footprint conditions
    footprint: Footprint | None = None
    ib_high: F = field(default_factory=lambda: np.zeros(0))
    ib_low: F = field(default_factory=lambda: np.zeros(0))
    asof: F = field(default_factory=lambda: np.zeros(0))


def candle_window(sma_periods: frozenset[int]) -> timedelta:
    """How far back a loop reads candles: the momentum window, or room for the longest
    SMA (``period`` one-minute candles, twice over for minutes without trades)."""
    longest = max(sma_periods, default=0)
    return timedelta(minutes=max(MOMENTUM_WINDOW_MINUTES + 1, longest * 2 + 5))


def json_number(value: SupportsFloat) -> float | None:
    """A metric for a JSON message or row: the float, or None (null) when it is missing."""
    return float(value) if math.isfinite(value) else None


def _select(offsets: I64, keep: npt.NDArray[np.bool_]) -> I64:
    """Offsets of the rows that ``keep`` selects, per group."""
    cs = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
    counts = cs[offsets[1:]] - cs[offsets[:-1]]
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _keep(profile: Profile, keep: npt.NDArray[np.bool_]) -> Profile:
    """The profile where ``keep``, absent (NaN levels, no LVNs) elsewhere; buckets kept."""
    return Profile(
        poc=np.where(keep, profile.poc, np.nan),
        vah=np.where(keep, profile.vah, np.nan),
        val=np.where(keep, profile.val, np.nan),
        bucket=profile.bucket,
        lvns=[nodes if k else [] for nodes, k in zip(profile.lvns, keep.tolist(), strict=True)],
        ib_high=_where(keep, profile.ib_high),
        ib_low=_where(keep, profile.ib_low),
    )


def _where(keep: npt.NDArray[np.bool_], values: F) -> F:
    """``values`` where ``keep``, NaN elsewhere (an empty array: not read, stays empty)."""
    return np.where(keep, values, np.nan) if len(values) else values


def only_current_profiles(snap: Snapshot, session_open: F, previous_open: F) -> Snapshot:
    """Drop profiles older than the symbol's current session (``session_clock``).

    session_open / previous_open: epoch seconds per symbol of its current session's open
    and of the session before (NaN when unknown). A session profile counts only when its
    bucket is in the current session; an older one (profile runs stopped) is treated as
    absent, so market state is UNKNOWN, no LVN alert comes from it and no strategy
    compares against its levels. The composite profile spans several sessions and is
    rebuilt with each session profile run, so it stays usable while its bucket is in the
    current or the previous session (e.g. before the first run of a new session); older,
    it is absent too. A NaN open (unknown market) keeps nothing. The footprint's session
    VWAP row counts only in the current session too (``Footprint.in_session``).
    """
    s, c = snap.session, snap.composite
    has = np.isfinite(s.bucket)
    current = has & (s.bucket >= session_open)
    stale = has & (s.bucket < session_open)  # NaN open: no session to be stale against
    status = np.where(current, PROFILE_CURRENT, np.where(stale, PROFILE_STALE, PROFILE_NONE))
    since = np.where(np.isfinite(previous_open), previous_open, session_open)
    recent = np.isfinite(c.bucket) & (c.bucket >= since)
    return replace(
        snap,
        session=_keep(s, current),
        composite=_keep(c, recent),
        session_status=status.astype(np.int8),
        composite_stale=np.isfinite(c.bucket) & ~recent,
        footprint=None if snap.footprint is None else snap.footprint.in_session(session_open),
    )


def compute_metrics(snap: Snapshot, sma_periods: frozenset[int] = frozenset()) -> Metrics:
    n = snap.universe.size
    off = snap.candle_offsets
    price = last_per_group(snap.close, off)

    # momentum over the closes of the last 60 minutes only (the window may be longer for SMAs)
    since: np.ndarray | float
    if len(snap.asof) == n:
        since = np.repeat(snap.asof - MOMENTUM_WINDOW_MINUTES * 60, np.diff(off))
    else:
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
    status = snap.session_status
    if len(status) != n:  # not checked for age: present or not
        status = np.where(np.isfinite(s.bucket), PROFILE_CURRENT, PROFILE_NONE).astype(np.int8)
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
        profile_status=status,
        profile_bucket=s.bucket,
        footprint=snap.footprint,
        ib_high=s.ib_high if len(s.ib_high) == n else np.full(n, np.nan),
        ib_low=s.ib_low if len(s.ib_low) == n else np.full(n, np.nan),
        asof=snap.asof if len(snap.asof) == n else np.full(n, snap.now.timestamp()),
    )
