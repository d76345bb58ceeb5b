"""The footprint a loop reads for every symbol (docs/semantics.md, "Footprint imbalances" …
"Big prints"): the session VWAP row, the longest recent stacked imbalance per side and the
newest recent big print per side, one value per symbol (or per instant in a backtest).

The live engine fills it from the footprint tables (``streaming.engine.footprint_reads``),
the backtester from the same tables' history (``backtest.frames``); both with the windows
below, so a rule reads the same numbers in both. Pure: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]

# a stack counts while its bar's minute (bucket) is within this window of the instant:
# the bar just closed and the few before it, so a Dagster minute run a little late still
# shows the stack, and an old stack does not linger
STACK_WINDOW = timedelta(minutes=5)
# big prints older than this are not read; a condition's ``seconds`` may not exceed it
BIG_PRINT_WINDOW = timedelta(minutes=15)
# the big-print sides, in the column order of ``Footprint.big_*``
BUY, SELL, SPLIT = 0, 1, 2
SIDES = {"buy": BUY, "sell": SELL, None: SPLIT}
SIDE_NAMES = ("BUY", "SELL", None)

# the rule vocabulary's footprint terms (docs/strategies.md; evaluated in ``rules``)
STACK_METRICS = {"stacked_buy_imbalance": "stack_buy", "stacked_sell_imbalance": "stack_sell"}
IB_BREAK = {"ABOVE": 1, "BELOW": -1, "INSIDE": 0}
BIG_PRINT_SIDES = {"BUY": "BUY", "SELL": "SELL", "ANY": "ANY"}
BAND_REFS = {"vwap_upper": 1.0, "vwap_lower": -1.0}  # the sign of k·sd
IB_REFS = ("ib_high", "ib_low")
FOOTPRINT_TABLE_TERMS = frozenset({*STACK_METRICS, "big_print", "session_vwap", *BAND_REFS})
FOOTPRINT_TERMS = FOOTPRINT_TABLE_TERMS | {"ib_break", *IB_REFS}
MAX_STACK_ROWS = 1_000_000  # a stacked_* condition's value: whole rows in [1, this]
MAX_BAND_K = 5.0  # a band further out is a typo (k counts standard deviations)
BIG_PRINT_SECONDS = 60  # default look-back of a big_print condition


@dataclass(frozen=True)
class Footprint:
    """Per symbol (Universe order); NaN where nothing was found.

    ``vwap``/``vwap_sd``/``vwap_bucket``: the newest ``session_vwap`` row at or before the
    instant (the current session's only, once ``in_session`` ran). ``stack_buy``/
    ``stack_sell``: the longest stack (rows) among the bars of ``STACK_WINDOW``, 0 when
    none; ``*_bucket`` the minute of the bar holding it (the newest of equal ones).
    ``big_ts``/``big_price``/``big_size``: (n, 3), the newest big print of each side
    (``BUY``, ``SELL``, ``SPLIT``) within ``BIG_PRINT_WINDOW``.
    """

    vwap: F
    vwap_sd: F
    vwap_bucket: F
    stack_buy: F
    stack_buy_bucket: F
    stack_sell: F
    stack_sell_bucket: F
    big_ts: F
    big_price: F
    big_size: F

    @classmethod
    def empty(cls, n: int) -> Footprint:
        def nan() -> F:
            return np.full(n, np.nan)

        def big() -> F:
            return np.full((n, 3), np.nan)

        return cls(nan(), nan(), nan(), np.zeros(n), nan(), np.zeros(n), nan(), big(), big(), big())

    def in_session(self, session_open: F) -> Footprint:
        """Only the current session's VWAP row (``session_open``: epoch s per symbol, NaN:
        unknown market, no row kept); stacks and prints have their own short windows."""
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(self.vwap_bucket) & (self.vwap_bucket >= session_open)
        return replace(
            self,
            vwap=np.where(keep, self.vwap, np.nan),
            vwap_sd=np.where(keep, self.vwap_sd, np.nan),
        )

    def last_big_print(self, i: int) -> int | None:
        """The side column of symbol ``i``'s newest big print, or None."""
        row = self.big_ts[i]
        if not np.isfinite(row).any():
            return None
        return int(np.nanargmax(row))


def longest_stacks(bucket: F, stack_len: F, asof: F) -> tuple[F, F]:
    """For one symbol and one side: per instant, the longest stack among the bars with
    ``asof − STACK_WINDOW < bucket ≤ asof`` (0 when none) and the newest bucket holding
    it (NaN). ``bucket``: one row per bar (its longest stack), sorted."""
    n = len(asof)
    best, at = np.zeros(n), np.full(n, np.nan)
    lo = np.searchsorted(bucket, asof - STACK_WINDOW.total_seconds(), side="right")
    hi = np.searchsorted(bucket, asof, side="right")
    for k in np.flatnonzero(hi > lo).tolist():  # a handful of bars per instant
        window = stack_len[lo[k] : hi[k]]
        j = int(len(window) - 1 - np.argmax(window[::-1]))  # the newest of the longest
        best[k], at[k] = window[j], bucket[lo[k] + j]
    return best, at


def newest_prints(ts: F, price: F, size: F, asof: F) -> tuple[F, F, F]:
    """For one symbol and one side: per instant, the newest print with
    ``asof − BIG_PRINT_WINDOW < ts ≤ asof`` (NaN when none). ``ts`` sorted."""
    if not len(ts):
        return np.full(len(asof), np.nan), np.full(len(asof), np.nan), np.full(len(asof), np.nan)
    j = np.searchsorted(ts, asof, side="right") - 1
    jj = np.maximum(j, 0)
    has = (j >= 0) & (ts[jj] > asof - BIG_PRINT_WINDOW.total_seconds())
    return (
        np.where(has, ts[jj], np.nan),
        np.where(has, price[jj], np.nan),
        np.where(has, size[jj], np.nan),
    )
