"""Crypto pairs end to end: the local Alpaca servers (the crypto stream, its trades and
latest-trade endpoints, the trading API's assets) → the provider → the ingest pipeline →
PostgreSQL. ``BTC/USD`` is stored as the seeded ``BTCUSD`` (one name per pair) and gains
the venue's increments from the captured ``/v2/assets`` object; a pair nobody seeded is
declared 24/7 with a profile bin from its latest price; prints carry the taker side; a
reconnect's gap is filled from the crypto endpoint exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.venues.alpaca.data import AlpacaStreamProvider
from tests.support.fake_alpaca import FakeAlpaca, crypto_tape_from_capture, settings_for
from tests.support.fake_alpaca_trading import KEY, SECRET, FakeTrading
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeAlpaca, FakeTrading]]:
    with serving(FakeAlpaca(key=KEY, secret=SECRET), FakeTrading()) as (data, trading):
        yield data, trading


async def ingest_until(db_url: str, tmp_path: Path, provider: Any, done: Any) -> IngestPipeline:
    config = PipelineConfig(source="alpaca_ws", spool_dir=tmp_path / "spool", flush_ms=50)
    pipe = IngestPipeline(db_url, None, config)
    task = asyncio.create_task(pipe.run(provider))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not done(pipe) and loop.time() < deadline and not task.done():
        await asyncio.sleep(0.05)
    provider.stop()
    await asyncio.wait_for(task, 20)
    return pipe


def test_a_pair_streams_into_storage_with_its_increments_and_taker_sides(
    servers: tuple[FakeAlpaca, FakeTrading], captures: Path, db_url: str, tmp_path: Path
) -> None:
    data, trading = servers
    data.reset()
    capture = json.loads((captures / "alpaca" / "crypto_stream_frames.json").read_text())
    asset = json.loads((captures / "alpaca" / "crypto_asset_btcusd.json").read_text())
    trading.assets = {"BTC/USD": asset}
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    tape = crypto_tape_from_capture(capture, 50, start=start)
    # one print of a pair nobody seeded, inside the outage: it arrives by the gap fill
    link = replace(tape[25], symbol="LINK/USD", trade_id=1, ts=tape[25].ts)
    data.crypto_tape = [*tape, link]
    data.crypto_sessions = [[("trades", 0, 20, 4), ("drop",)], [("trades", 35, 50, 5)]]
    settings = settings_for(data, alpaca_trading_url=trading.url)
    provider = AlpacaStreamProvider(settings, ["BTC/USD", "LINK/USD"])
    asyncio.run(ingest_until(db_url, tmp_path, provider, lambda p: p.counters.stored >= 51))

    with psycopg.connect(db_url) as conn:
        symbols = conn.execute(
            "select symbol, asset_type, market, timezone, provider, row_size, price_increment,"
            " qty_increment, min_order_qty from symbols where symbol in ('BTCUSD', 'LINKUSD')"
            " order by symbol"
        ).fetchall()
        rows = conn.execute(
            "select trade_id, price, size, side from ticks t join symbols s"
            " on s.id = t.symbol_id where s.symbol = 'BTCUSD' order by ts"
        ).fetchall()
        assert conn.execute("select 1 from symbols where symbol like '%/%'").fetchone() is None
        provenance = dict(
            conn.execute("select source || '/' || feed, count(*) from ticks group by 1").fetchall()
        )
    assert symbols == [
        # seeded by replay: its row keeps its provider and bin, and gains Alpaca's steps
        ("BTCUSD", "crypto", "24/7", "UTC", "replay", 0.5, 1.0, 0.0001, 0.0001),
        # new: 24/7, a bin from its latest price (near 47), no asset known (the defaults)
        ("LINKUSD", "crypto", "24/7", "UTC", "alpaca_ws", 0.001, None, None, None),
    ]
    assert [r[0] for r in rows] == [str(p.trade_id) for p in tape]
    assert [r[3] for r in rows] == [1 if p.taker == "B" else -1 for p in tape]
    assert rows[0][2] == tape[0].size  # fractional sizes kept exactly
    assert provider.counters["gap_fill_trades"] >= 16
    # the crypto tape on both paths: streamed prints and the gap fill's (docs/history.md)
    assert set(provenance) == {"stream/crypto_us", "gap_fill/crypto_us"}
    assert sum(provenance.values()) == 51
    # the pair is one path segment (its slash encoded), as the route matched it
    assert ("GET", "/v2/assets/BTC/USD") in {(m, p) for m, p, _ in trading.requests}
