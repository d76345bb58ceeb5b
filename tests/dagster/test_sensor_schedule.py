"""tick_stream_sensor and signals_schedule evaluated against a real PostgreSQL and instance."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import psycopg
import pytest

from analytics.sessions import session_bounds
from assets.dbt_marts import signal_marts
from assets.partitions import WRITE_FROM_TAG, partition_key_for
from assets.resources import PostgresResource
from bench.synthetic.ticks import insert_ticks, make_ticks
from orchestration.definitions import defs
from orchestration.jobs import minute_job
from orchestration.schedules import signals_schedule
from orchestration.sensors import TickProgress, tick_progress, tick_stream_sensor, wait_reason

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
    # nothing observed outside a run: runless events would outlive every run retention
    assert empty.asset_events == []

    add_ticks(db_url, DAY, 50, seed=1)
    first = evaluate(db_url, instance, None)
    assert [r.partition_key for r in first.run_requests] == [DAY]
    assert first.run_requests[0].job_name in (None, minute_job.name)
    assert first.asset_events == []
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
    assert quiet.asset_events == []
    add_ticks(db_url, "2024-03-06", 5, seed=5)
    streamed = evaluate(db_url, instance, quiet.cursor)
    assert [r.partition_key for r in streamed.run_requests] == ["2024-03-06"]


def minute_run(instance: dg.DagsterInstance, key: str, status: dg.DagsterRunStatus) -> None:
    """A minute_job run of partition `key`, as the daemon records a sensor's request."""
    instance.add_run(
        dg.DagsterRun(
            job_name=minute_job.name,
            run_id=str(uuid.uuid4()),
            status=status,
            tags={"dagster/partition": key},
        )
    )


def test_sensor_waits_while_a_run_of_the_partition_is_in_flight(db_url: str) -> None:
    instance = dg.DagsterInstance.ephemeral()
    add_ticks(db_url, DAY, 20, seed=4)
    minute_run(instance, DAY, dg.DagsterRunStatus.STARTED)
    waiting = evaluate(db_url, instance, "0")
    assert waiting.run_requests == []
    assert waiting.cursor == "0"  # the rows stay new and are requested after the run
    assert "run in flight" in waiting.skip_message


def test_at_most_one_minute_run_a_minute_and_none_without_ticks(db_url: str) -> None:
    """Evaluated four times a minute, the sensor asks for one run per partition and
    wall-clock minute; ticks arriving meanwhile wait for the next minute's run."""
    if datetime.now(UTC).second >= 50:  # the run below and the evaluations in one minute
        time.sleep(61 - datetime.now(UTC).second)
    instance = dg.DagsterInstance.ephemeral()
    add_ticks(db_url, DAY, 30, seed=6)
    first = evaluate(db_url, instance, None)
    assert [r.partition_key for r in first.run_requests] == [DAY]
    minute_run(instance, DAY, dg.DagsterRunStatus.SUCCESS)  # launched and already done
    add_ticks(db_url, DAY, 5, seed=7)
    second = evaluate(db_url, instance, first.cursor)
    assert second.run_requests == [] and "ran this minute" in second.skip_message
    assert second.cursor == first.cursor  # the five new prints stay new
    # a quiet stream: no tick after the cursor, no run, whatever the minute
    with psycopg.connect(db_url) as conn:
        newest = str(conn.execute("select max(seq) from ticks").fetchone()[0])
    assert evaluate(db_url, instance, newest).run_requests == []


def test_wait_reasons_follow_the_wall_clock_minute() -> None:
    now = datetime(2024, 3, 5, 15, 30, 42, tzinfo=UTC)
    done, running = dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.STARTED
    assert wait_reason(done, now - timedelta(seconds=40), now) == "ran this minute"
    assert wait_reason(done, now - timedelta(seconds=43), now) is None  # 15:29:59
    assert wait_reason(running, now - timedelta(minutes=3), now) == "run in flight"
    assert wait_reason(dg.DagsterRunStatus.FAILURE, now - timedelta(minutes=1), now) is None


def test_ticks_of_the_open_minute_are_requested_again_once_it_closed(db_url: str) -> None:
    """A candle is reconciled only once its minute closed: the cursor stops before the
    ticks of the minute still open, so the first evaluation after it closed asks for one
    more run even when no tick arrived since; then nothing."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    with psycopg.connect(db_url, autocommit=True) as conn:
        (btc,) = conn.execute("select id from symbols where symbol = 'BTCUSD'").fetchone()
        closed = make_ticks([btc], minute, minute + timedelta(seconds=59), 20, seed=8)
        open_ = make_ticks([btc], minute + timedelta(minutes=1), minute + timedelta(seconds=119), 7)
        for tag, frame in (("closed", closed), ("open", open_)):
            frame["trade_id"] = [f"{tag}-{i}" for i in range(len(frame))]
            insert_ticks(conn, frame)
        (last_closed,) = conn.execute(
            "select max(seq) from ticks where ts < %s", (minute + timedelta(minutes=1),)
        ).fetchone()
        (newest,) = conn.execute("select max(seq) from ticks").fetchone()
        during = tick_progress(conn, 0, minute + timedelta(minutes=1, seconds=30))
        after = tick_progress(conn, 0, minute + timedelta(minutes=2, seconds=5))
    assert during.rows == after.rows == 27
    assert during.next_cursor(0) == last_closed  # the open minute's seven stay new
    assert after.next_cursor(0) == newest  # closed: the cursor passes every tick
    assert TickProgress(0, 0, None, None).next_cursor(12) == 12
    assert partition_key_for(minute) == partition_key_for(during.last_ts)


def schedule_at(url: str, instance: dg.DagsterInstance, when: datetime, schedule=signals_schedule):
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


def test_signals_schedule_targets_the_closed_minutes_partition(
    db_url: str, instance: dg.DagsterInstance
) -> None:
    open_, _ = session_bounds("XNYS", DAY)
    during = open_.to_pydatetime() + timedelta(minutes=30)
    (request,) = schedule_at(db_url, instance, during).run_requests
    assert request.partition_key == DAY
    assert request.run_key == f"signals:{DAY}T14:59"
    # the first rebuild of the hour (15:00) runs the dbt tests: every mart and check
    assert request.asset_selection is None and request.asset_check_keys is None
    # the others rebuild every mart without its checks
    (quick,) = schedule_at(db_url, instance, during + timedelta(minutes=5)).run_requests
    assert set(quick.asset_selection) == set(signal_marts.keys)
    assert quick.asset_check_keys == []
    # crypto trades 24/7: at 00:00 UTC the closed minute is yesterday's last one
    midnight = datetime(2024, 3, 6, tzinfo=UTC)
    (marts,) = schedule_at(db_url, instance, midnight).run_requests
    assert marts.partition_key == DAY


def test_signals_schedule_skips_when_no_market_is_open(
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
