"""`tick_archive` on the shared partitions, against a real PostgreSQL and Dagster: the days
past the retention leave PostgreSQL, and every profile computed from them afterwards (a
full run, a sensor-style incremental run, a range mixing archived and stored days) equals
what was stored before, row for row and bit for bit (docs/retention.md)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from assets.maintenance import archive_plan, tick_archive, tick_archive_matches_manifest
from assets.market_data import candles_1m
from assets.partitions import WRITE_FROM_TAG
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from core.settings import get_settings
from orchestration.checks import ASSET_CHECKS
from orchestration.schedules import RANGE_END_TAG, RANGE_START_TAG, tick_archive_schedule
from storage import tick_archiver
from storage.tick_archive import TickArchive
from storage.tick_archiver import stored_days
from tests.dagster.test_assets import DAYS, RANGE_TAGS, load_days

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

# every table the profile and candle assets write, in key order (updated_at left out)
TABLES = {
    "candles_1m": "symbol_id, ts",
    "volume_profile": "symbol_id, bucket, price_level",
    "profile_metrics": "symbol_id, horizon, bucket",
    "order_flow": "symbol_id, bucket",
    "footprint_imbalances": "symbol_id, bucket, price, side",
    "session_vwap": "symbol_id, bucket",
    "big_prints": "symbol_id, bucket, print_no",
    "naked_pocs": "symbol_id, session_date",
}
PROFILE_RUN = [candles_1m, session_profiles, *ASSET_CHECKS]


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TICK_ARCHIVE_DIR", str(tmp_path / "archive"))
    monkeypatch.delenv("TICK_RETENTION_DAYS", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "archive"
    get_settings.cache_clear()


def retention(monkeypatch: pytest.MonkeyPatch, days: int | None) -> None:
    if days is None:
        monkeypatch.delenv("TICK_RETENTION_DAYS", raising=False)
    else:
        monkeypatch.setenv("TICK_RETENTION_DAYS", str(days))
    get_settings.cache_clear()


def stored(url: str) -> dict[str, list[tuple]]:
    """Every row the assets wrote, exactly (binary doubles, exact numerics)."""
    out = {}
    with psycopg.connect(url) as conn, conn.cursor(binary=True) as cur:
        for table, order in TABLES.items():
            cur.execute(f"select * from {table} order by {order}")
            names = [d.name for d in cur.description]
            keep = [i for i, n in enumerate(names) if n != "updated_at"]
            out[table] = [tuple(row[i] for i in keep) for row in cur.fetchall()]
    return out


def materialize(url: str, assets: list, **kwargs) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        assets,
        resources={"postgres": PostgresResource(database_url=url)},
        instance=dg.DagsterInstance.ephemeral(),
        **kwargs,
    )
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    return result


def archive_metadata(result: dg.ExecuteInProcessResult) -> dict:
    # a range run records one materialization per partition, all with the run's metadata
    event = result.get_asset_materialization_events()[0]
    return {k: v.value for k, v in event.step_materialization_data.materialization.metadata.items()}


def test_profiles_of_archived_days_equal_the_ones_computed_before(
    db_url: str, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_days(db_url)
    materialize(db_url, PROFILE_RUN, tags=RANGE_TAGS)
    before = stored(db_url)
    assert len(before["volume_profile"]) > 500

    retention(monkeypatch, 1)  # every day of 2024 is far past it
    archived = materialize(
        db_url,
        [tick_archive, tick_archive_matches_manifest],
        tags={**RANGE_TAGS, "dagster/asset_partition_range_end": DAYS[1]},
    )
    meta = archive_metadata(archived)
    assert meta["days_archived"] == 2 and meta["rows_archived"] == 2 * (300 + 20 + 300)
    with psycopg.connect(db_url) as conn:
        left = {d.isoformat() for d in stored_days(conn)}
        assert DAYS[0] not in left and DAYS[1] not in left and DAYS[2] in left

    # the whole range again: two days from Parquet, one from PostgreSQL
    with psycopg.connect(db_url, autocommit=True) as conn:
        for table in TABLES.keys() - {"candles_1m"}:
            conn.execute(f"delete from {table}")
    materialize(db_url, PROFILE_RUN, tags=RANGE_TAGS)
    assert stored(db_url) == before
    # one archived day alone, then as the sensor runs it (resumed from a write-from minute)
    materialize(db_url, PROFILE_RUN, partition_key=DAYS[1])
    assert stored(db_url) == before
    materialize(
        db_url,
        PROFILE_RUN,
        partition_key=DAYS[1],
        tags={WRITE_FROM_TAG: f"{DAYS[1]}T18:00:00+00:00"},
    )
    assert stored(db_url) == before
    # re-running archived days changes nothing
    again = materialize(
        db_url, [tick_archive, tick_archive_matches_manifest], partition_key=DAYS[0]
    )
    assert archive_metadata(again)["days"][DAYS[0]]["action"] == "already_archived"


def test_without_retention_or_for_recent_days_the_asset_keeps_the_ticks(
    db_url: str, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_days(db_url, per_session=20)
    result = materialize(db_url, [tick_archive], partition_key=DAYS[0])
    assert archive_metadata(result)["days"] == {
        DAYS[0]: {"action": "kept: TICK_RETENTION_DAYS is not set"}
    }
    retention(monkeypatch, 3)
    today = datetime.now(UTC).date().isoformat()
    result = materialize(db_url, [tick_archive], partition_key=today)
    assert archive_metadata(result)["days"][today]["action"].startswith("kept: within 3 days")
    with psycopg.connect(db_url) as conn:
        assert {d.isoformat() for d in stored_days(conn)} >= set(DAYS)
    assert TickArchive.configured().days() == set()


def test_the_plan_archives_only_days_past_the_retention() -> None:
    days = [date(2026, 1, d) for d in range(1, 6)]
    plan = archive_plan(days, today=date(2026, 1, 5), retention_days=2)
    assert [d.day for d, what in plan.items() if what == "archive"] == [1, 2]
    assert plan[date(2026, 1, 3)].startswith("kept: within 2 days")
    assert set(archive_plan(days, date(2026, 1, 5), None).values()) == {
        "kept: TICK_RETENTION_DAYS is not set"
    }


def evaluate_schedule(url: str) -> dg.RunRequest | dg.SkipReason:
    # a schedule's context needs a persistent instance, and closing (its `with`), or the
    # instance it opened stays Dagster's current state storage after it is deleted
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 1, 10, 2, 17, tzinfo=UTC),
            resources={"postgres": PostgresResource(database_url=url)},
        ) as context,
    ):
        return tick_archive_schedule(context)


def test_the_schedule_asks_for_one_run_over_the_days_to_archive(
    db_url: str, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_days(db_url, per_session=20)
    skip = evaluate_schedule(db_url)
    assert isinstance(skip, dg.SkipReason)
    assert "TICK_RETENTION_DAYS" in (skip.skip_message or "")
    retention(monkeypatch, 7)
    request = evaluate_schedule(db_url)
    assert isinstance(request, dg.RunRequest)
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == (DAYS[0], DAYS[-1])
    materialize(db_url, [tick_archive], tags=dict(request.tags))
    assert isinstance(evaluate_schedule(db_url), dg.SkipReason)


def test_a_failed_day_fails_the_run_and_a_damaged_file_fails_the_check(
    db_url: str, settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_days(db_url, per_session=20)
    retention(monkeypatch, 1)
    real_fetch = tick_archiver.fetch_partition
    monkeypatch.setattr(
        tick_archiver, "fetch_partition", lambda conn, part: real_fetch(conn, part).slice(1)
    )
    failed = dg.materialize(
        [tick_archive],
        partition_key=DAYS[0],
        resources={"postgres": PostgresResource(database_url=db_url)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not failed.success
    with psycopg.connect(db_url) as conn:
        assert DAYS[0] in {d.isoformat() for d in stored_days(conn)}  # nothing dropped
    monkeypatch.setattr(tick_archiver, "fetch_partition", real_fetch)
    materialize(db_url, [tick_archive, tick_archive_matches_manifest], partition_key=DAYS[0])

    path = TickArchive.configured().file_path(date.fromisoformat(DAYS[0]))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte on disk
    path.write_bytes(bytes(data))
    result = dg.materialize(  # the asset is a no-op on an archived day; the check reads
        [tick_archive, tick_archive_matches_manifest],
        partition_key=DAYS[0],
        resources={"postgres": PostgresResource(database_url=db_url)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "sha256 differs" in (evaluation.description or "")
