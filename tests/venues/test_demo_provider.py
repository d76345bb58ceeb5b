"""The demo provider: seeded, per-symbol, quote-consistent, bursty, U-shaped, rate-true."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pandas as pd
import pytest

from core.events import Trade
from core.settings import Settings
from streaming.providers.base import TradeBatch, make_provider
from streaming.providers.demo import (
    NS,
    OFF_HOURS,
    DemoProvider,
    SymbolPath,
    _seed_for,
    intensity,
    symbol_profile,
    u_shape,
)

# a regular NYSE session: Monday 2025-11-24, 14:30–21:00 UTC
OPEN = pd.Timestamp("2025-11-24 14:30", tz="UTC").value
CLOSE = pd.Timestamp("2025-11-24 21:00", tz="UTC").value


def session(symbol: str, seed: int = 7, rate: float = 5.0) -> tuple[SymbolPath, object]:
    path = SymbolPath(symbol_profile(symbol), rate, _seed_for(seed, symbol))
    return path, path.generate(OPEN, CLOSE)


def test_reproducible_with_a_seed_and_different_without() -> None:
    _, a = session("AAPL", seed=11)
    _, b = session("AAPL", seed=11)
    _, c = session("AAPL", seed=12)
    assert np.array_equal(a.ts_ns, b.ts_ns) and np.array_equal(a.price, b.price)
    assert np.array_equal(a.size, b.size) and np.array_equal(a.bid, b.bid)
    assert a.ts_ns.size != c.ts_ns.size or not np.array_equal(a.price, c.price)


def test_crypto_pairs_trade_near_the_market_under_every_venue_name() -> None:
    """ETHUSD (Alpaca's name) used to get a hashed anchor and traded at 78 dollars."""
    for symbol, low, high in (
        ("ETHUSD", 1_500, 6_000),
        ("ETHUSDT", 1_500, 6_000),
        ("BTCUSD", 40_000, 200_000),
        ("BTCUSDT", 40_000, 200_000),
        ("SOLUSD", 50, 500),
        ("ETHBTC", 0.01, 0.1),
    ):
        assert symbol_profile(symbol).crypto, symbol
        assert low < np.median(session(symbol)[1].price) < high, symbol


def test_each_symbol_has_its_own_path_near_a_plausible_price() -> None:
    cols = {s: session(s)[1] for s in ("AAPL", "MSFT", "SPY", "FOO", "BAR")}
    assert 150 < np.median(cols["AAPL"].price) < 320
    assert 300 < np.median(cols["MSFT"].price) < 550
    for s in ("FOO", "BAR"):  # unknown symbols still get a stable, plausible anchor
        assert 10 < np.median(cols[s].price) < 600
    # returns on a common 1-minute grid are not one shared walk
    grid = np.arange(OPEN, CLOSE, 60 * NS)

    def minute_returns(c: object) -> np.ndarray:
        idx = np.clip(np.searchsorted(c.ts_ns, grid), 0, c.ts_ns.size - 1)  # type: ignore[attr-defined]
        return np.diff(np.log(c.price[idx]))  # type: ignore[attr-defined]

    corr = np.corrcoef(minute_returns(cols["AAPL"]), minute_returns(cols["MSFT"]))[0, 1]
    assert abs(corr) < 0.3
    # realistic volatility: a session moves per cent, not 2 % a minute
    r = minute_returns(cols["AAPL"])
    assert 1e-5 < r.std() < 3e-3


def test_trades_at_or_inside_the_quote_mostly_at_bid_or_ask() -> None:
    for symbol in ("AAPL", "TSLA", "ETHUSDT", "VOD.L"):
        _, c = session(symbol)
        assert (c.bid < c.ask).all()
        assert ((c.price >= c.bid - 1e-9) & (c.price <= c.ask + 1e-9)).all()
        at_touch = np.isclose(c.price, c.bid, rtol=0, atol=1e-9) | np.isclose(
            c.price, c.ask, rtol=0, atol=1e-9
        )
        assert at_touch.mean() > 0.85
        # both sides trade, with persistence (runs longer than a coin's)
        buys = np.isclose(c.price, c.ask, rtol=0, atol=1e-9)
        assert 0.3 < buys.mean() < 0.7
        same = (buys[1:] == buys[:-1]).mean()
        assert same > 0.55


def test_heavy_tailed_sizes() -> None:
    _, c = session("AAPL")
    assert (c.size >= 1).all() and np.allclose(c.size, np.round(c.size))
    assert c.size.max() > 50 * np.median(c.size)
    _, e = session("ETHUSDT")
    assert (e.size > 0).all() and not np.allclose(e.size, np.round(e.size))  # fractional


def test_u_shape_over_the_session_and_quiet_outside() -> None:
    frac = np.linspace(0, 1, 100_001)
    assert u_shape(frac).mean() == pytest.approx(1.0, rel=1e-3)
    counts = []
    for seed in range(3):
        _, c = session("MSFT", seed=seed)
        counts.append(np.histogram(c.ts_ns, bins=13, range=(OPEN, CLOSE))[0])
    half_hours = np.sum(counts, axis=0)
    mid = half_hours[5:8].mean()
    assert half_hours[0] > 1.8 * mid and half_hours[-1] > 1.8 * mid
    saturday = pd.Timestamp("2025-11-22 16:00", tz="UTC").value
    assert intensity("XNYS", np.array([saturday]))[0] == OFF_HOURS
    assert intensity("24/7", np.array([saturday]))[0] == 1.0


def test_rate_respected_and_bursty() -> None:
    path = SymbolPath(symbol_profile("BTCUSD"), 50.0, _seed_for(3, "BTCUSD"))
    start = pd.Timestamp("2025-11-22 00:00", tz="UTC").value
    c = path.generate(start, start + 4 * 3600 * NS)
    assert c.ts_ns.size / (4 * 3600) == pytest.approx(50.0, rel=0.15)
    per_10s = np.bincount((c.ts_ns - start) // (10 * NS))
    # regimes: quiet spells and bursts, far more dispersed than a Poisson count
    assert per_10s.var() > 5 * per_10s.mean()
    assert np.all(np.diff(c.ts_ns) >= 0)


def test_live_mode_real_time_quotes_filled() -> None:
    settings = Settings(PROVIDER="demo", DEMO_RATE=400.0, DEMO_SEED=5)
    provider = make_provider(settings, ["ETHUSDT", "BTCUSD"])
    assert isinstance(provider, DemoProvider) and provider.name == "demo"
    assert provider.symbol_info["ETHUSDT"]["market"] == "24/7"
    got: list[Trade] = []
    t0 = time.time_ns()

    async def consume() -> None:
        async for ev in provider:
            assert isinstance(ev, Trade)
            got.append(ev)
            if len(got) >= 150:
                provider.stop()

    asyncio.run(asyncio.wait_for(consume(), 10))
    t1 = time.time_ns()
    assert {t.symbol for t in got} == {"ETHUSDT", "BTCUSD"}
    for t in got:
        ts = int(t.ts.timestamp() * 1e9)
        assert t0 - NS // 10 <= ts <= t1 and t.bid is not None and t.ask is not None
        assert t.bid <= t.price <= t.ask and t.trade_id


def test_bulk_mode_yields_batches_at_the_simulated_rate() -> None:
    provider = DemoProvider(["AAPL", "MSFT"], rate=100_000.0, seed=1, bulk=True, limit=400_000)
    batches: list[TradeBatch] = []

    async def consume() -> None:
        async for ev in provider:
            batches.append(ev)  # type: ignore[arg-type]

    asyncio.run(consume())
    n = sum(len(b) for b in batches)
    assert n >= 400_000
    aapl = np.concatenate([b.ts_ns for b in batches if b.symbol == "AAPL"])
    span = (aapl.max() - aapl.min()) / NS
    assert aapl.size / span == pytest.approx(100_000, rel=0.1)
    assert (
        len(set(np.concatenate([b.trade_id for b in batches if b.symbol == "AAPL"]))) == aapl.size
    )


def test_live_stream_is_the_seeded_path_whatever_the_scheduling() -> None:
    start = time.time_ns()
    fast = DemoProvider(["BTCUSD"], rate=300.0, seed=9, start_ns=start, poll_interval=0.005)
    slow = DemoProvider(["BTCUSD"], rate=300.0, seed=9, start_ns=start, poll_interval=0.07)
    other = DemoProvider(["BTCUSD"], rate=300.0, seed=10, start_ns=start, poll_interval=0.01)
    got: dict[int, list[tuple[int, float, float]]] = {id(p): [] for p in (fast, slow, other)}

    async def consume(p: DemoProvider) -> None:
        async for ev in p:
            assert isinstance(ev, Trade)
            ts = int(ev.ts.timestamp() * 1e6)
            assert ts * 1000 <= time.time_ns() and ts * 1000 >= start - 1000  # never ahead
            got[id(p)].append((ts, ev.price, ev.size))
            if len(got[id(p)]) >= 120:
                p.stop()

    async def main() -> None:
        await asyncio.gather(*(consume(p) for p in (fast, slow, other)))

    asyncio.run(asyncio.wait_for(main(), 10))
    a, b, c = got[id(fast)][:120], got[id(slow)][:120], got[id(other)][:120]
    assert a == b and a != c
