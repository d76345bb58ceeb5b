"""Signals to trades on a simulated account: the trader's gates in its order, its sizing
and caps, one position per symbol, the daily-loss gate after a losing day's trade."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from backtest.fills import Candles, Costs
from backtest.portfolio import Account, simulate
from backtest.signals import Signal
from strategies.definitions import parse_strategy

T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC).timestamp()  # a Tuesday, 10:00 New York
STRATEGY = parse_strategy(3, "gates", {"type": "auction_market"}, 300)


def flat(n: int = 240, price: float = 100.0, dip_at: int | None = None) -> Candles:
    """Quiet candles around ``price``; at ``dip_at`` a candle falls through any stop."""
    ts = T0 + 60.0 * np.arange(n)
    o = np.full(n, price)
    h, lo, c = o + 0.05, o - 0.05, o.copy()
    if dip_at is not None:
        lo[dip_at] = price - 10
    return Candles(ts, o, h, lo, c)


def signal(
    minute: int,
    kind: str = "BUY",
    symbol_id: int = 1,
    atr: float | None = 0.5,
    age_s: float = 59.0,
    ts: float | None = None,
) -> Signal:
    t = ts if ts is not None else T0 + 60.0 * minute + 59
    return Signal(
        ts=t, strategy_id=3, symbol_id=symbol_id, symbol=f"S{symbol_id}", market="XNYS",
        type=kind, price=100.0, price_time=t - age_s,
        details={"atr": atr, "atr_stop_multiplier": 1.5, "atr_target_multiplier": 3.0},
    )  # fmt: skip


def test_sizing_follows_risk_and_the_notional_cap() -> None:
    candles = {1: flat()}
    book = simulate(STRATEGY, [signal(5)], candles, {}, Account(max_order_notional=1e9))
    (trade,) = book.trades
    # 1 % of 100 000 over a stop 0.75 below 100: 1333 shares, under the 500-share cap
    assert (trade.stop, trade.target, trade.fill.qty) == (99.25, 101.5, 500)
    book = simulate(STRATEGY, [signal(5)], candles, {}, Account())
    assert book.trades[0].fill.qty == 100  # 10 000 notional at 100
    book = simulate(STRATEGY, [signal(5)], candles, {}, Account(risk_pct=0.05))
    assert book.trades[0].fill.qty == 66  # 50 / 0.75


def test_gates_in_the_traders_order() -> None:
    candles = {1: flat(), 2: flat()}
    night = datetime(2026, 3, 3, 3, 0, tzinfo=UTC).timestamp()
    signals = [
        signal(0, ts=night),  # market closed (New York at 22:00)
        signal(1, age_s=600),  # the price is 10 minutes old
        signal(2, atr=None),  # no ATR: no bracket
        signal(3, kind="SELL"),  # shorting off
        signal(4),  # trades
        signal(6),  # same symbol still open
        signal(7, symbol_id=2),  # one position account-wide
    ]
    book = simulate(STRATEGY, signals, candles, {}, Account(shorting=False))
    assert len(book.trades) == 1 and book.trades[0].signal.ts == signals[4].ts
    assert book.blocked == {
        "market_closed": 1,
        "stale_price": 1,
        "no_levels": 1,
        "shorting_disabled": 1,
        "position_open": 1,
        "max_positions": 1,
    }


def test_a_stopped_out_loss_beyond_the_daily_limit_blocks_the_rest_of_the_day() -> None:
    candles = {1: flat(dip_at=20), 2: flat()}
    account = Account(max_order_notional=1e9, max_order_qty=100_000, risk_pct=4.0,
                      max_positions=5, costs=Costs(slippage_bps=0))  # fmt: skip
    # a stop 7.5 below 100: 4 % of 100 000 at risk, 533 shares, stopped out at minute 20
    book = simulate(STRATEGY, [signal(5, atr=5.0), signal(30, symbol_id=2)], candles, {}, account)
    (loss,) = book.trades
    assert loss.fill.qty == 533 and loss.fill.exit.reason == "stop"
    assert loss.fill.pnl == -533 * 7.5  # more than MAX_DAILY_LOSS_PCT (3 %) of the day's start
    assert book.blocked == {"daily_loss": 1}
