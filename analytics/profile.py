"""Volume-profile metrics (docs/semantics.md): POC, value area (single / dual), LVN and HVN.

A profile is a dense array of bin volumes covering every bin from its lowest to its highest
traded bin, empty bins included. The functions work on a block of profiles at once (rows ×
bins with a per-row [lo, hi] range), and on a session's running profiles (the sum of a
grid's rows so far) without laying them out as a grid. Large blocks go to one compiled
pass per profile (``analytics.profile_kernel``, the nodes ``analytics.node_kernel``); small
ones take the numpy form here and in ``analytics.nodes``, which gives the same numbers
(``analytics.compiled`` says which runs when). The one-profile helpers call the same block
code, so there is one implementation of each rule.

Value-area walk: from the POC the walk compares the next item below with the next item
above and takes the larger (tie → below) until it holds 70 % of the volume; an item is a
single bin (``"single"``) or the sum of the next two bins (``"dual"``, the Dalton/CBOT TPO
rule). The total is the bins added one by one from the lowest, so it does not depend on
how wide a block the profile sits in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from analytics.compiled import start, use_compiled
from analytics.node_kernel import node_rows
from analytics.nodes import DEFAULT_RULE, NodeRule, Nodes, block_nodes, from_kernel
from analytics.profile_kernel import VALUE_AREA_SHARE, VALUE_AREA_SLACK, profile_rows
from analytics.value_area import walk_rows

__all__ = [
    "METHODS",
    "VALUE_AREA_SHARE",
    "BlockMetrics",
    "Nodes",
    "ProfileMetrics",
    "block_metrics",
    "check_method",
    "grid_metrics",
    "metrics_of",
    "node_dicts",
    "running_metrics",
    "running_volume",
]

METHODS = ("single", "dual")
# rows × bins handled per numpy block: bounds memory on wide profiles (cheap rows) while
# keeping the per-call overhead negligible on narrow ones
BLOCK_CELLS = 1 << 20


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
    if total is None:
        total = _totals(volumes)
    # what the walk must add to the POC; 70 % exactly counts as reached (float tolerance)
    needed = share * total - VALUE_AREA_SLACK * total - volumes[np.arange(volumes.shape[0]), poc]
    return walk_rows(volumes, lo, hi, poc, needed, method == "dual")


def block_metrics(
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    method: str = "single",
    rule: NodeRule = DEFAULT_RULE,
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
    return grid_metrics(volumes, np.arange(volumes.shape[0]), lo, hi, method, rule)


def grid_metrics(
    grid: np.ndarray,
    rows: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    method: str,
    rule: NodeRule = DEFAULT_RULE,
    nodes_from: int = 0,
) -> BlockMetrics:
    """Metrics of the profiles ``grid[rows[k]]`` over [lo[k], hi[k]], without copying the
    rows out of the grid; node rows are the positions k in ``rows``, and only profiles
    k >= nodes_from get nodes (a caller shaping the later rows only)."""
    if rows.shape[0] and use_compiled(rows.shape[0] * grid.shape[1]):
        grid = np.ascontiguousarray(grid, dtype=np.float64)
        total, columns = profile_rows(grid, rows, lo, hi, method == "dual")
        lvns, hvns = from_kernel(*node_rows(grid, rows, lo, hi, rule, nodes_from))
        return _metrics(total, columns, lvns, hvns)
    return _numpy_metrics(grid[rows], lo, hi, method, rule, nodes_from)


def running_metrics(
    grid: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    before: tuple[np.ndarray, int, int],
    method: str,
    rule: NodeRule = DEFAULT_RULE,
    nodes_from: int = 0,
) -> tuple[BlockMetrics, int, tuple[np.ndarray, int, int]]:
    """Metrics of the running profile through each row of ``grid``, whose rows' traded
    column ranges are [lo, hi] (n_cols, -1 for a row without volume).

    before: the running profile before the first row, with its lowest and highest traded
    column (n_cols, -1 while empty). Profiles start at the first row with volume so far;
    nodes only through rows >= nodes_from. Returns (their metrics, node rows counting from
    that row; the row's index; the running profile after the last row, as ``before``).
    """
    before_volume, before_lo, before_hi = before
    lo_run = np.minimum.accumulate(np.minimum(lo, before_lo))
    hi_run = np.maximum.accumulate(np.maximum(hi, before_hi))
    first = int(np.count_nonzero(hi_run < 0))  # hi_run never decreases
    rows = np.arange(first, grid.shape[0])
    last = (int(lo_run[-1]), int(hi_run[-1])) if hi_run.size else (before_lo, before_hi)
    node_first = max(0, nodes_from - first)
    if rows.size and use_compiled(grid.size):
        grid = np.ascontiguousarray(grid, dtype=np.float64)
        add = (lo[first:], hi[first:])
        # the nodes on the pool while this thread walks the value areas: each pass keeps
        # its own copy of the running profile
        nodes = start(
            partial(
                node_rows,
                grid,
                rows,
                lo_run[first:],
                hi_run[first:],
                rule,
                node_first,
                before_volume.copy(),
                add,
            )
        )
        after = before_volume.copy()
        total, columns = profile_rows(
            grid, rows, lo_run[first:], hi_run[first:], method == "dual", after, add
        )
        return _metrics(total, columns, *from_kernel(*nodes.result())), first, (after, *last)
    cumulative = running_volume(grid, before_volume)
    after = cumulative[-1].copy() if grid.shape[0] else before_volume.copy()
    metrics = _numpy_metrics(
        cumulative[first:], lo_run[first:], hi_run[first:], method, rule, node_first
    )
    return metrics, first, (after, *last)


def running_volume(volume: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Each row's running profile: ``before`` plus the rows so far, added a row at a time
    (the kernel's order; numpy's cumulative sum down the columns of a C-ordered grid
    strides across memory and costs about eight times more)."""
    cumulative = np.empty_like(volume)
    previous = before
    for r in range(volume.shape[0]):
        np.add(previous, volume[r], out=cumulative[r])
        previous = cumulative[r]
    return cumulative


def _metrics(total: np.ndarray, columns: np.ndarray, lvns: Nodes, hvns: Nodes) -> BlockMetrics:
    return BlockMetrics(
        total=total,
        poc=columns[:, 0].copy(),
        val=columns[:, 1].copy(),
        vah=columns[:, 2].copy(),
        lvns=lvns,
        hvns=hvns,
    )


def _totals(volumes: np.ndarray) -> np.ndarray:
    """Each row's bins added one by one from the lowest column (the kernel's order)."""
    if volumes.shape[1] == 0:
        return np.zeros(volumes.shape[0])
    return np.cumsum(volumes, axis=1)[:, -1].copy()


def _numpy_metrics(
    volumes: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    method: str,
    rule: NodeRule,
    nodes_from: int,
) -> BlockMetrics:
    """The numpy form of every rule, in row chunks of ``BLOCK_CELLS`` cells."""
    n_rows, n_cols = volumes.shape
    if n_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return BlockMetrics(np.zeros(0), empty, empty, empty, Nodes.empty(), Nodes.empty())
    totals, pocs, vals, vahs = [], [], [], []
    lvn_parts: list[Nodes] = []
    hvn_parts: list[Nodes] = []
    chunk = max(1, BLOCK_CELLS // max(n_cols, 1))
    for first in range(0, n_rows, chunk):
        part = slice(first, min(first + chunk, n_rows))
        v, plo, phi = volumes[part], lo[part], hi[part]
        v, shift = _align(v, plo, phi)
        v = np.ascontiguousarray(v)
        plo, phi = plo - shift, phi - shift
        total = _totals(v)
        poc = poc_columns(v, plo, phi)
        val, vah = value_area_columns(v, plo, phi, poc, method, total=total)
        lvn, hvn = block_nodes(v, plo, phi, rule, max(0, nodes_from - first))
        totals.append(total)
        pocs.append(poc + shift)
        vals.append(val + shift)
        vahs.append(vah + shift)
        for found, parts in ((lvn, lvn_parts), (hvn, hvn_parts)):
            offset = shift[found.row]
            parts.append(
                Nodes(
                    found.row + first,
                    found.centre + offset,
                    found.start + offset,
                    found.end + offset,
                    found.prominence,
                )
            )
    return BlockMetrics(
        total=np.concatenate(totals),
        poc=np.concatenate(pocs),
        val=np.concatenate(vals),
        vah=np.concatenate(vahs),
        lvns=Nodes.concat(lvn_parts),
        hvns=Nodes.concat(hvn_parts),
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


def node_dicts(nodes: Nodes, first_bin: int, row_size: float, decimals: int) -> list[dict]:
    """Nodes as {"price", "low", "high", "prominence"} dicts: the node's own bin, the
    first and last bin of its extent, and its prominence (volume of the smoothed
    profile)."""
    prices = [
        np.round((first_bin + cols) * row_size, decimals).tolist()
        for cols in (nodes.centre, nodes.start, nodes.end)
    ]
    return [
        {"price": c, "low": lo, "high": hi, "prominence": p}
        for c, lo, hi, p in zip(*prices, nodes.prominence.tolist(), strict=True)
    ]


def metrics_of(
    volumes: np.ndarray,
    first_bin: int,
    row_size: float,
    method: str = "single",
    rule: NodeRule = DEFAULT_RULE,
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
    block = block_metrics(
        volumes[None, lo : hi + 1], np.array([0]), np.array([hi - lo]), method, rule
    )
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
