"""Stored backtests for the read-only backtest page: the run list and one run (its metrics,
trades, daily stats and a thinned equity curve). The SQL is the storage layer's
(``storage/backtest_reads.py``); this module only binds it to the web server's database."""

from __future__ import annotations

from typing import Any

from storage.backtest_reads import backtest_run, backtest_runs
from streaming.web.queries.base import Database
from streaming.web.queries.trading import NotFound


class BacktestQueries:
    db: Database

    async def backtests(self, limit: int = 50, strategy: str | None = None) -> dict[str, Any]:
        return {"runs": await backtest_runs(self.db, limit, strategy or None)}

    async def backtest(self, run_id: int, points: int = 2000, trades: int = 2000) -> dict[str, Any]:
        run = await backtest_run(self.db, run_id, points=points, trades=trades)
        if run is None:
            raise NotFound(f"no backtest run {run_id}")
        return run
