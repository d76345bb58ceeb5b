"""Arbitrage maths (analytics.arbitrage): a worked pair under docs/semantics.md's fees."""

from __future__ import annotations

import pytest

from analytics.arbitrage import (
    evaluate_basket,
    evaluate_pair,
    exit_value,
    fee_rate_for,
    mark_value,
    pair_edge,
    pair_entry,
    settlement_value,
    taker_fee,
    walk_asks,
)

approx = pytest.approx


def test_v10_quote_fee_free():
    view = evaluate_pair(
        0.49,
        0.51,
        0.47,
        0.48,
        rate=0.0,
        min_edge=0.005,
        yes_asks=[(0.51, 100)],
        no_asks=[(0.48, 100)],
    )
    assert view.yes_mid == approx(0.50)
    assert view.no_mid == approx(0.475)
    assert view.spread == approx(0.99)
    assert view.edge == approx(0.01)
    assert view.exit_value == approx(0.96)  # bids, never asks
    assert view.arbitrage and view.executable_size == 100


def test_one_threshold_is_strict():
    # edge 0.01 exactly at min_edge 0.01 is not an opportunity
    assert not evaluate_pair(
        0.49, 0.51, 0.47, 0.48, 0.0, 0.01, [(0.51, 100)], [(0.48, 100)]
    ).arbitrage
    # 0.51 + 0.49 = 1.00 is break-even: never flagged even at min_edge 0
    assert pair_edge(0.51, 0.49, 0.0) == approx(0.0)
    assert not evaluate_pair(
        0.5, 0.51, 0.48, 0.49, 0.0, 0.0, [(0.51, 100)], [(0.49, 100)]
    ).arbitrage


def test_fee_formula_rate_p_one_minus_p():
    assert taker_fee(0.5, 0.0624) == approx(0.0156)
    assert taker_fee(0.51, 0.02) == approx(0.02 * 0.51 * 0.49)
    # V10 at a 2 % rate: fees 0.02 × (0.51·0.49 + 0.48·0.52) = 0.00999 ⇒ edge 0.00001
    assert pair_edge(0.51, 0.48, 0.02) == approx(0.00001, abs=1e-12)
    # doc example 0.52 + 0.46 = 0.98 at 2 %: a flat-rate net of 0.0004 becomes 0.01004
    assert pair_edge(0.52, 0.46, 0.02) == approx(1 - 0.98 - 0.02 * (0.52 * 0.48 + 0.46 * 0.54))
    assert pair_edge(0.52, 0.46, 0.02) == approx(0.01004)
    assert pair_edge(0.52, 0.45, 0.0) == approx(0.03)  # design example
    assert pair_edge(0.52, 0.47, 0.0) == approx(0.01)


def test_fee_rate_by_category():
    rates = {"Crypto": 0.0624, "sports": 0.0}
    assert fee_rate_for("crypto", rates) == 0.0624
    assert fee_rate_for("SPORTS", rates, 0.01) == 0.0
    assert fee_rate_for(None, rates, 0.01) == 0.01
    assert fee_rate_for("politics", rates) == 0.0


def test_depth_walk_equal_shares_while_marginal_edge_clears():
    yes = [(0.40, 100), (0.45, 50), (0.50, 1000)]
    no = [(0.50, 30), (0.52, 200)]
    fill = walk_asks((yes, no), 0.0, 0.005)
    assert fill.shares == approx(150)  # 30 @0.90, 70 @0.92, 50 @0.97; 0.50+0.52 stops
    assert fill.cost == approx(30 * 0.90 + 70 * 0.92 + 50 * 0.97)
    assert fill.profit == approx(150 - 139.9)
    assert fill.worst_prices == (0.45, 0.52)
    assert walk_asks((yes, no), 0.0, 0.05).shares == approx(100)  # 0.97 leaves 0.03 < 0.05
    assert walk_asks((yes, no), 0.0, 0.005, max_shares=40).shares == approx(40)
    assert walk_asks((yes, []), 0.0, 0.0).shares == 0


def test_depth_walk_counts_fees_per_level():
    # at rate 0.0624 the 0.45/0.52 level costs 0.97 + 0.0624·(0.2475+0.2496) ≈ 1.001: stop
    yes = [(0.40, 100), (0.45, 50)]
    no = [(0.50, 30), (0.52, 200)]
    fill = walk_asks((yes, no), 0.0624, 0.005)
    assert fill.shares == approx(100)
    assert fill.fees == approx(
        30 * (taker_fee(0.4, 0.0624) + taker_fee(0.5, 0.0624))
        + 70 * (taker_fee(0.4, 0.0624) + taker_fee(0.52, 0.0624))
    )


def test_paper_entry_is_equal_shares_within_budget():
    yes = [(0.40, 100), (0.45, 50)]
    no = [(0.50, 30), (0.52, 200)]
    fill = pair_entry(yes, no, 0.0, 0.005, max_cost=45.0)
    assert 0 < fill.shares <= 50
    assert fill.cost + fill.fees <= 45.0 + 1e-9
    assert mark_value(10, 0.39, 0.49, 0.0) == approx(10 * 0.88)
    assert exit_value(0.39, 0.49, 0.0624) < 0.88  # selling pays fees too
    assert settlement_value(10, 10, "yes") == 10
    assert settlement_value(10, 10, "no") == 10
    assert settlement_value(10, 10, "50-50") == 10


def test_neg_risk_basket_and_augmented_skipped():
    ladders = [[(0.30, 100)], [(0.33, 50)], [(0.31, 80), (0.40, 100)]]
    view = evaluate_basket(ladders, 0.0, 0.005)
    assert view is not None
    assert view.ask_sum == approx(0.94)
    assert view.edge == approx(0.06)
    assert view.executable_size == approx(50)
    assert view.arbitrage
    assert evaluate_basket(ladders, 0.0, 0.005, augmented=True) is None
    assert not evaluate_basket(ladders, 0.0, 0.005, stale=True).arbitrage
    # Σ asks ≥ 1 after fees: no basket
    assert not evaluate_basket([[(0.5, 10)], [(0.5, 10)]], 0.0, 0.0).arbitrage
    # one outcome without asks: the set is incomplete, no quote
    assert evaluate_basket([[(0.3, 10)], []], 0.0, 0.0).edge is None


def test_stale_never_flags():
    view = evaluate_pair(
        0.49, 0.51, 0.47, 0.48, 0.0, 0.005, [(0.51, 100)], [(0.48, 100)], stale=True
    )
    assert view.edge == approx(0.01) and not view.arbitrage
