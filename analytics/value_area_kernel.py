"""The value-area walk of a block of profiles, compiled: one loop per row.

From the POC the walk compares the next item below with the next item above and takes the
larger (tie → below) until the items taken reach what the value area still needs; an item
is one bin (``single``) or the next two bins (``dual``, fewer at the profile's edge). A
session's running profiles are wide (thousands of bins) and each walk covers 70 % of the
volume, so a per-row loop that stops where the walk stops does less work than any
vectorised form, which must look at every item a walk could take.

The sums are the vectorised form's: items added one by one from 0.0 in walk order and
compared with ``needed`` (the share of the total minus the POC's volume, computed by the
caller), a pair added nearer bin first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from analytics.jit import compiled


def walk_rows_py(
    flat: np.ndarray,
    n_cols: int,
    lo: np.ndarray,
    hi: np.ndarray,
    poc: np.ndarray,
    needed: np.ndarray,
    per: int,
    val: np.ndarray,
    vah: np.ndarray,
) -> None:
    """Write each row's value-area low and high column into ``val`` / ``vah``.

    flat: the rows × n_cols block raveled; lo/hi/poc: columns of each row's range and POC;
    needed: volume the items must add to the POC's; per: bins per item (1 or 2).
    This is the kernel's source: compiled by :func:`walk_rows`, plain Python otherwise.
    """
    for r in range(lo.shape[0]):
        base = r * n_cols
        first, last = lo[r], hi[r]
        down = up = poc[r]
        need = needed[r]
        covered = 0.0
        while need > 0 and (down > first or up < last):
            below = above = 0.0
            if down > first:
                below = flat[base + down - 1]
                if per == 2 and down - 2 >= first:
                    below = below + flat[base + down - 2]
            if up < last:
                above = flat[base + up + 1]
                if per == 2 and up + 2 <= last:
                    above = above + flat[base + up + 2]
            if down > first and (up >= last or below >= above):
                covered += below
                down = max(first, down - per)
            else:
                covered += above
                up = min(last, up + per)
            if covered >= need:
                break
        val[r] = down
        vah[r] = up


@cache
def _kernel() -> Callable[..., Any]:
    return compiled(walk_rows_py)


def walk_rows(
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    poc: np.ndarray,
    needed: np.ndarray,
    pair: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(val, vah) columns per row of a C-contiguous float64 rows × bins block."""
    n_rows, n_cols = volumes.shape
    val = np.empty(n_rows, dtype=np.int64)
    vah = np.empty(n_rows, dtype=np.int64)
    _kernel()(
        volumes.reshape(-1),
        n_cols,
        np.ascontiguousarray(lo, dtype=np.int64),
        np.ascontiguousarray(hi, dtype=np.int64),
        np.ascontiguousarray(poc, dtype=np.int64),
        np.ascontiguousarray(needed, dtype=np.float64),
        2 if pair else 1,
        val,
        vah,
    )
    return val, vah
