"""Backtest results in PostgreSQL (tables of migration 0006, docs/backtests.md).

A run row is inserted as ``running`` when a backtest starts, so a crash leaves a visible
``failed``/``running`` row; ``save_result`` writes the trades, the equity minutes and the
days with COPY and marks the run ``succeeded``, all in the caller's transaction.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from backtest.run import Request, Result

INSERT_RUN = """
insert into backtest_runs (strategy_id, strategy_name, definition, parameters, symbols,
    first_day, last_day, source, partition_key)
select s.id, %(name)s, coalesce(s.definition, '{}'::jsonb), %(parameters)s, %(symbols)s,
    %(first)s, %(last)s, %(source)s, %(partition)s
from (select 1) as one left join strategies as s on s.name = %(name)s
returning id
"""
FINISH_RUN = """
update backtest_runs set status = 'succeeded', finished_at = now(), symbols = %(symbols)s,
    definition = %(definition)s, symbol_minutes = %(minutes)s, signals = %(signals)s,
    trades = %(trades)s, metrics = %(metrics)s, by_symbol = %(by_symbol)s,
    timings = %(timings)s
where id = %(id)s
"""
FAIL_RUN = """
update backtest_runs set status = 'failed', finished_at = now(), error = %s where id = %s
"""
TRADE_COLUMNS = (
    "run_id, trade_no, symbol_id, symbol, side, qty, signal_ts, signal_price, entry_ts,"
    " entry_price, stop, target, exit_ts, exit_price, exit_reason, gross_pnl, commission, pnl,"
    " mae, mfe, bars_held, market_state, aggression_score, va_position, details"
)


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _json(value: Any) -> Jsonb:
    """JSON with non-finite numbers as null (PostgreSQL's jsonb refuses NaN)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return Jsonb(clean(value))


def start_run(
    conn: psycopg.Connection,
    request: Request,
    source: str = "cli",
    partition_key: str | None = None,
) -> int:
    row = conn.execute(
        INSERT_RUN,
        {
            "name": request.strategy,
            "parameters": _json(request.parameters()),
            "symbols": list(request.symbols or []),
            "first": request.first_day,
            "last": request.last_day,
            "source": source,
            "partition": partition_key,
        },
    ).fetchone()
    assert row is not None
    return int(row[0])


def fail_run(conn: psycopg.Connection, run_id: int, error: str) -> None:
    conn.execute(FAIL_RUN, (error[:500], run_id))


def save_result(conn: psycopg.Connection, run_id: int, result: Result) -> None:
    with conn.cursor() as cur:
        with cur.copy(f"copy backtest_trades ({TRADE_COLUMNS}) from stdin") as copy:
            for n, tr in enumerate(result.trades, start=1):
                s, f = tr.signal, tr.fill
                copy.write_row(
                    (
                        run_id, n, s.symbol_id, s.symbol, tr.side.value, f.qty, _ts(s.ts),
                        s.price, _ts(f.entry_ts), f.entry_price, tr.stop, tr.target,
                        _ts(f.exit.ts), f.exit_price, f.exit.reason, f.gross, f.commission,
                        f.pnl, f.mae, f.mfe, f.bars_held, s.market_state,
                        s.aggression if math.isfinite(s.aggression) else None,
                        s.va_position, json.dumps(_json(dict(s.details)).obj),
                    )
                )  # fmt: skip
        curve = result.curve
        peak = np.maximum.accumulate(curve.equity) if len(curve.equity) else curve.equity
        with cur.copy(
            "copy backtest_equity (run_id, ts, equity, drawdown, open_positions) from stdin"
        ) as copy:
            for ts, eq, dd, held in zip(
                curve.ts.tolist(),
                curve.equity.tolist(),
                (peak - curve.equity).tolist(),
                curve.open_positions.tolist(),
                strict=True,
            ):
                copy.write_row((run_id, _ts(ts), eq, dd, held))
        d = result.daily
        with cur.copy(
            "copy backtest_daily (run_id, day, start_equity, end_equity, pnl, return_pct,"
            " trades, wins) from stdin"
        ) as copy:
            for k in range(len(d.day)):
                copy.write_row(
                    (
                        run_id, _ts(float(d.day[k])).date(), float(d.start_equity[k]),
                        float(d.end_equity[k]), float(d.pnl[k]), float(d.returns[k]) * 100.0,
                        int(d.trades[k]), int(d.wins[k]),
                    )
                )  # fmt: skip
        cur.execute(
            FINISH_RUN,
            {
                "id": run_id,
                "symbols": result.symbols,
                "definition": _json(dict(result.strategy.definition)),
                "minutes": result.symbol_minutes,
                "signals": len(result.signals),
                "trades": len(result.trades),
                "metrics": _json(result.metrics),
                "by_symbol": _json(result.by_symbol),
                "timings": _json(result.seconds),
            },
        )


def delete_runs(conn: psycopg.Connection, strategy: str, partition_key: str) -> int:
    """Drop the runs an earlier materialisation of the same partition(s) wrote."""
    cur = conn.execute(
        "delete from backtest_runs where strategy_name = %s and partition_key = %s",
        (strategy, partition_key),
    )
    return cur.rowcount
