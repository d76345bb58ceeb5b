"""Fills and bracket exits on hand-made candles: next open + slippage, the stop first when
one candle reaches both levels, gaps through a level, shorts, session close, costs."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.fills import Candles, Costs, entry_index, fill_trade, find_exit
from backtest.prints import MemoryPrints, first_touch
from core.contracts import Side

T0 = 1_700_000_000.0 - 1_700_000_000.0 % 60  # a minute start


def candles(*bars: tuple[float, float, float, float]) -> Candles:
    """Consecutive one-minute candles from (open, high, low, close)."""
    o, h, lo, c = (np.array(x, dtype=float) for x in zip(*bars, strict=True))
    return Candles(T0 + 60.0 * np.arange(len(o)), o, h, lo, c)


def test_entry_is_the_first_candle_after_the_signal() -> None:
    c = candles((1, 1, 1, 1), (2, 2, 2, 2), (3, 3, 3, 3))
    assert entry_index(c.ts, T0 + 59) == 1  # decided in the first minute: the next open
    assert entry_index(c.ts, T0 + 60) == 2
    assert entry_index(c.ts, T0 + 179) is None  # the history ends first


def test_long_target_stop_and_both_in_one_candle_takes_the_stop() -> None:
    # entry at 100; stop 99, target 102
    c = candles((100, 100.5, 99.5, 100), (100, 101, 99.2, 100.5), (100.5, 102.5, 98.9, 101))
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0)
    assert (out.index, out.raw_price, out.reason) == (2, 99.0, "stop")  # both reachable
    c = candles((100, 100.5, 99.5, 100), (100, 102.1, 99.5, 102))
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0)
    assert (out.index, out.raw_price, out.reason, out.ts) == (1, 102.0, "target", T0 + 60)


def test_gap_through_the_stop_fills_at_the_open() -> None:
    c = candles((100, 100.5, 99.5, 100), (97.5, 98, 97, 97.8))
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0)
    assert (out.index, out.raw_price, out.reason) == (1, 97.5, "stop")
    # the entry candle itself opening through the stop: out at once, at that open
    c = candles((98.5, 100, 98, 99.5))
    assert find_exit(c, Side.BUY, 99.0, 102.0, 0).raw_price == 98.5


def test_gap_through_the_target_fills_at_the_better_open() -> None:
    c = candles((100, 100.5, 99.5, 100), (103, 103.5, 102.8, 103.2))
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0)
    assert (out.raw_price, out.reason) == (103.0, "target")


def test_short_target_stop_first_and_gap() -> None:
    # short at 100: stop 101 above, target 98 below
    c = candles((100, 100.4, 99.6, 100), (99.5, 99.8, 97.9, 98.2))
    out = find_exit(c, Side.SELL, 101.0, 98.0, 0)
    assert (out.index, out.raw_price, out.reason) == (1, 98.0, "target")
    c = candles((100, 100.4, 99.6, 100), (100, 101.2, 97.5, 99))
    assert find_exit(c, Side.SELL, 101.0, 98.0, 0).reason == "stop"  # both: the stop
    c = candles((100, 100.4, 99.6, 100), (102, 102.5, 101.5, 102))
    out = find_exit(c, Side.SELL, 101.0, 98.0, 0)
    assert (out.raw_price, out.reason) == (102.0, "stop")  # gapped up through it


def test_session_close_and_end_of_data() -> None:
    c = candles((100, 100.5, 99.5, 100.2), (100.2, 100.6, 99.8, 100.4), (100.4, 101, 100, 100.9))
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0, close_at=T0 + 120)
    assert (out.index, out.raw_price, out.reason, out.ts) == (1, 100.4, "session_close", T0 + 120)
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0)
    assert (out.index, out.raw_price, out.reason) == (2, 100.9, "end_of_data")


def test_long_pnl_with_slippage_commission_and_excursions() -> None:
    c = candles((100, 100.5, 99.5, 100), (100, 101.5, 99.6, 101), (101, 101.2, 98.8, 99))
    costs = Costs(slippage_bps=10, commission_per_share=0.01, commission_per_order=1.0)
    f = fill_trade(c, Side.BUY, 10, 99.0, 102.0, 0, costs)
    assert f.entry_price == pytest.approx(100.1)  # 10 bps worse
    assert f.exit.reason == "stop" and f.exit_price == pytest.approx(99 * 0.999)
    assert f.gross == pytest.approx((99 * 0.999 - 100.1) * 10)
    assert f.commission == pytest.approx(2 * (1.0 + 0.01 * 10))
    assert f.pnl == pytest.approx(f.gross - 2.2)
    assert f.pnl < 0
    # best: 101.5 high of candle 1 (entry candle's 100.5 is lower); worst: the exit
    assert f.mfe == pytest.approx((101.5 - 100.1) * 10)
    assert f.mae == pytest.approx((100.1 - 99 * 0.999) * 10)
    assert f.bars_held == 3


def test_short_pnl_is_signed_for_a_short() -> None:
    c = candles((100, 100.4, 99.6, 100), (99.5, 99.8, 97.9, 98.2))
    costs = Costs(slippage_bps=0, commission_per_order=0.5)
    f = fill_trade(c, Side.SELL, 20, 101.0, 98.0, 0, costs)
    assert f.entry_price == 100.0 and f.exit_price == 98.0  # a target pays no slippage
    assert f.gross == pytest.approx((100 - 98) * 20)  # a short gains when the price falls
    assert f.pnl == pytest.approx(40 - 1.0)
    # a losing short
    c = candles((100, 100.4, 99.6, 100), (100.5, 101.5, 100.2, 101.2))
    f = fill_trade(c, Side.SELL, 20, 101.0, 98.0, 0, Costs(slippage_bps=10))
    assert f.entry_price == pytest.approx(100 * 0.999)  # selling gets less
    assert f.exit_price == pytest.approx(101 * 1.001)  # buying back pays more
    assert f.pnl == pytest.approx((100 * 0.999 - 101 * 1.001) * 20)
    assert f.mae == pytest.approx((101 * 1.001 - 100 * 0.999) * 20)


def test_prints_decide_which_level_a_wide_candle_reached_first() -> None:
    c = candles((100, 100.5, 99.5, 100), (100, 102.5, 98.5, 100.5))
    up_first = np.array([100.2, 101.0, 102.1, 99.5, 98.5])
    down_first = np.array([99.8, 98.9, 101.0, 102.2])
    assert first_touch(up_first, Side.BUY, 99.0, 102.0) == "target"
    assert first_touch(down_first, Side.BUY, 99.0, 102.0) == "stop"
    assert first_touch(np.array([100.0]), Side.BUY, 99.0, 102.0) is None
    assert first_touch(up_first, Side.SELL, 102.0, 99.0) == "stop"  # a short's stop is above
    prints = MemoryPrints({1: (T0 + 60 + np.arange(5.0), up_first)})
    decide = lambda j: first_touch(prints.minute(1, c.ts[j]), Side.BUY, 99.0, 102.0)  # noqa: E731
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0, decide=decide)
    assert (out.raw_price, out.reason) == (102.0, "target")
    # no prints for that minute: the conservative stop
    out = find_exit(c, Side.BUY, 99.0, 102.0, 0, decide=lambda j: None)
    assert (out.raw_price, out.reason) == (99.0, "stop")


def test_entry_at_the_next_print_when_prints_exist() -> None:
    c = candles((100, 100.5, 99.5, 100), (100.3, 101, 100, 100.8))
    prints = MemoryPrints({1: (np.array([T0 + 59.5, T0 + 60.2]), np.array([100.1, 100.3]))})
    first = prints.next_print(1, T0 + 59, T0 + 120)
    assert first == (T0 + 59.5, 100.1)  # still inside the signal's own minute
    assert prints.next_print(1, T0 + 61, T0 + 120) is None
    f = fill_trade(c, Side.BUY, 5, 99.0, 102.0, 1, Costs(), entry_print=first)
    assert (f.entry_ts, f.entry_price) == (T0 + 59.5, 100.1)
