"""Session VWAP and its standard deviation through the end of each minute (docs/semantics.md).

vwap = Σ p·v / Σ v and sd = sqrt(Σ v·(p − vwap)² / Σ v) over the session's prints up to
the end of the minute. Computed stably: each minute's prints are summed as differences
from the minute's first price (``analytics.bar_stats``), and minutes are merged into the
session one at a time with the pairwise update of Chan, Golub and LeVeque (weighted), so no
sum of p² is ever formed.

The state carried from minute to minute is exactly what a ``session_vwap`` row stores:
the volume, the vwap and the sd; the merge takes Σ v·(p − vwap)² as sd² × volume, in a full
computation as in one resumed from a stored row, so both give the same floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from analytics.bar_stats import BarStats

SESSION_VWAP_COLUMNS: tuple[str, ...] = ("bucket", "session_date", "vwap", "sd", "volume")


@dataclass(frozen=True)
class VwapState:
    """The session's VWAP after some minutes: volume 0 before the first print."""

    volume: float = 0.0
    vwap: float = 0.0
    sd: float = 0.0


SESSION_OPEN = VwapState()


def running_vwap(bars: BarStats, before: VwapState = SESSION_OPEN) -> tuple[np.ndarray, ...]:
    """(volume, vwap, sd) through the end of each minute of ``bars``, continuing ``before``;
    NaN vwap and sd until the session's first print."""
    n = len(bars)
    out = np.full((3, n), np.nan)
    total, mean, sd = before.volume, before.vwap, before.sd
    squares = sd * sd * total
    volume, vwap, m2 = bars.volume.tolist(), bars.vwap.tolist(), bars.price_m2.tolist()
    for m in range(n):
        if volume[m] > 0:
            if total == 0:
                total, mean, squares = volume[m], vwap[m], m2[m]
            else:
                merged = total + volume[m]
                delta = vwap[m] - mean
                mean = mean + delta * (volume[m] / merged)
                squares = squares + m2[m] + delta * delta * (total * volume[m] / merged)
                total = merged
            sd = math.sqrt(squares / total)
            squares = sd * sd * total  # as a resumed run reads it back from the row
        if total > 0:
            out[0, m], out[1, m], out[2, m] = total, mean, sd
    return out[0], out[1], out[2]


def session_vwap_frame(
    first_minute: pd.Timestamp, bars: BarStats, session_date: date, before: VwapState
) -> tuple[pd.DataFrame, VwapState]:
    """session_vwap rows (one per minute from the session's first print on) and the state
    after the last minute."""
    volume, vwap, sd = running_vwap(bars, before)
    rows = np.flatnonzero(~np.isnan(vwap))
    frame = pd.DataFrame(
        {
            "bucket": first_minute + pd.to_timedelta(rows, unit="min"),
            "session_date": [session_date] * rows.size,
            "vwap": vwap[rows],
            "sd": sd[rows],
            "volume": volume[rows],
        },
        columns=list(SESSION_VWAP_COLUMNS),
    )
    after = VwapState(float(volume[-1]), float(vwap[-1]), float(sd[-1])) if rows.size else before
    return frame, after


def bands(vwap: float, sd: float, k: float) -> tuple[float, float]:
    """The band k standard deviations each side of the VWAP (k = 1, 2, 3 where shown)."""
    if not k > 0:
        raise ValueError(f"a VWAP band's k must be > 0, got {k!r}")
    return vwap - k * sd, vwap + k * sd
