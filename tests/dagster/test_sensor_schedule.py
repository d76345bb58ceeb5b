"""tick_stream_sensor and minute_schedule evaluated against a real PostgreSQL and instance."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import psycopg
import pytest

from analytics.sessions import session_bounds
from assets.market_data import candles_1m
from assets.partitions import WRITE_FROM_TAG
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from bench.synthetic.ticks import insert_ticks, make_ticks
from orchestration.definitions import defs
from orchestration.jobs import profile_job
from orchestration.schedules import minute_schedule, signals_schedule
from orchestration.sensors import tick_stream_sensor

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAY = "2024-03-05"


def _aapl(conn: psycopg.Connection) -> int:
    return int(conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0])


def add_ticks(url: str, day: str, count: int, seed: int) -> None:
    open_, close = session_bounds("XNYS", day)
    with psycopg.connect(url, autocommit=True) as conn:
        ticks = make_ticks([_aapl(conn)], open_, close, count, seed=seed)
        ticks["trade_id"] = [f"s{seed}-{i}" for i in range(len(ticks))]
        insert_ticks(conn, ticks)


def evaluate(url: str, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"postgres": PostgresResource(database_url=url)},
    )
    return tick_stream_sensor.evaluate_tick(context)


def test_sensor_requests_the_partition_of_new_ticks_once(db_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    empty = evaluate(db_url, instance, None)
    assert empty.run_requests == [] and empty.skip_message == "no new ticks"
    assert len(empty.asset_events) == 1  # one observation per evaluation, even when idle

    add_ticks(db_url, DAY, 50, seed=1)
    first = evaluate(db_url, instance, None)
    assert [r.partition_key for r in first.run_requests] == [DAY]
    assert first.run_requests[0].job_name in (None, profile_job.name)
    (obs,) = first.asset_events
    assert obs.asset_key == dg.AssetKey("ticks")
    assert obs.metadata["rows"].value == 50
    assert obs.metadata["lag_seconds"].value > 0
    with psycopg.connect(db_url) as conn:
        assert first.cursor == str(conn.execute("select max(seq) from ticks").fetchone()[0])
        (first_ts,) = conn.execute("select min(ts) from ticks").fetchone()
    # only the minutes from five minutes before the first new print are rewritten
    write_from = datetime.fromisoformat(first.run_requests[0].tags[WRITE_FROM_TAG])
    assert write_from == first_ts - timedelta(minutes=5)

    again = evaluate(db_url, instance, first.cursor)
    assert again.run_requests == []
    assert again.cursor == first.cursor

    # the same cursor evaluated twice yields the same run_key: the daemon drops the repeat
    repeat = evaluate(db_url, instance, None)
    assert repeat.run_requests[0].run_key == first.run_requests[0].run_key

    add_ticks(db_url, "2024-03-06", 10, seed=2)
    add_ticks(db_url, DAY, 10, seed=3)  # a late print for the earlier day too
    more = evaluate(db_url, instance, first.cursor)
    assert sorted(r.partition_key for r in more.run_requests) == [DAY, "2024-03-06"]
    assert more.asset_events[0].metadata["rows"].value == 20
    assert more.run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_passes_over_what_the_history_backfill_stored(db_url: str) -> None:
    """The backfill's own run profiles its days (tick_history is upstream of the profiles):
    its rows move the cursor without requesting runs, and a stream print after them does."""
    instance = dg.DagsterInstance.ephemeral()
    add_ticks(db_url, DAY, 40, seed=4)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update ticks set source = 'backfill'")
        (top,) = conn.execute("select max(seq) from ticks").fetchone()
    quiet = evaluate(db_url, instance, None)
    assert quiet.run_requests == [] and quiet.cursor == str(top)
    assert quiet.asset_events[0].metadata["rows"].value == 0
    add_ticks(db_url, "2024-03-06", 5, seed=5)
    streamed = evaluate(db_url, instance, quiet.cursor)
    assert [r.partition_key for r in streamed.run_requests] == ["2024-03-06"]


def test_sensor_waits_while_a_run_of_the_partition_is_in_flight(db_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    add_ticks(db_url, DAY, 20, seed=4)
    instance.add_run(
        dg.DagsterRun(
            job_name=profile_job.name,
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/partition": DAY},
        )
    )
    waiting = evaluate(db_url, instance, "0")
    assert waiting.run_requests == []
    assert waiting.cursor == "0"  # the rows stay new and are requested after the run
    assert "in flight" in waiting.skip_message


def schedule_at(url: str, instance: dg.DagsterInstance, when: datetime, schedule=minute_schedule):
    # the context opens its own instance from the reference; `with` closes it again
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        repository_def=defs.get_repository_def(),
        resources={"postgres": PostgresResource(database_url=url)},
    ) as context:
        return schedule.evaluate_tick(context)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A real (temporary) instance: schedule contexts need an instance reference."""
    with dg.instance_for_test() as instance:
        yield instance


