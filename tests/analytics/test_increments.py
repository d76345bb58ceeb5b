"""Each symbol's price and quantity increments in the bracket levels and sizes: the
0.0014 pair that used to get no levels at all, the 40,000 pair that used to get zero
shares under the notional cap, sub-dollar equities, and the venue's own increments."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from analytics.increments import EQUITY, Increments
from analytics.risk import bracket_levels, cap_quantity, position_size, within_caps
from core.contracts import Side

CRYPTO = Increments.for_symbol("crypto")


def test_a_pair_at_0_0014_gets_levels_and_a_fractional_size() -> None:
    # cents rounded every level to 0.00 (refused: no_levels); the equity rule below a
    # dollar has 0.0001 steps, the crypto rule five significant digits
    equity = bracket_levels(Side.BUY, 0.0014, 0.00005)
    assert equity is not None and (equity.stop, equity.target) == (0.0013, 0.0016)
    b = bracket_levels(Side.BUY, 0.0014, 0.00005, 1.5, 3.0, CRYPTO)
    assert b is not None and (b.stop, b.target) == (0.001325, 0.00155)
    s = bracket_levels(Side.SELL, 0.0014, 0.00005, 1.5, 3.0, CRYPTO)
    assert s is not None and (s.stop, s.target) == (0.001475, 0.00125)
    # 1 % of 100,000 over a 0.000075 stop distance: 13,333,333.333333333 units, floored
    # to 0.000000001; a tenth of that is what 10,000 of buying power affords
    assert position_size(100_000, 1.0, 0.0014, b.stop, 1e12, CRYPTO) == 13_333_333.333333333
    assert position_size(100_000, 1.0, 0.0014, b.stop, 10_000, CRYPTO) == 7_142_857.142857142
    assert (
        cap_quantity(7_142_857.142857142, 0.0014, 10_000_000, 10_000, CRYPTO) == 7_142_857.142857142
    )


def test_a_pair_at_40000_gets_a_fraction_under_the_notional_cap() -> None:
    b = bracket_levels(Side.BUY, 40_000.0, 150.0, 1.5, 3.0, CRYPTO)
    assert b is not None and (b.stop, b.target) == (39_775.0, 40_450.0)
    sized = position_size(100_000, 1.0, 40_000.0, b.stop, 50_000, CRYPTO)
    assert sized == 1.25  # whole coins would have been 4 (risk) or 1 (buying power)
    # under a 10,000 notional cap: 0.25 BTC, where whole shares gave 0 (size_zero)
    assert cap_quantity(sized, 40_000.0, 500, 10_000, CRYPTO) == 0.25
    assert cap_quantity(sized, 40_000.0, 500, 10_000) == 0  # the equity rule: whole units
    assert within_caps(0.25, 40_000.0, 500, 10_000) and not within_caps(0.26, 40_000, 500, 10_000)


def test_the_venues_increments_win(captures: Path) -> None:
    asset = json.loads((captures / "alpaca" / "crypto_asset_btcusd.json").read_text())
    btc = Increments.for_symbol(
        "crypto",
        float(asset["price_increment"]),
        float(asset["min_trade_increment"]),
        float(asset["min_order_size"]),
    )
    b = bracket_levels(Side.BUY, 40_000.5, 150.0, 1.5, 3.0, btc)
    assert b is not None and (b.stop, b.target) == (39_776.0, 40_451.0)  # whole dollars
    assert cap_quantity(0.123456, 40_000.0, 500, 10_000, btc) == 0.1234  # 0.0001 steps
    assert cap_quantity(0.00009, 40_000.0, 500, 10_000, btc) == 0  # below the minimum order
    assert btc.price_decimals(40_000.0) == 0 and CRYPTO.price_decimals(0.0014) == 7


@pytest.mark.parametrize(
    ("entry", "step"), [(250.0, "0.01"), (1.0, "0.01"), (0.9999, "0.0001"), (0.0523, "0.0001")]
)
def test_equities_trade_in_cents_from_a_dollar_and_0_0001_below(entry: float, step: str) -> None:
    assert EQUITY.price_step(Decimal(repr(entry))) == Decimal(step)


def test_a_sub_dollar_equity_bracket_is_in_0_0001_and_crosses_a_dollar_in_cents() -> None:
    b = bracket_levels(Side.BUY, 0.52, 0.01, 1.5, 3.0)
    assert b is not None and (b.stop, b.target) == (0.505, 0.55)
    up = bracket_levels(Side.BUY, 0.99, 0.0123, 1.5, 3.0)
    assert up is not None and up.target == 1.03  # 1.0269 is above a dollar: cents
    assert up.stop == 0.9716


def test_shares_stay_whole() -> None:
    assert position_size(100_000, 1.0, 100, 99.25, 200_000) == 1333
    assert position_size(1_000, 1.0, 500.0, 480.0, 100_000) == 0  # never forced to 1
    assert Increments.for_symbol("stock").floor_qty(Decimal("12.9")) == 12
