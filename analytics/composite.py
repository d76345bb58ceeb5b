"""Profiles across sessions (docs/semantics.md): the composite profile of the last
sessions and which sessions' POCs were traded through later ("naked" until then)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from analytics.bins import bin_index
from analytics.footprint_config import DEFAULT_CONFIG, FootprintConfig
from analytics.metrics_frames import EXTREME_COLUMNS, PROFILE_METRICS_COLUMNS
from analytics.nodes import node_rule
from analytics.profile import check_method, metrics_of

NAKED_POC_COLUMNS: tuple[str, ...] = ("session_date", "poc", "touched_at")
DEFAULT_COMPOSITE_SESSIONS = 5


def composite_metrics(
    session_profiles: pd.DataFrame,
    row_size: float,
    *,
    method: str = "single",
    sessions: int = DEFAULT_COMPOSITE_SESSIONS,
    bucket: datetime | pd.Timestamp | None = None,
    config: FootprintConfig = DEFAULT_CONFIG,
) -> pd.DataFrame:
    """One profile_metrics row (horizon 'composite') over the last ``sessions`` sessions.

    session_profiles: columns session_date, price_level, total_volume (e.g. the
    volume_profile rows of those days, or SessionFrames.session_profile with a
    session_date added); the newest ``sessions`` distinct session dates are summed bin by
    bin. bucket: the minute the composite covers up to; default the largest ``bucket``
    column value when present, else midnight UTC of the newest session date. The row's
    session_date is the newest session date. Empty input → an empty frame.
    """
    check_method(method)
    if sessions < 1:
        raise ValueError(f"sessions must be >= 1, got {sessions}")
    columns = list(PROFILE_METRICS_COLUMNS)
    if session_profiles.empty:
        return pd.DataFrame(columns=columns)
    days = pd.to_datetime(session_profiles["session_date"]).dt.date
    newest = sorted(set(days))[-sessions:]
    chosen = session_profiles[days.isin(newest).to_numpy()]
    volume = pd.to_numeric(chosen["total_volume"], errors="coerce").to_numpy(np.float64)
    levels = pd.to_numeric(chosen["price_level"], errors="coerce").to_numpy(np.float64)
    good = np.isfinite(volume) & (volume >= 0) & np.isfinite(levels)
    bins = bin_index(levels[good], row_size)
    if bins.size == 0:
        return pd.DataFrame(columns=columns)
    first_bin = int(bins.min())
    dense = np.bincount(bins - first_bin, weights=volume[good])
    metrics = metrics_of(dense, first_bin, row_size, method, node_rule(config))
    if metrics is None:
        return pd.DataFrame(columns=columns)
    if bucket is not None:
        stamp = _utc(bucket)
    elif "bucket" in chosen.columns:
        stamp = pd.to_datetime(chosen["bucket"], utc=True).max()
    else:
        stamp = _utc(pd.Timestamp(newest[-1]))
    row = {
        "horizon": "composite",
        "bucket": stamp,
        "session_date": newest[-1],
        "poc": metrics.poc,
        "vah": metrics.vah,
        "val": metrics.val,
        "total_volume": metrics.total_volume,
        "lvns": metrics.lvns,
        "hvns": metrics.hvns,
        "value_area_method": method,
        # a composite sums sessions' totals: no sides, no initial balance
        **dict.fromkeys(EXTREME_COLUMNS),
    }
    return pd.DataFrame([row], columns=columns)


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
    columns = list(NAKED_POC_COLUMNS)
    if prior_pocs.empty:
        return pd.DataFrame(columns=columns)
    prior = prior_pocs.assign(
        session_date=pd.to_datetime(prior_pocs["session_date"]).dt.date
    ).sort_values("session_date", ignore_index=True)
    ranges = later_ranges.assign(
        session_date=pd.to_datetime(later_ranges["session_date"]).dt.date,
        bucket=pd.to_datetime(later_ranges["bucket"], utc=True),
    ).sort_values("bucket", kind="stable", ignore_index=True)
    range_days = ranges["session_date"].to_numpy()
    low = ranges["low"].to_numpy(np.float64)
    high = ranges["high"].to_numpy(np.float64)
    pocs = prior["poc"].to_numpy(np.float64)
    if row_size is not None:
        # bins, so a POC bin is touched by any print that falls into that bin
        low, high, pocs = (bin_index(a, row_size) for a in (low, high, pocs))
    buckets = ranges["bucket"]
    touched: list[pd.Timestamp] = []
    for day, poc in zip(prior["session_date"], pocs, strict=True):
        hit = np.flatnonzero((range_days > day) & (low <= poc) & (high >= poc))
        touched.append(buckets.iloc[hit[0]] if hit.size else pd.NaT)
    return pd.DataFrame(
        {
            "session_date": prior["session_date"],
            "poc": prior["poc"].astype(np.float64),
            "touched_at": pd.to_datetime(pd.Series(touched, dtype=object), utc=True),
        },
        columns=columns,
    )


def _utc(moment: datetime | pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
