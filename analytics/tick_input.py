"""Ticks in: columns as arrays, the session's window, and every bad row counted.

``prepare_ticks`` turns a ticks frame into the arrays the print pass reads: times as UTC
nanoseconds in order, prices and sizes as float64, the optional venue side and quote.
Rows outside the session, without a time, or with a price or size that is not finite and
positive are dropped and counted by reason (docs/semantics.md): nothing is lost silently.

Large inputs take a trusting path: the columns are read once, by the compiled print pass
(``analytics.print_kernel``), which checks the order and the sizes as it goes; only the
prices are checked here first, because their range sizes the grid. When a check fails
there, the caller prepares the ticks again without trust, checking and counting with
numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.compiled import use_compiled
from analytics.print_kernel import price_range

INT64_MIN = np.iinfo(np.int64).min


def count_rejected(rejected: dict[str, int], reason: str, n: int) -> None:
    if n:
        rejected[reason] = rejected.get(reason, 0) + int(n)


@dataclass(frozen=True)
class TickArrays:
    """A session's prints as arrays, in time order."""

    ns: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray | None
    bid: np.ndarray | None
    ask: np.ndarray | None
    # (min, max) of price, known when the validity check already computed them
    price_range: tuple[float, float] | None = None
    # True: the order and the sizes are still to be checked, by the print pass
    unchecked: bool = False

    def extremes(self) -> np.ndarray:
        low, high = self.price_range or (self.price.min(), self.price.max())
        return np.array([low, high], dtype=np.float64)


def _float_column(frame: pd.DataFrame, name: str, compiled: bool) -> np.ndarray | None:
    """A column as float64 (nullable integers and None become NaN); None when absent/empty.

    compiled: the compiled print kernel takes the column (it reads a NaN as unknown, one
    print at a time), so an all-NaN column is passed as is rather than scanned for NaN.
    """
    if name not in frame.columns:
        return None
    values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return None if not compiled and np.isnan(values).all() else values


def utc_ns(column: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (UTC); naive times are taken as UTC, NaT is int64 min."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns":
        return column.array.asi8  # already UTC-comparable nanoseconds: no conversion
    return pd.DatetimeIndex(pd.to_datetime(column, utc=True)).as_unit("ns").asi8


def _floats(column: pd.Series) -> np.ndarray:
    """float64 values of a column, without a copy when it already is float64."""
    if column.dtype == np.float64:
        return column.to_numpy()
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)


def prepare_ticks(
    ticks: pd.DataFrame,
    open_ns: int,
    close_ns: int,
    rejected: dict[str, int],
    *,
    trusting: bool = False,
) -> TickArrays:
    """Time-ordered, in-session, valid ticks as arrays; the rest counted in ``rejected``.

    trusting: a large input may leave its order and sizes to the print pass (the result
    says ``unchecked``); the caller prepares again without trust when that pass finds a
    fault, with a fresh ``rejected``.
    """
    missing = {"ts", "price", "size"} - set(ticks.columns)
    if missing:
        raise ValueError(f"ticks lack columns {sorted(missing)}")
    ns = utc_ns(ticks["ts"])
    price = _floats(ticks["price"])
    size = _floats(ticks["size"])
    compiled = use_compiled(ns.size)
    side, bid, ask = (_float_column(ticks, c, compiled) for c in ("side", "bid", "ask"))
    optional = [side, bid, ask]
    if trusting and compiled:
        arrays = _trusted(ns, price, size, optional, (open_ns, close_ns), rejected)
        if arrays is not None:
            return arrays

    if not (ns.size < 2 or bool((ns[1:] >= ns[:-1]).all())):
        # stable: prints at the same instant keep their arrival order (the tick rule needs it)
        order = np.argsort(ns, kind="stable")
        ns, price, size = ns[order], price[order], size[order]
        optional = [None if a is None else a[order] for a in optional]
    window = _window(ns, open_ns, close_ns, rejected)
    ns, price, size = ns[window], price[window], size[window]
    optional = [None if a is None else a[window] for a in optional]
    good_price = np.isfinite(price) & (price > 0)
    good_size = np.isfinite(size) & (size > 0)
    good = good_price & good_size
    if not good.all():
        count_rejected(rejected, "bad_price", (~good_price).sum())
        count_rejected(rejected, "bad_size", (good_price & ~good_size).sum())
        ns, price, size = ns[good], price[good], size[good]
        optional = [None if a is None else a[good] for a in optional]
    side, bid, ask = optional
    return TickArrays(ns, price, size, side, bid, ask)


def _window(ns: np.ndarray, open_ns: int, close_ns: int, rejected: dict[str, int]) -> slice:
    """The sorted times' session window; those without a time or outside it counted."""
    nat = int(np.searchsorted(ns, INT64_MIN, side="right"))  # NaT sorts first
    count_rejected(rejected, "bad_time", nat)
    start, stop = np.searchsorted(ns, [max(open_ns, INT64_MIN + 1), close_ns]).tolist()
    count_rejected(rejected, "outside_session", ns.size - nat - (stop - start))
    return slice(start, stop)


def _trusted(
    ns: np.ndarray,
    price: np.ndarray,
    size: np.ndarray,
    optional: list[np.ndarray | None],
    session: tuple[int, int],
    rejected: dict[str, int],
) -> TickArrays | None:
    """The window as if the times were in order, its prices checked; None when a check
    here already fails. The print pass checks the order inside the window and the sizes;
    the few times outside it (usually none) are checked here."""
    counted: dict[str, int] = {}
    window = _window(ns, *session, counted)
    start, stop = window.start, window.stop
    outside_in_order = all(
        bool((part[1:] >= part[:-1]).all()) for part in (ns[: start + 1], ns[max(stop - 1, 0) :])
    )
    valid = price_range(price[window]) if outside_in_order and stop > start else None
    if valid is None:
        return None
    for reason, n in counted.items():
        count_rejected(rejected, reason, n)
    side, bid, ask = (None if a is None else a[window] for a in optional)
    return TickArrays(
        ns[window], price[window], size[window], side, bid, ask, price_range=valid, unchecked=True
    )
