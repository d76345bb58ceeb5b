"""Volume-profile metrics (docs/semantics.md): POC, value area (single / dual), LVN and HVN.

A profile is a dense array of bin volumes covering every bin from its lowest to its highest
traded bin, empty bins included. The functions work on a block of profiles at once (rows ×
bins with a per-row [lo, hi] range) so the per-minute and running-session horizons are a
handful of numpy calls rather than a Python loop per minute; the one-profile helpers call
the same block code, so there is one implementation of each rule.

Value-area walk without a loop: from the POC the walk compares the next item below with
the next item above and takes the larger (tie → below); an item is a single bin
(``"single"``) or the sum of the next two bins (``"dual"``, the Dalton/CBOT TPO rule). That
greedy two-way merge takes item a_i (below) before b_j (above) exactly when
min(a_0..a_i) >= min(b_0..b_j): the walk is blocked on a side by that side's smallest item
so far. So a stable sort of both sides' running minima (below first on ties) reproduces
the walk order, and a cumulative sum finds where it reaches 70 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VALUE_AREA_SHARE = 0.70
LVN_FACTOR = 0.3  # LVN: bin volume < 0.3 × mean bin volume over the profile's range
HVN_FACTOR = 1.5  # HVN: bin volume > 1.5 × mean
METHODS = ("single", "dual")
# rows × bins handled per numpy block: bounds memory on wide profiles (cheap rows) while
# keeping the per-call overhead negligible on narrow ones
BLOCK_CELLS = 1 << 20


@dataclass(frozen=True)
class Nodes:
    """Runs of consecutive flagged bins: row, first and last column of each run."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass(frozen=True)
class BlockMetrics:
    """Metrics of a block of profiles; columns are bin offsets into the block."""

    total: np.ndarray  # float64 per row
    poc: np.ndarray  # int64 column per row
    val: np.ndarray  # int64 column (value-area low) per row
    vah: np.ndarray  # int64 column (value-area high) per row
    lvns: Nodes
    hvns: Nodes


def check_method(method: str) -> None:
    """Raise ValueError naming the choices when ``method`` is not a value-area method."""
    if method not in METHODS:
        raise ValueError(f"value-area method must be one of {METHODS}, got {method!r}")


