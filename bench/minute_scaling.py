"""Does a sensor minute-run cost what its new ticks cost, whatever the time of day?

The same minute-run, measured twice: one new minute of prints for each of 30 symbols
arrives, tick_stream_sensor is evaluated and the profile run it requests (the profile
multi-asset and its checks, with the sensor's write-from tag) is executed in process. The
day already holds 20 k prints per symbol in one case and 16 times as many in the other;
each new minute holds the same prints in both. An incremental run reads the new minute
(plus the sensor's five-minute margin) and the stored state, so the two times should be
equal: the comparison's value is the time at 16x, its reference the time at 1x.

The busier day is the same market with a busier tape: the price moves on a sixteenth of
the prints, so the day's price range (and the profile's width) stays that of the 1x day.
The two days are sessions held side by side, each with its own 30 symbols (so neither
reaches into the other's run), and their minute-runs alternate.
Beside it, the fixed cost of any Dagster run: an in-process run of an asset that does
nothing, on the same instance.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg

from bench import BenchContext, Comparison
from bench.dagster_minute import QUIET_RUN, ensure_symbols, insert_ticks, prior_sessions

DESCRIPTION = "Sensor minute-run with 1x vs 16x the ticks already in the day (flat = incremental)"

SYMBOL_COUNT = 30
BASE_TICKS = 20_000  # per symbol and day at 1x: 600 k prints for 30 symbols
QUICK_BASE_TICKS = 300
SCALE = 16
NEW_MINUTES = 4  # minute-runs measured per scale (the session's last minutes)
SESSION_MINUTES = 390
PREFIX = "MSB"
DERIVED = ("volume_profile", "order_flow", "profile_metrics", "naked_pocs", "candles_1m")


def day_ticks(
    symbol_ids: list[int],
    start: datetime,
    end: datetime,
    per_symbol: int,
    *,
    scale: int = 1,
    seed: int = 0,
    from_prices: dict[int, float] | None = None,
) -> pd.DataFrame:
    """Prints in [start, end): a random walk in cents that moves on 1/(2·scale) of the
    prints (same daily range at any scale), from each symbol's `from_prices` (default
    50 + 5·n); a third each with venue side, quote, neither."""
    rng = np.random.default_rng(seed)
    span_us = int((end - start).total_seconds() * 1e6)
    frames = []
    for n, symbol_id in enumerate(symbol_ids):
        offsets = np.sort(rng.integers(0, span_us, per_symbol))
        move = rng.random(per_symbol) < 0.5 / scale
        steps = np.where(move, rng.choice(np.array([-1, 1]), per_symbol), 0)
        first = (from_prices or {}).get(symbol_id, 50.0 + 5 * n)
        price = np.round(np.maximum(first + np.cumsum(steps) * 0.01, 1.0), 2)
        kind = rng.integers(0, 3, per_symbol)
        quoted = kind == 1
        sides = rng.choice(np.array([1.0, -1.0]), per_symbol)
        frames.append(
            pd.DataFrame(
                {
                    "symbol_id": symbol_id,
                    "ts": pd.Timestamp(start) + pd.to_timedelta(offsets, unit="us"),
                    "trade_id": np.char.add(f"{seed}-", np.arange(per_symbol).astype(str)),
                    "price": price,
                    "size": rng.integers(1, 400, per_symbol).astype(float),
                    "side": np.where(kind == 0, sides, np.nan),
                    "bid": np.where(quoted, price - 0.01, np.nan),
                    "ask": np.where(quoted, price + 0.01, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _noop_asset():
    import dagster as dg

    @dg.asset(name="minute_scaling_noop")
    def noop() -> None:
        return None

    return noop


def run(ctx: BenchContext) -> list[Comparison]:
    import dagster as dg

    from assets.market_data import candles_cover_traded_minutes
    from assets.partitions import partition_key_for
    from assets.profiles import COMPOSITE_LOOKBACK_DAYS, session_profiles
    from assets.resources import PostgresResource
    from orchestration.checks import ASSET_CHECKS
    from orchestration.definitions import defs
    from orchestration.sensors import tick_stream_sensor
    from storage.db import libpq_url
    from storage.migrate import upgrade

    upgrade(ctx.database_url)
    base = QUICK_BASE_TICKS if ctx.quick else BASE_TICKS
    new_minutes = 1 if ctx.quick else NEW_MINUTES
    # the 1x day is the last complete session, the 16x day one at least 15 days before,
    # each with its own 30 symbols: both stay in the database, so their minute-runs
    # alternate and share whatever load the machine has, and neither day's data reaches
    # into the other's run (composite look-back, CVD chain, naked POCs)
    sessions = prior_sessions(datetime.now(UTC).date(), 20)
    apart = [s for s in sessions if (sessions[0][0] - s[0]).days > COMPOSITE_LOOKBACK_DAYS]
    days = {1: sessions[0][1:], SCALE: apart[0][1:]}
    # the prints of one new minute per symbol: the 1x day's rate, at both scales
    per_minute = max(1, base // SESSION_MINUTES)
    url = libpq_url(ctx.database_url)
    postgres = PostgresResource(database_url=ctx.database_url)
    scratch = tempfile.TemporaryDirectory(prefix="minute-scaling-")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    instance = dg.DagsterInstance.local_temp(scratch.name)
    # minute_job's profile part: the profile multi-asset and the checks on its tables
    profile_run = [
        session_profiles,
        *(c for c in ASSET_CHECKS if c is not candles_cover_traded_minutes),
    ]

    last_steps: dict[str, float] = {}  # step key → seconds, of the last run

    def materialize(assets: list, key: str | None = None, tags: dict | None = None) -> float:
        started = time.perf_counter()
        result = dg.materialize(
            assets,
            partition_key=key,
            resources={"postgres": postgres},
            instance=instance,
            tags=tags,
            run_config=QUIET_RUN,
        )
        elapsed = time.perf_counter() - started
        assert result.success
        steps: dict[str, float] = {}
        for event in result.all_events:
            if event.is_step_success and event.step_key is not None:
                # a step success carries its duration (public: DagsterEvent.event_specific_data)
                duration_ms = getattr(event.event_specific_data, "duration_ms", None)
                if duration_ms is not None:
                    steps[event.step_key] = duration_ms / 1000
        last_steps.clear()
        last_steps.update(steps)
        return elapsed

    def first_new(scale: int) -> datetime:
        return days[scale][1] - timedelta(minutes=new_minutes)

    try:
        noop = _noop_asset()
        empties = [materialize([noop])]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "update symbols set active = false where symbol not like %s", (f"{PREFIX}%",)
            )
            # a symbol set per day: one day's minutes never move the other's CVD chain or
            # naked POCs (as a live day never sees an earlier day change under it)
            ids = {
                scale: ensure_symbols(
                    conn, [f"{PREFIX}{scale}X{i:02d}" for i in range(SYMBOL_COUNT)]
                )
                for scale in days
            }
            conn.execute(f"truncate ticks, {', '.join(DERIVED)}")
            day_rows = {}
            # each day's new minutes continue its walk from its last prices
            last_prices: dict[int, dict[int, float]] = {}
            for scale, (open_, _close) in days.items():
                day = day_ticks(
                    ids[scale], open_, first_new(scale), base * scale, scale=scale, seed=scale
                )
                day_rows[scale] = insert_ticks(conn, day)
                last_prices[scale] = day.groupby("symbol_id")["price"].last().to_dict()
                del day
            conn.execute("analyze ticks")
        # the backfills that leave each day's state in place
        full = {s: materialize(profile_run, partition_key_for(d[0])) for s, d in days.items()}
        with psycopg.connect(url) as conn:
            top = conn.execute("select max(seq) from ticks").fetchone()
        assert top is not None  # an aggregate returns one row
        cursor = str(top[0])
        times: dict[int, list[float]] = {1: [], SCALE: []}
        # inside each run: the profile step, and the checks' steps together
        asset_times: dict[int, list[float]] = {1: [], SCALE: []}
        check_times: dict[int, list[float]] = {1: [], SCALE: []}
        for n in range(new_minutes):
            for scale in (1, SCALE):
                minute = first_new(scale) + timedelta(minutes=n)
                new = day_ticks(
                    ids[scale],
                    minute,
                    minute + timedelta(minutes=1),
                    per_minute,
                    seed=99 + n,
                    from_prices=last_prices[scale],
                )
                last_prices[scale] = new.groupby("symbol_id")["price"].last().to_dict()
                with psycopg.connect(url, autocommit=True) as conn:
                    insert_ticks(conn, new)
                context = dg.build_sensor_context(
                    instance=instance,
                    cursor=cursor,
                    definitions=defs,
                    resources={"postgres": postgres},
                )
                evaluation = tick_stream_sensor.evaluate_tick(context)
                assert evaluation.run_requests is not None  # new ticks: one run requested
                (request,) = evaluation.run_requests
                run_time = materialize(profile_run, request.partition_key, dict(request.tags))
                times[scale].append(run_time)
                profile_step = last_steps.pop(session_profiles.op.name, 0.0)
                asset_times[scale].append(profile_step)
                check_times[scale].append(sum(last_steps.values()))
                cursor = evaluation.cursor or cursor
            empties.append(materialize([noop]))  # interleaved too
    finally:
        instance.dispose()
        scratch.cleanup()
    runs_1x, runs_16x = times[1], times[SCALE]
    empty = min(empties)
    ticks_1x, ticks_16x = day_rows[1], day_rows[SCALE]
    full_1x, full_16x = full[1], full[SCALE]
    t1, t16 = min(runs_1x), min(runs_16x)
    return [
        Comparison(
            name=f"sensor minute-run at {SCALE}x day ticks (s)",
            unit="s",
            value=t16,
            reference_name="the same run at 1x",
            reference_value=t1,
            higher_is_better=False,
            target=">= 0.67 (flat in the day's ticks)",
            notes={
                "symbols": SYMBOL_COUNT,
                "day_ticks_1x": ticks_1x,
                f"day_ticks_{SCALE}x": ticks_16x,
                "new_ticks_per_run": per_minute * SYMBOL_COUNT,
                "median_1x_s": statistics.median(runs_1x),
                f"median_{SCALE}x_s": statistics.median(runs_16x),
                "profile_step_1x_s": statistics.median(asset_times[1]),
                f"profile_step_{SCALE}x_s": statistics.median(asset_times[SCALE]),
                "checks_1x_s": statistics.median(check_times[1]),
                f"checks_{SCALE}x_s": statistics.median(check_times[SCALE]),
                "full_run_1x_s": full_1x,
                f"full_run_{SCALE}x_s": full_16x,
                "empty_run_s": empty,
            },
        ),
        Comparison(
            name="empty Dagster run (s)",
            unit="s",
            value=empty,
            reference_name="sensor minute-run at 1x",
            reference_value=t1,
            higher_is_better=False,
            target="the fixed part of every minute-run",
        ),
    ]
