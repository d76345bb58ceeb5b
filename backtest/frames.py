"""The simulated clock: what the engine would have read at each minute, as one snapshot.

A backtest asks the engine's question ("what holds now?") once per minute. Instead of one
snapshot per minute with one group per symbol, it builds one ``Snapshot`` per symbol and
batch of minutes whose *groups are the minutes*: group ``k`` holds exactly the rows the
engine's reads (``streaming.engine.queries``) return at instant ``asof[k]`` — candles with
``asof − window < ts ≤ asof``, the latest session and composite profile rows with
``bucket ≤ asof``, the last ``FLOW_WINDOW_BUCKETS`` order-flow buckets in
``(asof − 15 min, asof]``, the session VWAP since the session's open and, for a strategy
with footprint terms, the footprint (``backtest.footprint``) — and nothing later.
``compute_metrics`` and ``only_current_profiles`` then run on it unchanged.

The decision instant of minute ``m`` (its start, epoch seconds) is ``m + DECIDE_AT_S``:
the minute's last second, when its candle, profile row and order-flow bucket are
complete and the next minute's are not yet stamped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from analytics.aggressive_flow import FLOW_WINDOW_BUCKETS
from analytics.sessions import UnknownMarketError, market_timezone, session_bounds
from backtest.footprint import footprint_at
from backtest.history import Levels, SymbolHistory
from strategies.session_clock import LOOKBACK_DAYS
from strategies.snapshot import FLOW_MAX_AGE, Profile, Snapshot, Universe, only_current_profiles

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MINUTE_S = 60.0
DECIDE_AT_S = 59.0  # seconds into a minute when the simulated engine ticks
NO_NODES: list[dict[str, float]] = []  # shared, never mutated


def decision_instants(start: datetime, end: datetime) -> F:
    """Every minute's decision instant in [start, end) (epoch seconds)."""
    first = np.ceil(start.timestamp() / MINUTE_S) * MINUTE_S
    return np.arange(first, end.timestamp(), MINUTE_S) + DECIDE_AT_S


def _ranges(lo: I64, hi: I64) -> tuple[I64, I64]:
    """Concatenated index ranges [lo, hi) and their group offsets."""
    lengths = np.maximum(hi - lo, 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1] - lo, lengths)
    return idx, offsets


def window_bounds(ts: F, asof: F, window_s: float) -> tuple[I64, I64]:
    """Row ranges of the candles the engine reads at each instant: window_s < age ≤ 0."""
    lo = np.searchsorted(ts, asof - window_s, side="right")
    hi = np.searchsorted(ts, asof, side="right")
    return lo.astype(np.int64), hi.astype(np.int64)


@lru_cache(maxsize=64)
def _opens(market: str, first: str, last: str) -> F:
    """Session opens (epoch s) of ``market`` whose local day is in [first, last]."""
    day, end = datetime.fromisoformat(first).date(), datetime.fromisoformat(last).date()
    out = []
    while day <= end:
        try:
            bounds = session_bounds(market, day)
        except ValueError:
            bounds = None
        if bounds is not None:
            out.append(bounds[0].timestamp())
        day += timedelta(days=1)
    return np.array(sorted(set(out)), dtype=np.float64)


def session_opens(market: str, asof: F) -> tuple[F, F]:
    """Per instant: the open of the market's current session and of the session before
    (NaN when unknown), as ``session_clock.current_session`` answers them."""
    nan = np.full(len(asof), np.nan)
    if not len(asof):
        return nan, nan.copy()
    try:
        tz = market_timezone(market)
    except UnknownMarketError:
        return nan, nan.copy()
    zone = ZoneInfo(tz)
    lo = datetime.fromtimestamp(float(asof[0]), UTC).astimezone(zone).date()
    hi = datetime.fromtimestamp(float(asof[-1]), UTC).astimezone(zone).date()
    opens = _opens(market, (lo - timedelta(days=2 * LOOKBACK_DAYS)).isoformat(), hi.isoformat())
    j = np.searchsorted(opens, asof, side="right") - 1
    # current_session looks LOOKBACK_DAYS local days back from today's date: an open older
    # than that (plus the part of today already gone) is not found
    horizon = (LOOKBACK_DAYS + 1) * 86400.0
    has = (j >= 0) & (asof - opens[np.maximum(j, 0)] < horizon)
    current = np.where(has, opens[np.maximum(j, 0)], np.nan)
    has_prev = has & (j >= 1)
    prev = np.where(has_prev, opens[np.maximum(j - 1, 0)], np.nan)
    return current, prev


