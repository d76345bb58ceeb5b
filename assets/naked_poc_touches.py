"""Which sessions' POCs a window's sessions traded through (`naked_pocs`), per symbol: the
window's own POCs and the earlier ones still open, against the window's minute ranges and,
for a POC still naked, the later days already stored (a backfill of the past)."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import psycopg

from analytics.composite import naked_pocs
from assets import profile_io


def minute_ranges(volume_profile: pd.DataFrame, session_day: date) -> pd.DataFrame:
    """Traded range of every minute of a session (the naked-POC touch input)."""
    if volume_profile.empty:
        return pd.DataFrame(columns=["session_date", "bucket", "low", "high"])
    grouped = volume_profile.groupby("bucket", sort=True)["price_level"]
    ranges = pd.DataFrame({"low": grouped.min(), "high": grouped.max()}).reset_index()
    ranges.insert(0, "session_date", session_day)
    return ranges


def symbol_naked_pocs(
    conn: psycopg.Connection,
    symbol: profile_io.SymbolRow,
    session_pocs: list[tuple[date, float]],
    ranges: list[pd.DataFrame],
    open_pocs: pd.DataFrame,
    window_end: datetime,
) -> pd.DataFrame | None:
    """naked_pocs rows of one symbol (None when it has no POC to follow)."""
    prior = open_pocs.loc[open_pocs["symbol_id"] == symbol.id, ["session_date", "poc"]]
    parts = [
        p
        for p in (prior, pd.DataFrame(session_pocs, columns=["session_date", "poc"]))
        if not p.empty
    ]
    if not parts:
        return None
    candidates = pd.concat(parts, ignore_index=True)
    later = (
        pd.concat(ranges, ignore_index=True)
        if ranges
        else pd.DataFrame(columns=["session_date", "bucket", "low", "high"])
    )
    pocs = naked_pocs(candidates, later, row_size=symbol.row_size)
    # Still naked within the window: a later day that is already stored (a backfill of the
    # past) may have traded through it.
    if pocs["touched_at"].isna().any() and profile_io.has_profile_after(
        conn, symbol.id, window_end
    ):
        for index in pocs.index[pocs["touched_at"].isna()]:
            touched = profile_io.first_touch_after(
                conn, symbol.id, float(pocs.at[index, "poc"]), window_end
            )
            if touched is not None:
                pocs.at[index, "touched_at"] = pd.Timestamp(touched)
    return pocs.assign(symbol_id=symbol.id)
