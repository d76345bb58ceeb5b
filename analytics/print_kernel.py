"""One compiled pass over a session's prints: aggressor side, price bin and grid sums.

Per print, in time order: the tick rule with zero-tick continuation, then the quote
rule, then the venue's side (the precedence of ``analytics.aggressor_side.classify``), the
bin ``floor(price / row_size + 0.5)`` of ``analytics.bins``, and the print's size,
signed size and count added to its (minute, bin) cell. Per minute it also keeps the sums
of ``analytics.bar_stats`` (the running delta's extremes, the VWAP's and the print sizes'
shifted sums) in registers, about a fifth of the pass's time. One pass instead of numpy's
several (classify, bin, key, three ``bincount``) over every print: about 2.2× faster on
10 M prints, where the numpy passes were most of ``compute_session``. Small inputs take
the numpy passes (``_fill_numpy``; see ``analytics.compiled`` for why).

Bit-identical to the numpy path: ``np.bincount`` also adds each cell's weights one by
one in input order, the products and the bin rounding are the same float64 operations
(no fused multiply-add: numba compiles without fast-math), and the float → int
conversion truncates in both.

A large session's minutes are cut into one part per core (``analytics.compiled``), each part
started from the tick-rule state before its first print (read backwards from the last
price change); the parts fill disjoint rows, so they run at once and add exactly what
one pass adds.

The pass also checks what it reads anyway: when asked, the prints' times in order and
every size finite and positive. ``compute_session`` then reads the columns once instead
of checking them in a pass of their own first (only the prices are checked beforehand,
with the compiled ``price_range``, because their range sizes the grid); on a failed check
it throws the grids away and starts again checking every print with numpy, which also
counts the bad ones.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from itertools import pairwise
from typing import Any

import numpy as np

from analytics.aggressor_side import AggressorState, classify
from analytics.compiled import compiled, run_all, split, use_compiled

_NONE = np.zeros(0)
_NONE_NS = np.zeros(0, dtype=np.int64)
EARLIEST_NS = -(2**63)  # no time precedes it
# prints classified and binned per numpy chunk of whole minutes: the per-print
# temporaries then stay in the L2 cache instead of streaming whole-session arrays
CHUNK_PRINTS = 1 << 16
# values per block of the compiled input checks (each block runs without an early exit)
CHECK_BLOCK = 1 << 12
# the bit pattern of +inf: positive finite doubles are the int64 patterns in (0, this)
FINITE_BITS = 0x7FF0_0000_0000_0000
# per-minute sums the pass keeps: see analytics.bar_stats.BAR_SUM_NAMES
BAR_SUMS = 10


def fill_prints_py(
    price: np.ndarray,
    size: np.ndarray,
    side: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    starts: np.ndarray,
    inverse_row: float,
    first_bin: int,
    n_bins: int,
    volume: np.ndarray,
    signed: np.ndarray,
    count: np.ndarray,
    bars: np.ndarray,
    last_price: float,
    last_sign: int,
    ns: np.ndarray,
) -> tuple[float, int, bool]:
    """Add minutes' prints to flat (minute × bin) grids; returns the tick-rule state after
    and whether a print failed the checks asked for.

    starts: minute m's prints are [starts[m], starts[m + 1]), and m is the grid's row.
    side/bid/ask: empty arrays when unknown for the whole window; NaN entries when
    unknown for one print. volume/signed/count: flat rows × n_bins grids, added to.
    bars: rows × BAR_SUMS, each minute with prints written (``analytics.bar_stats``).
    ns: empty when the prints were checked before; else their times, and the pass checks
    them in order (from the print before its first, if any) and every size finite and
    positive. A failed check leaves the grids to be thrown away.
    This is the kernel's source: compiled by :func:`fill_prints`, plain Python otherwise.
    """
    has_side = side.shape[0] > 0
    has_bid = bid.shape[0] > 0
    has_ask = ask.shape[0] > 0
    verify = ns.shape[0] > 0
    size_bits = size.view(np.int64)  # positive finite sizes: patterns in (0, FINITE_BITS)
    # the time the first print must not precede: the print before it, if any
    before = ns[starts[0] - 1] if verify and starts[0] > 0 else EARLIEST_NS
    fault = False
    tick = last_sign
    last = last_price
    for m in range(starts.shape[0] - 1):
        base = m * n_bins - first_bin
        traded = starts[m + 1] > starts[m]
        p0 = price[starts[m]] if traded else 0.0
        w0 = size[starts[m]] if traded else 0.0
        delta = volume_sum = price_sum = price_squares = size_sum = size_squares = 0.0
        high_delta, low_delta, largest = -np.inf, np.inf, 0.0
        for i in range(starts[m], starts[m + 1]):
            p = price[i]
            if verify:
                t, bits = ns[i], size_bits[i]
                fault |= (t < before) | (bits <= 0) | (bits >= FINITE_BITS)
                before = t
            # written as selects, not branches: half the prints are zero ticks at random
            change = np.int64(p > last) - np.int64(p < last)  # NaN `last`: no change
            # np.int64 or the int it started as: numba unifies both to int64
            tick = change if change != 0 else tick  # type: ignore[assignment]
            last = p
            sign = tick
            if has_bid:
                sign = -1 if p <= bid[i] else sign  # a NaN bid compares False
            if has_ask:
                sign = 1 if p >= ask[i] else sign  # the ask wins on a locked/crossed quote
            if has_side:
                venue = side[i]
                sign = 1 if venue > 0 else (-1 if venue < 0 else sign)
            scaled = p * inverse_row
            scaled += 0.5
            cell = base + np.int64(scaled)  # prices are positive: truncation is the floor
            weight = size[i]
            flow = weight * np.float64(sign)
            volume[cell] += weight
            signed[cell] += flow
            count[cell] += 1
            # the minute's sums (analytics.bar_stats: the same operations in numpy)
            delta += flow
            high_delta = max(high_delta, delta)
            low_delta = min(low_delta, delta)
            volume_sum += weight
            away = weight * (p - p0)
            price_sum += away
            price_squares += away * (p - p0)
            shift = weight - w0
            size_sum += shift
            size_squares += shift * shift
            largest = max(largest, weight)
        if traded:
            bars[m, 0], bars[m, 1], bars[m, 2] = high_delta, low_delta, volume_sum
            bars[m, 3], bars[m, 4], bars[m, 5] = price_sum, price_squares, size_sum
            bars[m, 6], bars[m, 7], bars[m, 8], bars[m, 9] = size_squares, p0, w0, largest
    return last, tick, fault


def tick_state_py(
    price: np.ndarray, first: int, stop: int, last_price: float, last_sign: int
) -> tuple[float, int]:
    """The tick-rule state after prints [first, stop), starting from (last_price, last_sign).

    The kernel's own rule read backwards: the last price change decides the sign, so only
    the prints after it are read (a few, in a market that moves).
    """
    if stop <= first:
        return last_price, last_sign
    for j in range(stop - 1, first, -1):
        if price[j] > price[j - 1]:
            return price[stop - 1], 1
        if price[j] < price[j - 1]:
            return price[stop - 1], -1
    p = price[first]
    sign = 1 if p > last_price else (-1 if p < last_price else last_sign)
    return price[stop - 1], sign


def price_range_py(bits: np.ndarray, lo: int, hi: int) -> tuple[bool, int, int]:
    """(every price in [lo, hi) finite and > 0, lowest, highest price's bits).

    bits: the prices' float64 bit patterns as int64. Positive finite doubles are exactly
    the patterns in (0, +inf's), and they order like their patterns: integer compares and
    min/max, which compile to SIMD (float min/max do not, because of NaN). The first block
    with a bad price ends the scan.
    """
    low, high = FINITE_BITS, 0
    for b0 in range(lo, hi, CHECK_BLOCK):
        bad = False
        for i in range(b0, min(b0 + CHECK_BLOCK, hi)):
            p = bits[i]
            bad |= (p <= 0) | (p >= FINITE_BITS)
            low = min(low, p)
            high = max(high, p)
        if bad:
            return False, low, high
    return True, low, high


def price_range(price: np.ndarray) -> tuple[float, float] | None:
    """Compiled, one part per core: (lowest, highest) price when every price is finite
    and positive, else None (the caller then checks and counts the bad rows)."""
    if price.shape[0] == 0:
        return None
    kernel = _compiled(price_range_py)
    bits = price.view(np.int64)
    parts = run_all([partial(kernel, bits, a, b) for a, b in split(0, bits.shape[0])])
    if not all(part[0] for part in parts):
        return None
    extremes = np.array([min(p[1] for p in parts), max(p[2] for p in parts)], dtype=np.int64)
    low, high = extremes.view(np.float64).tolist()
    return low, high


@cache
def _compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    return compiled(function)


@cache
def _kernel() -> Callable[..., Any]:
    return compiled(fill_prints_py)


@cache
def _state_kernel() -> Callable[..., Any]:
    return compiled(tick_state_py)


def _minute_parts(starts: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges [m0, m1) of about equal print counts, one per core (see analytics.compiled)."""
    rows = starts.shape[0] - 1
    cuts = [a for a, _ in split(int(starts[0]), int(starts[-1]))][1:]
    edges = np.searchsorted(starts, cuts).tolist() if cuts else []
    bounds = sorted({0, rows, *(min(max(int(e), 0), rows) for e in edges)})
    return list(pairwise(bounds))


def fill_prints(
    price: np.ndarray,
    size: np.ndarray,
    side: np.ndarray | None,
    bid: np.ndarray | None,
    ask: np.ndarray | None,
    starts: np.ndarray,
    row_size: float,
    first_bin: int,
    grids: tuple[np.ndarray, np.ndarray, np.ndarray],
    state: tuple[float, int],
    ns: np.ndarray | None = None,
    bars: np.ndarray | None = None,
) -> tuple[float, int]:
    """Add the prints to 2-D (minutes × bins) grids; optional arrays may be None.

    bars: minutes × BAR_SUMS, where each minute's sums are written (``analytics.bar_stats``;
    None: not wanted). Compiled (:func:`fill_prints_py`) or numpy, as
    ``analytics.compiled.use_compiled`` says.
    ns: the prints' times when their order and sizes are still to be checked (the pass
    reads them anyway); raises :class:`PrintsFailedCheck` when one fails.
    """
    volume, signed, count = grids
    n_bins = volume.shape[1]
    if bars is None:
        bars = np.empty((volume.shape[0], BAR_SUMS))
    if not use_compiled(int(starts[-1] - starts[0])):
        if ns is not None and not _numpy_check(ns, size, int(starts[0]), int(starts[-1])):
            raise PrintsFailedCheck
        return _fill_numpy(
            price, size, side, bid, ask, starts, row_size, first_bin, (*grids, bars), state
        )
    kernel, optional = _kernel(), [_NONE if a is None else a for a in (side, bid, ask)]
    inverse = 1.0 / row_size
    # minutes fill disjoint rows: each part starts from the tick-rule state before its
    # first print, so the parts run at once and add exactly what one pass would
    parts = _minute_parts(starts)
    first = int(starts[0])
    states = [(float(state[0]), int(state[1]))]
    for m0, _ in parts[1:]:
        states.append(_state_kernel()(price, first, int(starts[m0]), *states[0]))

    times = _NONE_NS if ns is None else ns

    def part(m0: int, m1: int, before: tuple[float, int]) -> tuple[float, int, bool]:
        rows = slice(m0, m1)
        result: tuple[float, int, bool] = kernel(
            price,
            size,
            *optional,
            starts[m0 : m1 + 1],
            inverse,
            first_bin,
            n_bins,
            volume[rows].reshape(-1),
            signed[rows].reshape(-1),
            count[rows].reshape(-1),
            bars[rows],
            *before,
            times,
        )
        return result

    calls = [partial(part, m0, m1, b) for (m0, m1), b in zip(parts, states, strict=True)]
    results = run_all(calls)
    if any(fault for _, _, fault in results):
        raise PrintsFailedCheck
    last_price, last_sign, _ = results[-1]
    return float(last_price), int(last_sign)


class PrintsFailedCheck(Exception):
    """Prints handed to :func:`fill_prints` unchecked were out of time order or had a
    size that is not finite and positive; the grids are to be thrown away."""


def _numpy_check(ns: np.ndarray, size: np.ndarray, t0: int, t1: int) -> bool:
    """The checks of the compiled pass, for prints [t0, t1): in time order from the print
    before t0, every size finite and positive."""
    times = ns[max(t0 - 1, 0) : t1]
    sizes = size[t0:t1]
    return bool((times[1:] >= times[:-1]).all() and (sizes > 0).all() and np.isfinite(sizes).all())


def _fill_numpy(
    price: np.ndarray,
    size: np.ndarray,
    side: np.ndarray | None,
    bid: np.ndarray | None,
    ask: np.ndarray | None,
    starts: np.ndarray,
    row_size: float,
    first_bin: int,
    grids: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    state: tuple[float, int],
) -> tuple[float, int]:
    """The same sums with numpy: classify, bin, one bincount per grid and chunk.

    Chunks hold whole minutes, so each cell's sums come from one bincount in print order
    (the kernel's adds, in the kernel's order); the tick rule carries from chunk to chunk.
    """
    volume, signed, count, bars = grids
    rows, n_bins = volume.shape
    bounds = starts.tolist()
    inverse = 1.0 / row_size
    after = AggressorState(*state)
    m0 = 0
    while m0 < rows:
        m1 = m0 + 1
        while m1 < rows and bounds[m1] - bounds[m0] < CHUNK_PRINTS:
            m1 += 1
        t0, t1 = bounds[m0], bounds[m1]
        if t1 > t0:
            chunk = slice(t0, t1)
            part = price[chunk]
            signs, after = classify(
                part,
                side=None if side is None else side[chunk],
                bid=None if bid is None else bid[chunk],
                ask=None if ask is None else ask[chunk],
                state=after,
            )
            scaled = part * inverse
            scaled += 0.5
            key = scaled.astype(np.int64)  # prices are positive: truncation is the floor
            key -= first_bin
            for m in range(m0 + 1, m1):
                lo, hi = bounds[m] - t0, bounds[m + 1] - t0
                if hi > lo:
                    key[lo:hi] += (m - m0) * n_bins
            cells = (m1 - m0) * n_bins
            weights = np.multiply(size[chunk], signs, dtype=np.float64)
            for grid, w in ((volume, size[chunk]), (signed, weights), (count, None)):
                grid[m0:m1] += np.bincount(key, weights=w, minlength=cells).reshape(-1, n_bins)
            _bar_sums(part, size[chunk], weights, bounds[m0 : m1 + 1], bars[m0:m1])
        m0 = m1
    return after.last_price, after.last_sign


def _bar_sums(
    price: np.ndarray, size: np.ndarray, flow: np.ndarray, bounds: list[int], bars: np.ndarray
) -> None:
    """The kernel's per-minute sums of a chunk of whole minutes (``bounds`` from the
    chunk's first print), each a sum in print order as the kernel adds it."""
    t0 = bounds[0]
    counts = np.diff(np.asarray(bounds, dtype=np.int64))
    traded = np.flatnonzero(counts)
    if traded.size == 0:
        return
    minute = np.repeat(np.arange(counts.size), counts)
    firsts = np.asarray(bounds[:-1], dtype=np.int64)[traded] - t0
    p0, w0 = np.zeros(counts.size), np.zeros(counts.size)
    p0[traded], w0[traded] = price[firsts], size[firsts]
    away_price = price - p0[minute]
    away = size * away_price
    shift = size - w0[minute]
    n = counts.size
    sums = [np.bincount(minute, weights=w, minlength=n) for w in (size, away, away * away_price)]
    sums += [np.bincount(minute, weights=w, minlength=n) for w in (shift, shift * shift)]
    for m in traded.tolist():
        running = np.cumsum(flow[bounds[m] - t0 : bounds[m + 1] - t0])  # added in print order
        bars[m, 0], bars[m, 1] = running.max(), running.min()
        bars[m, 9] = size[bounds[m] - t0 : bounds[m + 1] - t0].max()
    for column, values in zip((2, 3, 4, 5, 6, 7, 8), (*sums, p0, w0), strict=True):
        bars[traded, column] = values[traded]
