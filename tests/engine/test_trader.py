"""Auto-trading against a local server speaking Alpaca's trading API (alpaca-py with
``url_override``): the exact bracket payload, each risk gate on its own, idempotency,
rejections, the kill switch, lifecycle reconciliation, paper by default."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis
import redis.asyncio as aioredis

from core.contracts import Side
from core.settings import Settings
from strategies.gates import AccountView, Limits, account_gate, market_open
from strategies.intents import client_order_id
from streaming.engine import killswitch
from streaming.engine.loop import Engine
from streaming.engine.ratelimit import TokenBucket
from streaming.engine.trader import Trader
from streaming.venues.alpaca.execution import make_client
from tests.support.engine_rows import NOW, seed_aapl
from tests.support.fake_alpaca_trading import account, position
from tests.support.trading import NO_CAPS, SATURDAY, intent, orders, process, trading_settings

# orders go out only while the kill switch reads "off": the gates under test start there
pytestmark = pytest.mark.usefixtures("switch_off")


def test_exact_bracket_payload_v7(fake, db_url, redis_url, conn):
    it = intent(conn)
    asyncio.run(process(trading_settings(fake, **NO_CAPS), db_url, redis_url, [[it]]))
    assert fake.posted_orders() == [
        {
            "symbol": "AAPL",
            "qty": 1333.0,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "order_class": "bracket",
            "client_order_id": it.client_order_id,
            "take_profit": {"limit_price": 101.5},
            "stop_loss": {"stop_price": 99.25},
        }
    ]
    ((cid, status, _reason, qty, entry, stop, target, paper, error, broker_id),) = orders(conn)
    assert (cid, status, qty, entry, stop, target, paper, error) == (
        it.client_order_id,
        "accepted",
        1333,
        100.0,
        99.25,
        101.5,
        True,
        None,
    )
    assert broker_id == fake.orders[cid]["id"]
    assert cid == f"mf-{it.strategy_id}-{it.symbol_id}-AAPL-20261123T150000000000"


def test_sell_bracket_mirrors(fake, db_url, redis_url, conn):
    asyncio.run(
        process(trading_settings(fake), db_url, redis_url, [[intent(conn, side=Side.SELL)]])
    )
    (body,) = fake.posted_orders()
    assert body["side"] == "sell"
    assert body["stop_loss"] == {"stop_price": 100.75}
    assert body["take_profit"] == {"limit_price": 98.5}


def test_placed_once_when_the_same_signal_repeats(fake, db_url, redis_url, conn):
    it = intent(conn)
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[it], [it], [it]]))
    assert len(fake.posted_orders()) == 1
    assert len(orders(conn)) == 1


def test_account_fetched_once_per_loop(fake, db_url, redis_url, conn):
    its = [intent(conn, "AAPL"), intent(conn, "MSFT")]
    asyncio.run(process(trading_settings(fake, MAX_POSITIONS=5), db_url, redis_url, [its]))
    assert fake.calls("/v2/account") == 1 and fake.calls("/v2/positions") == 1
    assert len(fake.posted_orders()) == 2


@pytest.mark.parametrize("status", [403, 422])
def test_rejection_is_recorded(fake, db_url, redis_url, conn, status):
    fake.reject = (status, "insufficient buying power")
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[intent(conn)]]))
    ((_, st, _, _, _, _, _, _, error, broker_id),) = orders(conn)
    assert st == "rejected" and broker_id is None
    assert error == f"HTTP {status}: insufficient buying power"


def test_kill_switch_key_blocks_and_off_releases(fake, db_url, redis_url, conn):
    killswitch.set_switch(redis_url, True)
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[intent(conn)]]))
    assert fake.requests == []  # nothing reached the broker
    assert [(o[1], o[2]) for o in orders(conn)] == [("blocked", "kill_switch")]
    killswitch.set_switch(redis_url, False)
    later = intent(conn, at=NOW + timedelta(seconds=1))
    asyncio.run(
        process(
            trading_settings(fake), db_url, redis_url, [[later]], now=NOW + timedelta(seconds=1)
        )
    )
    assert len(fake.posted_orders()) == 1


def test_kill_switch_setting_blocks(fake, db_url, redis_url, conn):
    asyncio.run(
        process(trading_settings(fake, KILL_SWITCH=True), db_url, redis_url, [[intent(conn)]])
    )
    assert fake.requests == [] and orders(conn)[0][2] == "kill_switch"


def test_unreadable_kill_switch_blocks(fake, db_url, conn):
    with socket.socket() as s:  # a port nobody listens on: Redis "down"
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    asyncio.run(process(trading_settings(fake), db_url, dead, [[intent(conn)]]))
    assert fake.requests == [] and orders(conn)[0][2] == "kill_switch"


def test_market_closed_blocks(fake, db_url, redis_url, conn):
    asyncio.run(
        process(
            trading_settings(fake), db_url, redis_url, [[intent(conn, at=SATURDAY)]], now=SATURDAY
        )
    )
    assert fake.requests == [] and orders(conn)[0][2] == "market_closed"
    assert market_open("XNYS", NOW) and not market_open("XNYS", SATURDAY)
    assert not market_open("XNYS", datetime(2026, 11, 26, 15, tzinfo=UTC))  # Thanksgiving
    assert market_open("24/7", SATURDAY) and not market_open("NOPE", NOW)


def test_no_atr_blocks(fake, db_url, redis_url, conn):
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[intent(conn, atr=None)]]))
    assert fake.requests == [] and orders(conn)[0][2] == "no_levels"


@pytest.mark.parametrize(
    ("account_overrides", "positions", "reason"),
    [
        ({"account_blocked": True}, [], "account_blocked"),
        ({"trading_blocked": True}, [], "trading_blocked"),
        ({"equity": 900, "portfolio_value": 900}, [], "min_balance"),
        ({"equity": 96000, "last_equity": 100000}, [], "daily_loss"),
        ({}, ["MSFT"], "max_positions"),
        ({}, ["AAPL"], "position_open"),
        ({"buying_power": 50}, [], "size_zero"),
    ],
)
def test_each_gate_blocks_through_the_broker(
    fake, db_url, redis_url, conn, account_overrides, positions, reason
):
    fake.account = account(**account_overrides)
    fake.positions = [position(s) for s in positions]
    asyncio.run(process(trading_settings(fake), db_url, redis_url, [[intent(conn)]]))
    assert fake.posted_orders() == []
    assert [(o[1], o[2]) for o in orders(conn)] == [("blocked", reason)]


def test_shorting_disabled_blocks_sells(fake, db_url, redis_url, conn):
    fake.account = account(shorting_enabled=False)
    asyncio.run(
        process(trading_settings(fake), db_url, redis_url, [[intent(conn, side=Side.SELL)]])
    )
    assert fake.posted_orders() == [] and orders(conn)[0][2] == "shorting_disabled"


def test_pending_entry_counts_as_a_position(fake, db_url, redis_url, conn):
    first = intent(conn)
    # a new signal, same symbol
    second = intent(conn, at=NOW + timedelta(minutes=10), price_time=NOW)
    asyncio.run(
        process(trading_settings(fake, MAX_POSITIONS=5), db_url, redis_url, [[first], [second]])
    )
    assert len(fake.posted_orders()) == 1  # the first is still open at the broker
    assert [o[2] for o in orders(conn)][1] == "position_open"


def test_account_gate_pure():
    good = AccountView(
        equity=100_000, last_equity=100_000, buying_power=200_000, shorting_enabled=True
    )
    limits = Limits(min_balance=1000, max_positions=1, max_daily_loss_pct=3.0)
    assert account_gate(Side.BUY, good, limits) is None
    assert account_gate(Side.SELL, good, limits) is None
    # exactly −3 % is allowed, beyond is not
    at_limit = AccountView(97_000, 100_000, 200_000)
    assert account_gate(Side.BUY, at_limit, limits) is None
    assert account_gate(Side.BUY, AccountView(96_999, 100_000, 1e6), limits) == "daily_loss"
    nan = AccountView(float("nan"), 100_000, 1e6)
    assert account_gate(Side.BUY, nan, limits) == "min_balance"
    assert client_order_id(3, 12, "BRK.B", NOW) == "mf-3-12-BRKB-20261123T150000000000"


def test_reconcile_follows_the_broker(fake, db_url, redis_url, conn):
    it = intent(conn)

    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        trader = Trader(trading_settings(fake), r)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            await trader.process(c, [it], loop_id=0, now=NOW)
            fake.set_status(it.client_order_id, "filled", 1333, 100.02)
            await trader.reconcile(c)
            await trader.reconcile(c)  # within RECONCILE_EVERY_S: no second poll
        await r.aclose()

    asyncio.run(go())
    assert fake.calls("/v2/orders:by_client_order_id") == 1
    status, qty, price, filled_at = conn.execute(
        "select status, filled_qty, filled_avg_price, filled_at from orders"
    ).fetchone()
    assert (status, qty, price) == ("filled", 1333, 100.02) and filled_at is not None


def test_rate_limit_defers_instead_of_exceeding(fake, db_url, redis_url, conn):
    clock = [0.0]
    bucket = TokenBucket(rate_per_minute=60, capacity=2, clock=lambda: clock[0])
    it = intent(conn)

    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url)
        trader = Trader(trading_settings(fake), r, bucket=bucket)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            await trader.process(c, [it], loop_id=0, now=NOW)  # account+positions: 2 tokens
            assert fake.posted_orders() == []  # no token left for the order: deferred
            clock[0] += 1.0  # one token a second
            await trader.process(c, [], loop_id=1, now=NOW + timedelta(seconds=1))
        await r.aclose()

    asyncio.run(go())
    assert len(fake.posted_orders()) == 1
    assert fake.calls("/v2/account") == 1


def test_paper_is_the_default_live_only_when_set():
    paper = make_client(trading_settings())
    assert paper._base_url == "https://paper-api.alpaca.markets"
    live = make_client(trading_settings(ALPACA_LIVE=True))
    assert live._base_url == "https://api.alpaca.markets"
    assert Settings(_env_file=None).alpaca_live is False
    assert Settings(_env_file=None).auto_trading_enabled is False
    with pytest.raises(RuntimeError, match="ALPACA_API_KEY"):
        make_client(Settings(_env_file=None))
    # an URL override alone never makes trading live (nor records live orders as paper)
    with pytest.raises(RuntimeError, match="ALPACA_LIVE"):
        make_client(trading_settings(ALPACA_TRADING_URL="https://api.alpaca.markets/"))
    assert make_client(
        trading_settings(ALPACA_TRADING_URL="https://api.alpaca.markets", ALPACA_LIVE=True)
    )
    r = aioredis.Redis()
    assert Trader(trading_settings(), r).paper is True


def test_engine_places_one_order_while_the_condition_holds(fake, db_url, redis_url, conn):
    """The whole path: rows → auction_market signal → gate → one bracket, even as the loop
    repeats and even after an engine restart."""
    seed_aapl(conn)
    settings = trading_settings(fake, **NO_CAPS)

    async def ticks(n: int, start: datetime) -> None:
        engine = Engine(settings, db_url, redis_url)
        try:
            for k in range(n):
                report = await engine.tick(start + timedelta(seconds=k))
                assert report.ok, report.error
        finally:
            await engine.close()

    asyncio.run(ticks(4, NOW))
    asyncio.run(ticks(2, NOW + timedelta(seconds=10)))  # a restarted engine
    (body,) = fake.posted_orders()
    # price 100.275, ATR 0.225: stop 100.275 − 0.3375 → 99.94, target + 0.675 → 100.95;
    # 1 % of 100 000 / 0.335 = 2985 shares, capped by 200 000 / 100.275 → 1994
    assert (body["symbol"], body["side"], body["qty"]) == ("AAPL", "buy", 1994.0)
    assert body["stop_loss"] == {"stop_price": 99.94}
    assert body["take_profit"] == {"limit_price": 100.95}
    assert conn.execute("select count(*) from orders").fetchone()[0] == 1
    assert conn.execute("select count(*) from signals").fetchone()[0] == 2


def test_kill_switch_cli(redis_url, monkeypatch, capsys, tmp_path):
    from core.settings import get_settings
    from marketflow.cli import main

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/none")
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["engine", "--kill-switch", "on"]) == 0
        assert "kill switch: on" in capsys.readouterr().out
        assert redis.Redis.from_url(redis_url).get(killswitch.KEY) == b"on"
        assert main(["engine", "--kill-switch", "off"]) == 0
        assert killswitch.read_switch(redis_url, setting=False).state == "off"
    finally:
        get_settings.cache_clear()


def test_engine_once_cli(db_url, redis_url, monkeypatch, capsys, tmp_path, conn):
    from core.settings import get_settings
    from marketflow.cli import main

    seed_aapl(conn, datetime.now(UTC))
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["engine", "--once"]) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "tick ok=True" in out and "signals=2" in out
    assert conn.execute("select count(*) from market_state").fetchone()[0] >= 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("broken", ["unreachable", "unauthorised"])
def test_broker_failure_on_the_account_keeps_the_intent_then_records_it(
    fake, db_url, redis_url, conn, broken
):
    """A broker that cannot be asked about the account neither ends the tick (the engine
    would log it as a database outage and drop its connection) nor loses the signal's
    order: it waits like a rate-limited one and is recorded as blocked when it expires."""
    if broken == "unreachable":
        settings = trading_settings(ALPACA_TRADING_URL=f"http://127.0.0.1:{_closed_port()}")
    else:
        settings = trading_settings(fake, ALPACA_SECRET_KEY="wrong-secret")
    it = intent(conn)

    async def go() -> Trader:
        r = aioredis.Redis.from_url(redis_url)
        trader = Trader(settings, r)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
            await trader.process(c, [it], loop_id=0, now=NOW)
            assert orders(conn) == []  # still waiting for the broker
            await trader.process(c, [], loop_id=1, now=NOW + timedelta(seconds=60))
        await r.aclose()
        return trader

    trader = asyncio.run(go())
    ((cid, status, reason, *_),) = orders(conn)
    assert (cid, status, reason) == (it.client_order_id, "blocked", "broker_unavailable")
    assert trader.counters.errors >= 1
    assert fake.posted_orders() == []


def test_kill_switch_cli_with_redis_down_says_it_was_not_set(monkeypatch, capsys, tmp_path):
    """An operator pulling the switch must learn that it did not take, and the fallback."""
    from core.settings import get_settings
    from marketflow.cli import main

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/none")
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["engine", "--kill-switch", "on"]) == 1
        out = capsys.readouterr().out
        assert "NOT set" in out and "KILL_SWITCH=true" in out
    finally:
        get_settings.cache_clear()
