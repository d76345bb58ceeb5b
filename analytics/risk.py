"""Bracket levels, position size and order caps (docs/trading-safety.md).

Prices and quantities are Decimal multiples of the symbol's increments
(``analytics.increments``: the venue's, else cents above a dollar and 0.0001 below with
whole shares for equities, five significant digits and 0.000000001 for crypto), so
rounding is exact: a stop of ``100 − 0.5 × 1.5`` is 99.25, never 99.24999999.

- Levels: buy ⇒ stop = entry − ATR × stop_mult, target = entry + ATR × target_mult;
  sell ⇒ mirrored. Each level is rounded to the price increment that applies at it (half
  away from zero); the stop is kept at least one increment below the entry for a buy
  (above for a sell) and the target at least one on the profitable side, because a broker
  rejects a bracket whose legs sit on the entry.
- Size: risk $ = equity × risk % / 100; quantity = risk $ / |entry − stop|, capped by
  buying_power / entry, each floored to the quantity increment (whole shares for
  equities, fractions for crypto); below the venue's minimum order it is zero. Zero means
  no order — never forced up to the minimum (docs/trading-safety.md).
- Caps: ``cap_quantity`` bounds a size by a maximum quantity and a maximum notional
  (quantity × entry), whatever the risk arithmetic gave: a tight stop must not become a
  huge order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from analytics.increments import CENT, EQUITY, Increments, decimal
from core.contracts import Side


@dataclass(frozen=True)
class Bracket:
    side: Side
    entry: float
    stop: float
    target: float


def round_cent(value: float) -> float:
    """To the cent, half away from zero on the decimal the float prints as."""
    return float(decimal(value).quantize(CENT, rounding=ROUND_HALF_UP))


def bracket_levels(
    side: Side | str,
    entry: float,
    atr: float,
    stop_multiplier: float = 1.5,
    target_multiplier: float = 3.0,
    increments: Increments = EQUITY,
) -> Bracket | None:
    """Stop and target from the ATR multipliers in the symbol's price increments; None when
    they cannot be valid (no ATR, a non-positive entry, or a stop at or below zero)."""
    side = Side(side)
    if not (math.isfinite(entry) and math.isfinite(atr)) or entry <= 0 or atr <= 0:
        return None
    e = decimal(entry)
    step = increments.price_step(e)
    stop_dist = decimal(atr) * decimal(stop_multiplier)
    target_dist = decimal(atr) * decimal(target_multiplier)
    level = increments.round_price
    if side is Side.BUY:
        stop = min(level(e - stop_dist), level(e - step, ROUND_FLOOR))
        target = max(level(e + target_dist), level(e + step, ROUND_CEILING))
    else:
        stop = max(level(e + stop_dist), level(e + step, ROUND_CEILING))
        target = min(level(e - target_dist), level(e - step, ROUND_FLOOR))
    if stop <= 0 or target <= 0:
        return None
    return Bracket(side=side, entry=float(entry), stop=float(stop), target=float(target))


def position_size(
    equity: float,
    risk_pct: float,
    entry: float,
    stop: float,
    buying_power: float,
    increments: Increments = EQUITY,
) -> float:
    """The quantity risking ``risk_pct`` % of equity between entry and stop, capped by
    buying power, in the symbol's quantity increments; 0 when nothing fits (the caller
    then places no order)."""
    values = (equity, risk_pct, entry, stop, buying_power)
    if not all(math.isfinite(v) for v in values) or entry <= 0 or equity <= 0:
        return 0.0
    per_unit = abs(decimal(entry) - decimal(stop))
    if per_unit <= 0 or risk_pct <= 0:
        return 0.0
    risk = decimal(equity) * decimal(risk_pct) / 100
    wanted = increments.floor_qty(risk / per_unit)
    affordable = increments.floor_qty(decimal(max(float(buying_power), 0.0)) / decimal(entry))
    return float(min(wanted, affordable))


def cap_quantity(
    qty: float,
    entry: float,
    max_qty: float,
    max_notional: float,
    increments: Increments = EQUITY,
) -> float:
    """``qty`` cut to at most ``max_qty`` and to a notional (qty × entry) of at most
    ``max_notional``, in the quantity increments; 0 when not even the minimum order fits
    (or the inputs are not usable)."""
    if not (math.isfinite(qty) and qty > 0) or not (math.isfinite(entry) and entry > 0):
        return 0.0
    if not max_notional > 0:
        return 0.0
    by_notional = decimal(max_notional) / decimal(entry)
    capped = min(decimal(qty), decimal(max_qty), by_notional)
    return float(increments.floor_qty(capped))


def within_caps(qty: float, entry: float, max_qty: float, max_notional: float) -> bool:
    """The last check before an order leaves: quantity and notional inside the caps."""
    if not (math.isfinite(entry) and entry > 0) or not (math.isfinite(qty) and qty > 0):
        return False
    notional = decimal(entry) * decimal(qty)
    return qty <= max_qty and notional <= decimal(max_notional)


__all__ = [
    "Bracket",
    "Decimal",
    "bracket_levels",
    "cap_quantity",
    "position_size",
    "round_cent",
    "within_caps",
]
