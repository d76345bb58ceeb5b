"""Diagonal footprint imbalances and their stacks (docs/semantics.md).

In a bar (one minute), rows are the profile's price bins. A buy imbalance at row r:
buys(r) > 0 and buys(r) >= max(V_min, R × sells(r − 1)); a sell imbalance at row r:
sells(r) > 0 and sells(r) >= max(V_min, R × buys(r + 1)); a row that did not trade counts
0. A stack is a maximal run of adjacent rows with the same side's imbalance, and every
imbalanced cell carries its run's length. Only bars with prints have imbalances: the
candle fallback's bins (trade count 0) carry a conventional 60/40 split, not an auction.

The cells come from the session grid's blocks, the same cells ``volume_profile`` stores
(sell = total − buy, as stored), so a session resumed from stored cells finds the same
imbalances.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.bins import bin_price

IMBALANCE_COLUMNS: tuple[str, ...] = (
    "bucket",
    "price",
    "side",
    "volume",
    "opposite",
    "stack_len",
)


def cell_imbalances(
    cells: np.ndarray,
    volume: np.ndarray,
    buy: np.ndarray,
    n_bins: int,
    ratio: float,
    min_volume: float,
) -> dict[str, np.ndarray]:
    """Imbalanced cells among ``cells`` (flat indexes into rows × n_bins grids, ascending):
    per side ("buy", "sell") the cells, their volume, the diagonal opposite volume and
    the stack length. ``volume`` and ``buy`` are the grids raveled; only cells that
    traded print-by-print should be passed."""
    flat_volume, flat_buy = volume.reshape(-1), buy.reshape(-1)
    col = cells % n_bins
    buys = flat_buy[cells]
    sells = flat_volume[cells] - buys

    def neighbour(offset: int, edge: np.ndarray, of_buys: bool) -> np.ndarray:
        at = np.where(edge, cells, cells + offset)  # never read across a row's edge
        value = flat_buy[at] if of_buys else flat_volume[at] - flat_buy[at]
        return np.where(edge, 0.0, value)

    sells_below = neighbour(-1, col == 0, of_buys=False)
    buys_above = neighbour(1, col == n_bins - 1, of_buys=True)
    out: dict[str, np.ndarray] = {}
    for side, mine, other in (("buy", buys, sells_below), ("sell", sells, buys_above)):
        hit = (mine > 0) & (mine >= np.maximum(min_volume, ratio * other))
        chosen = cells[hit]
        out[f"{side}_cells"] = chosen
        out[f"{side}_volume"] = mine[hit]
        out[f"{side}_opposite"] = other[hit]
        out[f"{side}_stack"] = stack_lengths(chosen, n_bins)
    return out


def stack_lengths(cells: np.ndarray, n_bins: int) -> np.ndarray:
    """Each cell's run length, runs being adjacent cells (flat index + 1) in one row."""
    if cells.size == 0:
        return np.zeros(0, dtype=np.int64)
    breaks = np.ones(cells.size, dtype=bool)
    breaks[1:] = (np.diff(cells) != 1) | (cells[1:] % n_bins == 0)
    starts = np.flatnonzero(breaks)
    lengths = np.diff(np.append(starts, cells.size))
    return np.repeat(lengths, lengths).astype(np.int64)


def imbalance_frame(
    found: dict[str, np.ndarray],
    buckets: pd.DatetimeIndex,
    n_bins: int,
    first_bin: int,
    row_size: float,
) -> pd.DataFrame | None:
    """footprint_imbalances rows of a block, by bucket, price, then side; None when none.
    buckets: the block's minutes."""
    parts = []
    for side in ("buy", "sell"):
        cells = found[f"{side}_cells"]
        if cells.size:
            parts.append((side, cells, found[f"{side}_volume"], found[f"{side}_opposite"]))
    if not parts:
        return None
    cells = np.concatenate([p[1] for p in parts])
    sides = np.concatenate([np.full(p[1].size, p[0]) for p in parts])
    order = np.lexsort((sides, cells))
    cells = cells[order]
    rows, cols = np.divmod(cells, n_bins)
    return pd.DataFrame(
        {
            "bucket": buckets[rows],
            "price": bin_price(first_bin + cols, row_size),
            "side": sides[order].astype(object),
            "volume": np.concatenate([p[2] for p in parts])[order],
            "opposite": np.concatenate([p[3] for p in parts])[order],
            "stack_len": np.concatenate(
                [found[f"{side}_stack"] for side in ("buy", "sell") if found[f"{side}_cells"].size]
            )[order],
        },
        columns=list(IMBALANCE_COLUMNS),
    )


def empty_imbalances() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket": pd.Series(dtype=pd.DatetimeTZDtype("ns", "UTC")),
            "price": pd.Series(dtype="float64"),
            "side": pd.Series(dtype="object"),
            "volume": pd.Series(dtype="float64"),
            "opposite": pd.Series(dtype="float64"),
            "stack_len": pd.Series(dtype="int64"),
        }
    )
