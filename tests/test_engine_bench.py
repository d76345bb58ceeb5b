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
    assert "engine loop, 50 symbols" in comparison.format()


def test_engine_bench_never_trades_whatever_the_environment(db_url, redis_url, monkeypatch):
    """Settings read the environment even without an env file: a shell with
    AUTO_TRADING_ENABLED=true and broker keys must not make the benchmark send orders."""
    import psycopg
    from fakes.fake_alpaca_trading import KEY, SECRET, FakeTrading
    from fakes.loop_thread import LoopThread

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
