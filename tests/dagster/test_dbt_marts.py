"""The signal marts on a real PostgreSQL: a day of ticks, profiles, signals, market states and
Polymarket opportunities (tests/support/dbt_marts_data.py), the marts materialised by Dagster for
that partition (one `dbt build`), then every mart's rows checked against the raw tables and
against the documented rules recomputed in Python. A second run of the same partition must
leave every mart as it was, and so must a plain `dbt build`."""

from __future__ import annotations

import os
import subprocess
import uuid
import warnings
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from assets.dbt_marts import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_env, dbt_resource, signal_marts
from assets.resources import PostgresResource
from core.service_urls import with_database
from tests.support import dbt_marts_data as data

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

MARTS = (
    "fct_signals",
    "strategy_performance",
    "market_state_sessions",
    "watchlist_latest",
    "binary_arbitrage_episodes",
    "session_candles",
)


# the marts and the staging views they read: other marts of the project are not this test's
STAGING = (
    "stg_signals",
    "stg_strategies",
    "stg_market_state",
    "stg_profile_metrics",
    "stg_order_flow",
    "stg_session_vwap",
    "stg_footprint_imbalances",
    "stg_candles_1m",
    "stg_symbols",
    "stg_binary_opportunities",
    "stg_binary_prices",
)


def _marts(url: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [signal_marts],
        selection=dg.AssetSelection.assets(*STAGING, *MARTS),
        instance=instance,
        resources={"postgres": PostgresResource(database_url=url), "dbt": dbt_resource()},
        partition_key=data.DAY,
    )


@pytest.fixture(scope="module")
def marts_db(pg_admin_url: str, migrated_template: str) -> Iterator[tuple[str, dict]]:
    name = f"t_marts_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(migrated_template)
            )
        )
    url = with_database(pg_admin_url, name)
    data.load(url)
    instance = dg.DagsterInstance.ephemeral()
    result = _marts(url, instance)
    yield url, {"result": result, "instance": instance}
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def _dicts(url: str, query: str, *params: object) -> list[dict]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query, params).fetchall()


def test_marts_materialise_for_the_partition_and_their_checks_pass(marts_db) -> None:
    _url, state = marts_db
    result: dg.ExecuteInProcessResult = state["result"]
    assert result.success
    events = result.get_asset_materialization_events()
    done = {e.asset_key.to_user_string() for e in events}
    assert set(MARTS) <= done
    assert {e.partition for e in events} == {data.DAY}
    checks = result.get_asset_check_evaluations()
    mart_checks = {c.asset_key.to_user_string() for c in checks} & set(MARTS)
    assert mart_checks == set(MARTS)  # every mart's dbt tests ran as asset checks
    assert [c.check_name for c in checks if not c.passed] == []


def test_fct_signals_outcomes_follow_the_candles(marts_db) -> None:
    url, _ = marts_db
    rows = _dicts(url, "select * from analytics.fct_signals order by symbol, signal_ts")
    assert [(r["symbol"], r["signal_ts"]) for r in rows] == sorted(
        (s.symbol, s.ts) for s in data.SIGNALS
    )
    with psycopg.connect(url) as conn:
        ids = dict(conn.execute("select symbol, id from symbols").fetchall())
        bars = {sym: data.candles(conn, ids[sym]) for sym in ("AAPL", "ETHUSDT")}
    specs = {(s.symbol, s.ts): s for s in data.SIGNALS}
    for row in rows:
        spec = specs[(row["symbol"], row["signal_ts"])]
        want = data.expected_outcome(bars[spec.symbol], spec, row["signal_price"])
        for column, value in want.items():
            if value is None or isinstance(value, str):
                assert row[column] == value, (spec, column)
            else:
                assert row[column] == pytest.approx(value, abs=1e-9), (spec, column)
        assert row["direction"] == (1 if spec.type == "BUY" else -1)
        assert row["strategy_name"] is not None and row["aggression_score"] == 75.0
    # the data ends at midnight: the last hour's signals have no 60-minute outcome yet
    late = [r for r in rows if r["signal_ts"].hour >= 20]
    assert late and all(r["fwd_return_60m_pct"] is None for r in late)
    assert all(r["fwd_return_15m_pct"] is not None for r in rows)


def test_fct_signals_context_is_the_last_closed_minute(marts_db) -> None:
    url, _ = marts_db
    rows = _dicts(
        url,
        """
        select s.symbol, s.signal_ts, s.market_state, s.session_poc, s.session_cvd,
               (select pm.poc from profile_metrics as pm
                 where pm.symbol_id = s.symbol_id and pm.horizon = 'session'
                   and pm.bucket < date_trunc('minute', s.signal_ts)
                 order by pm.bucket desc limit 1) as poc_before,
               (select o.cvd from order_flow as o
                 where o.symbol_id = s.symbol_id and o.bucket < date_trunc('minute', s.signal_ts)
                 order by o.bucket desc limit 1) as cvd_before
        from analytics.fct_signals as s order by s.symbol, s.signal_ts
        """,
    )
    for row in rows:
        assert row["session_poc"] == row["poc_before"] is not None
        assert row["session_cvd"] == row["cvd_before"]
    aapl = {
        r["signal_ts"].strftime("%H:%M"): r["market_state"] for r in rows if r["symbol"] == "AAPL"
    }
    assert aapl == {"15:00": "IMBALANCE_UP", "16:30": "IMBALANCE_DOWN", "20:40": "BALANCE"}


