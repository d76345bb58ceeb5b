"""Partitioned assets against a real PostgreSQL: one day, a three-day single run, re-runs.

Ticks are COPYed straight into `ticks` (bench.dagster_minute's generator): AAPL trades the
XNYS session (and a little pre-market, which profiles must leave out and candles keep),
ETHUSDT trades the whole UTC day.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

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
from orchestration.checks import ASSET_CHECKS

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAYS = ("2024-03-04", "2024-03-05", "2024-03-06")  # Monday..Wednesday, EST (14:30 UTC open)
ASSETS = [candles_1m, session_profiles, *ASSET_CHECKS]
DERIVED = ("volume_profile", "profile_metrics", "order_flow", "naked_pocs")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}


def symbol_id(conn: psycopg.Connection, symbol: str) -> int:
    row = conn.execute("select id from symbols where symbol = %s", (symbol,)).fetchone()
    assert row is not None
    return int(row[0])


def load_days(url: str, per_session: int = 300) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        aapl, eth = symbol_id(conn, "AAPL"), symbol_id(conn, "ETHUSDT")
        for n, day in enumerate(DAYS):
            open_, close = session_bounds("XNYS", day)
            frames = [
                make_ticks([aapl], open_, close, per_session, seed=n),
                make_ticks([aapl], open_ - pd.Timedelta(hours=1), open_, 20, seed=10 + n),
            ]
            start, end = session_bounds("24/7", day)
            frames.append(make_ticks([eth], start, end, per_session, seed=20 + n))
            ticks = pd.concat(frames, ignore_index=True)
            ticks["trade_id"] = [f"t{n}-{i}" for i in range(len(ticks))]
            insert_ticks(conn, ticks)


def snapshot(url: str) -> dict[str, pd.DataFrame]:
    """Every derived row (without updated_at), in key order, to compare two states."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in (*DERIVED, "candles_1m"):
            cur = conn.execute(f"select * from {table} order by 1, 2, 3")
            columns = [d.name for d in cur.description]
            frame = pd.DataFrame(cur.fetchall(), columns=columns)
            out[table] = frame.drop(columns=["updated_at"], errors="ignore")
    return out


def assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    for table in left:
        pd.testing.assert_frame_equal(
            left[table].reset_index(drop=True),
            right[table].reset_index(drop=True),
            check_exact=False,
            rtol=1e-12,
            obj=table,
        )


def clear_derived(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in DERIVED:
            conn.execute(f"delete from {table}")


def run(
    url: str, instance: dg.DagsterInstance, expect_failed: tuple[str, ...] = (), **kwargs
) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        ASSETS,
        resources={"postgres": PostgresResource(database_url=url)},
        instance=instance,
        **kwargs,
    )
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == list(expect_failed)
    return result


@pytest.fixture
def loaded_db(db_url: str) -> str:
    load_days(db_url)
    return db_url


