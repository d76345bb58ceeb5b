"""The dashboard's read-only JSON views of stored backtests, through its own database
helper: the run list, one run with trades, daily stats and a thinned equity curve."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import psycopg

from backtest.run import Request, run_backtest
from backtest.store import save_result, start_run
from bench.synthetic.history import history, session_minutes
from storage.backtest_reads import backtest_run, backtest_runs
from streaming.web.queries.base import Database
from tests.support.backtest_seed import store

DAY = date(2026, 11, 24)


def test_runs_and_one_run_as_json(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        ts = session_minutes(1, datetime(2026, 11, 24, tzinfo=UTC).timestamp())
        store(conn, history(aapl, "AAPL", ts, seed=5, market="XNYS", asset_type="stock"))
        conn.execute(
            "insert into strategies (name, definition) values ('bt reads', %s)",
            (json.dumps({"type": "price_above_sma", "period": 15, "symbol": "AAPL"}),),
        )
        request = Request("bt reads", DAY, DAY)
        run_id = start_run(conn, request)
        result = run_backtest(conn, request)
        with conn.transaction():
            save_result(conn, run_id, result)

    async def go():
        db = Database(db_url)
        try:
            return (
                await backtest_runs(db),
                await backtest_runs(db, strategy="nope"),
                await backtest_run(db, run_id, points=100),
                await backtest_run(db, run_id + 1),
            )
        finally:
            await db.close()

    runs, none, run, missing = asyncio.run(go())
    assert none == [] and missing is None
    assert [r["run_id"] for r in runs] == [run_id]
    assert runs[0]["trades"] == len(result.trades) >= 3
    assert runs[0]["total_pnl"] == result.metrics["total_pnl"]
    assert run["metrics"]["trades"] == len(result.trades)
    assert [t["trade_no"] for t in run["trades_list"]] == list(range(1, len(result.trades) + 1))
    assert run["trades_list"][0]["entry_ts"].endswith("+00:00")  # JSON-ready ISO times
    equity = run["equity"]
    assert 90 <= len(equity) <= 102  # 1440 minutes thinned to at most ~100 points, ends kept
    assert equity[0]["ts"] == "2026-11-24T00:00:00+00:00"
    assert equity[-1]["equity"] == result.curve.equity[-1]
    assert [d["day"] for d in run["daily"]] == ["2026-11-24"]
    json.dumps(run)  # everything serialisable as is
