"""Corrections (``T: c``) and cancels (``T: x``) on the stock stream become
``TradeAmendment`` events naming the stored print, in stream order, and never overtake a
print that a pending gap fill has yet to deliver. Against the local server, with the
captured messages of tests/data/alpaca/stock_corrections_frames.json."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest

from core.events import Trade, TradeAmendment
from streaming.venues.alpaca import parsing
from streaming.venues.alpaca.data import AlpacaStreamProvider
from tests.support.fake_alpaca import FakeAlpaca, collect, settings_for, tape_from_capture
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def amendments(captures: Path) -> dict[str, Any]:
    return json.loads((captures / "alpaca" / "stock_corrections_frames.json").read_text())


@pytest.fixture(scope="module")
def capture(captures: Path) -> dict[str, Any]:
    return json.loads((captures / "alpaca" / "stream_session_frames.json").read_text())


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAlpaca]:
    with serving(FakeAlpaca()) as (fake,):
        yield fake


@pytest.fixture
def fake(server: FakeAlpaca) -> FakeAlpaca:
    server.reset()
    return server


def test_captured_correction_and_cancel_parse(amendments: dict) -> None:
    fix = parsing.parse_correction(amendments["correction"])
    assert (fix.symbol, fix.kind, fix.exchange, fix.tape) == ("EEM", "correction", "M", "B")
    assert (fix.trade_id, fix.price, fix.size) == ("M-52983525033527", 39.1582, 440000.0)
    assert fix.conditions == (" ", "7") and fix.corrected_conditions == (" ", "7")
    assert (fix.corrected_trade_id, fix.corrected_price) == ("M-52983525034326", 39.1809)
    assert fix.ts == datetime(2023, 4, 6, 14, 25, 6, 542305, tzinfo=UTC)
    cancel = parsing.parse_cancel(amendments["cancel"])
    assert (cancel.symbol, cancel.kind, cancel.trade_id) == ("GOOGL", "cancel", "D-465")
    assert (cancel.price, cancel.size, cancel.corrected_trade_id) == (105.31, 300.0, None)
    error = parsing.parse_cancel({**amendments["cancel"], "a": "E"})
    assert error.kind == "error"
    with pytest.raises(ValueError):
        parsing.parse_cancel({**amendments["cancel"], "a": "Z"})


def test_the_stream_yields_amendments_in_order_and_counts_bad_ones(
    fake: FakeAlpaca, capture: dict, amendments: dict
) -> None:
    fake.tape = tape_from_capture(capture, 6)
    wrong, gone = fake.tape[2], fake.tape[4]
    right = replace(wrong, trade_id=wrong.trade_id + 1000, price=wrong.price + 0.05)
    fix = wrong.correction(right, amendments["correction"])
    cancel = gone.cancel(amendments["cancel"])
    bad = {**fix, "cp": "n/a"}
    steps = [("trades", 0, 5), ("frame", [fix, bad]), ("frame", [cancel]), ("trades", 5, 6)]
    fake.sessions = [steps]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    events = asyncio.run(collect(provider, 8))

    kinds = [type(e).__name__ if isinstance(e, Trade) else e.kind for e in events]
    assert kinds == ["Trade"] * 5 + ["correction", "cancel", "Trade"]
    correction, cancelled = events[5], events[6]
    assert isinstance(correction, TradeAmendment) and isinstance(cancelled, TradeAmendment)
    assert correction.trade_id == events[2].trade_id == f"D-{wrong.trade_id}"
    assert correction.corrected_trade_id == f"D-{right.trade_id}"
    assert correction.corrected_price == right.price
    assert cancelled.trade_id == events[4].trade_id
    assert provider.counters["corrections"] == 1 and provider.counters["cancels"] == 1
    assert provider.rejects.counts == {"malformed_correction": 1}


def test_an_amendment_waits_for_the_gap_fill_that_brings_its_print(
    fake: FakeAlpaca, capture: dict, amendments: dict
) -> None:
    """The stream drops; after the reconnect a correction of a print of the outage arrives
    before the REST gap fill has delivered that print: ingest must see the print first."""
    fake.tape = tape_from_capture(capture, 40)
    lost = fake.tape[25]  # printed while the stream was down
    fixed = replace(lost, trade_id=lost.trade_id + 1000, price=lost.price + 0.1)
    fake.fail_pages = [""]  # the first REST page fails once: the gap fill is slow
    fake.sessions = [
        [("trades", 0, 20, 4), ("drop",)],
        [("frame", [lost.correction(fixed, amendments["correction"])]), ("trades", 35, 40)],
    ]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"], gap_page_limit=5)
    events = asyncio.run(collect(provider, 41, timeout=20))

    ids = [e.trade_id for e in events if isinstance(e, Trade)]
    assert sorted(ids) == sorted(f"D-{p.trade_id}" for p in fake.tape)
    (where,) = [k for k, e in enumerate(events) if isinstance(e, TradeAmendment)]
    printed = next(k for k, e in enumerate(events) if e.trade_id == f"D-{lost.trade_id}")
    assert printed < where  # the print, then its correction


def test_msgpack_amendment_timestamps(fake: FakeAlpaca, capture: dict, amendments: dict) -> None:
    """On the msgpack wire ``t`` is a Timestamp ext, like a trade's."""
    cancel = {**amendments["cancel"], "S": "AAPL"}
    cancel["t"] = msgpack.Timestamp.from_unix_nano(1_680_786_942_835_409_580)
    fake.sessions = [[("frame", [cancel])]]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    (event,) = asyncio.run(collect(provider, 1))
    assert event.ts == datetime(2023, 4, 6, 13, 15, 42, 835409, tzinfo=UTC)
