"""Smoke run of the engine benchmark (quick sizes): it measures, it compares, it finishes."""

from __future__ import annotations

from bench import BenchContext
from bench.engine import run


def test_engine_bench_quick(db_url, redis_url):
    (comparison,) = run(BenchContext(db_url, redis_url, quick=True))
    assert comparison.unit == "ms" and not comparison.higher_is_better
    assert comparison.value > 0 and comparison.reference_value > 0
    assert comparison.notes["signals"] > 0  # the strategies ran on the seeded rows
    assert comparison.notes["state rows"] >= 50
    assert comparison.notes["alerts"] >= 50  # the footprint rows alert (stacks, band, prints)
    assert "engine loop, 50 symbols" in comparison.format()


def test_engine_bench_never_trades_whatever_the_environment(db_url, redis_url, monkeypatch):
    """Settings read the environment even without an env file: a shell with
    AUTO_TRADING_ENABLED=true and broker keys must not make the benchmark send orders."""
    import psycopg

    from tests.support.fake_alpaca_trading import KEY, SECRET, FakeTrading
    from tests.support.loop_thread import LoopThread

    lt = LoopThread()
    fake = lt.run(FakeTrading().start())
    try:
        for name, value in {
            "AUTO_TRADING_ENABLED": "true",
            "ALPACA_API_KEY": KEY,
            "ALPACA_SECRET_KEY": SECRET,
            "ALPACA_TRADING_URL": fake.url,
        }.items():
            monkeypatch.setenv(name, value)
        (comparison,) = run(BenchContext(db_url, redis_url, quick=True))
        assert comparison.notes["signals"] > 0
        assert fake.posted_orders() == [] and fake.calls("/v2/account") == 0
        with psycopg.connect(db_url) as conn:
            assert conn.execute("select count(*) from orders").fetchone()[0] == 0
    finally:
        lt.run(fake.stop())
        lt.close()


def test_engine_bench_publishes_on_no_live_channel(db_url, redis_url):
    """The benchmark's fake symbols must not reach the dashboard: every message it publishes
    goes to a bench-only channel, none to a production ``Channel`` name."""
    import redis

    from bench.engine import BENCH_CHANNEL_PREFIX
    from core.contracts import Channel

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.psubscribe("*")
    pubsub.get_message(timeout=1)  # the subscription confirmation
    try:
        run(BenchContext(db_url, redis_url, quick=True))
        channels: dict[str, int] = {}
        while (m := pubsub.get_message(timeout=0.5)) is not None:
            if m["type"] == "pmessage":
                name = m["channel"].decode()
                channels[name] = channels.get(name, 0) + 1
    finally:
        pubsub.close()
        client.close()
    live = {c.value for c in Channel}
    assert not live & channels.keys(), channels
    # still published (a tick's cost includes it), only under the bench prefix
    assert channels.get(BENCH_CHANNEL_PREFIX + Channel.MARKET_STATE.value, 0) >= 50
    assert all(name.startswith(BENCH_CHANNEL_PREFIX) for name in channels), channels
