"""A symbol's price and quantity increments: the steps orders are placed in
(docs/trading-safety.md).

The venue's own increments win (``symbols.price_increment``, ``qty_increment``,
``min_order_qty``, filled from Alpaca's ``/v2/assets`` for crypto). Without them:

- equities: prices in cents at or above a dollar and in 0.0001 below (the sub-penny rule
  brokers apply), whole shares;
- crypto: prices to five significant digits of the price (a 40,000 pair in whole dollars,
  a 0.0014 pair in 0.0000001), quantities in 0.000000001 (Alpaca's finest
  ``min_trade_increment``).

Everything is Decimal: a bracket level or a quantity is an exact multiple of its step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
SUB_DOLLAR = Decimal("0.0001")
SHARE = Decimal(1)
CRYPTO_QTY = Decimal("0.000000001")
CRYPTO_SIGNIFICANT_DIGITS = 5


def decimal(value: float | int | str | Decimal) -> Decimal:
    """The decimal a number prints as (``repr`` of a float round-trips: 0.1 stays 0.1)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def _venue_step(value: float | None) -> Decimal | None:
    if value is None or not (isinstance(value, int | float) and math.isfinite(value)):
        return None
    return decimal(value) if value > 0 else None


@dataclass(frozen=True)
class Increments:
    """``price``/``qty``/``min_qty``: the venue's steps (None: the rule of ``crypto``)."""

    price: Decimal | None = None
    qty: Decimal | None = None
    min_qty: Decimal | None = None
    crypto: bool = False

    @classmethod
    def for_symbol(
        cls,
        asset_type: str,
        price_increment: float | None = None,
        qty_increment: float | None = None,
        min_order_qty: float | None = None,
    ) -> Increments:
        """A symbol's increments from its ``symbols`` row."""
        return cls(
            price=_venue_step(price_increment),
            qty=_venue_step(qty_increment),
            min_qty=_venue_step(min_order_qty),
            crypto=asset_type == "crypto",
        )

    # --- prices ---------------------------------------------------------------------------

    def price_step(self, price: Decimal) -> Decimal:
        """The price increment that applies at ``price``."""
        if self.price is not None:
            return self.price
        if self.crypto:
            if price <= 0:
                return CRYPTO_QTY
            exponent = price.adjusted() - (CRYPTO_SIGNIFICANT_DIGITS - 1)
            return Decimal(1).scaleb(exponent)
        return CENT if price >= 1 else SUB_DOLLAR

    @staticmethod
    def to_step(value: Decimal, step: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
        """``value`` as a multiple of ``step`` (half away from zero unless told)."""
        return (value / step).to_integral_value(rounding=rounding) * step

    def round_price(self, value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
        return self.to_step(value, self.price_step(value), rounding)

    def price_decimals(self, price: float) -> int:
        """Digits after the point a price near ``price`` is shown and sent with."""
        if not (math.isfinite(price) and price > 0):
            return 2
        step = self.price_step(decimal(price)).normalize()
        return max(0, -step.as_tuple().exponent)  # type: ignore[operator]

    # --- quantities -------------------------------------------------------------------------

    @property
    def qty_step(self) -> Decimal:
        if self.qty is not None:
            return self.qty
        return CRYPTO_QTY if self.crypto else SHARE

    @property
    def min_order(self) -> Decimal:
        return self.min_qty if self.min_qty is not None else self.qty_step

    def floor_qty(self, qty: Decimal) -> Decimal:
        """``qty`` down to a multiple of the quantity step; 0 below the minimum order."""
        if not qty.is_finite() or qty <= 0:
            return Decimal(0)
        floored = self.to_step(qty, self.qty_step, ROUND_FLOOR)
        return floored if floored >= self.min_order else Decimal(0)


EQUITY = Increments()
__all__ = ["EQUITY", "ROUND_CEILING", "ROUND_FLOOR", "ROUND_HALF_UP", "Increments", "decimal"]
