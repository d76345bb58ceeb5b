"""Bracket levels, position size and order caps (docs/trading-safety.md).

Prices are handled in whole cents (integers) so rounding is exact: a stop of
``100 − 0.5 × 1.5`` is 99.25, never 99.24999999.

- Levels: buy ⇒ stop = entry − ATR × stop_mult, target = entry + ATR × target_mult;
  sell ⇒ mirrored. Rounded to the cent (half away from zero); the stop is kept at least a
  cent below the entry for a buy (above for a sell) and the target at least a cent on the
  profitable side, because a broker rejects a bracket whose legs sit on the entry.
- Size: risk $ = equity × risk % / 100; shares = floor(risk $ / |entry − stop|), capped
  by floor(buying_power / entry). Zero shares means no order — never forced up to one
  (docs/trading-safety.md).
- Caps: ``cap_shares`` bounds a size by a maximum quantity and a maximum notional
  (quantity × entry), whatever the risk arithmetic gave: a tight stop must not become a
  huge order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from core.contracts import Side

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Bracket:
    side: Side
    entry: float
    stop: float
    target: float


def _cents(value: float, rounding: str = ROUND_HALF_UP) -> Decimal:
    # repr() of a float is its shortest round-tripping decimal: 99.25 stays 99.25
    return Decimal(repr(float(value))).quantize(CENT, rounding=rounding)


def round_cent(value: float) -> float:
    """To the cent, half away from zero on the decimal the float prints as."""
    return float(_cents(value))


def bracket_levels(
    side: Side | str,
    entry: float,
    atr: float,
    stop_multiplier: float = 1.5,
    target_multiplier: float = 3.0,
) -> Bracket | None:
    """Stop and target from the ATR multipliers; None when they cannot be valid (no ATR,
    a non-positive entry, or a sell stop below a cent)."""
    side = Side(side)
    if not (math.isfinite(entry) and math.isfinite(atr)) or entry <= 0 or atr <= 0:
        return None
    e = Decimal(repr(float(entry)))
    stop_dist = Decimal(repr(float(atr))) * Decimal(repr(float(stop_multiplier)))
    target_dist = Decimal(repr(float(atr))) * Decimal(repr(float(target_multiplier)))
    if side is Side.BUY:
        stop = (e - stop_dist).quantize(CENT, rounding=ROUND_HALF_UP)
        stop = min(stop, (e - CENT).quantize(CENT, rounding=ROUND_FLOOR))
        target = (e + target_dist).quantize(CENT, rounding=ROUND_HALF_UP)
        target = max(target, (e + CENT).quantize(CENT, rounding=ROUND_CEILING))
    else:
        stop = (e + stop_dist).quantize(CENT, rounding=ROUND_HALF_UP)
        stop = max(stop, (e + CENT).quantize(CENT, rounding=ROUND_CEILING))
        target = (e - target_dist).quantize(CENT, rounding=ROUND_HALF_UP)
        target = min(target, (e - CENT).quantize(CENT, rounding=ROUND_FLOOR))
    if stop <= 0 or target <= 0:
        return None
    return Bracket(side=side, entry=float(entry), stop=float(stop), target=float(target))


def position_size(
    equity: float, risk_pct: float, entry: float, stop: float, buying_power: float
) -> int:
    """Whole shares risking ``risk_pct`` % of equity between entry and stop, capped by
    buying power; 0 when nothing fits (the caller then places no order)."""
    values = (equity, risk_pct, entry, stop, buying_power)
    if not all(math.isfinite(v) for v in values) or entry <= 0 or equity <= 0:
        return 0
    per_share = abs(Decimal(repr(float(entry))) - Decimal(repr(float(stop))))
    if per_share <= 0 or risk_pct <= 0:
        return 0
    risk = Decimal(repr(float(equity))) * Decimal(repr(float(risk_pct))) / 100
    shares = int((risk / per_share).to_integral_value(rounding=ROUND_FLOOR))
    affordable = int(
        (
            Decimal(repr(max(float(buying_power), 0.0))) / Decimal(repr(float(entry)))
        ).to_integral_value(rounding=ROUND_FLOOR)
    )
    return max(0, min(shares, affordable))


def cap_shares(shares: int, entry: float, max_qty: int, max_notional: float) -> int:
    """``shares`` cut to at most ``max_qty`` and to a notional (shares × entry) of at most
    ``max_notional``; 0 when not even one share fits (or the inputs are not usable)."""
    if shares <= 0 or not (math.isfinite(entry) and entry > 0) or not max_notional > 0:
        return 0
    by_notional = int(
        (Decimal(repr(float(max_notional))) / Decimal(repr(float(entry)))).to_integral_value(
            rounding=ROUND_FLOOR
        )
    )
    return max(0, min(int(shares), int(max_qty), by_notional))


def within_caps(shares: int, entry: float, max_qty: int, max_notional: float) -> bool:
    """The last check before an order leaves: quantity and notional inside the caps."""
    if not (math.isfinite(entry) and entry > 0) or shares <= 0:
        return False
    notional = Decimal(repr(float(entry))) * shares
    return shares <= max_qty and notional <= Decimal(repr(float(max_notional)))
