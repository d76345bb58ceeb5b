"""LVN/HVN runs of a block of profiles, compiled: one scan per row.

A node is a run of consecutive bins inside a profile's [lo, hi] range whose volume is
below the row's LVN limit (or above its HVN limit). The vectorised form
(``analytics.profile.node_runs``) builds two boolean grids and a padded copy per flag and
finds the runs' edges with ``nonzero``; on a session's running profiles (hundreds of rows
× thousands of bins) that was most of the metrics' time. The compiled scan reads each
bin once and writes the runs directly, in the same row-major order.

The limits are computed by the caller with numpy (``LVN_FACTOR * mean`` per row), so
both forms compare the same floats and find the same runs. Small blocks take the numpy
form (``analytics.jit`` says why).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from analytics.jit import compiled


def scan_runs_py(
    flat: np.ndarray,
    n_cols: int,
    lo: np.ndarray,
    hi: np.ndarray,
    low_limit: np.ndarray,
    high_limit: np.ndarray,
    low_runs: np.ndarray,
    high_runs: np.ndarray,
) -> tuple[int, int]:
    """Write (row, first, last column) of each LVN run into ``low_runs`` and of each HVN
    run into ``high_runs`` (k × 3, large enough); returns how many of each.

    flat: the rows × n_cols block raveled; a bin is an LVN bin when its volume is below
    ``low_limit[row]``, an HVN bin when above ``high_limit[row]``.
    This is the kernel's source: compiled by :func:`scan_runs`, plain Python otherwise.
    """
    n_low = 0
    n_high = 0
    for r in range(lo.shape[0]):
        base = r * n_cols
        low, high = low_limit[r], high_limit[r]
        low_from = -1
        high_from = -1
        for c in range(lo[r], hi[r] + 1):
            v = flat[base + c]
            if v < low:
                if low_from < 0:
                    low_from = c
            elif low_from >= 0:
                low_runs[n_low, 0], low_runs[n_low, 1], low_runs[n_low, 2] = r, low_from, c - 1
                n_low += 1
                low_from = -1
            if v > high:
                if high_from < 0:
                    high_from = c
            elif high_from >= 0:
                high_runs[n_high, 0], high_runs[n_high, 1] = r, high_from
                high_runs[n_high, 2] = c - 1
                n_high += 1
                high_from = -1
        if low_from >= 0:
            low_runs[n_low, 0], low_runs[n_low, 1], low_runs[n_low, 2] = r, low_from, hi[r]
            n_low += 1
        if high_from >= 0:
            high_runs[n_high, 0], high_runs[n_high, 1], high_runs[n_high, 2] = r, high_from, hi[r]
            n_high += 1
    return n_low, n_high


@cache
def _kernel() -> Callable[..., Any]:
    return compiled(scan_runs_py)


def scan_runs(
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    low_limit: np.ndarray,
    high_limit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(LVN runs, HVN runs) of a C-contiguous float64 rows × bins block, compiled.

    Each is a k × 3 int64 array of (row, first column, last column) in row-major order.
    """
    n_cols = volumes.shape[1]
    # a row of width w holds at most ceil(w / 2) runs of either kind
    capacity = int(((hi - lo + 2) // 2).clip(min=0).sum())
    low_runs = np.empty((capacity, 3), dtype=np.int64)
    high_runs = np.empty((capacity, 3), dtype=np.int64)
    n_low, n_high = _kernel()(
        volumes.reshape(-1),
        n_cols,
        np.ascontiguousarray(lo, dtype=np.int64),
        np.ascontiguousarray(hi, dtype=np.int64),
        np.ascontiguousarray(low_limit, dtype=np.float64),
        np.ascontiguousarray(high_limit, dtype=np.float64),
        low_runs,
        high_runs,
    )
    return low_runs[:n_low], high_runs[:n_high]
