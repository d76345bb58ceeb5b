"""Provenance of ticks through the ingest path (docs/history.md): each row says how it
arrived (ticks.source) and from which tape (ticks.feed); a symbol keeps one equity feed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from core.events import Trade
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.ingest.rows import TickRows
from streaming.providers.replay import EventsProvider, ReplayProvider
from tests.support.spool_chunks import chunk

pytestmark = pytest.mark.timeout(60)


def noon() -> datetime:
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def provenance(url: str, symbol: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select trade_id, source, feed from ticks t join symbols s on s.id = t.symbol_id"
            " where s.symbol = %s order by trade_id",
            (symbol,),
        ).fetchall()


def equity_feed(url: str, symbol: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("select equity_feed from symbols where symbol = %s", (symbol,))
        found = row.fetchone()
        return found[0] if found else None


def run(url: str, tmp_path: Path, provider: EventsProvider | ReplayProvider) -> IngestPipeline:
    pipe = IngestPipeline(url, None, PipelineConfig(source="test", spool_dir=tmp_path))
    asyncio.run(pipe.run(provider))
    return pipe


def alpaca_like(trades: list[Trade], symbols: list[str], feed: str) -> EventsProvider:
    """A live provider of one Alpaca equity feed (the stream's provenance)."""
    provider = EventsProvider(trades, symbols)
    provider.feed = feed
    return provider


def test_stream_and_gap_fill_rows_say_where_they_came_from(db_url: str, tmp_path: Path) -> None:
    t0 = noon()
    trades = [
        Trade("AAPL", t0, 190.0, 10, trade_id="V-1"),
        Trade("AAPL", t0 + timedelta(seconds=1), 190.1, 5, trade_id="V-2", source="gap_fill"),
    ]
    pipe = run(db_url, tmp_path, alpaca_like(trades, ["AAPL"], "iex"))
    assert pipe.counters.stored == 2
    assert provenance(db_url, "AAPL") == [("V-1", "stream", "iex"), ("V-2", "gap_fill", "iex")]
    assert equity_feed(db_url, "AAPL") == "iex"  # fixed by the first equity provider


def test_a_symbol_fixed_to_one_feed_refuses_another(db_url: str, tmp_path: Path) -> None:
    t0 = noon()
    run(db_url, tmp_path, alpaca_like([Trade("MSFT", t0, 400.0, 1, "V-1")], ["MSFT"], "sip"))
    later = [Trade("MSFT", t0 + timedelta(seconds=k), 400.0, 1, f"V-{k}") for k in (2, 3)]
    pipe = run(db_url, tmp_path, alpaca_like(later, ["MSFT"], "iex"))
    assert pipe.counters.stored == 0
    assert pipe.rejects.counts == {"feed_mismatch": 2}
    assert equity_feed(db_url, "MSFT") == "sip"  # unchanged: the first feed stands
    assert provenance(db_url, "MSFT") == [("V-1", "stream", "sip")]
    # a source without an equity feed (a replayed file) is not refused
    run(db_url, tmp_path, EventsProvider([Trade("MSFT", t0, 401.0, 1, "x-9")], ["MSFT"]))
    assert ("x-9", "stream", None) in provenance(db_url, "MSFT")


def test_replay_rows_are_marked_replay_without_a_feed(db_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "trades.csv"
    csv.write_text("ts,price,size,trade_id\n2024-03-04T15:00:00Z,10.5,3,a\n")
    run(db_url, tmp_path, ReplayProvider(csv, symbol="ZZZ"))
    assert provenance(db_url, "ZZZ") == [("a", "replay", None)]


def test_spool_records_written_before_provenance_read_as_unknown() -> None:
    rows = chunk(0, 3)
    old = rows.to_arrow().drop_columns(["source", "feed"])  # the earlier record layout
    back = TickRows.from_arrow(old)
    assert back.source.tolist() == ["unknown"] * 3 and back.feed.tolist() == [None] * 3
    again = TickRows.from_arrow(rows.to_arrow())
    assert again.source.tolist() == ["stream"] * 3 and again.feed.tolist() == ["iex"] * 3
    assert isinstance(old, pa.RecordBatch) and np.array_equal(back.ts_ns, rows.ts_ns)
