"""The backtest multi-asset for a daily partition on a real PostgreSQL: the run, its trades,
equity minutes and days stored, equal to the pure run, replaced on re-materialisation."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, date, datetime

import dagster as dg
import numpy as np
import psycopg
import pytest

from assets.backtest import BacktestConfig, backtest_assets, request_of
from assets.partitions import daily_partitions
from assets.resources import PostgresResource
from backtest.run import run_backtest
from bench.synthetic.history import history as synthetic_history
from bench.synthetic.history import session_minutes
from tests.support.backtest_seed import store

DAY = date(2026, 11, 24)  # a Tuesday
CONFIG = {"strategy": "bt asset sma", "slippage_bps": 2.0, "commission_per_order": 1.0}


@pytest.fixture
def seeded(db_url: str) -> str:
    midnight = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
    ts = session_minutes(2, midnight)  # Tuesday and Wednesday
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        store(conn, synthetic_history(aapl, "AAPL", ts, seed=5, market="XNYS", asset_type="stock"))
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds) values (%s, %s, 60)",
            (CONFIG["strategy"], json.dumps({"type": "price_above_sma", "period": 15,
                                              "symbol": "AAPL"})),
        )  # fmt: skip
    return db_url


def materialize(url: str, **kwargs: object) -> dg.ExecuteInProcessResult:
    if "tags" not in kwargs:
        kwargs["partition_key"] = DAY.isoformat()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = dg.materialize(
            [backtest_assets(daily_partitions)],
            **kwargs,  # type: ignore[arg-type]
            run_config={"ops": {"backtest": {"config": CONFIG}}},
            resources={"postgres": PostgresResource(database_url=url)},
            instance=dg.DagsterInstance.ephemeral(),
        )
    assert result.success
    return result


def test_partition_materialises_one_stored_run_equal_to_the_pure_run(seeded: str) -> None:
    result = materialize(seeded)
    meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.get_asset_materialization_events()
        for m in [m.event_specific_data.materialization]  # type: ignore[union-attr]
    }
    assert set(meta) == {"backtest_runs", "backtest_trades", "backtest_equity", "backtest_daily"}
    with psycopg.connect(seeded) as conn:
        runs = conn.execute(
            "select id, status, source, partition_key, first_day, last_day, symbols, trades,"
            " metrics from backtest_runs"
        ).fetchall()
        assert len(runs) == 1
        run_id, status, source, key, first, last, symbols, trades, metrics = runs[0]
        assert (status, source, key, first, last) == (
            "succeeded",
            "dagster",
            "2026-11-24",
            DAY,
            DAY,
        )
        assert symbols == ["AAPL"] and trades >= 3
        stored = conn.execute(
            "select side, qty, entry_price, exit_price, exit_reason, pnl, market_state"
            " from backtest_trades where run_id = %s order by trade_no",
            (run_id,),
        ).fetchall()
        pure = run_backtest(conn, request_of(BacktestConfig(**CONFIG), DAY, DAY))
        minutes = conn.execute(
            "select count(*), min(ts), max(equity - drawdown) from backtest_equity"
            " where run_id = %s",
            (run_id,),
        ).fetchone()
        daily = conn.execute(
            "select day, trades, end_equity from backtest_daily where run_id = %s", (run_id,)
        ).fetchall()
    assert len(stored) == len(pure.trades) == trades
    for row, tr in zip(stored, pure.trades, strict=True):
        assert row[0] == tr.side.value and row[1] == tr.fill.qty
        assert row[2:6] == pytest.approx(
            (tr.fill.entry_price, tr.fill.exit_price, tr.fill.exit.reason, tr.fill.pnl)
        )
    assert metrics["total_pnl"] == pytest.approx(sum(tr.fill.pnl for tr in pure.trades))
    assert minutes[0] >= 1440 and minutes[1] == datetime(2026, 11, 24, tzinfo=UTC)
    assert daily[0][0] == DAY and sum(d[1] for d in daily) == trades
    assert daily[-1][2] == pytest.approx(100_000 + metrics["total_pnl"])
    assert int(meta["backtest_trades"]["rows"].value) == trades

    materialize(seeded)  # the same partition and strategy again: replaces, never piles up
    with psycopg.connect(seeded) as conn:
        assert conn.execute("select count(*) from backtest_runs").fetchone()[0] == 1
        assert conn.execute("select count(*) from backtest_trades").fetchone()[0] == trades


def test_the_asset_is_backfilled_as_one_run() -> None:
    asset = backtest_assets(daily_partitions)
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    assert asset.partitions_def == daily_partitions
    deps = {k.to_user_string() for k in asset.asset_deps[dg.AssetKey("backtest_trades")]}
    assert deps == {"candles_1m", "profile_metrics", "order_flow"}
    assert np.isin(["backtest_runs"], [k.to_user_string() for k in asset.keys]).all()


def test_a_backfill_range_is_one_backtest_over_the_range(seeded: str) -> None:
    materialize(seeded)  # the first day alone
    materialize(
        seeded,
        tags={
            "dagster/asset_partition_range_start": "2026-11-24",
            "dagster/asset_partition_range_end": "2026-11-25",
        },
    )
    with psycopg.connect(seeded) as conn:
        runs = conn.execute(
            "select partition_key, first_day, last_day, trades from backtest_runs order by id"
        ).fetchall()
        days = conn.execute(
            "select d.day, d.trades from backtest_daily d join backtest_runs r on r.id = d.run_id"
            " where r.partition_key like '%..%' order by d.day"
        ).fetchall()
    (one, first, last, _), (both, first2, last2, trades) = runs
    assert (one, first, last) == ("2026-11-24", DAY, DAY)
    assert (both, first2, last2) == ("2026-11-24..2026-11-25", DAY, date(2026, 11, 25))
    assert [d for d, _ in days] == [DAY, date(2026, 11, 25)]
    assert all(n > 0 for _, n in days) and sum(n for _, n in days) == trades
