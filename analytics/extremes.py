"""What a profile's extreme rows say (docs/semantics.md): the initial balance and
unfinished auctions, per minute of the session grid.

* **Initial balance**: the highest and lowest row traded in the session's first
  ``IB_MINUTES`` minutes (the first hour from the open; the first hour of the UTC day for
  24/7 markets); while that hour runs, the rows so far. The extensions are how far the
  session's range reaches beyond it, in price (0 while inside).
* **Unfinished auction**: a profile's highest (lowest) row where both buyers and sellers
  traded: buy and sell volume from prints (trade count > 0), so the candle fallback's
  conventional split never makes one. For a minute's profile, its own extreme rows; for
  the running session profile, the session's extreme rows so far, buyers and sellers
  counted over every minute up to then.

Everything is read from the grid's cells and traded column ranges, so a session resumed
from stored cells gives the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IB_MINUTES = 60
NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class ExtremesCarry:
    """What the next block continues from: the IB's column range so far (n_bins, -1 while
    empty) and, per column, the first minute a print bought / sold there."""

    ib_lo: int
    ib_hi: int
    first_buy: np.ndarray
    first_sell: np.ndarray

    @classmethod
    def start(cls, n_bins: int) -> ExtremesCarry:
        return cls(n_bins, -1, np.full(n_bins, NEVER), np.full(n_bins, NEVER))


def initial_balance(
    lo: np.ndarray, hi: np.ndarray, r0: int, carry: ExtremesCarry
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(IB low, IB high) columns through each row of a block whose first row is minute r0
    (rows' traded ranges lo/hi, n_bins/-1 when empty), and the range after the block."""
    minute = r0 + np.arange(lo.shape[0])
    in_hour = minute < IB_MINUTES
    ib_lo = np.minimum.accumulate(np.minimum(np.where(in_hour, lo, carry.ib_lo), carry.ib_lo))
    ib_hi = np.maximum.accumulate(np.maximum(np.where(in_hour, hi, carry.ib_hi), carry.ib_hi))
    last = (int(ib_lo[-1]), int(ib_hi[-1])) if lo.size else (carry.ib_lo, carry.ib_hi)
    return ib_lo, ib_hi, *last


def first_sides(
    cells: np.ndarray, buy: np.ndarray, sell: np.ndarray, n_bins: int, r0: int, carry: ExtremesCarry
) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the first minute a print bought / sold there, through this block.

    cells: the block's flat indexes of cells with prints, ascending; buy/sell their
    volumes."""
    rows, cols = np.divmod(cells, n_bins)
    out = []
    for traded, before in ((buy > 0, carry.first_buy), (sell > 0, carry.first_sell)):
        after = before.copy()
        np.minimum.at(after, cols[traded], r0 + rows[traded])
        out.append(after)
    return out[0], out[1]


def unfinished(
    first_buy: np.ndarray, first_sell: np.ndarray, col: np.ndarray, minute: np.ndarray
) -> np.ndarray:
    """Whether buyers and sellers had both traded at column ``col`` by ``minute``."""
    return (first_buy[col] <= minute) & (first_sell[col] <= minute)


def minute_unfinished(
    volume: np.ndarray, buy: np.ndarray, count: np.ndarray, rows: np.ndarray, col: np.ndarray
) -> np.ndarray:
    """Whether the cells (rows, col) of a block traded both ways by prints (sell =
    volume − buy, as stored)."""
    bought = buy[rows, col]
    return (bought > 0) & (volume[rows, col] - bought > 0) & (count[rows, col] > 0)
