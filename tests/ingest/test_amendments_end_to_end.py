"""A correction and cancels change the stored tape to exactly what a replay of the corrected
tape gives: ticks, candles, and, through the tick sensor's late-data path, the session's
volume profile, metrics and order flow.

Both databases are fed by the real Alpaca stream client through the real ingest pipeline
from the local server speaking Alpaca's msgpack protocol (the correction and cancel shaped
like the captures in tests/data/alpaca/stock_corrections_frames.json). Database A streams
the original tape, is profiled by the sensor's run, then receives the correction and the
cancels in a later session and is profiled again by the sensor's incremental run; database
B streams the corrected tape and is profiled in full once.
"""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from analytics.sessions import session_bounds
from core.settings import Settings
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.venues.alpaca.data import AlpacaStreamProvider
from tests.conftest import create_database, drop_database, with_database
from tests.dagster.test_profiles_incremental import (
    DAY,
    assert_same_tables,
    full_recompute,
    sensor_runs,
    stored,
)
from tests.support.fake_alpaca import FakeAlpaca, Print, settings_for, tape_from_capture
from tests.support.loop_thread import serving

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
pytestmark = pytest.mark.timeout(180)

TICK_COLUMNS = "ts, trade_id, price, size, exchange, conditions, side, bid, ask"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAlpaca]:
    with serving(FakeAlpaca()) as (fake,):
        yield fake


@pytest.fixture
def corrected_db(pg_admin_url: str, migrated_template: str) -> Iterator[str]:
    """A second migrated database: where the corrected tape is replayed."""
    name = create_database(pg_admin_url, template=migrated_template)
    yield with_database(pg_admin_url, name)
    drop_database(pg_admin_url, name)


def the_tape(capture: dict[str, Any]) -> list[Print]:
    """30 minutes of AAPL prints, 6 s apart, inside DAY's session, plus a lone print in
    minute 40 (its cancel must leave that minute without a candle)."""
    open_, _close = session_bounds("XNYS", DAY)
    start = open_.to_pydatetime() + timedelta(minutes=5)
    tape = tape_from_capture(capture, 300, start=start)
    tape = [replace(p, ts=start + timedelta(seconds=6 * k)) for k, p in enumerate(tape)]
    lone = replace(tape[-1], trade_id=tape[-1].trade_id + 1, ts=start + timedelta(minutes=40))
    return [*tape, lone]


async def ingest(db_url: str, spool: Path, settings: Settings, done: Any) -> IngestPipeline:
    """The real pipeline on a fresh Alpaca provider until ``done(pipe)``; then stopped."""
    provider = AlpacaStreamProvider(settings, ["AAPL"])
    config = PipelineConfig(source="alpaca_ws", spool_dir=spool, flush_ms=50, max_age_s=1e10)
    pipe = IngestPipeline(db_url, None, config)
    task = asyncio.create_task(pipe.run(provider))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not done(pipe) and loop.time() < deadline and not task.done():
        await asyncio.sleep(0.05)
    provider.stop()
    await asyncio.wait_for(task, 20)
    return pipe


def ticks(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(f"select {TICK_COLUMNS} from ticks order by ts, seq").fetchall()


def candles(db_url: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select symbol_id, ts, open, high, low, close, trade_count, first_ts, last_ts,"
            " volume, vwap from candles_1m order by symbol_id, ts"
        ).fetchall()


def assert_same_candles(left: list[tuple], right: list[tuple]) -> None:
    """Prices, counts and times exactly; volume and VWAP as sums in another order (a
    rebuilt minute sums in SQL, a streamed one in the candle builder)."""
    assert [r[:9] for r in left] == [r[:9] for r in right]
    for a, b in zip(left, right, strict=True):
        for x, y in zip(a[9:], b[9:], strict=True):
            assert math.isclose(x, y, rel_tol=1e-12), (a, b)


def test_correction_and_cancels_equal_a_replay_of_the_corrected_tape(
    server: FakeAlpaca, captures: Path, db_url: str, corrected_db: str, tmp_path: Path
) -> None:
    server.reset()
    capture = json.loads((captures / "alpaca" / "stream_session_frames.json").read_text())
    frames = json.loads((captures / "alpaca" / "stock_corrections_frames.json").read_text())
    tape = the_tape(capture)
    wrong, gone, lone = tape[100], tape[200], tape[-1]
    right = replace(wrong, trade_id=wrong.trade_id + 10_000, price=wrong.price + 0.37, size=7.0)
    corrected = [right if p is wrong else p for p in tape if p not in (gone, lone)]
    settings = settings_for(server)

    # A: the tape as first reported, profiled by the sensor's run
    server.tape = tape
    server.sessions = [[("trades", 0, len(tape), 25)]]
    asyncio.run(ingest(db_url, tmp_path / "a", settings, lambda p: p.counters.stored >= 301))
    instance = dg.DagsterInstance.ephemeral()
    cursor, _ = sensor_runs(db_url, instance, None)
    # ... then the venue corrects one print and cancels two, in a later session
    amendments = [
        wrong.correction(right, frames["correction"]),
        gone.cancel(frames["cancel"]),
        lone.cancel(frames["cancel"], action="E"),
    ]
    server.sessions = [[("frame", amendments)]]
    pipe = asyncio.run(
        ingest(db_url, tmp_path / "a", settings, lambda p: sum(p.amendments.counts.values()) >= 3)
    )
    assert pipe.amendments.counts == {"applied": 3, "unmatched": 0, "duplicate": 0}
    cursor, runs = sensor_runs(db_url, instance, cursor)
    assert [m["incremental"].value for m in runs] == [True]
    assert runs[0]["symbols_resumed"].value == 1  # resumed at the first amended minute

    # B: the corrected tape, streamed and profiled in full
    server.tape = corrected
    server.sessions = [[("trades", 0, len(corrected), 25)]]
    asyncio.run(ingest(corrected_db, tmp_path / "b", settings, lambda p: p.counters.stored >= 299))

    assert ticks(db_url) == ticks(corrected_db)
    assert len(ticks(db_url)) == 299
    assert_same_candles(candles(db_url), candles(corrected_db))
    assert_same_tables(stored(db_url), full_recompute(corrected_db))
    with psycopg.connect(db_url) as conn:
        lone_minute = lone.ts.replace(second=0, microsecond=0)
        assert (
            conn.execute("select 1 from candles_1m where ts = %s", (lone_minute,)).fetchone()
            is None
        )
        recorded = conn.execute(
            "select kind, trade_id, corrected_trade_id, outcome, tick_price, tick_size"
            " from tick_corrections order by id"
        ).fetchall()
    assert recorded == [
        (
            "correction",
            f"D-{wrong.trade_id}",
            f"D-{right.trade_id}",
            "applied",
            wrong.price,
            wrong.size,
        ),
        ("cancel", f"D-{gone.trade_id}", None, "applied", gone.price, gone.size),
        ("error", f"D-{lone.trade_id}", None, "applied", lone.price, lone.size),
    ]
