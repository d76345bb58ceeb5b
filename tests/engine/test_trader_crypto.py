"""Crypto through the auto-trader against the local Alpaca trading server: a pair's
entry is a market order, good till cancelled (Alpaca has no crypto bracket and takes only
gtc/ioc), for a fractional quantity in the pair's increments; a sell opens no short; a
40,000 pair fits under the notional cap as a fraction; the engine's intent carries the
symbol's increments from ``symbols``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import psycopg
import pytest
import redis.asyncio as aioredis

from analytics.increments import Increments
from core.contracts import Side
from strategies.intents import tradable
from strategies.snapshot import Universe
from streaming.engine.trader import Trader
from tests.support.engine_rows import NOW
from tests.support.fake_alpaca_trading import position
from tests.support.trading import NO_CAPS, intent, orders, process, trading_settings

pytestmark = pytest.mark.usefixtures("switch_off")


@pytest.fixture
def btc(conn: psycopg.Connection, captures: Path) -> Increments:
    """BTCUSD (Alpaca's BTC/USD) with the captured asset's increments, as the crypto
    stream declares them."""
    asset = json.loads((captures / "alpaca" / "crypto_asset_btcusd.json").read_text())
    steps = [float(asset[k]) for k in ("price_increment", "min_trade_increment", "min_order_size")]
    conn.execute(
        "update symbols set price_increment = %s, qty_increment = %s, min_order_qty = %s"
        " where symbol = 'BTCUSD'",
        steps,
    )
    return Increments.for_symbol("crypto", *steps)


def test_a_pair_is_a_gtc_market_entry_for_a_fraction(fake, db_url, redis_url, conn, btc):
    it = intent(conn, "BTCUSD", market="24/7", price=40_000.5, atr=150.0, increments=btc)
    settings = trading_settings(fake, MAX_ORDER_NOTIONAL=10_000, MAX_ORDER_QTY=500)
    asyncio.run(process(settings, db_url, redis_url, [[it]], now=NOW))
    assert fake.posted_orders() == [
        {
            "symbol": "BTC/USD",  # stored BTCUSD, Alpaca's name on the wire
            "qty": 0.2499,  # 10,000 / 40,000.5 in the pair's 0.0001 steps
            "side": "buy",
            "type": "market",
            "time_in_force": "gtc",
            "client_order_id": it.client_order_id,
        }
    ]
    ((_cid, status, _reason, qty, entry, stop, target, *_rest),) = orders(conn)
    assert (status, qty, entry, stop, target) == ("accepted", 0.2499, 40_000.5, 39_776.0, 40_451.0)
    order_type = conn.execute("select order_type from orders").fetchone()
    assert order_type == ("market",)


def test_a_pair_is_never_sold_short(fake, db_url, redis_url, conn, btc):
    it = intent(conn, "BTCUSD", side=Side.SELL, market="24/7", price=40_000.0, atr=150.0,
                increments=btc)  # fmt: skip
    trader = asyncio.run(process(trading_settings(fake, **NO_CAPS), db_url, redis_url, [[it]]))
    assert fake.posted_orders() == []
    assert trader.counters.blocked_by == {"no_crypto_short": 1}


def test_an_equity_bracket_below_a_dollar_is_in_0_0001(fake, db_url, redis_url, conn):
    it = intent(conn, price=0.5234, atr=0.01)
    asyncio.run(process(trading_settings(fake, **NO_CAPS), db_url, redis_url, [[it]]))
    (body,) = fake.posted_orders()
    assert body["order_class"] == "bracket" and body["time_in_force"] == "day"
    assert body["stop_loss"] == {"stop_price": 0.5084}
    assert body["take_profit"] == {"limit_price": 0.5534}


def test_the_engine_trades_stocks_and_pairs_with_their_increments(conn, btc) -> None:
    assert tradable("crypto", "24/7") and tradable("stock", "XNYS")
    assert not tradable("stock", "XLON") and not tradable("forex", "24/7")
    from streaming.engine.queries import UNIVERSE_SQL

    rows = conn.execute(UNIVERSE_SQL).fetchall()
    universe = Universe(
        np.array([r[0] for r in rows]),
        tuple(r[1] for r in rows),
        tuple(r[2] for r in rows),
        tuple(r[3] for r in rows),
        tuple(Increments.for_symbol(*r[3:7]) for r in rows),
    )
    index = universe.index()
    assert universe.increments_of(index["BTCUSD"]) == btc
    assert universe.increments_of(index["AAPL"]) == Increments()


def test_a_filled_entry_gets_its_protective_stop_once(fake, db_url, redis_url, conn, btc):
    it = intent(conn, "BTCUSD", market="24/7", price=40_000.5, atr=150.0, increments=btc)
    settings = trading_settings(fake, MAX_ORDER_NOTIONAL=10_000, MAX_ORDER_QTY=500)

    async def scenario() -> Trader:
        r = aioredis.Redis.from_url(redis_url)
        trader = Trader(settings, r)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            await trader.process(c, [it], loop_id=0, now=NOW)
            await trader.reconcile(c)  # accepted, not filled: no stop yet
            # filled; the position holds a little less: Alpaca's fee is taken in BTC
            fake.set_status(it.client_order_id, "filled", 0.2499, 40_001.0)
            fake.positions = [position("BTCUSD", qty=0.24975, price=40_001.0)]
            trader._polled.clear()
            await trader.reconcile(c)
            trader._polled.clear()
            await trader.reconcile(c)  # placed once
        await r.aclose()
        return trader

    asyncio.run(scenario())
    entry, stop = fake.posted_orders()
    assert entry["type"] == "market" and stop == {
        "symbol": "BTC/USD",
        "qty": 0.2497,  # what the position holds, in the pair's 0.0001 steps
        "side": "sell",
        "type": "stop_limit",
        "time_in_force": "gtc",
        "stop_price": 39_776.0,
        "limit_price": 39_378.0,  # 1 % under the stop, down to the pair's whole dollars
        "client_order_id": f"{it.client_order_id}-stop",
    }
    legs = conn.execute(
        "select client_order_id, side, qty, order_type, stop, status from orders order by id"
    ).fetchall()
    assert legs[1] == (
        f"{it.client_order_id}-stop",
        "sell",
        0.2497,
        "stop_limit",
        39_776.0,
        "accepted",
    )
