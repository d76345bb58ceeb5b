"""Aggressor side of each print (docs/semantics.md), vectorised.

Precedence: the venue's side when given; else the quote rule when the quote is known
(price at/above the ask = buy, at/below the bid = sell); else the tick rule with zero-tick
continuation: an unchanged price keeps the last non-zero direction, carried across minute
buckets within a session (never reset per minute, no split on a zero tick). A
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

    Vectorised: the sign of each price change against the previous print (the first print
    against ``state.last_price``), then a forward fill over zero ticks (zero-tick
    continuation) by a running maximum of "position of the last change"; prints before the
    first change take ``state.last_sign`` (0 at the session start: split half/half).
    """
    n = price.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int8), state
    # raw[k] is the sign of the change at print k-1; raw[0] is the carried-in sign
    raw = np.empty(n + 1, dtype=np.int8)
    raw[0] = state.last_sign
    first = price[0] - state.last_price
    raw[1] = np.sign(first) if np.isfinite(first) else 0
    if n > 1:
        # two comparisons instead of np.sign of a difference: no float temporary
        up = price[1:] > price[:-1]
        down = price[1:] < price[:-1]
        np.subtract(up, down, out=raw[2:], dtype=np.int8)
        del up, down
    index_type = np.int32 if n < 2**31 - 1 else np.int64
    last_change: np.ndarray = np.arange(1, n + 1, dtype=index_type)
    last_change *= raw[1:] != 0
    np.maximum.accumulate(last_change, out=last_change)
    signs = np.take(raw, last_change)  # take: about twice as fast as fancy indexing
    return signs, AggressorState(last_price=float(price[-1]), last_sign=int(signs[-1]))


def state_after(price: np.ndarray, state: AggressorState = SESSION_START) -> AggressorState:
    """The tick-rule state after ``price`` without classifying every print.

    Used when the venue decided every side: only the last price change matters, found by
    scanning backwards in growing windows.
    """
    n = price.shape[0]
    if n == 0:
        return state
    window = 1024
    while True:
        lo = max(0, n - window)
        changes = np.flatnonzero(price[lo + 1 :] != price[lo : n - 1])
        if changes.size:
            i = lo + 1 + int(changes[-1])
            return AggressorState(float(price[-1]), int(np.sign(price[i] - price[i - 1])))
        if lo == 0:
            break
        window *= 8
    first = price[0] - state.last_price
    sign = int(np.sign(first)) if np.isfinite(first) and first != 0 else state.last_sign
    return AggressorState(float(price[-1]), sign)


def classify(
    price: np.ndarray,
    side: np.ndarray | None = None,
    bid: np.ndarray | None = None,
    ask: np.ndarray | None = None,
    state: AggressorState = SESSION_START,
) -> tuple[np.ndarray, AggressorState]:
    """Aggressor sign per print: int8 +1 buy, -1 sell, 0 split half/half.

    side: venue side (+1/-1; NaN or 0 when unknown); bid/ask: the quote at the print (NaN
    when unknown). The tick rule's reference is the previous print whatever decided that
    print's side, and it is used only where neither the venue nor the quote decides.
    Returns the signs and the tick-rule state after the last print.
    """
    price = np.asarray(price, dtype=np.float64)
    venue = None
    if side is not None:
        venue = np.sign(np.nan_to_num(np.asarray(side, dtype=np.float64), nan=0.0))
        venue = venue.astype(np.int8)
        if venue.all():  # every side from the venue: no quote or tick rule needed
            return venue, state_after(price, state)
    signs, after = tick_rule(price, state)
    if bid is not None or ask is not None:
        quote = np.zeros(price.shape[0], dtype=np.int8)
        if bid is not None:
            quote[price <= bid] = SELL  # a NaN bid compares False
        if ask is not None:
            quote[price >= ask] = BUY  # at/above the ask wins on a locked/crossed quote
        signs = np.where(quote != 0, quote, signs)
    if venue is not None:
        signs = np.where(venue != 0, venue, signs)
    return signs, after


def buy_fraction(signs: np.ndarray) -> np.ndarray:
    """Share of each print's size that is buy-aggressor volume: 1, 0 or 0.5 (split)."""
    return (signs.astype(np.float64) + 1.0) * 0.5


def buy_volume(size: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Buy-aggressor volume of each print: size × (sign + 1) / 2."""
    out = np.multiply(size, signs, dtype=np.float64)
    out += size
    out *= 0.5
    return out


def signed_volume(size: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """size × sign: buy volume counts +, sell −, a split print 0 (buy = (size + signed) / 2).

    Aggregating this instead of the buy volume saves two passes over every print; the
    per-bin buy volume is recovered as (total + signed) / 2 on the much smaller grid.
    """
    return np.multiply(size, signs, dtype=np.float64)
