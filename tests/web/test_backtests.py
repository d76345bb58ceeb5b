"""The dashboard's read-only backtest endpoints on real PostgreSQL, over a run stored by the
backtest's own store: the run list with headline metrics, one run with its metrics per run
and per symbol, trades, days and a thinned equity curve, 404 for a missing run, the routes
in /openapi.json, and no way to write through them."""

from __future__ import annotations

import httpx
import pytest

from backtest.run import Result
from tests.support.backtest_seed import (
    FIRST_DAY,
    LAST_DAY,
    STRATEGY,
    SYMBOLS,
    seed_backtest,
    start_unfinished,
)
from tests.support.web_served import serve


@pytest.fixture
def stored(db_url: str) -> tuple[int, Result]:
    return seed_backtest(db_url)


def get(base: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{base}{path}", params=params, timeout=10)


def test_run_list_and_one_run(redis_url: str, db_url: str, stored: tuple[int, Result]) -> None:
    run_id, result = stored
    with serve(redis_url, db_url) as web:
        runs = get(web.base, "/api/backtests").json()["runs"]
        later = start_unfinished(db_url)
        both = get(web.base, "/api/backtests").json()["runs"]
        newest = get(web.base, "/api/backtests", limit=1).json()["runs"]
        unfinished = get(web.base, f"/api/backtests/{later}").json()
        other = get(web.base, "/api/backtests", strategy="no such strategy").json()["runs"]
        run = get(web.base, f"/api/backtests/{run_id}", points=50).json()
        few = get(web.base, f"/api/backtests/{run_id}", trades=2).json()
        missing = get(web.base, f"/api/backtests/{later + 1}")
        bad = get(web.base, "/api/backtests/abc")
    assert other == []
    assert [r["run_id"] for r in runs] == [run_id]
    assert [r["run_id"] for r in both] == [later, run_id]  # newest first
    assert [r["run_id"] for r in newest] == [later]
    assert both[0]["status"] == "running" and both[0]["total_pnl"] is None
    assert unfinished["metrics"] is None and unfinished["trades_list"] == []
    assert unfinished["equity"] == [] and unfinished["source"] == "dagster"
    head = runs[0]
    metrics = result.metrics
    assert head["strategy_name"] == STRATEGY and head["status"] == "succeeded"
    assert head["first_day"] == FIRST_DAY.isoformat() and head["last_day"] == LAST_DAY.isoformat()
    assert sorted(head["symbols"]) == sorted(SYMBOLS)
    assert head["trades"] == len(result.trades) >= 3
    for key in ("total_pnl", "win_rate", "max_drawdown_pct", "sharpe", "profit_factor"):
        expected = metrics[key]
        assert head[key] == (None if expected is None else pytest.approx(expected)), key

    assert run["run_id"] == run_id and run["metrics"]["trades"] == len(result.trades)
    assert run["metrics"]["exit_reasons"] == metrics["exit_reasons"]
    assert set(run["by_symbol"]) == set(result.by_symbol)
    trades = run["trades_list"]
    assert [t["trade_no"] for t in trades] == list(range(1, len(result.trades) + 1))
    assert sum(t["pnl"] for t in trades) == pytest.approx(metrics["total_pnl"])
    first = trades[0]
    assert {"entry_ts", "entry_price", "exit_ts", "exit_price", "side", "qty", "mae", "mfe"} <= set(
        first
    )
    assert first["side"] in ("buy", "sell") and first["entry_ts"].endswith("+00:00")
    assert [d["day"] for d in run["daily"]] == [FIRST_DAY.isoformat(), LAST_DAY.isoformat()]
    equity = run["equity"]
    assert 40 <= len(equity) <= 52  # 2 × 1440 minutes thinned to about 50, both ends kept
    assert equity[-1]["equity"] == pytest.approx(float(result.curve.equity[-1]))
    assert all(p["drawdown"] >= 0 for p in equity)
    assert [p["ts"] for p in equity] == sorted(p["ts"] for p in equity)

    assert len(few["trades_list"]) == 2
    assert missing.status_code == 404 and f"no backtest run {later + 1}" in missing.json()["error"]
    assert bad.status_code == 404  # the path takes integers only


def test_documented_and_read_only(redis_url: str, db_url: str, stored: tuple[int, Result]) -> None:
    run_id, _ = stored
    with serve(redis_url, db_url) as web:
        spec = get(web.base, "/openapi.json").json()["paths"]
        docs = get(web.base, "/docs").text
        page = get(web.base, "/backtests")
        writes = [
            httpx.request(method, f"{web.base}{path}", json={}, timeout=10).status_code
            for method in ("POST", "PUT", "PATCH", "DELETE")
            for path in ("/api/backtests", f"/api/backtests/{run_id}")
        ]
        still = get(web.base, "/api/backtests").json()["runs"]
    assert set(spec["/api/backtests"]) == {"get"}
    assert set(spec["/api/backtests/{run_id}"]) == {"get"}
    assert "run_id" in [p["name"] for p in spec["/api/backtests/{run_id}"]["get"]["parameters"]]
    assert "/api/backtests/{run_id}" in docs
    assert page.status_code == 200 and 'data-page="backtests"' in page.text
    assert set(writes) == {405}
    assert [r["run_id"] for r in still] == [run_id]


def test_a_crypto_trades_fractional_quantity_is_served(
    redis_url: str, db_url: str, stored: tuple[int, Result]
) -> None:
    """A pair's backtest holds fractions (0.25 BTC): the trade model must not insist on
    whole shares."""
    import psycopg

    run_id, _ = stored
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "update backtest_trades set qty = 0.25 where run_id = %s and trade_no = 1", (run_id,)
        )
    with serve(redis_url, db_url) as web:
        run = get(web.base, f"/api/backtests/{run_id}")
    assert run.status_code == 200
    assert run.json()["trades_list"][0]["qty"] == 0.25
