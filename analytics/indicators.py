"""Price indicators the engine and the strategies share: ATR, SMA, VWAP, CVD slope.

Two forms of each: a scalar one over one series in time order (what tests and a reader
check against the reference vectors), and a grouped one over many symbols at once.

Grouped form: the rows of every symbol are concatenated in (symbol, time) order and
``offsets`` (length = number of symbols + 1, ``offsets[0] == 0``) marks where each
symbol's rows start and end, so symbol ``i`` owns rows ``offsets[i]:offsets[i+1]``. All
grouped functions return one value per symbol, NaN where a symbol has too few rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ATR_PERIOD = 14  # bars; 13 true ranges (docs/semantics.md)


def _f(values: Sequence[float] | FloatArray) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def true_ranges(
    high: Sequence[float] | FloatArray,
    low: Sequence[float] | FloatArray,
    close: Sequence[float] | FloatArray,
) -> FloatArray:
    """``max(H−L, |H−C_prev|, |L−C_prev|)`` for every bar after the first, in time order.

    ``C_prev`` is the *older* neighbour's close: reading bars newest-first would use the
    newer bar as "previous" (the system marketflow replaces did).
    """
    h, lo, c = _f(high), _f(low), _f(close)
    prev = c[:-1]
    return np.maximum.reduce([h[1:] - lo[1:], np.abs(h[1:] - prev), np.abs(lo[1:] - prev)])


def atr(
    high: Sequence[float], low: Sequence[float], close: Sequence[float], period: int = ATR_PERIOD
) -> float:
    """ATR over the last ``period`` bars (time order): the simple mean of ``period − 1``
    true ranges. NaN with fewer than ``period`` bars (no made-up fallback: no ATR, no trade).
    """
    if len(close) < period:
        return float("nan")
    tr = true_ranges(_f(high)[-period:], _f(low)[-period:], _f(close)[-period:])
    return float(tr.mean())


def sma(close: Sequence[float], period: int) -> float:
    """Mean of the last ``period`` closes; NaN with fewer."""
    c = _f(close)
    if period <= 0 or len(c) < period:
        return float("nan")
    return float(c[-period:].mean())


def vwap(price: Sequence[float], volume: Sequence[float]) -> float:
    """Volume-weighted average price; NaN when there is no volume."""
    p, v = _f(price), _f(volume)
    ok = np.isfinite(p) & np.isfinite(v) & (v > 0)
    total = v[ok].sum()
    return float((p[ok] * v[ok]).sum() / total) if total > 0 else float("nan")


def slope(values: Sequence[float]) -> float:
    """Least-squares slope per step of equally spaced values (e.g. CVD per minute bucket).

    NaN with fewer than two values. Used for ``cvd_slope``: > 0 means buyers are adding
    to the cumulative delta over the window.
    """
    y = _f(values)
    n = len(y)
    if n < 2:
        return float("nan")
    x = np.arange(n, dtype=np.float64)
    x -= x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


# --- grouped (many symbols at once) ---------------------------------------------------


def group_lengths(offsets: IntArray) -> IntArray:
    return np.diff(np.asarray(offsets, dtype=np.int64))


def last_per_group(values: FloatArray, offsets: IntArray) -> FloatArray:
    """The last value of each group (NaN for an empty group)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    out = np.full(len(offsets) - 1, np.nan)
    ends = offsets[1:]
    has = ends > offsets[:-1]
    out[has] = np.asarray(values, dtype=np.float64)[ends[has] - 1]
    return out


def first_per_group(values: FloatArray, offsets: IntArray) -> FloatArray:
    offsets = np.asarray(offsets, dtype=np.int64)
    out = np.full(len(offsets) - 1, np.nan)
    starts = offsets[:-1]
    has = offsets[1:] > starts
    out[has] = np.asarray(values, dtype=np.float64)[starts[has]]
    return out


def _tail_sum(values: FloatArray, offsets: IntArray, n: int) -> tuple[FloatArray, npt.NDArray]:
    """Sum of the last ``n`` values of each group and a mask of the groups that have ``n``
    values there, all finite.

    One running sum serves every group, so a non-finite value is summed as 0 and counted
    apart: it makes its own group's result missing without poisoning later groups.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    cs = np.concatenate([[0.0], np.cumsum(np.where(bad, 0.0, values))])
    cs_bad = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    ends = offsets[1:]
    ok = group_lengths(offsets) >= n
    starts = np.where(ok, ends - n, ends)
    ok &= cs_bad[ends] == cs_bad[starts]
    return cs[ends] - cs[starts], ok


def sma_grouped(close: FloatArray, offsets: IntArray, period: int) -> FloatArray:
    total, ok = _tail_sum(np.asarray(close, dtype=np.float64), offsets, period)
    return np.where(ok, total / max(period, 1), np.nan)


def atr_grouped(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    offsets: IntArray,
    period: int = ATR_PERIOD,
) -> FloatArray:
    """``atr`` for every group: the last ``period`` bars of each symbol, time order."""
    h = np.asarray(high, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    prev = np.empty_like(c)
    prev[1:] = c[:-1]
    prev[:1] = np.nan
    tr = np.maximum.reduce([h - lo, np.abs(h - prev), np.abs(lo - prev)])
    # the first bar of a group has no previous close inside the group; its TR is never
    # inside a group's last period-1 TRs when the group has >= period bars. A bad bar
    # (NaN) inside the window makes that symbol's ATR NaN, as in ``atr``
    total, ok = _tail_sum(tr, offsets, period - 1)
    ok &= group_lengths(offsets) >= period
    return np.where(ok, total / (period - 1), np.nan)


def vwap_grouped(price: FloatArray, volume: FloatArray, offsets: IntArray) -> FloatArray:
    p = np.asarray(price, dtype=np.float64)
    v = np.asarray(volume, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(v) & (v > 0)
    offsets = np.asarray(offsets, dtype=np.int64)
    cs_pv = np.concatenate([[0.0], np.cumsum(np.where(ok, p * v, 0.0))])
    cs_v = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    pv = cs_pv[offsets[1:]] - cs_pv[offsets[:-1]]
    vol = cs_v[offsets[1:]] - cs_v[offsets[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(vol > 0, pv / np.where(vol > 0, vol, 1.0), np.nan)


def slope_grouped(values: FloatArray, offsets: IntArray) -> FloatArray:
    """``slope`` for every group (NaN for groups with fewer than two values)."""
    y = np.asarray(values, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = group_lengths(offsets)
    groups = np.repeat(np.arange(len(n)), n)
    x = np.arange(len(y), dtype=np.float64) - np.repeat(offsets[:-1], n)
    safe_n = np.where(n > 0, n, 1)
    x_mean = (np.bincount(groups, weights=x, minlength=len(n)) / safe_n)[groups]
    y_mean = (np.bincount(groups, weights=y, minlength=len(n)) / safe_n)[groups]
    dx = x - x_mean
    num = np.bincount(groups, weights=dx * (y - y_mean), minlength=len(n))
    den = np.bincount(groups, weights=dx * dx, minlength=len(n))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= 2, num / np.where(den > 0, den, 1.0), np.nan)
