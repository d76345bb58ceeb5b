"""Aggressor side: venue side, quote rule, tick rule with zero-tick continuation.

The rules are in docs/semantics.md."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.aggressor_side import (
    SESSION_START,
    AggressorState,
    buy_volume,
    classify,
    state_after,
    tick_rule,
)

NAN = float("nan")


def loop_tick_rule(prices: list[float], last_price: float = NAN, last_sign: int = 0) -> list[int]:
    """The rule in words: up = buy, down = sell, unchanged = the last direction."""
    out = []
    for p in prices:
        if last_price == last_price and p != last_price:
            last_sign = 1 if p > last_price else -1
        out.append(last_sign)
        last_price = p
    return out


def test_reference_v1_sequence_under_design_rules() -> None:
    # original: first and zero ticks split; DESIGN: first split, zero tick continues
    prices = np.array([100.00, 100.01, 100.01, 100.00, 99.99, 100.02])
    signs, state = tick_rule(prices)
    assert signs.tolist() == [0, 1, 1, -1, -1, 1]
    assert state == AggressorState(last_price=100.02, last_sign=1)


def test_first_print_split_until_a_reference_exists() -> None:
    signs, state = tick_rule(np.array([5.0, 5.0, 5.0, 4.0, 4.0]))
    assert signs.tolist() == [0, 0, 0, -1, -1]
    assert buy_volume(np.array([10.0, 3.0, 1.0, 7.0, 2.0]), signs).tolist() == [5, 1.5, 0.5, 0, 0]
    assert state.last_sign == -1


def test_state_carries_continuation_into_the_next_window() -> None:
    first, state = tick_rule(np.array([100.0, 100.5]))
    assert first.tolist() == [0, 1]
    # the next minute opens with an unchanged price: still a buy, not a split
    second, _ = tick_rule(np.array([100.5, 100.5, 100.25]), state)
    assert second.tolist() == [1, 1, -1]


def test_quote_rule_before_tick_rule_and_venue_side_first() -> None:
    price = np.array([100.0, 100.1, 100.1, 100.05, 100.0])
    bid = np.array([NAN, 100.0, 100.1, 100.0, 99.9])
    ask = np.array([NAN, 100.1, 100.2, 100.1, 100.1])
    side = np.array([NAN, NAN, NAN, NAN, -1.0])
    signs, _ = classify(price, side, bid, ask)
    # 0: no quote, no reference → split; 1: at the ask → buy; 2: at the bid → sell even
    # though the tick rule says "unchanged after an uptick"; 3: inside the spread → tick
    # rule (down); 4: the venue says sell although the price is above the bid
    assert signs.tolist() == [0, 1, -1, -1, -1]


def test_tick_rule_reference_is_the_previous_print_whoever_classified_it() -> None:
    price = np.array([10.0, 11.0, 11.0])
    side = np.array([-1.0, NAN, NAN])  # the venue calls the first print a sell
    signs, state = classify(price, side)
    assert signs.tolist() == [-1, 1, 1]
    assert state.last_sign == 1


def test_all_venue_sides_still_advance_the_tick_state() -> None:
    price = np.array([10.0, 11.0, 11.0, 11.0])
    signs, state = classify(price, np.array([1.0, -1.0, 1.0, -1.0]))
    assert signs.tolist() == [1, -1, 1, -1]
    assert state == AggressorState(11.0, 1)
    assert state_after(np.array([7.0, 7.0]), AggressorState(8.0, 1)) == AggressorState(7.0, -1)
    assert state_after(np.array([7.0, 7.0]), AggressorState(7.0, 1)) == AggressorState(7.0, 1)


price_lists = st.lists(st.integers(95, 105).map(lambda t: t * 0.25), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(price_lists, st.integers(0, 80))
def test_vectorised_equals_loop_and_windows_compose(prices: list[float], cut: int) -> None:
    arr = np.array(prices)
    whole, end_state = tick_rule(arr)
    assert whole.tolist() == loop_tick_rule(prices)
    cut = min(cut, len(prices))
    left, mid_state = tick_rule(arr[:cut], SESSION_START)
    right, right_state = tick_rule(arr[cut:], mid_state)
    assert np.concatenate([left, right]).tolist() == whole.tolist()
    assert right_state == end_state
    assert state_after(arr) == end_state