def test_one_partition_writes_its_day_only(loaded_db: str) -> None:
    result = run(loaded_db, dg.DagsterInstance.ephemeral(), partition_key=DAYS[1])
    keys = {
        (m.asset_key.to_user_string(), m.partition)
        for m in result.get_asset_materialization_events()
    }
    tables = (
        "candles_1m",
        "volume_profile",
        "profile_metrics",
        "order_flow",
        "footprint_imbalances",
        "session_vwap",
        "big_prints",
        "naked_pocs",
    )
    assert keys == {(table, DAYS[1]) for table in tables}
    with psycopg.connect(loaded_db) as conn:
        for table in ("order_flow", "footprint_imbalances", "session_vwap"):
            days = conn.execute(
                f"select distinct (bucket at time zone 'UTC')::date::text from {table}"
            ).fetchall()
            assert days == [(DAYS[1],)], table
        aapl = symbol_id(conn, "AAPL")
        open_, close = session_bounds("XNYS", DAYS[1])
        # pre-market prints have candles but stay out of the session profile
        assert (
            conn.execute(
                "select count(*) from candles_1m where symbol_id = %s and ts < %s", (aapl, open_)
            ).fetchone()[0]
            > 0
        )
        assert (
            conn.execute(
                "select count(*) from volume_profile where symbol_id = %s and bucket < %s",
                (aapl, open_),
            ).fetchone()[0]
            == 0
        )
        tick_volume, profile_volume = conn.execute(
            "select (select sum(size) from ticks where symbol_id = %(s)s and ts >= %(o)s "
            "and ts < %(c)s), (select sum(total_volume) from volume_profile "
            "where symbol_id = %(s)s)",
            {"s": aapl, "o": open_, "c": close},
        ).fetchone()
        assert profile_volume == pytest.approx(tick_volume)
        horizons = dict(
            conn.execute(
                "select horizon, count(*) from profile_metrics group by horizon"
            ).fetchall()
        )
        assert set(horizons) == {"1m", "session", "composite"}
        assert horizons["composite"] == 2  # one per symbol and session
        assert conn.execute("select count(*) from naked_pocs").fetchone()[0] == 2


