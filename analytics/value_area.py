"""The value-area walk of a block of profiles, vectorised: the numpy form of the rule.

From the POC the walk compares the next item below with the next item above and takes the
larger (tie → below) until the items taken reach what the value area still needs; an item
is one bin (``single``) or the next two bins (``dual``, fewer at the profile's edge).
Large blocks take the compiled per-row walk of ``analytics.profile_kernel`` instead
(``analytics.compiled`` says when); this form serves small ones without loading numba.

The greedy two-way merge takes item a_i (below) before b_j (above) exactly when
min(a_0..a_i) >= min(b_0..b_j), so a stable sort of both sides' running minima (below
first on ties) reproduces the walk order, and a cumulative sum finds where it reaches the
share. Both forms add the items one by one from 0.0 in walk order (a pair nearer bin
first) and compare with ``needed`` (the share of the total minus the POC's volume,
computed by the caller): the same floats, so the same columns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def walk_rows(
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    poc: np.ndarray,
    needed: np.ndarray,
    pair: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(val, vah) columns per row of a C-contiguous float64 rows × bins block.

    Rows are walked as far as the block's widest row could go, or, in wide blocks, as far
    as sampled neighbours needed (re-walked when that was too short)."""
    lo, hi, poc = (np.ascontiguousarray(a, dtype=np.int64) for a in (lo, hi, poc))
    below_len, above_len = poc - lo, hi - poc
    per = 2 if pair else 1
    # items per side: a dual item is two bins (the last one, at the edge, maybe one)
    widths = tuple(max(1, -(-int(side.max(initial=0)) // per)) for side in (below_len, above_len))
    n_rows, n_cols = volumes.shape
    full = (widths[0], widths[1])
    flat = volumes.reshape(-1)

    def walk(sel: np.ndarray, w: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _walk_numpy(
            flat, n_cols, sel, poc[sel], below_len[sel], above_len[sel], needed[sel], w, pair
        )

    if max(full) <= _GUESS_MIN_WIDTH or n_rows <= 2 * _GUESS_SAMPLE_EVERY:
        down, up, _ = walk(np.arange(n_rows), full)
    else:
        down, up = _walk_by_looks(walk, n_rows, full)
    if pair:
        # every item is two bins except, at the profile's edge, the last one
        return poc - np.minimum(2 * down, below_len), poc + np.minimum(2 * up, above_len)
    return poc - down, poc + up


def _side_items(
    flat: np.ndarray,
    first_index: np.ndarray,
    step: int,
    length: np.ndarray,
    width: int,
    pair: bool,
    out: np.ndarray,
) -> np.ndarray:
    """Items walked away from the POC on one side, written into ``out``; returns validity.

    flat: the block raveled; first_index: flat index of the bin next to each row's POC;
    step: -1 below, +1 above; length: bins on that side inside the profile. Reads past a
    row's range land on zero bins or, at the block's edge, another row: those items are
    invalid (and masked by the caller) or, for a dual pair's second bin, zeroed here.
    """
    per = 2 if pair else 1
    k = np.arange(width * per, dtype=np.int64)
    index = first_index[:, None] + step * k[None, :]
    if not pair:
        np.take(flat, index, mode="clip", out=out)
        return k[None, :] < length[:, None]
    bins = np.take(flat, index, mode="clip")
    bins[k[None, :] >= length[:, None]] = 0.0
    np.add(bins[:, 0::2], bins[:, 1::2], out=out)
    return (2 * k[None, :width]) < length[:, None]


def _walk_numpy(
    flat: np.ndarray,
    n_cols: int,
    rows: np.ndarray,
    poc: np.ndarray,
    below_len: np.ndarray,
    above_len: np.ndarray,
    needed: np.ndarray,
    widths: tuple[int, int],
    pair: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items taken below and above the POC for ``rows``, looking ``widths`` items each side.

    widths: (items looked at below, items looked at above); each side gets its own, so a
    profile whose POC sits near one edge does not pay the long side's width twice.
    Returns (down_items, up_items, exact): a row is exact unless the walk used up a side
    that has more items than it looked at (then a wider look is needed).
    """
    n_rows = rows.shape[0]
    wb, wa = widths
    # items: columns [0, wb) below the POC (walking down), [wb, wb + wa) above it
    values = np.empty((n_rows, wb + wa))
    at_poc = rows * n_cols + poc
    below_ok = _side_items(flat, at_poc - 1, -1, below_len, wb, pair, values[:, :wb])
    above_ok = _side_items(flat, at_poc + 1, +1, above_len, wa, pair, values[:, wb:])

    # sort key: minus the running minimum of each side (see module docstring); a side's
    # missing items get +inf so the walk never takes them
    key = np.negative(values)
    np.copyto(key[:, :wb], np.inf, where=~below_ok)
    np.copyto(key[:, wb:], np.inf, where=~above_ok)
    np.maximum.accumulate(key[:, :wb], axis=1, out=key[:, :wb])
    np.maximum.accumulate(key[:, wb:], axis=1, out=key[:, wb:])
    order = np.argsort(key, axis=1, kind="stable")  # stable: below wins ties
    del key
    walked = np.take_along_axis(values, order, axis=1)
    np.cumsum(walked, axis=1, out=walked)

    reached = walked >= needed[:, None]
    steps = np.argmax(reached, axis=1) + 1
    steps[needed <= 0] = 0
    # items of one side are taken in order, so the last item taken tells the split
    last = order[np.arange(n_rows), np.maximum(steps - 1, 0)]
    down_items = np.where(last < wb, last + 1, steps - (last - wb + 1))
    down_items[steps == 0] = 0
    up_items = steps - down_items
    per = 2 if pair else 1
    exact = (needed <= 0) | reached[:, -1]
    exact &= (below_len <= per * wb) | (down_items < wb)
    exact &= (above_len <= per * wa) | (up_items < wa)
    return down_items, up_items, exact


# Wide blocks (a session's running profiles) first walk a sample of rows at full width and
# then every row only as far as the sampled rows around it needed plus a margin, rows
# grouped by that look (rounded up a ladder of sizes); rows that hit their limit are walked
# again at full width. The answer never depends on the guess.
_GUESS_MIN_WIDTH = 192
_GUESS_SAMPLE_EVERY = 16
_LOOK_MARGIN = 1.1
_LOOK_LADDER = 1.5  # ratio between the look sizes rows are grouped by


def _walk_by_looks(
    walk: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_rows: int,
    full: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(down_items, up_items) of every row, walking groups of rows only as far as needed."""
    rows = np.arange(n_rows)
    sample = np.unique(np.append(rows[::_GUESS_SAMPLE_EVERY], n_rows - 1))
    sampled_down, sampled_up, _ = walk(sample, full)
    # each row's guess: the larger walk of the sampled rows on either side of it
    before = np.searchsorted(sample, rows, side="right") - 1
    after = np.minimum(before + 1, sample.size - 1)
    looks = []
    for sampled, limit in ((sampled_down, full[0]), (sampled_up, full[1])):
        guess = np.maximum(sampled[before], sampled[after]) * _LOOK_MARGIN + 32
        step = np.ceil(np.log(guess / 32) / np.log(_LOOK_LADDER))
        looks.append(np.minimum(limit, np.ceil(32 * _LOOK_LADDER**step)).astype(np.int64))
    down = np.empty(n_rows, dtype=np.int64)
    up = np.empty(n_rows, dtype=np.int64)
    again = []
    pairs, group = np.unique(np.stack(looks, axis=1), axis=0, return_inverse=True)
    group = group.ravel()
    for g, (look_down, look_up) in enumerate(pairs.tolist()):
        sel = np.flatnonzero(group == g)
        down[sel], up[sel], exact = walk(sel, (look_down, look_up))
        if (look_down, look_up) != full:
            again.append(sel[~exact])
    redo = np.concatenate(again) if again else rows[:0]
    if redo.size:
        down[redo], up[redo], _ = walk(redo, full)
    return down, up
