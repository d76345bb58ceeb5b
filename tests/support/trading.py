"""One local Alpaca trading server per test and the helpers the trading tests share: the
fixtures are imported by the test modules that use them (``switch_off`` is autouse there)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import redis.asyncio as aioredis

from core.contracts import Side
from core.settings import Settings
from strategies.intents import OrderIntent
from streaming.engine.ratelimit import TokenBucket
from streaming.engine.trader import Trader
from tests.support.engine_rows import NOW, symbol_ids
from tests.support.fake_alpaca_trading import KEY, SECRET, FakeTrading

# caps wide enough that the risk arithmetic alone sizes the order (the caps have their
# own tests in test_trading_safety.py)
NO_CAPS = {"MAX_ORDER_NOTIONAL": 1e9, "MAX_ORDER_QTY": 1_000_000}


SATURDAY = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)


def trading_settings(fake: FakeTrading | None = None, **kw: object) -> Settings:
    env: dict[str, object] = {
        "AUTO_TRADING_ENABLED": True,
        "ALPACA_API_KEY": KEY,
        "ALPACA_SECRET_KEY": SECRET,
    }
    if fake is not None:
        env["ALPACA_TRADING_URL"] = fake.url
    env.update(kw)
    return Settings(_env_file=None, **env)  # type: ignore[arg-type]


def intent(
    conn: psycopg.Connection,
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    at: datetime = NOW,
    atr: float | None = 0.5,
    price: float = 100.0,
    market: str = "XNYS",
    **kw: object,
) -> OrderIntent:
    strategy_id = conn.execute(
        "select id from strategies where name = 'auction_market'"
    ).fetchone()[0]
    return OrderIntent(
        strategy_id=strategy_id,
        strategy="auction_market",
        symbol_id=symbol_ids(conn)[symbol],
        symbol=symbol,
        market=market,
        side=side,
        signal_time=at,
        price=price,
        atr=atr,
        **{  # type: ignore[arg-type]
            "stop_multiplier": 1.5,
            "target_multiplier": 3.0,
            "risk_pct": 1.0,
            "reason": "test",
            "price_time": at,
            **kw,
        },
    )


async def process(
    settings: Settings,
    db_url: str,
    redis_url: str,
    batches: list[list[OrderIntent]],
    now: datetime = NOW,
    bucket: TokenBucket | None = None,
) -> Trader:
    r = aioredis.Redis.from_url(redis_url)
    trader = Trader(settings, r, bucket=bucket)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as c:
        for k, batch in enumerate(batches):
            await trader.process(c, batch, loop_id=k, now=now)
    await r.aclose()
    return trader


def orders(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select client_order_id, status, reason, qty, entry, stop, target, paper, error,"
        " broker_order_id from orders order by id"
    ).fetchall()
