"""Crypto pairs backtest as the trader would trade them: brackets in the pair's price
increments (a 0.0014 pair used to be blocked ``no_levels`` on every signal), fractional
quantities (a 40,000 pair under the notional cap used to get zero shares), no shorts, and
the fractional quantity stored in ``backtest_trades``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import psycopg

from analytics.increments import Increments
from backtest.curve import daily_stats, equity_curve
from backtest.fills import Candles
from backtest.portfolio import Account, simulate
from backtest.run import Request, Result
from backtest.signals import Signal
from backtest.store import save_result, start_run
from strategies.definitions import parse_strategy

T0 = datetime(2026, 3, 7, 3, 0, tzinfo=UTC).timestamp()  # a Saturday night: pairs trade
STRATEGY = parse_strategy(3, "gates", {"type": "auction_market"}, 300)


def flat(price: float, n: int = 240) -> Candles:
    ts = T0 + 60.0 * np.arange(n)
    o = np.full(n, price)
    return Candles(ts, o, o * 1.0005, o * 0.9995, o.copy())


def signal(minute: int, price: float, atr: float, kind: str = "BUY") -> Signal:
    t = T0 + 60.0 * minute + 59
    return Signal(
        ts=t, strategy_id=3, symbol_id=1, symbol="PAIR/USD", market="24/7", type=kind,
        price=price, price_time=t - 30,
        details={"atr": atr, "atr_stop_multiplier": 1.5, "atr_target_multiplier": 3.0},
    )  # fmt: skip


def test_a_0_0014_pair_trades_every_signal_it_used_to_block() -> None:
    signals = [signal(5 + 60 * k, 0.0014, 0.00005) for k in range(3)]
    book = simulate(STRATEGY, signals, {1: flat(0.0014)}, {}, Account(max_order_qty=10**9))
    # no longer no_levels: the first trades, the others meet its open position
    assert book.blocked == {"position_open": 2} and len(book.trades) == 1
    (trade,) = book.trades
    assert (trade.stop, trade.target) == (0.001325, 0.00155)
    assert trade.fill.qty == 7_142_857.142857142  # 10,000 notional in 1e-9 steps


def test_a_40000_pair_gets_a_fraction_under_the_notional_cap_and_no_short() -> None:
    btc = Increments.for_symbol("crypto", 1.0, 0.0001, 0.0001)
    book = simulate(
        STRATEGY, [signal(5, 40_000.0, 150.0)], {1: flat(40_000.0)}, {}, Account(), None, {1: btc}
    )
    (trade,) = book.trades
    assert trade.fill.qty == 0.25 and (trade.stop, trade.target) == (39_775.0, 40_450.0)
    short = simulate(
        STRATEGY, [signal(5, 40_000.0, 150.0, "SELL")], {1: flat(40_000.0)}, {}, Account()
    )
    assert short.trades == [] and short.blocked == {"no_crypto_short": 1}


def test_a_fractional_quantity_is_stored(db_url: str) -> None:
    day = date(2026, 3, 7)
    request = Request(strategy="auction_market", first_day=day, last_day=day)
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("select id from symbols where symbol = 'BTCUSD'").fetchone()
        assert row is not None
        sid = int(row[0])
        candles = {sid: flat(40_000.0)}
        sig = replace(signal(5, 40_000.0, 150.0), symbol_id=sid, symbol="BTCUSD")
        book = simulate(STRATEGY, [sig], candles, {}, request.account)
        start, end = request.start.timestamp(), request.end.timestamp()
        curve = equity_curve(book.trades, candles, start, end, 100_000.0)
        result = Result(
            STRATEGY, ["BTCUSD"], [sig], book, curve,
            daily_stats(curve, book.trades, 100_000.0), {}, {}, 240,
        )  # fmt: skip
        save_result(conn, start_run(conn, request), result)
        assert conn.execute("select qty from backtest_trades").fetchall() == [(0.25,)]