def test_fct_signals_vwap_and_stacked_imbalance_context(marts_db) -> None:
    """The session VWAP of the last closed minute and the nearest stacked imbalance of the
    session before the signal's minute, recomputed from the stored tables."""
    url, _ = marts_db
    rows = _dicts(url, "select * from analytics.fct_signals order by symbol, signal_ts")
    found = 0
    with psycopg.connect(url) as conn:
        for row in rows:
            minute = row["signal_ts"].replace(second=0, microsecond=0)
            vwap = conn.execute(
                "select vwap, sd from session_vwap where symbol_id = %s and bucket < %s "
                "and session_date = %s order by bucket desc limit 1",
                (row["symbol_id"], minute, row["signal_date"]),
            ).fetchone()
            assert (row["session_vwap"], row["session_vwap_sd"]) == vwap
            price = row["signal_price"]
            assert row["vwap_distance_pct"] == pytest.approx((price - vwap[0]) / vwap[0] * 100)
            stacked = conn.execute(
                "select price::float8, side, stack_len, bucket from footprint_imbalances "
                "where symbol_id = %s and bucket < %s and bucket >= %s::date and stack_len >= 3",
                (row["symbol_id"], minute, row["signal_date"]),
            ).fetchall()
            if not stacked:
                assert row["stacked_imbalance_price"] is None
                continue
            found += 1
            best = min(stacked, key=lambda r: (abs(r[0] - price), -r[3].timestamp(), r[1]))
            got = (
                row["stacked_imbalance_price"],
                row["stacked_imbalance_side"],
                row["stacked_imbalance_rows"],
                row["stacked_imbalance_at"],
            )
            assert got == best
            assert row["stacked_imbalance_distance_pct"] == pytest.approx(
                (best[0] - price) / price * 100
            )
    assert found >= 3  # AAPL's signals each have one


def test_strategy_performance_sessions_and_all_history(marts_db) -> None:
    url, _ = marts_db
    rows = _dicts(
        url,
        "select scope, symbol, session_date::text as day, signals, evaluated_60m, "
        "stop_losses + take_profits as decided from analytics.strategy_performance "
        "order by scope, symbol",
    )
    counts = {"AAPL": 3, "ETHUSDT": 2}
    assert [(r["scope"], r["symbol"], r["day"]) for r in rows] == [
        ("all_history", "AAPL", None),
        ("all_history", "ETHUSDT", None),
        ("session", "AAPL", data.DAY),
        ("session", "ETHUSDT", data.DAY),
    ]
    for r in rows:
        assert r["signals"] == counts[r["symbol"]]
    (check,) = _dicts(
        url,
        "select count(*) filter (where fwd_return_60m_pct is not null) as evaluated "
        "from analytics.fct_signals where symbol = 'AAPL'",
    )
    assert rows[2]["evaluated_60m"] == check["evaluated"]


def test_market_state_sessions_time_in_each_state(marts_db) -> None:
    url, _ = marts_db
    rows = _dicts(
        url,
        "select state, seconds_in_state, entries, share_of_session_pct "
        "from analytics.market_state_sessions where symbol = 'AAPL'",
    )
    by_state = {r["state"]: r for r in rows}
    # UNKNOWN 14:31-14:45; BALANCE 14:45-15:00, 15:30-16:00 and 20:00 to the last minute's end
    assert by_state["UNKNOWN"]["seconds_in_state"] == 14 * 60
    assert by_state["IMBALANCE_UP"]["seconds_in_state"] == 30 * 60
    assert by_state["IMBALANCE_DOWN"]["seconds_in_state"] == 4 * 3600
    assert by_state["BALANCE"]["seconds_in_state"] == (15 + 30 + 60) * 60
    assert by_state["BALANCE"]["entries"] == 3  # 14:45, 15:30, 20:00; 15:40 is a keep-alive
    assert sum(r["share_of_session_pct"] for r in rows) == pytest.approx(100.0)


