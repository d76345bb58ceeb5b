"""Aggressor side of each print (DESIGN §6), vectorised.

Precedence: the venue's side when given; else the quote rule when the quote is known
(price at/above the ask = buy, at/below the bid = sell); else the tick rule with zero-tick
continuation: an unchanged price keeps the last non-zero direction, carried across minute
buckets within a session (the original reset every minute and split every zero tick). A
print with no reference at all (the session's first print, and repeats of it) is split
half/half, encoded as sign 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUY = 1
SELL = -1
SPLIT = 0


@dataclass(frozen=True)
class AggressorState:
    """Tick-rule state after a window, so the next window of the session continues it.

    last_price: the last print's price (NaN before any print).
    last_sign: the last non-zero tick direction (0 = none yet).
    """

    last_price: float = float("nan")
    last_sign: int = 0


SESSION_START = AggressorState()


def tick_rule(
    price: np.ndarray, state: AggressorState = SESSION_START
) -> tuple[np.ndarray, AggressorState]:
    """Tick-rule sign per print (int8: +1, -1, 0 = no reference yet) and the state after.

    Vectorised: sign of the price change against the previous print (the first print is
    compared with ``state.last_price``), then a forward fill of the last non-zero sign
    (seeded with ``state.last_sign``) over zero ticks.
    """
    n = price.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int8), state
    signs = np.empty(n, dtype=np.int8)
    first = price[0] - state.last_price
    signs[0] = 0 if not np.isfinite(first) else int(np.sign(first))
    if n > 1:
        np.sign(np.diff(price), out=signs[1:], casting="unsafe")
    if not signs.all():
        signs = _fill_zero_ticks(signs, state.last_sign)
    last_nonzero = np.flatnonzero(signs)
    last_sign = int(signs[last_nonzero[-1]]) if last_nonzero.size else state.last_sign
    return signs, AggressorState(last_price=float(price[-1]), last_sign=last_sign)


def _fill_zero_ticks(signs: np.ndarray, seed: int) -> np.ndarray:
    """Forward-fill zeros with the previous non-zero sign; leading zeros take ``seed``."""
    n = signs.shape[0]
    # index of the last non-zero sign at or before each position (-1: none yet)
    positions = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    positions[signs == 0] = -1
    np.maximum.accumulate(positions, out=positions)
    filled = signs[np.maximum(positions, 0)]
    filled[positions < 0] = seed
    return filled


def classify(
    price: np.ndarray,
    side: np.ndarray | None = None,
    bid: np.ndarray | None = None,
    ask: np.ndarray | None = None,
    state: AggressorState = SESSION_START,
) -> tuple[np.ndarray, AggressorState]:
    """Aggressor sign per print: int8 +1 buy, -1 sell, 0 split half/half.

    side: venue side (+1/-1, NaN or 0 when unknown); bid/ask: quote at the print (NaN when
    unknown). The tick rule runs over every print (its reference is the previous print,
    whatever decided that print's side), and is used only where neither the venue nor the
    quote decides. Returns the signs and the tick-rule state after the last print.
    """
    signs, after = tick_rule(price, state)
    decided = None
    if bid is not None or ask is not None:
        quote = np.zeros(price.shape[0], dtype=np.int8)
        if ask is not None:
            quote[price >= ask] = BUY  # NaN ask compares False
        if bid is not None:
            # a crossed/locked quote where both hold: the ask test wins only when the bid
            # test fails, so mark sells where price <= bid and not already >= ask
            quote[(price <= bid) & (quote == 0)] = SELL
        decided = quote != 0
        if decided.any():
            signs = np.where(decided, quote, signs)
    if side is not None:
        venue = np.nan_to_num(np.asarray(side, dtype=np.float64), nan=0.0)
        known = venue != 0
        if known.all():
            return np.sign(venue).astype(np.int8), after
        if known.any():
            signs = np.where(known, np.sign(venue).astype(np.int8), signs)
    return signs, after


def buy_fraction(signs: np.ndarray) -> np.ndarray:
    """Share of each print's size that is buy-aggressor volume: 1, 0 or 0.5 (split)."""
    return (signs.astype(np.float64) + 1.0) * 0.5
