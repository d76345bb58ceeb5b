"""Provider clients end to end: local protocol servers → provider → ingest pipeline → real
PostgreSQL. Every print stored exactly once across a reconnect; IG quote ticks and Alpha
Vantage bars land where the dashboard reads them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.settings import Settings
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.base import Provider
from streaming.venues.alpaca.data import AlpacaStreamProvider
from streaming.venues.ig.data import IgProvider
from tests.support.fake_alpaca import FakeAlpaca, tape_from_capture
from tests.support.fake_ig import FakeIg, market
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(90)
VOD = "IX.D.VOD.DAILY.IP"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeAlpaca, FakeIg]]:
    with serving(FakeAlpaca(), FakeIg()) as (alpaca, ig):
        yield alpaca, ig


async def ingest_until(
    db_url: str, tmp_path: Path, provider: Provider, done: Any, timeout: float = 20.0
) -> IngestPipeline:
    """Run the real pipeline on ``provider`` until ``done(pipe)``, then stop and flush."""
    pipe = IngestPipeline(
        db_url, None, PipelineConfig(source="test", spool_dir=tmp_path / "spool", flush_ms=50)
    )
    task = asyncio.create_task(pipe.run(provider))
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(pipe) and asyncio.get_running_loop().time() < deadline and not task.done():
        await asyncio.sleep(0.05)
    provider.stop()
    await asyncio.wait_for(task, 15)
    with contextlib.suppress(Exception):
        await pipe.shutdown()
    return pipe


def stored(db_url: str, symbol: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "select trade_id, ts, price, size, bid, ask, conditions from ticks t"
            " join symbols s on s.id = t.symbol_id where s.symbol = %s order by ts",
            (symbol,),
        ).fetchall()


def test_alpaca_reconnect_stores_every_print_once(
    servers: tuple[FakeAlpaca, FakeIg], captures: Path, db_url: str, tmp_path: Path
) -> None:
    alpaca, _ = servers
    alpaca.reset()
    capture = json.loads((captures / "alpaca" / "stream_session_frames.json").read_text())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    alpaca.tape = tape_from_capture(capture, 80, start=start)
    alpaca.sessions = [
        [("trades", 0, 30, 5), ("drop",)],
        [("trades", 55, 80, 5)],  # 30..54 only via the REST gap fill
    ]
    settings = Settings(
        _env_file=None, ALPACA_API_KEY=alpaca.key, ALPACA_SECRET_KEY=alpaca.secret
    ).model_copy(
        update={
            "alpaca_stream_url": alpaca.ws_url,
            "alpaca_data_url": alpaca.rest_url,
            "provider_backoff_max_seconds": 0.2,
        }
    )
    provider = AlpacaStreamProvider(settings, ["AAPL"])
    asyncio.run(ingest_until(db_url, tmp_path, provider, lambda pipe: pipe.counters.stored >= 80))
    rows = stored(db_url, "AAPL")
    assert len(rows) == 80
    assert sorted(r[0] for r in rows) == sorted(f"D-{p.trade_id}" for p in alpaca.tape)
    assert [r[1] for r in rows] == [p.ts for p in alpaca.tape]
    assert provider.counters["gap_fill_trades"] >= 25


def test_ig_quote_ticks_are_stored_with_size_zero(
    servers: tuple[FakeAlpaca, FakeIg], db_url: str, tmp_path: Path
) -> None:
    _, ig = servers
    ig.reset()
    ig.markets = {
        VOD: [
            market(VOD, "Vodafone", 72.10, 72.16, update_time="10:00:01"),
            market(VOD, "Vodafone", 72.12, 72.18, update_time="10:00:02"),
        ]
    }
    settings = Settings(
        _env_file=None, IG_API_KEY=ig.api_key, IG_USERNAME=ig.username, IG_PASSWORD=ig.password
    ).model_copy(
        update={"ig_url": ig.url, "ig_poll_seconds": 0.02, "ig_requests_per_minute": 100_000}
    )
    provider = IgProvider(settings, ["VOD.L"], epics={"VOD.L": VOD})
    asyncio.run(ingest_until(db_url, tmp_path, provider, lambda pipe: pipe.counters.stored >= 2))
    rows = stored(db_url, "VOD.L")
    assert [(r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        (pytest.approx(72.13), 0.0, 72.10, 72.16, ["quote"]),
        (pytest.approx(72.15), 0.0, 72.12, 72.18, ["quote"]),
    ]


def test_alpha_vantage_bars_become_candles_at_utc_minutes(
    captures: Path, db_url: str, tmp_path: Path
) -> None:
    from zoneinfo import ZoneInfo

    from streaming.venues.alpha_vantage.data import AlphaVantageProvider
    from tests.support.fake_alpha_vantage import FakeAlphaVantage

    capture = json.loads(
        (captures / "alphavantage" / "time_series_intraday_1min_msft.json").read_text()
    )
    # the capture's 100 bars re-stamped to the last 100 closed minutes, New York wall time
    eastern = ZoneInfo("US/Eastern")
    newest = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    rows = list(capture["Time Series (1min)"].values())
    stamps = [(newest - timedelta(minutes=k)).astimezone(eastern) for k in range(len(rows))]
    capture["Time Series (1min)"] = {
        ts.strftime("%Y-%m-%d %H:%M:%S"): row for ts, row in zip(stamps, rows, strict=True)
    }
    with serving(FakeAlphaVantage()) as (fake,):
        fake.answers = {"MSFT": [capture]}
        settings = Settings(_env_file=None, ALPHA_VANTAGE_API_KEY=fake.key).model_copy(
            update={"alpha_vantage_url": fake.url, "alpha_vantage_poll_seconds": 30}
        )
        provider = AlphaVantageProvider(settings, ["MSFT"])
        asyncio.run(ingest_until(db_url, tmp_path, provider, lambda p: p.counters.received >= 100))
    with psycopg.connect(db_url) as conn:
        candles = conn.execute(
            "select c.ts, c.open, c.close, c.volume from candles_1m c join symbols s"
            " on s.id = c.symbol_id where s.symbol = 'MSFT' order by c.ts"
        ).fetchall()
    assert len(candles) == 100
    assert candles[-1] == (newest, 86.49, 86.5, 10494.0)  # the capture's newest bar
    assert candles[0][0] == newest - timedelta(minutes=99)