def test_minute_schedule_targets_the_closed_minutes_partition(
    db_url: str, instance: dg.DagsterInstance
) -> None:
    open_, _ = session_bounds("XNYS", DAY)
    add_ticks(db_url, DAY, 100, seed=5)
    during = open_.to_pydatetime() + timedelta(minutes=30)

    (request,) = schedule_at(db_url, instance, during).run_requests
    assert request.partition_key == DAY
    # ticks stored just now: the sensor has them; the schedule reconciles candles only
    assert request.asset_selection == [dg.AssetKey("candles_1m")]
    # candles of the last five closed minutes (14:55..14:59)
    assert request.tags[WRITE_FROM_TAG] == f"{DAY}T14:55:00+00:00"

    # ticks waiting for ten minutes without a profile run: the sensor is down, the schedule
    # covers for it with the whole window
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update ticks set received_at = now() - interval '10 minutes'")
    (request,) = schedule_at(db_url, instance, during).run_requests
    assert set(request.asset_selection) == {
        dg.AssetKey("candles_1m"),
        dg.AssetKey("volume_profile"),
        dg.AssetKey("profile_metrics"),
        dg.AssetKey("order_flow"),
        dg.AssetKey("footprint_imbalances"),
        dg.AssetKey("session_vwap"),
        dg.AssetKey("big_prints"),
        dg.AssetKey("naked_pocs"),
    }
    assert request.run_key == f"minute:{DAY}T14:59"
    assert WRITE_FROM_TAG not in request.tags  # the fallback rewrites the whole window

    dg.materialize(
        [candles_1m, session_profiles],
        partition_key=DAY,
        instance=instance,
        resources={"postgres": PostgresResource(database_url=db_url)},
    )
    (request,) = schedule_at(db_url, instance, during).run_requests
    assert request.asset_selection == [dg.AssetKey("candles_1m")]  # profiles are current

    # crypto trades 24/7: at 00:00 UTC the closed minute is yesterday's last one
    midnight = datetime(2024, 3, 6, tzinfo=UTC)
    (request,) = schedule_at(db_url, instance, midnight).run_requests
    assert request.partition_key == DAY
    (marts,) = schedule_at(db_url, instance, midnight, signals_schedule).run_requests
    assert marts.partition_key == DAY


def test_minute_schedule_skips_when_no_market_is_open(
    db_url: str, instance: dg.DagsterInstance
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("update symbols set active = false where market <> 'XNYS'")
    saturday = datetime(2024, 3, 9, 15, 0, tzinfo=UTC)
    result = schedule_at(db_url, instance, saturday)
    assert result.run_requests == [] and "no market in session" in result.skip_message
    before_open = session_bounds("XNYS", DAY)[0].to_pydatetime()  # closed minute is 14:29
    assert schedule_at(db_url, instance, before_open).run_requests == []
    assert schedule_at(db_url, instance, before_open + timedelta(minutes=1)).run_requests


@pytest.mark.parametrize(
    ("first", "last", "keys"),
    [
        ("2024-03-05 23:59", "2024-03-06 00:01", ["2024-03-05", "2024-03-06"]),
        ("2024-03-05 10:00", "2024-03-05 11:00", ["2024-03-05"]),
        ("2009-12-31 10:00", "2010-01-01 11:00", ["2010-01-01"]),  # before the first partition
    ],
)
def test_partitions_for_new_ticks(first: str, last: str, keys: list[str]) -> None:
    from orchestration.sensors import TickProgress, partitions_for

    progress = TickProgress(
        3,
        10,
        pd.Timestamp(first, tz="UTC").to_pydatetime(),
        pd.Timestamp(last, tz="UTC").to_pydatetime(),
    )
    assert partitions_for(progress, datetime(2024, 3, 7, tzinfo=UTC)) == keys
