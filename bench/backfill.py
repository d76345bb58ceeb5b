"""History backfill: trades stored per second from a local server speaking Alpaca's paged
trades API, against binary COPY of the same rows; and fetch → profile of a whole day.

1. Throughput: a server process (so it does not share this process's interpreter) serves a
   large day of one stock as Alpaca would, in 10 000-trade pages; ``DayBackfill`` (the code
   path of the ``tick_history`` asset and ``marketflow backfill``) fetches, parses,
   validates and stores it into ``ticks``. Beside it, the same rows, already converted to
   COPY tuples, binary-COPYed in the same 10 000-row batches into a plain table with the
   same columns and key. Target: >= 0.50 of COPY.
2. Fetch → profile: the same day through Dagster, ``tick_history`` then ``candles_1m`` and
   the profile assets in one run, wall time (reported beside the fetch alone).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

from pydantic import SecretStr

from bench import BenchContext, Comparison
from bench.synthetic.alpaca_pages import BENCH_DAY, SESSION, DayTrades, make_day
from bench.synthetic.alpaca_server import KEY, SECRET
from bench.tick_writer import copy_batches
from storage.db import connect
from storage.text_array_copy import register_text_array_copy
from streaming.history.backfill import DayBackfill, _tick_rows
from streaming.history.symbols import resolve_symbols
from streaming.ingest.rows import to_writer_rows
from streaming.ingest.timestamptz_copy import register_timestamptz_copy
from streaming.venues.alpaca.rest import AlpacaRestClient

DESCRIPTION = "history backfill from a local Alpaca REST server vs raw COPY; fetch → profile"
RAW_TABLE = "bench_backfill_raw"
SYMBOL = "AAPL"
PAGE = 10_000


class _Server:
    """The page server in a process of its own while a ``with`` block runs."""

    def __init__(self, n: int) -> None:
        self._args = [sys.executable, "-m", "bench.synthetic.alpaca_server", "--trades", str(n),
                      "--symbol", SYMBOL, "--page", str(PAGE)]  # fmt: skip
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        self._process = subprocess.Popen(
            self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        assert self._process.stdout is not None
        port = self._process.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError("the local Alpaca server did not start")
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        assert self._process.stdin is not None
        self._process.stdin.close()  # the server stops when its input closes
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait(timeout=5)


def _reset(url: str) -> None:
    with connect(url, autocommit=True) as conn:
        conn.execute("truncate ticks, tick_history_progress")
        conn.execute("checkpoint")  # both measurements start with clean buffers to flush


def _backfill(url: str, data_url: str, day: date) -> tuple[float, int]:
    """The history path end to end: seconds and rows stored."""
    with contextlib.ExitStack() as stack:
        conn, *writers = (stack.enter_context(connect(url, autocommit=True)) for _ in range(3))
        resolved = resolve_symbols(conn, [SYMBOL], "sip")
        client = AlpacaRestClient(SecretStr(KEY), SecretStr(SECRET), data_url=data_url)
        try:
            loader = DayBackfill(conn, writers, client, threading.Event(), feed="sip")
            t0 = time.perf_counter()
            report = loader.run(day, resolved.symbols)
            return time.perf_counter() - t0, report.stored
        finally:
            client.close()


def _same_rows(url: str, day: DayTrades) -> list[list[tuple]]:
    """The rows the backfill stores, built straight from the generator, in page batches."""
    import numpy as np

    from bench.synthetic.alpaca_pages import CONDITIONS
    from streaming.venues.alpaca.trade_pages import SymbolTrades

    with connect(url, autocommit=True) as conn:
        row = conn.execute("select id from symbols where symbol = %s", (SYMBOL,)).fetchone()
    assert row is not None
    conditions = np.empty(len(day), dtype=object)
    conditions[:] = [CONDITIONS[k] for k in day.condition.tolist()]
    trades = SymbolTrades(
        SYMBOL, day.ts_ns, day.price, day.size, day.trade_ids(), day.exchange, conditions,
        np.zeros(len(day), np.int8),
    )  # fmt: skip
    tuples, _ = to_writer_rows(_tick_rows(trades, int(row[0]), "sip"))
    return [tuples[i : i + PAGE] for i in range(0, len(tuples), PAGE)]


def _raw_copy(url: str, batches: list[list[tuple]]) -> float:
    with connect(url, autocommit=True) as conn:
        register_timestamptz_copy(conn)  # the tuples carry int µs times (to_writer_rows)
        register_text_array_copy(conn)  # and the same conditions encoding as its writer's
        conn.execute(f"drop table if exists {RAW_TABLE}")
        conn.execute(f"create table {RAW_TABLE} (like ticks including defaults)")
        conn.execute(f"alter table {RAW_TABLE} add primary key (symbol_id, ts, trade_id)")
        elapsed = copy_batches(conn, RAW_TABLE, batches)
        conn.execute(f"drop table {RAW_TABLE}")
    return elapsed


def _fetch_to_profile(url: str, data_url: str) -> float:
    """Seconds for one Dagster run: tick_history, candles_1m and the profiles of the day."""
    import logging
    import warnings

    import dagster as dg

    from assets.market_data import candles_1m
    from assets.profiles import session_profiles
    from assets.resources import AlpacaResource, PostgresResource
    from assets.tick_history import HistoryProgress, tick_history

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the temporary instance's set-up
    t0 = time.perf_counter()
    result = dg.materialize(
        [tick_history, candles_1m, session_profiles],
        partition_key=BENCH_DAY.date().isoformat(),
        run_config={
            "ops": {"tick_history": {"config": {"symbols": [SYMBOL], "feed": "sip"}}},
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        },
        resources={
            "postgres": PostgresResource(database_url=url),
            "alpaca": AlpacaResource(data_url=data_url, api_key=KEY, secret_key=SECRET),
            "history_progress": HistoryProgress(),
        },
    )
    elapsed = time.perf_counter() - t0
    if not result.success:
        raise RuntimeError("fetch → profile run failed")
    return elapsed


def run(ctx: BenchContext) -> list[Comparison]:
    n = 20_000 if ctx.quick else 1_000_000
    rounds = 1 if ctx.quick else 2  # alternate and keep the best of each: a shared machine
    day = make_day(SYMBOL, n, *SESSION)
    best_fill = best_raw = float("inf")
    with _Server(n) as data_url:
        for _ in range(rounds):
            _reset(ctx.database_url)
            elapsed, stored = _backfill(ctx.database_url, data_url, BENCH_DAY.date())
            if stored != n:
                raise RuntimeError(f"the backfill stored {stored} of {n} trades")
            best_fill = min(best_fill, elapsed)
            best_raw = min(best_raw, _raw_copy(ctx.database_url, _same_rows(ctx.database_url, day)))
        _reset(ctx.database_url)
        profiled = _fetch_to_profile(ctx.database_url, data_url)
    return [
        Comparison(
            name="history backfill REST→ticks",
            unit="trades/s",
            value=n / best_fill,
            reference_name="raw binary COPY",
            reference_value=n / best_raw,
            target=">= 0.50 of COPY",
            notes={"trades": n, "page": PAGE},
        ),
        Comparison(
            name="fetch→profile, one day (Dagster)",
            unit="s",
            value=profiled,
            reference_name="fetch→store alone",
            reference_value=best_fill,
            higher_is_better=False,
            target="(reported: a day of history ready for the engine)",
            notes={"trades": n},
        ),
    ]