def test_three_day_single_run_equals_three_single_days_and_reruns_change_nothing(
    loaded_db: str,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS:
        run(loaded_db, instance, partition_key=day)
    by_day = snapshot(loaded_db)
    assert len(by_day["order_flow"]) > 0
    # cvd_total continues across days; cvd restarts at each session open
    with psycopg.connect(loaded_db) as conn:
        aapl = symbol_id(conn, "AAPL")
        firsts = conn.execute(
            "select distinct on ((bucket at time zone 'UTC')::date) delta, cvd, cvd_total "
            "from order_flow where symbol_id = %s order by (bucket at time zone 'UTC')::date, "
            "bucket",
            (aapl,),
        ).fetchall()
    assert all(delta == pytest.approx(cvd) for delta, cvd, _ in firsts)
    assert firsts[1][2] != pytest.approx(firsts[1][1])

    clear_derived(loaded_db)
    result = run(loaded_db, instance, tags=RANGE_TAGS)
    assert {m.partition for m in result.get_asset_materialization_events()} == set(DAYS)
    # one step for the range: BackfillPolicy.single_run reads the whole time window at once
    assert (
        len(
            [
                e
                for e in result.all_events
                if e.event_type_value == "STEP_START" and e.step_key == "session_profiles"
            ]
        )
        == 1
    )
    assert_same(by_day, snapshot(loaded_db))

    candles_before = snapshot(loaded_db)["candles_1m"]
    with psycopg.connect(loaded_db) as conn:
        stamps_before = conn.execute("select max(updated_at) from candles_1m").fetchone()[0]
    run(loaded_db, instance, tags=RANGE_TAGS)
    run(loaded_db, instance, partition_key=DAYS[1])
    after = snapshot(loaded_db)
    assert_same(by_day, after)
    pd.testing.assert_frame_equal(candles_before, after["candles_1m"])
    with psycopg.connect(loaded_db) as conn:
        # reconciliation writes only rows that differ: nothing was touched
        assert conn.execute("select max(updated_at) from candles_1m").fetchone()[0] == stamps_before


def test_candles_reconciled_from_ticks_fill_and_fix_the_stream(loaded_db: str) -> None:
    with psycopg.connect(loaded_db, autocommit=True) as conn:
        aapl = symbol_id(conn, "AAPL")
        open_, _ = session_bounds("XNYS", DAYS[0])
        minute = open_.to_pydatetime()
        # the stream wrote one wrong candle (a late print missed) and missed the next minute
        conn.execute(
            "insert into candles_1m (symbol_id, ts, open, high, low, close, volume, trade_count,"
            " source) values (%s, %s, 1, 1, 1, 1, 1, 1, 'stream')",
            (aapl, minute),
        )
    instance = dg.DagsterInstance.ephemeral()
    # a scheduled run reconciles only the minutes from its tag on: the bad candle stays
    later = (minute + pd.Timedelta(minutes=30)).isoformat()
    dg.materialize(
        [candles_1m],
        partition_key=DAYS[0],
        instance=instance,
        tags={WRITE_FROM_TAG: later},
        resources={"postgres": PostgresResource(database_url=loaded_db)},
    )
    with psycopg.connect(loaded_db) as conn:
        assert conn.execute(
            "select source from candles_1m where symbol_id = %s and ts = %s", (aapl, minute)
        ).fetchone() == ("stream",)
    run(loaded_db, instance, partition_key=DAYS[0])
    with psycopg.connect(loaded_db) as conn:
        expected = conn.execute(
            "select count(*), sum(size), max(price), min(price) from ticks where symbol_id = %s"
            " and ts >= %s and ts < %s + interval '1 minute'",
            (aapl, minute, minute),
        ).fetchone()
        got = conn.execute(
            "select trade_count, volume, high, low, source from candles_1m "
            "where symbol_id = %s and ts = %s",
            (aapl, minute),
        ).fetchone()
        assert got[:4] == (expected[0], pytest.approx(expected[1]), expected[2], expected[3])
        assert got[4] == "reconciled"
        start, end = session_bounds("24/7", DAYS[0])  # the UTC day
        traded_minutes = conn.execute(
            "select count(distinct (symbol_id, date_trunc('minute', ts))) from ticks "
            "where ts >= %s and ts < %s",
            (start, end),
        ).fetchone()[0]
        candles = conn.execute(
            "select count(*) from candles_1m where ts >= %s and ts < %s", (start, end)
        ).fetchone()[0]
        assert candles == traded_minutes


def test_real_eth_trades_give_the_documented_bins(db_url: str, captures) -> None:
    """The Binance ETH/USDT capture (venue side) through the whole asset path."""
    raw = pd.read_csv(captures / "trades" / "ethusdt_1000_trades.csv")
    with psycopg.connect(db_url, autocommit=True) as conn:
        eth = symbol_id(conn, "ETHUSDT")
        ticks = pd.DataFrame(
            {
                "symbol_id": eth,
                "ts": pd.to_datetime(raw["timestamp"], unit="ms", utc=True),
                "trade_id": raw["id"].astype(str),
                "price": raw["price"],
                "size": raw["amount"],
                "side": raw["side"].map({"buy": 1.0, "sell": -1.0}),
                "bid": float("nan"),
                "ask": float("nan"),
            }
        )
        insert_ticks(conn, ticks)
    day = ticks["ts"].iloc[0].strftime("%Y-%m-%d")
    run(db_url, dg.DagsterInstance.ephemeral(), partition_key=day)
    with psycopg.connect(db_url) as conn:
        bins = dict(
            (float(level), (buy, sell))
            for level, buy, sell in conn.execute(
                "select price_level, sum(buy_volume), sum(sell_volume) from volume_profile "
                "where symbol_id = %s group by price_level",
                (eth,),
            ).fetchall()
        )
        assert bins[1666.20] == (pytest.approx(88.98), pytest.approx(197.512))
        assert bins[1667.30] == (pytest.approx(108.21), pytest.approx(50.659))
        total = conn.execute(
            "select sum(total_volume) from volume_profile where symbol_id = %s", (eth,)
        ).fetchone()[0]
        assert total == pytest.approx(raw["amount"].sum())
        last = conn.execute(
            "select cvd, cvd_total from order_flow where symbol_id = %s order by bucket desc "
            "limit 1",
            (eth,),
        ).fetchone()
        signed = (raw["amount"] * raw["side"].map({"buy": 1, "sell": -1})).sum()
        assert last == (pytest.approx(signed), pytest.approx(signed))


def test_partition_of_today_exists() -> None:
    from assets.partitions import daily_partitions, partition_key_for

    today = partition_key_for(datetime.now(UTC))
    assert daily_partitions.get_last_partition_key() == today


def test_sensor_runs_rewrite_only_from_the_first_new_minute_and_match_a_full_run(
    loaded_db: str,
) -> None:
    """A run tagged write_from (what tick_stream_sensor sends) gives the same tables as a
    full rewrite of the window, while writing only the minutes from the tag on."""
    instance = dg.DagsterInstance.ephemeral()
    run(loaded_db, instance, partition_key=DAYS[0])
    _open, close = session_bounds("XNYS", DAYS[0])
    late_start = close - pd.Timedelta(minutes=20)
    with psycopg.connect(loaded_db, autocommit=True) as conn:
        late = make_ticks([symbol_id(conn, "AAPL")], late_start, close, 40, seed=77)
        late["trade_id"] = [f"late-{i}" for i in range(len(late))]
        insert_ticks(conn, late)
    write_from = (late["ts"].min() - pd.Timedelta(minutes=5)).isoformat()
    result = run(loaded_db, instance, partition_key=DAYS[0], tags={WRITE_FROM_TAG: write_from})
    (flow,) = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["order_flow"]
    ]
    written = flow.step_materialization_data.materialization.metadata["rows"].value
    incremental = snapshot(loaded_db)
    assert 0 < written < len(incremental["order_flow"]) / 3

    clear_derived(loaded_db)
    run(loaded_db, instance, partition_key=DAYS[0])
    assert_same(snapshot(loaded_db), incremental)


