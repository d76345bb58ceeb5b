"""The footprint terms of the rule vocabulary on hand-built metrics: stacked imbalances,
session VWAP bands, the initial-balance break and big prints, their validation, the
details a signal carries, and the windows both the engine and the backtester use."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from strategies.definitions import parse_strategy
from strategies.evaluation import evaluate
from strategies.footprint import BUY, SELL, SPLIT, Footprint, longest_stacks, newest_prints
from strategies.model import DefinitionError
from strategies.rules import condition_mask
from strategies.snapshot import Metrics, Universe

NOW = 1_800_000_000.0


def metrics(price: list[float], fp: Footprint | None = None, **over: object) -> Metrics:
    n = len(price)
    nan = np.full(n, np.nan)
    base: dict[str, object] = dict(
        price=np.array(price, dtype=np.float64), momentum_pct=nan, atr=np.full(n, 0.5), sma={},
        vwap=nan, poc=nan, vah=nan, val=nan, composite_poc=nan, composite_vah=nan,
        composite_val=nan, buy_pressure=nan, sell_pressure=nan, cvd_momentum=np.zeros(n),
        cvd_slope=nan, aggression=np.zeros(n), direction=np.zeros(n, np.int8),
        state=np.zeros(n, np.int8), confidence=np.zeros(n), distance_pct=nan,
        footprint=fp if fp is not None else Footprint.empty(n), asof=np.full(n, NOW),
    )  # fmt: skip
    base.update(over)
    return Metrics(**base)  # type: ignore[arg-type]


def holds(condition: dict, m: Metrics) -> list[bool]:
    strategy = parse_strategy(1, "t", {"type": "rules", "all": [condition]}, None)
    n = len(m.price)
    mask = condition_mask(strategy.all[0], m, np.zeros(n, np.int8), np.zeros(n))
    return mask.tolist()


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"metric": "price", "op": ">", "ref": "vwap_upper", "k": 0}, "k must be in (0, 5]"),
        ({"metric": "price", "op": ">", "ref": "vwap_lower", "k": -1}, "k must be in (0, 5]"),
        ({"metric": "price", "op": ">", "ref": "vwap_upper", "k": 9}, "k must be in (0, 5]"),
        ({"metric": "price", "op": ">", "ref": "vwap_upper", "k": "2"}, "k must be a number"),
        ({"metric": "price", "op": ">", "ref": "vwap_upper"}, "vwap_upper needs k"),
        ({"metric": "price", "op": ">", "ref": "session_vwap", "k": 1}, "k belongs to the refs"),
        ({"metric": "stacked_buy_imbalance", "op": ">=", "value": 0}, "must be in [1, 1000000]"),
        ({"metric": "stacked_sell_imbalance", "op": ">=", "value": 2.5}, "must be a whole number"),
        ({"metric": "stacked_buy_imbalance", "op": ">=", "ref": "poc"}, "compares with a value"),
        ({"metric": "big_print", "op": "==", "value": "UP"}, "one of BUY, SELL, ANY"),
        ({"metric": "big_print", "op": ">", "value": "BUY"}, "compares with == or !="),
        ({"metric": "big_print", "op": "==", "value": "BUY", "seconds": 0}, "must be in [1, 900]"),
        ({"metric": "big_print", "op": "==", "value": "BUY", "seconds": 901}, "in [1, 900]"),
        ({"metric": "price", "op": ">", "value": 1, "seconds": 5}, "seconds belongs to big_print"),
        ({"metric": "ib_break", "op": "==", "value": "UP"}, "one of ABOVE, BELOW, INSIDE"),
    ],
)  # fmt: skip
def test_bad_footprint_conditions_say_why(condition: dict, message: str) -> None:
    with pytest.raises(DefinitionError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_strategy(1, "t", {"type": "rules", "all": [condition]}, None)


def test_stacked_imbalance_of_at_least_n_rows() -> None:
    fp = replace(Footprint.empty(4), stack_buy=np.array([0.0, 2, 3, 5]))
    m = metrics([100.0] * 4, fp)
    assert holds({"metric": "stacked_buy_imbalance", "op": ">=", "value": 3}, m) == [
        False, False, True, True,
    ]  # fmt: skip
    assert holds({"metric": "stacked_sell_imbalance", "op": ">=", "value": 1}, m) == [False] * 4


def test_price_against_the_session_vwap_and_its_bands() -> None:
    fp = replace(
        Footprint.empty(5),
        vwap=np.array([100.0, 100, 100, 100, np.nan]),
        vwap_sd=np.array([1.0, 1, 1, np.nan, 1]),
    )
    m = metrics([101.0, 102.0, 97.9, 103.0, 103.0], fp)
    upper2 = {"metric": "price", "op": ">=", "ref": "vwap_upper", "k": 2}
    lower2 = {"metric": "price", "op": "<=", "ref": "vwap_lower", "k": 2}
    above = {"metric": "price", "op": ">", "ref": "session_vwap"}
    assert holds(upper2, m) == [False, True, False, False, False]  # no sd, no VWAP: false
    assert holds(lower2, m) == [False, False, True, False, False]
    assert holds(above, m) == [True, True, False, True, False]
    half = {"metric": "price", "op": ">=", "ref": "vwap_upper", "k": 0.5}
    assert holds(half, m) == [True, True, False, False, False]


def test_the_candle_vwap_ref_is_unchanged() -> None:
    m = metrics([101.0, 99.0], vwap=np.array([100.0, 100.0]))
    assert holds({"metric": "price", "op": ">", "ref": "vwap"}, m) == [True, False]


def test_initial_balance_break() -> None:
    m = metrics(
        [102.0, 98.0, 100.0, 100.0],
        ib_high=np.array([101.0, 101, 101, np.nan]),
        ib_low=np.array([99.0, 99, 99, np.nan]),
    )
    assert holds({"metric": "ib_break", "op": "==", "value": "ABOVE"}, m) == [
        True,
        False,
        False,
        False,
    ]
    assert holds({"metric": "ib_break", "op": "==", "value": "BELOW"}, m) == [
        False,
        True,
        False,
        False,
    ]
    assert holds({"metric": "ib_break", "op": "==", "value": "INSIDE"}, m) == [
        False,
        False,
        True,
        False,
    ]
    # no initial balance: neither == nor != holds
    assert holds({"metric": "ib_break", "op": "!=", "value": "INSIDE"}, m) == [
        True,
        True,
        False,
        False,
    ]
    assert holds({"metric": "price", "op": ">", "ref": "ib_high"}, m) == [True, False, False, False]
    assert holds({"metric": "price", "op": "<", "ref": "ib_low"}, m) == [False, True, False, False]


def test_big_print_within_the_last_seconds_by_side() -> None:
    fp = Footprint.empty(2)
    fp.big_ts[0, BUY], fp.big_ts[0, SELL], fp.big_ts[0, SPLIT] = NOW - 50, NOW - 300, NOW - 10
    m = metrics([100.0, 100.0], fp)

    def big(side: str, seconds: int, op: str = "==") -> list[bool]:
        return holds({"metric": "big_print", "op": op, "value": side, "seconds": seconds}, m)

    assert big("BUY", 60) == [True, False]
    assert big("BUY", 50) == [False, False]  # exactly 50 s old is outside the last 50 s
    assert big("SELL", 60) == [False, False]
    assert big("SELL", 301) == [True, False]
    assert big("ANY", 15) == [True, False]  # the unclassified print counts for ANY only
    assert big("BUY", 60, "!=") == [False, True]
    default = holds({"metric": "big_print", "op": "==", "value": "SELL"}, m)  # 60 s
    assert default == [False, False]


def test_a_signal_names_the_footprint_values_it_read() -> None:
    fp = replace(
        Footprint.empty(1), vwap=np.array([100.0]), vwap_sd=np.array([0.5]),
        stack_buy=np.array([4.0]),
    )  # fmt: skip
    fp.big_ts[0, SELL], fp.big_price[0, SELL], fp.big_size[0, SELL] = NOW - 5, 101.0, 900.0
    m = metrics([101.5], fp, ib_high=np.array([101.0]), ib_low=np.array([99.0]))
    strategy = parse_strategy(
        1,
        "t",
        {"type": "rules", "symbol": "S0",
         "all": [{"metric": "stacked_buy_imbalance", "op": ">=", "value": 3},
                 {"metric": "price", "op": ">=", "ref": "vwap_upper", "k": 3},
                 {"metric": "ib_break", "op": "==", "value": "ABOVE"},
                 {"metric": "big_print", "op": "==", "value": "ANY"}]},
        None,
    )  # fmt: skip
    universe = Universe(np.array([1]), ("S0",), ("XNYS",), ("stock",))
    (cand,) = evaluate(strategy, universe, m, m.state, m.confidence, {}, 70.0)
    d = cand.details
    assert (d["session_vwap"], d["vwap_sd"]) == (100.0, 0.5)
    assert (d["stacked_buy_imbalance"], d["stacked_sell_imbalance"]) == (4, 0)
    assert (d["ib_high"], d["ib_low"]) == (101.0, 99.0)
    assert d["big_print"] == {"side": "SELL", "price": 101.0, "size": 900.0, "age_s": 5.0}
    assert strategy.uses_footprint()


def test_the_windows_the_engine_and_the_backtester_share() -> None:
    # bars at minutes 0..6 (seconds), the instant at 6 min 59 s: a 5-minute window sees
    # bars 2..6; of two equal longest stacks the newest bar is named
    bucket = 60.0 * np.arange(7)
    length = np.array([9.0, 9, 3, 4, 1, 4, 2])
    best, at = longest_stacks(bucket, length, np.array([419.0, 60.0 * 30]))
    assert best.tolist() == [4.0, 0.0]
    assert at[0] == 300.0 and np.isnan(at[1])
    ts = np.array([10.0, 20.0, 20.0, 1000.0])
    price, size = np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)
    t, p, _ = newest_prints(ts, price, size, np.array([25.0, 919.0, 925.0, 5.0]))
    # at one instant the last stored print wins; a print 900 s old is gone
    assert p[:2].tolist() == [3.0, 3.0] and np.isnan(p[2]) and np.isnan(t[3])
