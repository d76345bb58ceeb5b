"""Minute-runs of the Dagster platform for 30 symbols, end to end, beside the pure compute.

Data: a full US session of 30 symbols (about 600 k prints) in PostgreSQL, after four earlier
sessions backfilled as one single run over their range (so the composite and naked POCs
read a real history). Each run is `dagster.materialize` in-process, with the checks:

- minute run: what tick_stream_sensor launches once a minute of the session (minute_job) —
  candles of the last closed minutes reconciled from the ticks, then the profile
  multi-asset resuming each symbol from its stored state six minutes back
  (docs/profiles-incremental.md; `bench minute_scaling` shows it flat in the day's ticks);
- full-window run: candles and profiles of the whole day (a backfill or a repair).

The reference is `analytics.pipeline.compute_session` over the same ticks already in memory,
so the difference is Dagster's and PostgreSQL's share. One more comparison times an
evaluation of tick_stream_sensor (its fixed cost four times a minute) against a database
round trip.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import psycopg

from bench import BenchContext, Comparison
from bench.synthetic.ticks import insert_ticks, make_ticks

DESCRIPTION = "Dagster minute-runs, 30 symbols (sensor, schedule, full window) vs pure compute"

SYMBOL_COUNT = 30
TICKS_PER_SYMBOL = 20_000  # about 600 k prints in the session, a busy IEX day for 30 names
QUICK_TICKS_PER_SYMBOL = 300
HISTORY_SESSIONS = 4  # with the measured one, the five sessions of the composite
BENCH_PREFIX = "DGB"


def bench_symbols(count: int = SYMBOL_COUNT) -> list[str]:
    return [f"{BENCH_PREFIX}{i:02d}" for i in range(count)]


def ensure_symbols(conn: psycopg.Connection, names: list[str], market: str = "XNYS") -> list[int]:
    conn.execute(
        "insert into symbols (symbol, market, timezone, row_size) "
        "select s, %s, 'America/New_York', 0.01 from unnest(%s::text[]) as s "
        "on conflict (symbol) do nothing",
        (market, names),
    )
    rows = conn.execute(
        "select id from symbols where symbol = any(%s) order by symbol", (names,)
    ).fetchall()
    return [int(r[0]) for r in rows]


def last_us_session(today: date) -> tuple[date, datetime, datetime]:
    """The most recent complete XNYS session before `today`."""
    from analytics.sessions import session_bounds

    day = today - timedelta(days=1)
    while (bounds := session_bounds("XNYS", day)) is None:
        day -= timedelta(days=1)
    return day, bounds[0].to_pydatetime(), bounds[1].to_pydatetime()


def prior_sessions(before: date, count: int) -> list[tuple[date, datetime, datetime]]:
    """The `count` XNYS sessions before `before`, newest first."""
    sessions: list[tuple[date, datetime, datetime]] = []
    day = before
    while len(sessions) < count:
        day, open_, close = last_us_session(day)
        sessions.append((day, open_, close))
    return sessions


def _pure_compute(ticks: pd.DataFrame, open_: datetime, close: datetime) -> float:
    from analytics.pipeline import compute_session

    groups = [g.drop(columns="symbol_id") for _, g in ticks.groupby("symbol_id", sort=False)]
    started = time.perf_counter()
    for group in groups:
        compute_session(group[["ts", "price", "size", "side", "bid", "ask"]], 0.01, open_, close)
    return time.perf_counter() - started


QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run(ctx: BenchContext) -> list[Comparison]:
    import dagster as dg

    from assets.market_data import candles_1m
    from assets.partitions import WRITE_FROM_TAG, partition_key_for
    from assets.profiles import session_profiles
    from assets.resources import PostgresResource
    from orchestration.checks import ASSET_CHECKS
    from orchestration.sensors import tick_stream_sensor
    from storage.db import libpq_url
    from storage.migrate import upgrade

    upgrade(ctx.database_url)
    per_symbol = QUICK_TICKS_PER_SYMBOL if ctx.quick else TICKS_PER_SYMBOL
    _day, open_, close = last_us_session(datetime.now(UTC).date())
    with psycopg.connect(libpq_url(ctx.database_url), autocommit=True) as conn:
        # only the bench's symbols are active, so the run computes exactly 30 of them
        conn.execute(
            "update symbols set active = false where symbol not like %s", (f"{BENCH_PREFIX}%",)
        )
        ids = ensure_symbols(conn, bench_symbols())
        conn.execute("delete from ticks where symbol_id = any(%s)", (ids,))
        ticks = make_ticks(ids, open_, close, per_symbol)
        insert_ticks(conn, ticks)
        # earlier sessions, so the composite (5 sessions) and naked POCs read real history
        history = [] if ctx.quick else prior_sessions(open_.date(), HISTORY_SESSIONS)
        for n, (_, prior_open, prior_close) in enumerate(history):
            insert_ticks(conn, make_ticks(ids, prior_open, prior_close, per_symbol, seed=n))
        started = time.perf_counter()
        conn.execute("select 1")
        round_trip = time.perf_counter() - started

    reference = _pure_compute(ticks, open_, close)
    postgres = PostgresResource(database_url=ctx.database_url)
    scratch = tempfile.TemporaryDirectory(prefix="dagster-bench-")
    # a persistent (temporary) instance, like the daemon's; its storage migrations and
    # every run's DEBUG events would bury the results
    logging.getLogger("alembic").setLevel(logging.WARNING)
    instance = dg.DagsterInstance.local_temp(scratch.name)
    key = partition_key_for(open_)

    def materialize(assets: list, tags: dict[str, str] | None = None) -> float:
        started = time.perf_counter()
        dg.materialize(
            assets,
            partition_key=key,
            resources={"postgres": postgres},
            instance=instance,
            tags=tags,
            run_config=QUIET_RUN,
        )
        return time.perf_counter() - started

    backfill = None
    if history:
        # the history as one single-run backfill of its range (BackfillPolicy.single_run)
        started = time.perf_counter()
        dg.materialize(
            [candles_1m, session_profiles, *ASSET_CHECKS],
            resources={"postgres": postgres},
            instance=instance,
            run_config=QUIET_RUN,
            tags={
                "dagster/asset_partition_range_start": partition_key_for(history[-1][1]),
                "dagster/asset_partition_range_end": partition_key_for(history[0][1]),
            },
        )
        backfill = time.perf_counter() - started

    # the whole window: a backfill, or a repair
    full = [materialize([candles_1m, session_profiles, *ASSET_CHECKS])]
    if not ctx.quick:
        full.append(materialize([candles_1m, session_profiles, *ASSET_CHECKS]))
    # what the sensor launches once a minute during the session: new ticks in the last
    # minute, candles and profile rows rewritten from five minutes before them
    since = (close - timedelta(minutes=6)).isoformat()
    minute_run = min(
        materialize([candles_1m, session_profiles, *ASSET_CHECKS], {WRITE_FROM_TAG: since})
        for _ in range(1 if ctx.quick else 3)
    )

    evaluation = []
    with psycopg.connect(libpq_url(ctx.database_url)) as conn:
        row = conn.execute("select max(seq) from ticks").fetchone()
        newest = int(row[0]) if row and row[0] is not None else 0
    for i in range(3):
        # a cursor a minute's prints behind the newest: the evaluation a live session sees
        context = dg.build_sensor_context(
            instance=instance,
            cursor=str(max(0, newest - SYMBOL_COUNT * max(1, per_symbol // 390) - i)),
            resources={"postgres": postgres},
        )
        started = time.perf_counter()
        tick_stream_sensor(context)
        evaluation.append(time.perf_counter() - started)
    instance.dispose()
    scratch.cleanup()

    rows = len(ticks)
    notes: dict[str, float] = {"ticks": rows, "symbols": SYMBOL_COUNT}
    return [
        Comparison(
            name="minute run, candles+profiles (s)",
            unit="s",
            value=minute_run,
            reference_name="pure compute_session",
            reference_value=reference,
            higher_is_better=False,
            target="small beside a minute on 2 cores",
            notes=notes,
        ),
        Comparison(
            name="full-window run, candles+profiles (s)",
            unit="s",
            value=min(full),
            reference_name="pure compute_session",
            reference_value=reference,
            higher_is_better=False,
            target="backfill or repair",
            notes={
                **notes,
                "first_run_s": full[0],
                **({"history_backfill_s": backfill} if backfill is not None else {}),
            },
        ),
        Comparison(
            name="tick_stream_sensor evaluation (ms)",
            unit="ms",
            value=min(evaluation) * 1000,
            reference_name="one PostgreSQL round trip",
            reference_value=round_trip * 1000,
            higher_is_better=False,
            target="milliseconds",
        ),
    ]
