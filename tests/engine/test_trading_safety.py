"""Trading caps and gates, each on its own against the local Alpaca trading server; the
database constraints on strategy parameters; one order from two traders and from two
engines on one database (docs/trading-safety.md)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest
import redis.asyncio as aioredis

from analytics.risk import cap_quantity, within_caps
from streaming.engine.loop import Engine
from streaming.engine.trader import Trader
from streaming.venues.alpaca.execution import is_live_url, make_client
from tests.support.engine_rows import NOW, seed_aapl, symbol_ids
from tests.support.fake_alpaca_trading import account, position
from tests.support.trading import intent, orders, process, trading_settings

# orders go out only while the kill switch reads "off": the gates under test start there
pytestmark = pytest.mark.usefixtures("switch_off")


def reasons(conn: psycopg.Connection) -> list[tuple[str, str | None]]:
    return [(o[1], o[2]) for o in orders(conn)]


# --- caps -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("caps", "qty"),
    [
        ({}, 100),  # the defaults: 10 000 notional at 100 → 100 shares (500-share cap idle)
        ({"MAX_ORDER_QTY": 40, "MAX_ORDER_NOTIONAL": 1e9}, 40),
        ({"MAX_ORDER_QTY": 1_000_000, "MAX_ORDER_NOTIONAL": 2_550}, 25),
    ],
)
def test_each_cap_bounds_the_order(fake, db_url, redis_url, conn, caps, qty):
    """1 % of 100 000 over a 0.75 stop is 1 333 shares; each cap alone cuts it."""
    asyncio.run(process(trading_settings(fake, **caps), db_url, redis_url, [[intent(conn)]]))
    (body,) = fake.posted_orders()
    assert body["qty"] == qty
    assert orders(conn)[0][3] == qty


def test_a_price_above_the_notional_cap_is_blocked(fake, db_url, redis_url, conn):
    asyncio.run(
        process(trading_settings(fake), db_url, redis_url, [[intent(conn, price=12_000.0)]])
    )
    assert fake.posted_orders() == []
    assert reasons(conn) == [("blocked", "order_cap")]


def test_observed_zero_multiplier_sizing_cannot_happen(fake, db_url, redis_url, conn):
    """The issue's case: equity 100 000, buying power 400 000 and a 0 stop multiplier gave
    a 4 188-share order with a one-cent stop. Now the multiplier is refused outright, and
    the tightest allowed stop still yields at most the capped order."""
    fake.account = account(buying_power=400_000)
    zero = intent(conn, stop_multiplier=0.0)
    tight = intent(conn, "MSFT", stop_multiplier=0.1, at=NOW + timedelta(seconds=1))
    settings = trading_settings(fake, MAX_POSITIONS=5)
    asyncio.run(process(settings, db_url, redis_url, [[zero, tight]], now=tight.signal_time))
    assert reasons(conn)[0] == ("blocked", "bad_parameters")
    (body,) = fake.posted_orders()
    assert body["qty"] * 100.0 <= 10_000 and body["qty"] <= 500


def test_cap_functions():
    assert cap_quantity(4188, 95.5, 500, 10_000) == 104
    assert cap_quantity(4188, 95.5, 50, 10_000) == 50
    assert cap_quantity(0, 95.5, 50, 10_000) == 0
    assert cap_quantity(10, float("nan"), 50, 10_000) == 0
    assert within_caps(104, 95.5, 500, 10_000) and not within_caps(105, 95.5, 500, 10_000)
    assert not within_caps(501, 1.0, 500, 10_000)


# --- price age, parameters, equity --------------------------------------------------------
@pytest.mark.parametrize(
    "price_age", [timedelta(seconds=121), timedelta(minutes=30), timedelta(seconds=-30), None]
)
def test_stale_or_unknown_price_blocks(fake, db_url, redis_url, conn, price_age):
    price_time = None if price_age is None else NOW - price_age
    it = intent(conn, price_time=price_time)
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[it]]))
    assert fake.requests == []
    assert reasons(conn) == [("blocked", "stale_price")]


def test_price_age_is_a_setting(fake, db_url, redis_url, conn):
    it = intent(conn, price_time=NOW - timedelta(seconds=100))
    settings = trading_settings(fake, ORDER_MAX_PRICE_AGE_SECONDS=90)
    asyncio.run(process(settings, db_url, redis_url, [[it]]))
    assert reasons(conn) == [("blocked", "stale_price")]
    fresh = intent(conn, price_time=NOW - timedelta(seconds=100), at=NOW + timedelta(seconds=1))
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[fresh]], now=NOW))
    assert len(fake.posted_orders()) == 1  # 100 s is inside the default 120 s


@pytest.mark.parametrize(
    "overrides",
    [
        {"stop_multiplier": 0.0},
        {"stop_multiplier": -1.0},
        {"target_multiplier": 500.0},
        {"stop_multiplier": float("nan")},
        {"risk_pct": 0.0},
        {"risk_pct": 50.0},
    ],
)
def test_parameters_out_of_bounds_block(fake, db_url, redis_url, conn, overrides):
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[intent(conn, **overrides)]]))
    assert fake.requests == []
    assert reasons(conn) == [("blocked", "bad_parameters")]


@pytest.mark.parametrize(
    "overrides",
    [
        {"last_equity": 0},
        {"last_equity": "NaN"},
        {"last_equity": None},
        {"last_equity": "not a number"},
        {"equity": None, "portfolio_value": 5_000, "last_equity": 0},
    ],
)
def test_daily_loss_gate_blocks_without_equity_data(fake, db_url, redis_url, conn, overrides):
    fake.account = account(**overrides)
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[intent(conn)]]))
    assert fake.posted_orders() == []
    assert reasons(conn) == [("blocked", "equity_unknown")]


def test_strategy_daily_loss_applies_when_stricter(fake, db_url, redis_url, conn):
    fake.account = account(equity=98_000, last_equity=100_000)  # −2 %: inside the 3 % setting
    it = intent(conn, max_daily_loss_pct=1.5)
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[it]]))
    assert reasons(conn) == [("blocked", "daily_loss")]


# --- live URL -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://api.alpaca.markets",
        "https://api.alpaca.markets.",
        "https://api.alpaca.markets./v2",
        "https://API.Alpaca.Markets",
        "https://api.alpaca.markets:443/",
        "https://user@api.alpaca.markets.:443",
        "  https://api.alpaca.markets  ",
    ],
)
def test_live_url_is_recognised_however_spelt(url):
    assert is_live_url(url)
    with pytest.raises(RuntimeError, match="ALPACA_LIVE"):
        make_client(trading_settings(ALPACA_TRADING_URL=url))


def test_paper_and_local_urls_are_not_live():
    for url in ("https://paper-api.alpaca.markets", "http://127.0.0.1:8080", "https://x.markets"):
        assert not is_live_url(url)


# --- position gates: atomic with the order row ----------------------------------------------
@pytest.mark.parametrize(
    ("case", "max_positions", "gate"),
    [
        # different signals for one symbol at the same moment
        ("same_symbol", 5, "position_open"),
        # two symbols, room for one position
        ("two_symbols", 1, "max_positions"),
    ],
)
def test_two_traders_at_once_send_one_order(
    fake, db_url, redis_url, conn, case: str, max_positions: int, gate: str
):
    """Two traders (as two engines would be) at the same moment: the position gate and the
    row insert are one locked transaction, so one order goes out and the other is blocked."""
    if case == "same_symbol":
        its = [intent(conn), intent(conn, at=NOW + timedelta(microseconds=1), price_time=NOW)]
    else:
        its = [intent(conn, "AAPL"), intent(conn, "MSFT")]

    async def one(it) -> None:
        r = aioredis.Redis.from_url(redis_url)
        trader = Trader(trading_settings(fake, MAX_POSITIONS=max_positions), r)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            await trader.process(c, [it], loop_id=0, now=NOW)
        await r.aclose()

    async def both() -> None:
        await asyncio.gather(*(one(it) for it in its))

    asyncio.run(both())
    assert len(fake.posted_orders()) == 1
    assert sorted(reasons(conn)) == [("accepted", "test"), ("blocked", gate)]


def test_strategy_max_positions(fake, db_url, redis_url, conn):
    """The strategy already holds AAPL (a filled order of its own still open at the
    broker): its cap of 1 blocks MSFT although the account allows five positions."""
    fake.positions = [position("AAPL")]
    strategy_id = intent(conn).strategy_id
    conn.execute(
        "insert into orders (client_order_id, symbol_id, strategy_id, side, qty, status, paper)"
        " values ('earlier', %s, %s, 'buy', 10, 'filled', true)",
        (symbol_ids(conn)["AAPL"], strategy_id),
    )
    it = intent(conn, "MSFT", max_positions=1)
    asyncio.run(process(trading_settings(fake, MAX_POSITIONS=5), db_url, redis_url, [[it]]))
    assert fake.posted_orders() == []
    assert reasons(conn)[-1] == ("blocked", "strategy_max_positions")
    other = intent(conn, "NVDA", max_positions=2, at=NOW + timedelta(seconds=1))
    asyncio.run(process(trading_settings(fake, MAX_POSITIONS=5), db_url, redis_url, [[other]]))
    assert len(fake.posted_orders()) == 1


# --- identity ----------------------------------------------------------------------------------
def test_same_signal_same_id_across_restarts(fake, db_url, redis_url, conn):
    it = intent(conn)
    again = intent(conn)  # rebuilt from the same signal by a restarted engine
    assert it.client_order_id == again.client_order_id
    settings = trading_settings(fake, MAX_POSITIONS=5)
    asyncio.run(process(settings, db_url, redis_url, [[it]]))
    fake.order_status = "filled"
    asyncio.run(process(settings, db_url, redis_url, [[again]]))  # a new Trader
    assert len(fake.posted_orders()) == 1 and len(orders(conn)) == 1
    other = intent(conn, at=NOW + timedelta(microseconds=1))
    assert other.client_order_id != it.client_order_id


# --- one engine ----------------------------------------------------------------------------------
def test_two_engines_on_one_database_send_one_order(fake, db_url, redis_url, conn):
    """Both engines see the same signal condition; only the lock holder writes and trades.
    The other stays read-only and takes over once the first one ends."""
    seed_aapl(conn)
    settings = trading_settings(fake, MAX_POSITIONS=5)

    async def go() -> None:
        a = Engine(settings, db_url, redis_url)
        b = Engine(settings, db_url, redis_url)
        try:
            for k in range(3):
                ra = await a.tick(NOW + timedelta(seconds=k))
                rb = await b.tick(NOW + timedelta(seconds=k, milliseconds=500))
                assert ra.ok and not ra.read_only, ra.error
                assert rb.read_only and not rb.ok and "engine lock" in (rb.error or "")
                assert rb.intents == [] and rb.signals == []
            assert a.status()["engine_lock"] == "held"
            assert b.status()["engine_lock"] == "read-only"
        finally:
            await a.close()
        try:
            report = await b.tick(NOW + timedelta(seconds=5))
            assert report.ok and not report.read_only, report.error
            assert b.status()["engine_lock"] == "held"
        finally:
            await b.close()

    asyncio.run(go())
    assert len(fake.posted_orders()) == 1
    assert conn.execute("select count(*) from orders where status <> 'blocked'").fetchone() == (1,)
    # b took over: the signal a wrote is within the cooldown it re-read, so no second one
    assert conn.execute("select count(*) from signals").fetchone()[0] == 2  # AAPL SMA + auction


def test_a_fill_seen_by_reconciliation_counts_at_once(fake, db_url, redis_url, conn):
    """The order fills between two loops: no longer pending in ``orders``, and the cached
    broker positions (younger than their reuse age) predate it. The next signal for the
    symbol must still see the position."""
    first = intent(conn)
    second = intent(conn, at=NOW + timedelta(seconds=1), price_time=NOW)

    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        trader = Trader(trading_settings(fake, MAX_POSITIONS=5), r)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            await trader.process(c, [first], loop_id=0, now=NOW)
            fake.set_status(first.client_order_id, "filled", 100, 100.0)
            fake.positions = [position("AAPL")]
            await trader.reconcile(c)
            await trader.process(c, [second], loop_id=1, now=NOW)
        await r.aclose()

    asyncio.run(go())
    assert len(fake.posted_orders()) == 1
    assert reasons(conn)[-1] == ("blocked", "position_open")


def test_a_second_engine_process_says_it_is_read_only(db_url, redis_url, tmp_path):
    """`marketflow engine --once` while another engine holds the lock: it names the holder
    and exits non-zero instead of writing or trading."""
    import os
    import subprocess
    import sys

    from streaming.engine.lease import EngineLease

    async def hold_then_run() -> subprocess.CompletedProcess[str]:
        lease = EngineLease(db_url, application_name="the-other-engine")
        assert await lease.check()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA", "APCA"))}
        env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, MARKETFLOW_HOME=str(tmp_path))
        try:
            return await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "marketflow.cli", "engine", "--once"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            await lease.release()

    out = asyncio.run(hold_then_run())
    assert out.returncode == 1, out.stderr
    assert "read-only" in out.stdout and "the-other-engine" in out.stdout
    assert "engine lock" in out.stderr + out.stdout