def test_watchlist_latest_has_the_latest_of_each_source(marts_db) -> None:
    url, _ = marts_db
    (aapl,) = _dicts(url, "select * from analytics.watchlist_latest where symbol = 'AAPL'")
    (last,) = _dicts(
        url,
        "select c.close, c.ts from candles_1m as c join symbols as s on s.id = c.symbol_id "
        "where s.symbol = 'AAPL' order by c.ts desc limit 1",
    )
    assert (aapl["last_price"], aapl["last_price_at"]) == (last["close"], last["ts"])
    assert aapl["market_state"] == "BALANCE"
    assert aapl["last_signal_type"] == "BUY" and aapl["last_signal_at"].hour == 20
    assert aapl["session_val"] <= aapl["session_poc"] <= aapl["session_vah"]
    assert aapl["previous_close"] is None  # nothing before the day
    (counts,) = _dicts(
        url,
        "select (select count(*) from symbols where active) as active, "
        "(select count(*) from analytics.watchlist_latest) as listed",
    )
    assert counts["listed"] == counts["active"]


def test_binary_episodes_merge_close_opportunities(marts_db) -> None:
    url, _ = marts_db
    rows = _dicts(
        url,
        "select opportunity_key, opportunities, started_at, ended_at, duration_seconds, "
        "best_edge, size_at_best_edge, exit_value from analytics.binary_arbitrage_episodes "
        "order by started_at",
    )
    assert [(r["opportunity_key"], r["opportunities"]) for r in rows] == [("m1", 2), ("m1", 1)]
    first, second = rows
    assert (first["started_at"], first["ended_at"]) == (data.at("10:00:00"), data.at("10:02:00"))
    assert first["duration_seconds"] == 120
    assert first["best_edge"] == 0.03 and first["size_at_best_edge"] == 20.0
    assert first["exit_value"] == pytest.approx(0.97)
    assert second["size_at_best_edge"] == 12.0 and second["exit_value"] == pytest.approx(0.99)


def test_session_candles_match_the_session_minutes(marts_db) -> None:
    url, _ = marts_db
    rows = _dicts(url, "select * from analytics.session_candles order by symbol")
    assert [r["symbol"] for r in rows] == ["AAPL", "ETHUSDT"]
    aapl = rows[0]
    assert aapl["is_exchange_session"]
    assert aapl["first_minute_local"].strftime("%H:%M") == "09:30"  # New York time
    assert aapl["minutes_traded"] <= 390
    (raw,) = _dicts(
        url,
        "select sum(volume) as volume, min(low) as low, max(high) as high from candles_1m "
        "where symbol_id = %s and ts >= %s and ts <= %s",
        aapl["symbol_id"],
        aapl["first_minute_at"],
        aapl["last_minute_at"],
    )
    assert aapl["volume"] == pytest.approx(raw["volume"])
    assert (aapl["low_price"], aapl["high_price"]) == (raw["low"], raw["high"])


def test_rerun_and_plain_dbt_build_leave_the_marts_as_they_were(marts_db, tmp_path) -> None:
    """The partition again through Dagster (delete window, append), then a plain `dbt build`
    without vars after the marts were damaged: both give back the same rows."""
    url, state = marts_db
    queries = {mart: f"select * from analytics.{mart} order by 1, 2, 3" for mart in MARTS}
    before = {mart: _dicts(url, q) for mart, q in queries.items()}
    assert _marts(url, state["instance"]).success
    assert {mart: _dicts(url, q) for mart, q in queries.items()} == before
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from analytics.fct_signals where symbol = 'ETHUSDT'")
        conn.execute("update analytics.session_candles set volume = 0")
        conn.execute("delete from analytics.binary_arbitrage_episodes")
    plain = subprocess.run(
        [
            DBT_EXECUTABLE,
            "build",
            "--quiet",
            "--select",
            " ".join(STAGING + MARTS),
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
        ],
        env={**os.environ, **dbt_env(url)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plain.returncode == 0, plain.stdout[-3000:]
    assert {mart: _dicts(url, q) for mart, q in queries.items()} == before


def test_a_rebuild_without_checks_runs_no_dbt_test_and_changes_no_row(marts_db) -> None:
    """What signals_schedule asks for eleven times an hour: every model, none of its checks
    (dagster-dbt then leaves the tests out of the build); the rows are those of a full one."""
    url, state = marts_db
    queries = {mart: f"select * from analytics.{mart} order by 1, 2, 3" for mart in MARTS}
    before = {mart: _dicts(url, q) for mart, q in queries.items()}
    result = dg.materialize(
        [signal_marts],
        selection=dg.AssetSelection.assets(*STAGING, *MARTS).without_checks(),
        instance=state["instance"],
        resources={"postgres": PostgresResource(database_url=url), "dbt": dbt_resource()},
        partition_key=data.DAY,
    )
    assert result.success
    assert result.get_asset_check_evaluations() == []
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert set(MARTS) <= done
    assert {mart: _dicts(url, q) for mart, q in queries.items()} == before
    # the events a rebuild leaves in the instance: a fraction of a tested one's
    full: dg.ExecuteInProcessResult = state["result"]
    assert len(result.all_events) * 2 < len(full.all_events)
