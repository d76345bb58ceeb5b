"""Metrics of many profiles in one compiled pass: total, POC and value area.

A profile is a row of a minute × bin grid over its [lo, hi] range, or, for the running
session, the sum of the grid's rows so far: the kernel keeps that running profile in one
bins-long vector and adds each minute's traded range to it, so a session's running
profiles are never laid out as a second grid. Per profile it reads the range twice
(total with the POC, then the LVN/HVN runs) and walks the value area from the POC.

The rules are the ones of ``analytics.profile`` (docs/semantics.md), which holds their
numpy form for small inputs (``analytics.compiled`` says why); both give the same numbers:

* total: the bins added one by one from the lowest (``np.cumsum`` along the row there);
* POC: the largest bin, ties to the one nearest the range's middle, then the lower;
* value area: ``needed = 0.7 × total − 1e-9 × total − POC volume``, then the walk of
  ``analytics.value_area`` adding items from 0.0 in walk order.

Every operation is a plain float64 add, multiply, divide or compare (numba compiles
without fast-math, so nothing is fused), hence the same floats as numpy's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from analytics.compiled import compiled

VALUE_AREA_SHARE = 0.70
VALUE_AREA_SLACK = 1e-9  # 70 % exactly counts as reached (float tolerance)


def profile_rows_py(
    grid: np.ndarray,
    n_cols: int,
    rows: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    running: np.ndarray,
    add_lo: np.ndarray,
    add_hi: np.ndarray,
    per: int,
    out_int: np.ndarray,
    total: np.ndarray,
) -> None:
    """Metrics of every profile.

    grid: rows × n_cols raveled. Profile k is ``grid[rows[k]]`` over [lo[k], hi[k]], or,
    when ``running`` is not empty, the running profile after adding grid row rows[k]'s
    columns [add_lo[k], add_hi[k]] to it (``running`` is updated in place; rows between
    two profiles must be empty). per: bins per value-area item (1 single, 2 dual).
    Writes out_int[k] = (poc, val, vah) and total[k].
    This is the kernel's source: compiled by :func:`profile_rows`, plain Python otherwise.
    """
    accumulate = running.shape[0] > 0
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
        # total (bins added from the lowest) and POC (ties: nearest the middle, then lower)
        sum_ = 0.0
        poc = a
        top = values[base + a]
        twice_mid = a + b
        for c in range(a, b + 1):
            v = values[base + c]
            sum_ += v
            if v > top or (v == top and abs(2 * c - twice_mid) < abs(2 * poc - twice_mid)):
                top = v
                poc = c
        total[k] = sum_
        # value area: from the POC, the larger next item (tie: below) until it holds enough
        need = VALUE_AREA_SHARE * sum_ - VALUE_AREA_SLACK * sum_ - top
        down = up = poc
        covered = 0.0
        while need > 0 and (down > a or up < b):
            below = above = 0.0
            if down > a:
                below = values[base + down - 1]
                if per == 2 and down - 2 >= a:
                    below = below + values[base + down - 2]
            if up < b:
                above = values[base + up + 1]
                if per == 2 and up + 2 <= b:
                    above = above + values[base + up + 2]
            if down > a and (up >= b or below >= above):
                covered += below
                down = max(a, down - per)
            else:
                covered += above
                up = min(b, up + per)
            if covered >= need:
                break
        out_int[k, 0], out_int[k, 1], out_int[k, 2] = poc, down, up


@cache
def _kernel() -> Callable[..., Any]:
    return compiled(profile_rows_py)


def profile_rows(
    grid: np.ndarray,
    rows: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    pair: bool,
    running: np.ndarray | None = None,
    add: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled: (total, poc/val/vah columns as k × 3).

    grid: C-contiguous float64 rows × bins. Without ``running``: profile k is grid row
    rows[k] over [lo[k], hi[k]]. With it (a bins-long vector, updated in place): profile
    k is the running profile after adding row rows[k]'s columns add[0][k]..add[1][k].
    """
    n = rows.shape[0]
    as_int = [np.ascontiguousarray(a, dtype=np.int64) for a in (rows, lo, hi)]
    if running is None:
        running = np.zeros(0)
        add = (as_int[1], as_int[2])
    assert add is not None
    add_lo, add_hi = (np.ascontiguousarray(a, dtype=np.int64) for a in add)
    out_int = np.empty((n, 3), dtype=np.int64)
    total = np.empty(n)
    _kernel()(
        grid.reshape(-1), grid.shape[1], *as_int, running, add_lo, add_hi,
        2 if pair else 1, out_int, total,
    )  # fmt: skip
    return total, out_int
