"""The dbt backtest marts over a stored run: staging views, fct_backtest_trades and
backtest_performance built with their data and unit tests, equal to the run's metrics."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from assets.dbt_marts import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_env
from backtest.fills import Costs
from backtest.portfolio import Account
from backtest.run import Request, run_backtest
from backtest.store import save_result, start_run
from bench.synthetic.history import history, session_minutes
from tests.support.backtest_seed import store

DAY = date(2026, 11, 24)
MODELS = ["stg_backtest_runs", "stg_backtest_trades", "fct_backtest_trades", "backtest_performance"]


def test_backtest_marts_match_the_run(db_url: str, tmp_path: Path) -> None:
    midnight = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = dict(conn.execute("select symbol, id from symbols").fetchall())
        for k, name in enumerate(("AAPL", "MSFT")):
            ts = session_minutes(1, midnight)
            store(conn, history(ids[name], name, ts, seed=20 + k, market="XNYS",
                                asset_type="stock", price=100.0 + 50 * k))  # fmt: skip
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds) values (%s, %s, 60)",
            ("bt dbt", json.dumps({"type": "price_above_sma", "period": 12,
                                   "symbols": ["AAPL", "MSFT"]})),
        )  # fmt: skip
        request = Request(
            "bt dbt", DAY, DAY,
            account=Account(max_positions=2, costs=Costs(commission_per_order=1.0)),
        )  # fmt: skip
        run_id = start_run(conn, request)
        result = run_backtest(conn, request)
        with conn.transaction():
            save_result(conn, run_id, result)
    assert len(result.trades) >= 4
    env = {**os.environ, **dbt_env(db_url)}
    done = subprocess.run(
        [DBT_EXECUTABLE, "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
         str(DBT_PROJECT_DIR), "--target-path", str(tmp_path / "target"), "--log-path",
         str(tmp_path / "logs"), "--select", *MODELS],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "unit_test" in done.stdout or "test_backtest_performance" in done.stdout
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "select symbol, trades, wins, total_pnl, profit_factor, max_drawdown, sharpe,"
            " stops + targets + session_closes + end_of_data"
            " from analytics.backtest_performance where run_id = %s order by symbol nulls first",
            (run_id,),
        ).fetchall()
        fct = conn.execute(
            "select count(*), sum(pnl) from analytics.fct_backtest_trades where run_id = %s",
            (run_id,),
        ).fetchone()
    m = result.metrics
    assert fct[0] == m["trades"] and fct[1] == pytest.approx(m["total_pnl"])
    run_row = rows[0]
    assert run_row[0] is None and run_row[1] == m["trades"] and run_row[2] == m["wins"]
    assert run_row[3] == pytest.approx(m["total_pnl"])
    assert run_row[4] == pytest.approx(m["profit_factor"])
    assert run_row[5] == pytest.approx(m["max_drawdown"])
    assert run_row[7] == m["trades"]
    for symbol, trades, _w, pnl, *_rest in rows[1:]:
        assert trades == result.by_symbol[symbol]["trades"]
        assert pnl == pytest.approx(result.by_symbol[symbol]["total_pnl"])
