"""Price bins on integer tick indexes (docs/semantics.md).

``level = round(price / row_size) * row_size``, kept as an int64 bin index so equal bins
compare exactly; prices are only formed again for output, rounded to the row size's
decimals (never float keys, never ``np.unique`` on floats).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np


def bin_floats(price: np.ndarray | float, row_size: float) -> np.ndarray:
    """Bin index of each price as whole float64 numbers: floor(price / row_size + 0.5).

    The one rounding rule (round half up); exact integers, so callers may add integer
    offsets in float64 and convert once (the session grid's cell keys).
    """
    if not row_size > 0:
        raise ValueError(f"row_size must be positive, got {row_size!r}")
    scaled = np.asarray(price, dtype=np.float64) * (1.0 / row_size)
    scaled += 0.5
    # floor, not truncation, so a (rejected upstream) negative price cannot alias a bin
    return np.floor(scaled, out=scaled)


def bin_index(price: np.ndarray | float, row_size: float) -> np.ndarray:
    """int64 bin index of each price: round half up of price / row_size."""
    return bin_floats(price, row_size).astype(np.int64)


def row_decimals(row_size: float) -> int:
    """Decimals needed to print a bin price exactly (0.05 → 2, 0.5 → 1, 25 → 0)."""
    exponent = Decimal(repr(float(row_size))).normalize().as_tuple().exponent
    return max(0, -int(exponent)) if isinstance(exponent, int) else 8


def bin_price(index: np.ndarray | int, row_size: float) -> np.ndarray:
    """Price of bin indexes, rounded to the row size's decimals (no 1666.2000000000003)."""
    return np.round(np.asarray(index, dtype=np.float64) * row_size, row_decimals(row_size))
