"""Low- and high-volume nodes of many profiles in one compiled pass (docs/semantics.md).

A profile is a row of a minute × bin grid over its [lo, hi] range, or, for the running
session, the sum of the grid's rows so far, kept in one bins-long vector as in
``analytics.profile_kernel``. Per profile the pass smooths the volumes with a centred
moving average applied twice, whose half-width scales with the profile
(``smoothing_half_width``), finds
the smoothed profile's interior valleys (LVN) and peaks (HVN), measures each one's
prominence, keeps those of at least ``prominence`` × the smoothed profile's POC volume (its
highest value: a fine-rowed profile's raw POC is a spike) and picks, strongest
first, at most ``count`` of each kind that lie ``separation`` × the profile's rows apart.

The rule's numpy form is ``analytics.nodes`` (small inputs, ``analytics.compiled`` says
why); both give the same nodes and the same prominences, bit for bit:

* smoothing, twice (on the volumes, then on the result): running sums ``c`` added one
  by one from the lowest bin, then ``(c[right] − c[left − 1]) × (1 / (right − left + 1))``
  with ``left = max(0, i − h)``, ``right = min(n − 1, i + h)`` (``c[−1]`` is 0.0);
* extrema: maximal runs of equal smoothed values with lower (peak) or higher (valley)
  neighbours on both sides, reported at the run's middle (the lower of two);
* prominence (scipy's): from the run, walk each way while the values stay at or below a
  peak (at or above a valley), keeping the lowest (highest) value met; the prominence is
  the peak minus the higher of the two (the lower of the two minus the valley). The
  kernel walks both ways in step, drops a candidate as soon as one finished side shows
  it cannot reach the minimum, and stops the other side once it has gone below the
  finished side's base (the higher base is then known); the numpy form measures every
  candidate in full and keeps the same ones;
* extent: the bins around the node within half its prominence of it;
* selection: by prominence, ties to the lower bin.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from analytics.compiled import compiled

# the smoothing window's half-width is one bin per this many bins of the profile (at least 1);
# the moving average is applied twice (a triangular window): one pass leaves ripples of its
# own width on a noisy profile, which would all be candidates to measure
SMOOTHING_DIVISOR = 80
LVN, HVN = 0, 1  # node kinds, as written in the runs' first column


def smoothing_half_width(n_bins: int) -> int:
    return max(1, n_bins // SMOOTHING_DIVISOR)


def separation_bins(separation: float, n_bins: int) -> int:
    return max(1, int(separation * n_bins))


def node_rows_py(
    grid: np.ndarray,
    n_cols: int,
    rows: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    running: np.ndarray,
    add_lo: np.ndarray,
    add_hi: np.ndarray,
    first: int,
    count: int,
    prominence: float,
    separation: float,
    out: np.ndarray,
    out_prominence: np.ndarray,
    n_out: np.ndarray,
    scratch: np.ndarray,
    picked: np.ndarray,
    cand_prom: np.ndarray,
) -> None:
    """Nodes of profiles ``first``.. (earlier ones are only added to ``running``).

    grid, rows, lo, hi, running, add_lo, add_hi: as ``analytics.profile_kernel``.
    Writes (kind, k, centre, low, high) rows of ``out`` and their prominences from
    n_out[0] on, LVNs then HVNs per profile, each kind by bin; ``out`` holds
    2 × count rows per profile. scratch: float64 (2, n_cols); picked / cand_prom: int64 /
    float64 (2, n_cols), the candidates of each kind.
    This is the kernel's source: compiled by :func:`node_rows`, plain Python otherwise.
    """
    accumulate = running.shape[0] > 0
    written = n_out[0]
    prefix, smooth = scratch[0], scratch[1]
    for k in range(rows.shape[0]):
        a, b = lo[k], hi[k]
        if accumulate:
            base = 0
            values = running
            r = rows[k] * n_cols
            for c in range(add_lo[k], add_hi[k] + 1):
                running[c] += grid[r + c]
        else:
            base = rows[k] * n_cols
            values = grid
        n = b - a + 1
        if k < first or n < 3:
            continue
        # the smoothed profile: the moving average twice (the edges' windows cut short)
        h = max(1, n // SMOOTHING_DIVISOR)
        for rounds in range(2):
            total = 0.0
            if rounds == 0:
                for i in range(n):
                    total += values[base + a + i]
                    prefix[i] = total
            else:
                for i in range(n):
                    total += smooth[i]
                    prefix[i] = total
            # the low edge (windows from bin 0), the interior (windows of 2h + 1 bins: one
            # reciprocal instead of a division per bin), the high edge (windows to bin n - 1)
            for i in range(h + 1):
                right = min(n - 1, i + h)
                smooth[i] = prefix[right] * (1.0 / (right + 1))
            scale = 1.0 / (2 * h + 1)
            for i in range(h + 1, n - h):
                smooth[i] = (prefix[i + h] - prefix[i - h - 1]) * scale
            for i in range(max(h + 1, n - h), n):
                left = i - h
                smooth[i] = (prefix[n - 1] - prefix[left - 1]) * (1.0 / (n - left))
        top = 0.0
        for i in range(n):
            top = max(top, smooth[i])
        need = prominence * top
        gap = max(1, int(separation * n))
        # candidates: interior runs of equal values with lower (peak) or higher (valley)
        # neighbours on both sides, kept when prominent enough; a valley is a peak of the
        # negated profile (negation is exact)
        found = np.zeros(2, dtype=np.int64)
        i = 0
        while i < n:
            j = i
            while j + 1 < n and smooth[j + 1] == smooth[i]:
                j += 1
            kind = -1
            if i > 0 and j < n - 1:
                if smooth[i - 1] < smooth[i] and smooth[j + 1] < smooth[i]:
                    kind = HVN
                elif smooth[i - 1] > smooth[i] and smooth[j + 1] > smooth[i]:
                    kind = LVN
            if kind >= 0:
                sign = 1.0 if kind == HVN else -1.0
                x = sign * smooth[i]
                # both sides walked a step at a time: a side that ends (at a higher value
                # or the edge) with its base too close below x bounds the prominence under
                # ``need`` already, so a ripple costs only its short side
                left, right = i - 1, j + 1
                left_base = right_base = x
                left_done = right_done = too_small = False
                while not (left_done and right_done) and not too_small:
                    if not left_done:
                        v = sign * smooth[left]
                        if v > x:
                            left_done = True
                        else:
                            left_base = min(left_base, v)
                            left -= 1
                            # below the finished side's base: the rest cannot matter
                            left_done = left < 0 or (right_done and left_base <= right_base)
                        too_small = left_done and x - left_base < need
                    if not right_done and not too_small:
                        v = sign * smooth[right]
                        if v > x:
                            right_done = True
                        else:
                            right_base = min(right_base, v)
                            right += 1
                            right_done = right >= n or (left_done and right_base <= left_base)
                        too_small = right_done and x - right_base < need
                prom = x - max(left_base, right_base)
                if not too_small and prom >= need:
                    picked[kind, found[kind]] = (i + j) // 2
                    cand_prom[kind, found[kind]] = prom
                    found[kind] += 1
            i = j + 1
        for kind in range(2):
            sign = 1.0 if kind == HVN else -1.0
            # strongest first (ties: the lower bin), each far enough from those kept
            first_kept = written
            while written - first_kept < count:
                best = -1
                for c in range(found[kind]):
                    if cand_prom[kind, c] >= 0 and (
                        best < 0
                        or cand_prom[kind, c] > cand_prom[kind, best]
                        or (
                            cand_prom[kind, c] == cand_prom[kind, best]
                            and picked[kind, c] < picked[kind, best]
                        )
                    ):
                        best = c
                if best < 0:
                    break
                centre, prom = picked[kind, best], cand_prom[kind, best]
                cand_prom[kind, best] = -1.0
                near = False
                for q in range(first_kept, written):
                    near |= abs(out[q, 2] - (a + centre)) < gap
                if near:
                    continue
                reach = sign * smooth[centre] - prom * 0.5
                low = high = centre
                while low > 0 and sign * smooth[low - 1] >= reach:
                    low -= 1
                while high < n - 1 and sign * smooth[high + 1] >= reach:
                    high += 1
                out[written, 0], out[written, 1], out[written, 2] = kind, k, a + centre
                out[written, 3], out[written, 4] = a + low, a + high
                out_prominence[written] = prom
                written += 1
            # by bin within the kind (insertion sort of a handful of rows)
            for q in range(first_kept + 1, written):
                p = q
                while p > first_kept and out[p - 1, 2] > out[p, 2]:
                    for col in range(5):
                        out[p - 1, col], out[p, col] = out[p, col], out[p - 1, col]
                    swap = out_prominence[p - 1]
                    out_prominence[p - 1] = out_prominence[p]
                    out_prominence[p] = swap
                    p -= 1
    n_out[0] = written


@cache
def _kernel() -> Callable[..., Any]:
    return compiled(node_rows_py)


def node_rows(
    grid: np.ndarray,
    rows: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    rule: tuple[int, float, float],
    first: int = 0,
    running: np.ndarray | None = None,
    add: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled: nodes as (kind, k, centre, low, high) rows and their prominences.

    grid: C-contiguous float64 rows × bins; profiles as ``analytics.profile_kernel``'s
    (``running`` is updated in place). rule: (count, prominence, separation).
    first: nodes only of profiles first.. (the earlier ones still add to ``running``).
    """
    count, prominence, separation = rule
    as_int = [np.ascontiguousarray(a, dtype=np.int64) for a in (rows, lo, hi)]
    if running is None:
        running = np.zeros(0)
        add = (as_int[1], as_int[2])
    assert add is not None
    add_lo, add_hi = (np.ascontiguousarray(a, dtype=np.int64) for a in add)
    n = as_int[0].shape[0]
    capacity = max(0, n - first) * 2 * count
    out = np.empty((capacity, 5), dtype=np.int64)
    out_prominence = np.empty(capacity)
    n_out = np.zeros(1, dtype=np.int64)
    n_cols = grid.shape[1]
    _kernel()(
        grid.reshape(-1), n_cols, *as_int, running, add_lo, add_hi, first, count,
        float(prominence), float(separation), out, out_prominence, n_out,
        np.empty((2, max(n_cols, 1))), np.empty((2, max(n_cols, 1)), dtype=np.int64),
        np.empty((2, max(n_cols, 1))),
    )  # fmt: skip
    return out[: int(n_out[0])], out_prominence[: int(n_out[0])]