def poc_columns(volumes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Column of the largest bin per row; tie → closest to the range's middle, then lower."""
    poc = np.argmax(volumes, axis=1).astype(np.int64)  # the lowest of the maxima
    is_max = volumes == volumes[np.arange(volumes.shape[0]), poc][:, None]
    tied = np.flatnonzero(np.count_nonzero(is_max, axis=1) > 1)
    if tied.size:
        cols = np.arange(volumes.shape[1], dtype=np.int64)
        # distance to the middle in half-bins keeps it an exact integer
        dist = np.abs(2 * cols[None, :] - (lo[tied] + hi[tied])[:, None])
        width = 2 * volumes.shape[1] + 2
        score = np.where(is_max[tied], dist * width + cols[None, :], np.iinfo(np.int64).max)
        poc[tied] = np.argmin(score, axis=1)
    return poc


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


def _walk(
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


def _walk_by_looks(walk, n_rows: int, full: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
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


def value_area_columns(
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    poc: np.ndarray,
    method: str = "single",
    share: float = VALUE_AREA_SHARE,
    total: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(val, vah) columns per row: the walk from the POC until >= ``share`` of the total."""
    check_method(method)
    volumes = np.ascontiguousarray(volumes, dtype=np.float64)
    n_rows, n_cols = volumes.shape
    rows = np.arange(n_rows)
    below_len = poc - lo
    above_len = hi - poc
    pair = method == "dual"
    per = 2 if pair else 1
    # items per side: a dual item is two bins (the last one, at the edge, maybe one)
    down_w, up_w = (max(1, -(-int(side.max(initial=0)) // per)) for side in (below_len, above_len))
    full = (down_w, up_w)
    if total is None:
        total = volumes.sum(axis=1)
    # what the walk must add to the POC; 70 % exactly counts as reached (float tolerance)
    needed = share * total - 1e-9 * total - volumes[rows, poc]
    flat = volumes.ravel()

    def walk(sel: np.ndarray, w: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _walk(
            flat, n_cols, sel, poc[sel], below_len[sel], above_len[sel], needed[sel], w, pair
        )

    if max(full) <= _GUESS_MIN_WIDTH or n_rows <= 2 * _GUESS_SAMPLE_EVERY:
        down, up, _ = walk(rows, full)
    else:
        down, up = _walk_by_looks(walk, n_rows, full)
    if pair:
        # every item is two bins except, at the profile's edge, the last one
        return poc - np.minimum(2 * down, below_len), poc + np.minimum(2 * up, above_len)
    return poc - down, poc + up


def node_runs(flags: np.ndarray) -> Nodes:
    """Runs of consecutive True columns per row (row-major order)."""
    n_rows = flags.shape[0]
    padded = np.zeros((n_rows, flags.shape[1] + 2), dtype=bool)
    padded[:, 1:-1] = flags
    # a run's edges in row-major order alternate start, end (+1): one nonzero finds both
    rows, edges = np.nonzero(padded[:, 1:] != padded[:, :-1])
    return Nodes(
        row=rows[0::2], start=edges[0::2].astype(np.int64), end=edges[1::2].astype(np.int64) - 1
    )


def block_metrics(
    volumes: np.ndarray, lo: np.ndarray, hi: np.ndarray, method: str = "single"
) -> BlockMetrics:
    """Metrics of each row's profile over its columns [lo, hi]; rows need a positive total.

    Columns outside [lo, hi] must hold zero volume (they are outside the profile).
    """
    check_method(method)
    volumes = np.asarray(volumes, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    if volumes.ndim != 2 or volumes.shape[0] != lo.shape[0] or lo.shape != hi.shape:
        raise ValueError("volumes must be rows × bins with one lo/hi per row")
    n_rows, n_cols = volumes.shape
    if n_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        no_nodes = Nodes(empty, empty, empty)
        return BlockMetrics(np.zeros(0), empty, empty, empty, no_nodes, no_nodes)
    totals, pocs, vals, vahs = [], [], [], []
    lvn_parts: list[Nodes] = []
    hvn_parts: list[Nodes] = []
    chunk = max(1, BLOCK_CELLS // max(n_cols, 1))
    for first in range(0, n_rows, chunk):
        part = slice(first, min(first + chunk, n_rows))
        v, plo, phi = volumes[part], lo[part], hi[part]
        v, shift = _align(v, plo, phi)
        plo, phi = plo - shift, phi - shift
        total = v.sum(axis=1)
        poc = poc_columns(v, plo, phi)
        val, vah = value_area_columns(v, plo, phi, poc, method, total=total)
        cols = np.arange(v.shape[1])[None, :]
        in_range = (cols >= plo[:, None]) & (cols <= phi[:, None])
        mean = (total / (phi - plo + 1))[:, None]
        lvn = node_runs(in_range & (v < LVN_FACTOR * mean))
        hvn = node_runs(in_range & (v > HVN_FACTOR * mean))
        totals.append(total)
        pocs.append(poc + shift)
        vals.append(val + shift)
        vahs.append(vah + shift)
        lvn_parts.append(
            Nodes(lvn.row + first, lvn.start + shift[lvn.row], lvn.end + shift[lvn.row])
        )
        hvn_parts.append(
            Nodes(hvn.row + first, hvn.start + shift[hvn.row], hvn.end + shift[hvn.row])
        )
    return BlockMetrics(
        total=np.concatenate(totals),
        poc=np.concatenate(pocs),
        val=np.concatenate(vals),
        vah=np.concatenate(vahs),
        lvns=_concat_nodes(lvn_parts),
        hvns=_concat_nodes(hvn_parts),
    )


def _align(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows cut to the columns they use, so narrow profiles (one minute) stay cheap.

    Returns the narrowed block and each row's column shift. When the rows' ranges are
    close to the block's width (a running session profile), a plain crop is cheaper than
    gathering every row at its own offset.
    """
    c0, c1 = int(lo.min()), int(hi.max()) + 1
    span = int((hi - lo).max()) + 1
    if 2 * span >= c1 - c0:
        return v[:, c0:c1], np.full(v.shape[0], c0, dtype=np.int64)
    k = np.arange(span, dtype=np.int64)[None, :]
    cols = np.minimum(lo[:, None] + k, v.shape[1] - 1)
    rows = np.arange(v.shape[0])[:, None]
    aligned = np.where(k <= (hi - lo)[:, None], v[rows, cols], 0.0)
    return aligned, lo.astype(np.int64)


def _concat_nodes(parts: list[Nodes]) -> Nodes:
    return Nodes(
        row=np.concatenate([p.row for p in parts]),
        start=np.concatenate([p.start for p in parts]),
        end=np.concatenate([p.end for p in parts]),
    )


# --- one profile -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileMetrics:
    """Metrics of one profile in prices (bins of ``row_size``)."""

    poc: float
    vah: float
    val: float
    total_volume: float
    lvns: list[dict[str, float]]
    hvns: list[dict[str, float]]
    value_area_method: str


def node_dicts(
    nodes: Nodes, first_bin: int, row_size: float, decimals: int
) -> list[dict[str, float]]:
    """Nodes as {"price": centre, "low", "high"} dicts (centre = middle of low and high).

    The centre of a run with an even number of bins falls between two bins: one more
    decimal than the row size's keeps it exact.
    """
    lows = np.round((first_bin + nodes.start) * row_size, decimals).tolist()
    highs = np.round((first_bin + nodes.end) * row_size, decimals).tolist()
    centres = np.round(
        (first_bin + (nodes.start + nodes.end) / 2.0) * row_size, decimals + 1
    ).tolist()
    return [
        {"price": c, "low": lo, "high": hi} for c, lo, hi in zip(centres, lows, highs, strict=True)
    ]


def metrics_of(
    volumes: np.ndarray, first_bin: int, row_size: float, method: str = "single"
) -> ProfileMetrics | None:
    """Metrics of one dense profile whose column 0 is bin index ``first_bin``.

    The profile's range is trimmed to its lowest..highest bin with volume; None when it
    holds no volume.
    """
    from analytics.bins import row_decimals

    volumes = np.asarray(volumes, dtype=np.float64)
    traded = np.flatnonzero(volumes > 0)
    if traded.size == 0:
        return None
    lo, hi = int(traded[0]), int(traded[-1])
    block = block_metrics(volumes[None, lo : hi + 1], np.array([0]), np.array([hi - lo]), method)
    base = first_bin + lo
    decimals = row_decimals(row_size)

    def price(col: np.ndarray) -> float:
        return float(np.round((base + int(col[0])) * row_size, decimals))

    return ProfileMetrics(
        poc=price(block.poc),
        vah=price(block.vah),
        val=price(block.val),
        total_volume=float(block.total[0]),
        lvns=node_dicts(block.lvns, base, row_size, decimals),
        hvns=node_dicts(block.hvns, base, row_size, decimals),
        value_area_method=method,
    )
