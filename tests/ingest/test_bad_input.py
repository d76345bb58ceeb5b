"""Bad input is counted per reason, sampled, persisted and skipped — never a crash."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import validation as v
from core.events import Bar, Quote, Trade
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.base import TradeBatch
from streaming.providers.replay import EventsProvider

pytestmark = pytest.mark.timeout(120)
NOW = datetime.now(UTC)
WINDOW = v.Window(3600.0, 60.0)
NOW_NS = int(NOW.timestamp()) * 10**9 + NOW.microsecond * 1000


def good(**kw: object) -> Trade:
    base: dict[str, object] = {"symbol": "AAPL", "ts": NOW, "price": 10.0, "size": 5.0}
    base.update(kw)
    return Trade(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trade", "reason"),
    [
        (good(), None),
        (good(price=math.nan), v.NOT_FINITE),
        (good(size=math.inf), v.NOT_FINITE),
        (good(price=0.0), v.BAD_PRICE),
        (good(price=-1.0), v.BAD_PRICE),
        (good(size=-1.0), v.BAD_SIZE),
        (good(size=0.0), v.BAD_SIZE),
        (good(ts=NOW - timedelta(days=3)), v.OUT_OF_WINDOW),
        (good(ts=NOW + timedelta(hours=1)), v.OUT_OF_WINDOW),
        (good(ts=NOW.replace(tzinfo=None)), v.MALFORMED),  # naive: which zone?
        (good(price="10"), v.MALFORMED),
        (good(size=True), v.MALFORMED),
        (good(symbol=""), v.MALFORMED),
        (good(side=2), v.MALFORMED),
        ({"symbol": "AAPL"}, v.MALFORMED),
    ],
)
def test_reasons(trade: object, reason: str | None) -> None:
    assert v.check_trade(trade, NOW_NS, WINDOW) == reason


def test_zero_size_only_for_quote_sources_and_other_zones_accepted() -> None:
    assert v.check_trade(good(size=0.0), NOW_NS, WINDOW, zero_size_ok=True) is None
    eastern = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert v.check_trade(good(ts=eastern), NOW_NS, WINDOW) is None
    old = good(ts=datetime(2023, 2, 2, tzinfo=UTC))
    assert v.check_trade(old, NOW_NS, v.Window(math.inf, 60.0)) is None  # replay's window
    ancient = good(ts=datetime(1970, 1, 2, tzinfo=UTC))
    assert v.check_trade(ancient, NOW_NS, v.Window(math.inf, 60.0)) == v.OUT_OF_WINDOW


def test_bars_and_columns() -> None:
    bar = Bar("AAPL", NOW, 10, 11, 9, 10.5, 100)
    assert v.check_bar(bar, NOW_NS, WINDOW) is None
    assert v.check_bar(Bar("AAPL", NOW, 10, 9, 11, 10, 1), NOW_NS, WINDOW) == v.BAD_BAR
    ts = np.full(5, NOW_NS, np.int64)
    ts[4] = NOW_NS + 10**13
    keep, reasons = v.check_columns(
        ts, np.array([1.0, np.nan, -1, 2, 2]), np.array([1.0, 1, 1, 0, 1]), NOW_NS, WINDOW
    )
    assert keep.tolist() == [True, False, False, False, False]
    assert {k: x.tolist() for k, x in reasons.items()} == {
        v.NOT_FINITE: [1], v.BAD_PRICE: [2], v.BAD_SIZE: [3], v.OUT_OF_WINDOW: [4]
    }  # fmt: skip


def rejects_table(url: str) -> dict[str, tuple[int, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select reason, count, sample from ingest_rejects").fetchall()
    return {r: (n, s) for r, n, s in rows}


def test_counted_persisted_and_the_good_rows_stored(db_url: str, tmp_path: Path) -> None:
    events: list[object] = [
        good(trade_id="ok1"),
        good(price=math.nan, trade_id="x1"),
        good(price=-3.0),
        good(size=-1.0),
        good(ts=NOW - timedelta(days=10)),
        good(symbol="NOPE"),
        "not an event",
        Quote("AAPL", NOW, 9.9, 10.1),
        good(trade_id="ok2", price=10.1),
        TradeBatch("AAPL", np.array([NOW_NS, NOW_NS]), np.array([10.0, np.nan]),
                   np.array([1.0, 1.0]), trade_id=np.array(["b1", "b2"], object)),
        TradeBatch("NOPE", np.array([NOW_NS]), np.array([1.0]), np.array([1.0])),
    ]  # fmt: skip
    cfg = PipelineConfig(source="bad", spool_dir=tmp_path / "spool")
    pipe = IngestPipeline(db_url, None, cfg)
    asyncio.run(pipe.run(EventsProvider(events, ["AAPL"])))
    assert pipe.counters.stored == 3
    assert pipe.rejects.counts == {
        v.NOT_FINITE: 2, v.BAD_PRICE: 1, v.BAD_SIZE: 1, v.OUT_OF_WINDOW: 1,
        v.UNKNOWN_SYMBOL: 2, v.MALFORMED: 1,
    }  # fmt: skip
    table = rejects_table(db_url)
    assert {r: n for r, (n, _) in table.items()} == pipe.rejects.counts
    assert "x1" in table[v.NOT_FINITE][1]  # a sample of the first offender
    assert "rejects:" in pipe.status_line() and "unknown_symbol=2" in pipe.status_line()
    with psycopg.connect(db_url) as conn:
        bid, ask = conn.execute("select bid, ask from ticks where trade_id = 'ok2'").fetchone()
    assert (bid, ask) == (9.9, 10.1)  # the quote in force filled in


finite = st.floats(allow_nan=True, allow_infinity=True)
anything = st.one_of(st.none(), st.booleans(), st.integers(), finite, st.text(max_size=5))
times = st.one_of(
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(),  # naive
    st.just(NOW),
    anything,
)
trades = st.builds(
    Trade,
    symbol=st.one_of(st.sampled_from(["AAPL", "MSFT", "NOPE", ""]), anything),
    ts=times,
    price=st.one_of(finite, anything),
    size=st.one_of(finite, anything),
    trade_id=st.one_of(st.none(), st.text(max_size=8), st.integers(), anything),
    exchange=st.one_of(st.none(), st.text(max_size=3), anything),
    conditions=st.one_of(st.tuples(st.text(max_size=2)), st.lists(anything, max_size=2), anything),
    side=st.one_of(st.sampled_from([None, 1, -1]), anything),
    bid=st.one_of(st.none(), finite, anything),
    ask=st.one_of(st.none(), finite, anything),
)
events = st.lists(
    st.one_of(
        trades, anything, st.builds(Quote, symbol=anything, ts=times, bid=finite, ask=finite)
    ),
    max_size=30,
)


def test_fuzzed_frames_never_crash_the_pipeline(db_url: str, tmp_path: Path) -> None:
    cfg = PipelineConfig(source="fuzz", spool_dir=tmp_path / "spool", max_age_s=10 * 365 * 86400.0)
    pipe = IngestPipeline(db_url, None, cfg)
    asyncio.run(pipe.start(EventsProvider([], ["AAPL", "MSFT"])))
    fed = 0

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(events)
    def feed(batch: list[object]) -> None:
        nonlocal fed
        for ev in batch:
            pipe.accept(ev)
        fed += len(batch)

    feed()
    asyncio.run(pipe.flush_once())
    assert pipe.store.db_up and pipe.buffer.empty  # whatever was accepted was storable
    with psycopg.connect(db_url) as conn:
        n = conn.execute("select count(*) from ticks").fetchone()[0]
    # every print is accounted for: stored, a duplicate of a stored one, or a counted reject
    accepted = pipe.counters.received - pipe.rejects.total
    assert pipe.counters.stored + pipe.counters.duplicates == accepted
    assert n == pipe.counters.stored
    assert fed > 0 and pipe.rejects.total > 0