def test_a_symbol_with_an_unknown_market_is_skipped_and_reported(loaded_db: str) -> None:
    with psycopg.connect(loaded_db, autocommit=True) as conn:
        conn.execute("insert into symbols (symbol, market) values ('ODD', 'XMARS')")
        odd = symbol_id(conn, "ODD")
        open_, close = session_bounds("XNYS", DAYS[0])
        ticks = make_ticks([odd], open_, close, 50, seed=5)
        ticks["trade_id"] = [f"odd-{i}" for i in range(len(ticks))]
        insert_ticks(conn, ticks)
    result = run(
        loaded_db,
        dg.DagsterInstance.ephemeral(),
        expect_failed=("profile_symbols_computed",),
        partition_key=DAYS[0],
    )
    (flow,) = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["order_flow"]
    ]
    metadata = flow.step_materialization_data.materialization.metadata
    assert metadata["symbols_skipped"].value == 1
    assert "XMARS" in metadata["skipped"].value["ODD"]
    assert metadata["sessions"].value == 2  # AAPL and ETHUSDT still computed
    with psycopg.connect(loaded_db) as conn:
        assert conn.execute(
            "select count(*) from order_flow where symbol_id = %s", (odd,)
        ).fetchone() == (0,)


def test_a_day_with_ticks_but_no_session_writes_nothing_and_succeeds(db_url: str) -> None:
    """`marketflow up` at night: demo AAPL prints fall outside every XNYS session of the
    UTC day, so there is nothing to profile; the run must succeed, not crash on an empty
    frame (it once raised KeyError 'lvns')."""
    day = "2024-03-09"  # a Saturday: no XNYS session at all
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = symbol_id(conn, "AAPL")
        start = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=1)
        ticks = make_ticks([aapl], start, start + pd.Timedelta(hours=1), 50, seed=3)
        ticks["trade_id"] = [f"w-{i}" for i in range(len(ticks))]
        insert_ticks(conn, ticks)
    run(db_url, dg.DagsterInstance.ephemeral(), partition_key=day)
    with psycopg.connect(db_url) as conn:
        for table in ("volume_profile", "profile_metrics", "order_flow"):
            assert conn.execute(f"select count(*) from {table}").fetchone() == (0,)
        # the prints themselves still get their candles
        assert conn.execute("select count(*) from candles_1m").fetchone()[0] > 0
