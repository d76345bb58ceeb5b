"""One engine loop over 500 symbols with realistic rows (target ≤ 100 ms).

Each symbol gets two hours of 1-minute candles, a session profile per minute with a few
LVNs, a composite profile, an hour of order flow and of session VWAP rows, stacked
imbalances on the last bars and a few big prints; strategies are the seeded ones plus the
auction-market config and a rules strategy on every symbol, so every task runs (the
footprint alerts too, whose reads run every 5 s with the state pass; timed apart below).

Measured: ``Engine.tick`` (its set-based reads, the compute, the writes and the Redis
publishes) over consecutive seconds, median of the steady-state ticks; the max (a tick
that also runs the 5-second market-state pass) is a note. Reference, same run: the same
reads done the naive way, one round trip per symbol and table (``load_snapshot`` on a
one-symbol universe), followed by the same compute — what the set-based queries replace.
Also noted: the pure compute alone.
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from bench import BenchContext, Comparison
from core.settings import Settings
from storage.db import libpq_url
from strategies.model import sma_periods
from strategies.snapshot import Universe, compute_metrics
from streaming.engine import queries
from streaming.engine.footprint_reads import read_footprint
from streaming.engine.loop import Engine

DESCRIPTION = "one engine loop over 500 symbols vs the same reads one symbol at a time"

NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # a Monday, 11:00 New York
CANDLE_MINUTES = 120
FLOW_MINUTES = 60
PROFILE_MINUTES = 60
FOOTPRINT_MINUTES = 10  # bars with stacks and big prints before NOW
BENCH_CHANNEL_PREFIX = "bench:engine:"  # no live subscriber listens on these


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: list[tuple]) -> None:
    with conn.cursor() as cur, cur.copy(f"copy {table} ({columns}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)


def _seed(url: str, n: int, seed: int = 11) -> list[int]:
    rng = np.random.default_rng(seed)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("update symbols set active = false")
        buf = io.StringIO()
        for k in range(n):
            buf.write(f"B{k:04d}\n")
        names = [f"B{k:04d}" for k in range(n)]
        ids = [
            r[0]
            for r in conn.execute(
                "insert into symbols (symbol, market, timezone) select s, 'XNYS',"
                " 'America/New_York' from unnest(%s::text[]) as s returning id",
                (names,),
            ).fetchall()
        ]
        candles, flow, profiles, vwaps, stacks, prints = [], [], [], [], [], []
        start = NOW - timedelta(minutes=CANDLE_MINUTES)
        for sid in ids:
            base = float(rng.uniform(20, 500))
            closes = base * np.exp(np.cumsum(rng.normal(0, 0.0015, CANDLE_MINUTES)))
            prev = closes[0]
            for m, c in enumerate(closes):
                hi, lo = max(prev, c) * 1.0008, min(prev, c) * 0.9992
                vol = float(rng.integers(500, 20_000))
                candles.append(
                    (sid, start + timedelta(minutes=m), prev, hi, lo, c, vol, 40, (hi + lo + c) / 3)
                )
                prev = c
            cvd = 0.0
            for m in range(FLOW_MINUTES):
                buy = float(rng.uniform(20, 80))
                cvd += (buy - 50) * 40
                flow.append(
                    (
                        sid,
                        NOW - timedelta(minutes=FLOW_MINUTES - m),
                        (buy - 50) * 40,
                        cvd,
                        cvd,
                        buy * 40,
                        (100 - buy) * 40,
                        buy,
                        100 - buy,
                        30,
                    )
                )
            poc = float(closes[-30:].mean())
            for m in range(FLOW_MINUTES):
                bucket = NOW - timedelta(minutes=FLOW_MINUTES - m)
                vwaps.append((sid, bucket, NOW.date(), poc, poc * 0.002, 1e5 * (m + 1)))
            for m in range(1, FOOTPRINT_MINUTES + 1):
                bucket = NOW - timedelta(minutes=m)
                for side, length in (("buy", int(rng.integers(1, 5))), ("sell", 2)):
                    for j in range(length):
                        price = round(poc + (0.01 if side == "buy" else -0.05) * (j + 1), 2)
                        stacks.append((sid, bucket, price, side, 500.0, 50.0, length))
                ts = bucket + timedelta(seconds=int(rng.integers(0, 60)))
                prints.append((sid, bucket, 0, ts, poc, 25_000.0, "buy", 9_000.0))
            for m in range(PROFILE_MINUTES):
                lvns = [
                    {
                        "price": round(poc * f, 2),
                        "low": round(poc * f - 0.01, 2),
                        "high": round(poc * f + 0.01, 2),
                    }
                    for f in (0.99, 0.996, 1.004, 1.01)
                ]
                profiles.append(
                    (
                        sid,
                        "session",
                        NOW - timedelta(minutes=PROFILE_MINUTES - m),
                        NOW.date(),
                        poc,
                        poc * 1.003,
                        poc * 0.997,
                        1e6,
                        json.dumps(lvns),
                        "[]",
                    )
                )
            profiles.append(
                (
                    sid,
                    "composite",
                    NOW - timedelta(minutes=1),
                    NOW.date(),
                    poc * 0.99,
                    poc * 1.01,
                    poc * 0.98,
                    5e6,
                    json.dumps(lvns[:2]),
                    "[]",
                )
            )
        _copy(
            conn,
            "candles_1m",
            "symbol_id, ts, open, high, low, close, volume, trade_count, vwap",
            candles,
        )
        _copy(
            conn,
            "order_flow",
            "symbol_id, bucket, delta, cvd, cvd_total, buy_volume,"
            " sell_volume, buy_pressure, sell_pressure, trade_count",
            flow,
        )
        _copy(
            conn,
            "profile_metrics",
            "symbol_id, horizon, bucket, session_date, poc, vah, val, total_volume, lvns, hvns",
            profiles,
        )
        _copy(conn, "session_vwap", "symbol_id, bucket, session_date, vwap, sd, volume", vwaps)
        _copy(
            conn,
            "footprint_imbalances",
            "symbol_id, bucket, price, side, volume, opposite, stack_len",
            stacks,
        )
        _copy(
            conn,
            "big_prints",
            "symbol_id, bucket, print_no, ts, price, size, side, threshold",
            prints,
        )
        conn.execute(
            "insert into strategy_configs (symbol_id, strategy_name, parameters)"
            " select s, 'auction_market', '{\"min_aggression_score\": 50}'"
            " from unnest(%s::bigint[]) as s",
            (ids,),
        )
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds) values"
            " ('bench rules', %s, 60)",
            (
                json.dumps(
                    {
                        "type": "rules",
                        "symbols": names,
                        "signal": "BUY",
                        "all": [
                            {"metric": "price", "op": ">", "ref": "sma", "period": 20},
                            {"metric": "aggression_score", "op": ">=", "value": 50},
                            {"metric": "cvd_slope", "op": ">", "value": 0},
                        ],
                    }
                ),
            ),
        )
        conn.execute("analyze")
    return ids


async def _engine_ticks(
    url: str, redis_url: str, ticks: int
) -> tuple[list[float], list[float], Engine]:
    """(all tick times, times of the ticks that also ran the 5 s state pass, engine)."""
    # Settings read the environment even without an env file: a benchmark never trades,
    # whatever AUTO_TRADING_ENABLED the shell has
    # pydantic-settings' init keywords (_env_file, the aliases) are not in its typed signature
    settings = Settings(_env_file=None, AUTO_TRADING_ENABLED=False, KILL_SWITCH=True)  # type: ignore[call-arg]
    # the publishes are part of a tick's cost, but the fake symbols' states, signals and
    # alerts must not reach the dashboard or anyone else subscribed to the live channels
    engine = Engine(settings, url, redis_url, channel_prefix=BENCH_CHANNEL_PREFIX)
    times, state_times = [], []
    try:
        await engine.tick(NOW)  # warm-up: reference data, first state pass, connections
        for k in range(1, ticks + 1):
            t0 = time.perf_counter()
            report = await engine.tick(NOW + timedelta(seconds=k))
            elapsed = (time.perf_counter() - t0) * 1000
            times.append(elapsed)
            if "state" in report.ran:
                state_times.append(elapsed)
            if not report.ok:
                raise RuntimeError(f"engine tick failed: {report.error}")
    finally:
        await engine.close()
    return times, state_times, engine


async def _per_symbol_reads(url: str, engine: Engine, rounds: int) -> list[float]:
    """The same reads and compute, one symbol (and three round trips) at a time."""
    assert engine.universe is not None
    u = engine.universe
    periods = sma_periods(engine.strategies)
    window = engine._window()
    times = []
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        for _ in range(rounds):
            t0 = time.perf_counter()
            for k in range(u.size):
                one = Universe(
                    u.ids[k : k + 1],
                    u.symbols[k : k + 1],
                    u.markets[k : k + 1],
                    u.asset_types[k : k + 1],
                )
                snap = await queries.load_snapshot(conn, one, NOW, window)
                compute_metrics(snap, periods)
            times.append((time.perf_counter() - t0) * 1000)
    return times


async def _footprint_reads(url: str, engine: Engine, rounds: int) -> float:
    """The best time of the three footprint statements over every symbol."""
    assert engine.universe is not None
    ids = engine.universe.ids.tolist()
    best = float("inf")
    connect = psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True)
    async with await connect as conn, conn.cursor(binary=True) as cur:
        for _ in range(rounds):
            t0 = time.perf_counter()
            await read_footprint(cur, ids, NOW)
            best = min(best, (time.perf_counter() - t0) * 1000)
    return best


async def _compute_only(url: str, engine: Engine, rounds: int) -> float:
    assert engine.universe is not None
    periods = sma_periods(engine.strategies)
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        snap = await queries.load_snapshot(conn, engine.universe, NOW, engine._window())
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        compute_metrics(snap, periods)
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best


def run(ctx: BenchContext) -> list[Comparison]:
    n = 50 if ctx.quick else 500
    ticks = 6 if ctx.quick else 65  # past 60 s: a full rotation of candle-window re-reads
    _seed(ctx.database_url, n)

    async def go() -> tuple[list[float], list[float], list[float], float, float, Engine]:
        times, state_times, engine = await _engine_ticks(ctx.database_url, ctx.redis_url, ticks)
        naive = await _per_symbol_reads(ctx.database_url, engine, 1 if ctx.quick else 3)
        compute = await _compute_only(ctx.database_url, engine, 5)
        footprint = await _footprint_reads(ctx.database_url, engine, 5)
        return times, state_times, naive, compute, footprint, engine

    times, state_times, naive, compute, footprint, engine = asyncio.run(go())
    return [
        Comparison(
            name=f"engine loop, {n} symbols",
            unit="ms",
            value=statistics.median(times),
            reference_name="per-symbol queries",
            reference_value=statistics.median(naive),
            higher_is_better=False,
            target="<= 100 ms per loop (500 symbols)",
            notes={
                "p90 tick ms": float(np.percentile(times, 90)),
                "max tick ms": max(times),
                "state-pass tick ms": statistics.median(state_times) if state_times else 0.0,
                "compute only ms": compute,
                "footprint reads ms": footprint,
                "alerts": float(engine.counters.alerts),
                "signals": float(engine.counters.signals),
                "state rows": float(engine.counters.state_rows),
            },
        )
    ]