def _latest(levels: Levels, asof: F) -> Profile:
    k = np.searchsorted(levels.bucket, asof, side="right") - 1
    has = k >= 0
    kk = np.maximum(k, 0)

    def pick(values: F) -> F:
        return np.where(has, values[kk], np.nan) if len(values) else np.full(len(asof), np.nan)

    return Profile(
        poc=pick(levels.poc),
        vah=pick(levels.vah),
        val=pick(levels.val),
        bucket=pick(levels.bucket),
        lvns=[NO_NODES] * len(asof),  # LVNs feed alerts only, never a strategy
        ib_high=pick(levels.ib_high),
        ib_low=pick(levels.ib_low),
    )


def session_vwap(h: SymbolHistory, asof: F, opens: F) -> F:
    """The engine's session VWAP per instant: Σ(vwap or HLC/3 × volume) / Σ volume over
    the candles since the session opened (NaN without volume or session)."""
    typical = np.where(np.isfinite(h.vwap), h.vwap, (h.high + h.low + h.close) / 3)
    cpv = np.concatenate([[0.0], np.cumsum(typical * h.volume)])
    cv = np.concatenate([[0.0], np.cumsum(h.volume)])
    a = np.searchsorted(h.ts, np.nan_to_num(opens, nan=np.inf), side="left")
    b = np.searchsorted(h.ts, asof, side="right")
    b = np.maximum(a, b)
    vol = cv[b] - cv[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((vol != 0) & np.isfinite(opens), (cpv[b] - cpv[a]) / vol, np.nan)


def snapshot_at(
    h: SymbolHistory,
    asof: F,
    window: timedelta,
    *,
    want_vwap: bool = False,
    want_footprint: bool = False,
    bounds: tuple[I64, I64] | None = None,
) -> Snapshot:
    """One snapshot of ``h`` with one group per instant of ``asof`` (sorted), profiles
    already restricted to each instant's current session as the engine does."""
    n = len(asof)
    lo, hi = bounds if bounds is not None else window_bounds(h.ts, asof, window.total_seconds())
    idx, candle_off = _ranges(lo, hi)
    f_hi = np.searchsorted(h.flow_bucket, asof, side="right")
    f_lo = np.searchsorted(h.flow_bucket, asof - FLOW_MAX_AGE.total_seconds(), side="right")
    f_idx, flow_off = _ranges(np.maximum(f_lo, f_hi - FLOW_WINDOW_BUCKETS), f_hi)
    opens, previous = session_opens(h.market, asof)
    universe = Universe(
        ids=np.full(n, h.symbol_id, dtype=np.int64),
        symbols=(h.symbol,) * n,
        markets=(h.market,) * n,
        asset_types=(h.asset_type,) * n,
    )
    snap = Snapshot(
        now=datetime.fromtimestamp(float(asof[-1]) if n else 0.0, UTC),
        universe=universe,
        candle_offsets=candle_off,
        candle_ts=h.ts[idx],
        high=h.high[idx],
        low=h.low[idx],
        close=h.close[idx],
        volume=h.volume[idx],
        session=_latest(h.session, asof),
        composite=_latest(h.composite, asof),
        flow_offsets=flow_off,
        buy_pressure=h.buy_pressure[f_idx],
        sell_pressure=h.sell_pressure[f_idx],
        cvd=h.cvd[f_idx],
        session_vwap=session_vwap(h, asof, opens) if want_vwap else np.zeros(0),
        asof=np.asarray(asof, dtype=np.float64),
        footprint=footprint_at(h.footprint, asof) if want_footprint else None,
    )
    return only_current_profiles(snap, opens, previous)
