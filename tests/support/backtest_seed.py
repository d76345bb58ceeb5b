"""A stored backtest for the dashboard's tests: two sessions of synthetic history for AAPL
and MSFT (stored as the ingest writer and the profile assets store it), one strategy, and
one run of the backtest over them saved by the backtest's own store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import psycopg

from backtest.run import Request, Result, run_backtest
from backtest.store import save_result, start_run
from bench.synthetic.history import SymbolHistory, history, session_minutes
from core.settings import Settings
from streaming.engine.loop import Engine

FIRST_DAY = date(2026, 11, 24)  # a Tuesday and a Wednesday: two New York sessions
LAST_DAY = date(2026, 11, 25)
DAY = date(2026, 11, 23)  # a Monday: XNYS opens 14:30 UTC (the parity test's day)
STRATEGY = "bt web sma"
SYMBOLS = ("AAPL", "MSFT")


def seed_backtest(db_url: str) -> tuple[int, Result]:
    """Store the history, the strategy and one finished run; returns (run id, result)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        start = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
        for n, symbol in enumerate(SYMBOLS):
            row = conn.execute("select id from symbols where symbol = %s", (symbol,)).fetchone()
            assert row is not None, f"{symbol} is not among the migrated symbols"
            ts = session_minutes(2, start)
            h = history(row[0], symbol, ts, seed=5 + n, market="XNYS", asset_type="stock")
            store(conn, h)
        definition = {"type": "price_above_sma", "period": 15, "symbols": list(SYMBOLS)}
        conn.execute(
            "insert into strategies (name, definition) values (%s, %s)",
            (STRATEGY, json.dumps(definition)),
        )
        request = Request(STRATEGY, FIRST_DAY, LAST_DAY)
        run_id = start_run(conn, request)
        result = run_backtest(conn, request)
        with conn.transaction():
            save_result(conn, run_id, result)
    return run_id, result


def start_unfinished(db_url: str) -> int:
    """A second run of the same strategy that has only started (no metrics, no trades)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        return start_run(conn, Request(STRATEGY, LAST_DAY, LAST_DAY, symbols=("AAPL",)), "dagster")


def store(conn: psycopg.Connection, h: SymbolHistory) -> None:
    """The history as the ingest writer and the profile assets store it."""
    ts = [datetime.fromtimestamp(t, UTC) for t in h.ts.tolist()]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into candles_1m (symbol_id, ts, open, high, low, close, volume, trade_count,"
            " vwap) values (%s, %s, %s, %s, %s, %s, %s, 10, %s)",
            [
                (h.symbol_id, t, *v)
                for t, *v in zip(ts, h.open, h.high, h.low, h.close, h.volume, h.vwap, strict=True)
            ],
        )
        for horizon, lv in (("session", h.session), ("composite", h.composite)):
            cur.executemany(
                "insert into profile_metrics (symbol_id, horizon, bucket, session_date, poc, vah,"
                " val, total_volume, lvns, hvns) values (%s, %s, %s, %s, %s, %s, %s, 1e5, '[]',"
                " '[]')",
                [
                    (h.symbol_id, horizon, t, DAY, float(p), float(a), float(b))
                    for t, p, a, b in zip(ts, lv.poc, lv.vah, lv.val, strict=True)
                ],
            )
        cur.executemany(
            "insert into order_flow (symbol_id, bucket, cvd, cvd_total, buy_pressure,"
            " sell_pressure) values (%s, %s, %s, %s, %s, %s)",
            [
                (h.symbol_id, t, float(c), float(c), float(b), float(s))
                for t, c, b, s in zip(ts, h.cvd, h.buy_pressure, h.sell_pressure, strict=True)
            ],
        )


def engine_signals(db_url: str, redis_url: str, instants: list[float]) -> list[tuple]:
    """(time, strategy, symbol, type, details) of every signal the engine sends when
    ticked at ``instants`` (epoch s) on a simulated clock."""

    async def go() -> list[tuple]:
        engine = Engine(Settings(_env_file=None), db_url, redis_url)  # type: ignore[call-arg]
        out = []
        try:
            for t in instants:
                report = await engine.tick(datetime.fromtimestamp(t, UTC))
                assert report.ok, report.error
                out += [
                    (m["time"], m["strategy"], m["symbol"], m["type"], m["details"])
                    for m in report.signals
                ]
        finally:
            await engine.close()
        return out

    return asyncio.run(go())


def backtest_signals(db_url: str, strategies: list[str], day: date, until: float) -> list[tuple]:
    """The same tuples from a backtest of each strategy over ``day``, up to ``until``."""
    out = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        for name in strategies:
            result = run_backtest(conn, Request(name, day, day))
            out += [
                (datetime.fromtimestamp(s.ts, UTC).isoformat(), name, s.symbol, s.type, s.details)
                for s in result.signals
                if s.ts <= until
            ]
    return out


def by_time(rows: list[tuple]) -> list[tuple]:
    """Signal tuples in (time, strategy, symbol) order, as both sides are compared."""
    return sorted(rows, key=lambda row: (row[0], row[1], row[2]))
