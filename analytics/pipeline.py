"""The seam the Dagster assets (and replay, the engine, the CLI) call: one session in, rows out.

Every formula lives in the sibling modules (DESIGN §1 "one source of truth"):
``bins`` (price → integer bin), ``aggressor`` (venue side / quote rule / tick rule),
``profile`` (POC, value area, LVN/HVN), ``order_flow`` (delta, pressure, CVD),
``candle_fallback`` (bars without ticks) and ``sessions`` (market calendars). This module
only wires them together and shapes the output as the storage schema wants it, so a caller
can insert ``SessionFrames.volume_profile`` / ``.profile_metrics`` / ``.order_flow``
directly after adding ``symbol_id``.

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

import pandas as pd

from analytics.aggressor import AggressorState

# Column orders of the frames handed to the storage layer (schema.md, without symbol_id).
VOLUME_PROFILE_COLUMNS: tuple[str, ...] = (
    "bucket",
    "price_level",
    "total_volume",
    "buy_volume",
    "sell_volume",
    "trade_count",
)
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
)
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
)
SESSION_PROFILE_COLUMNS: tuple[str, ...] = (
    "price_level",
    "total_volume",
    "buy_volume",
    "sell_volume",
    "trade_count",
)
NAKED_POC_COLUMNS: tuple[str, ...] = ("session_date", "poc", "touched_at")

DEFAULT_COMPOSITE_SESSIONS = 5


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
    aggressor_state the tick-rule state after the last print, to continue a later window.
    rejected        reason → number of input rows skipped (bad price/size/time, outside
                    the session); never silently lost.
    """

    volume_profile: pd.DataFrame
    profile_metrics: pd.DataFrame
    order_flow: pd.DataFrame
    session_profile: pd.DataFrame
    aggressor_state: AggressorState
    rejected: dict[str, int] = field(default_factory=dict)


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
) -> SessionFrames:
    """Profiles and order flow of one symbol's session, vectorised (DESIGN §6).

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
    """
    raise NotImplementedError


def composite_metrics(
    session_profiles: pd.DataFrame,
    row_size: float,
    *,
    method: str = "single",
    sessions: int = DEFAULT_COMPOSITE_SESSIONS,
    bucket: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One profile_metrics row (horizon 'composite') over the last ``sessions`` sessions.

    session_profiles: columns session_date, price_level, total_volume (e.g. the
    volume_profile rows of those days, or SessionFrames.session_profile with a
    session_date added); the newest ``sessions`` distinct session dates are summed bin by
    bin. bucket: the minute the composite covers up to; default the largest ``bucket``
    column value when present, else midnight UTC of the newest session date. The row's
    session_date is the newest session date. Empty input → an empty frame.
    """
    raise NotImplementedError


def naked_pocs(
    prior_pocs: pd.DataFrame,
    later_ranges: pd.DataFrame,
    *,
    row_size: float | None = None,
) -> pd.DataFrame:
    """Which sessions' POCs were traded through later, and when (the rest are "naked").

    prior_pocs: columns session_date, poc (one row per session). later_ranges: columns
    session_date, bucket (UTC), low, high — traded ranges, e.g. candles_1m rows. A POC of
    session S is touched at the first bucket of a range from a session after S with
    low <= poc <= high (compared on bin indexes when row_size is given). Returns
    session_date, poc, touched_at (NaT while naked), one row per prior POC, ordered by
    session_date.
    """
    raise NotImplementedError


def session_date_of(session_open: datetime | pd.Timestamp) -> date:
    """The session's date: every supported session lies inside one UTC day (DESIGN §1)."""
    stamp = pd.Timestamp(session_open)
    return (stamp.tz_convert("UTC") if stamp.tzinfo else stamp).date()
