"""The crypto stream beside the stock stream: pairs written ``BTC/USD`` go to
``/v1beta3/crypto/us``, carry the taker side, trade 24/7, and a reconnect is filled from
the crypto trades endpoint, exactly once. Against the local server speaking Alpaca's
protocol, fed with the captures of tests/data/alpaca/."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest

from streaming.providers.router_table import default_provider
from streaming.venues.alpaca import parsing
from streaming.venues.alpaca.data import AlpacaStreamProvider
from streaming.venues.alpaca.feeds import CRYPTO, STOCKS, split_symbols
from tests.support.fake_alpaca import (
    FakeAlpaca,
    collect,
    crypto_tape_from_capture,
    settings_for,
    tape_from_capture,
)
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def crypto_capture(captures: Path) -> dict[str, Any]:
    return json.loads((captures / "alpaca" / "crypto_stream_frames.json").read_text())


@pytest.fixture(scope="module")
def stock_capture(captures: Path) -> dict[str, Any]:
    return json.loads((captures / "alpaca" / "stream_session_frames.json").read_text())


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAlpaca]:
    with serving(FakeAlpaca()) as (fake,):
        yield fake


@pytest.fixture
def fake(server: FakeAlpaca) -> FakeAlpaca:
    server.reset()
    return server


def on_the_wire(msg: dict[str, Any]) -> dict[str, Any]:
    """A captured JSON message as the msgpack wire carries it: ``t`` a Timestamp."""
    ts = datetime.fromisoformat(msg["t"])
    ns = int(ts.timestamp()) * 10**9 + ts.microsecond * 1000
    return {**msg, "t": msgpack.Timestamp.from_unix_nano(ns)}


def test_pairs_go_to_the_crypto_stream_and_stocks_to_theirs() -> None:
    written = ["AAPL", "BTC/USD", "ETH/BTC", "BRK.B", "ethusd", "PEPE/USD", "BTCUSD"]
    assert split_symbols(written) == {
        STOCKS: ["AAPL", "BRK.B"],
        CRYPTO: ["BTCUSD", "ETHBTC", "ETHUSD", "PEPEUSD"],  # stored names, once each
    }
    # and back to Alpaca's names on the wire
    pairs = ["BTCUSD", "ETHBTC", "BTCUSDT", "USDTUSD", "PEPEUSD"]
    assert [parsing.alpaca_symbol(p) for p in pairs] == [
        "BTC/USD", "ETH/BTC", "BTC/USDT", "USDT/USD", "PEPE/USD",
    ]  # fmt: skip
    # the router sends Alpaca's pairs to the Alpaca provider, not to FX or Polymarket
    assert default_provider("BTC/USD") == "alpaca_ws"
    assert default_provider("EUR/USD") == "ig"


def test_captured_crypto_trade_and_quote(fake: FakeAlpaca, crypto_capture: dict) -> None:
    trade, quote = on_the_wire(crypto_capture["trade"]), on_the_wire(crypto_capture["quote"])
    later = {**trade, "S": "BAT/USD", "i": trade["i"] + 1, "tks": "B", "p": 0.3581}
    fake.crypto_sessions = [[("frame", [trade]), ("frame", [quote]), ("frame", [later])]]
    provider = AlpacaStreamProvider(settings_for(fake), ["AVAX/USD", "bat/usd"])
    first, second = asyncio.run(collect(provider, 2))

    assert fake.crypto_connections == 1 and fake.connections == 0
    assert fake.content_types == ["application/msgpack"]
    subscribe = fake.client_messages[1]
    assert subscribe["trades"] == ["AVAX/USD", "BAT/USD"]
    assert (
        first.symbol == "AVAXUSD" and first.price == 47.299
    )  # stored without the slash and first.size == 29.205707815
    assert first.side == -1  # tks "S": the seller was the taker
    assert first.trade_id == "3447222699101865076" and first.exchange is None
    assert first.ts == datetime(2024, 3, 12, 10, 27, 48, 858228, tzinfo=UTC)
    assert (second.side, second.bid, second.ask) == (1, 0.35718, 0.3581)
    # pairs are declared 24/7 (the UTC day) with the crypto asset type
    assert provider.symbols == ["AVAXUSD", "BATUSD"]
    assert provider.symbol_info["AVAXUSD"] == {
        "asset_type": "crypto",
        "market": "24/7",
        "timezone": "UTC",
    }
    assert provider.rejects.total == 0


def test_stocks_and_pairs_stream_side_by_side(
    fake: FakeAlpaca, crypto_capture: dict, stock_capture: dict
) -> None:
    start = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    fake.tape = tape_from_capture(stock_capture, 10, start=start)
    fake.crypto_tape = crypto_tape_from_capture(crypto_capture, 10, start=start)
    fake.sessions = [[("trades", 0, 10, 3)]]
    fake.crypto_sessions = [[("trades", 0, 10, 4)]]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL", "BTCUSD"])
    events = asyncio.run(collect(provider, 20))

    assert (fake.connections, fake.crypto_connections) == (1, 1)
    subscribed = sorted(m["trades"] for m in fake.client_messages if m["action"] == "subscribe")
    assert subscribed == [["AAPL"], ["BTC/USD"]]
    by_symbol = {s: [e for e in events if e.symbol == s] for s in ("AAPL", "BTCUSD")}
    assert [t.trade_id for t in by_symbol["AAPL"]] == [f"D-{p.trade_id}" for p in fake.tape]
    assert [t.trade_id for t in by_symbol["BTCUSD"]] == [str(p.trade_id) for p in fake.crypto_tape]
    assert all(t.side is None for t in by_symbol["AAPL"])
    assert [t.side for t in by_symbol["BTCUSD"]] == [
        parsing.TAKER_SIDES[p.taker or ""] for p in fake.crypto_tape
    ]


def test_crypto_reconnect_fills_the_gap_from_the_crypto_endpoint_exactly_once(
    fake: FakeAlpaca, crypto_capture: dict
) -> None:
    fake.crypto_tape = crypto_tape_from_capture(crypto_capture, 60)
    fake.crypto_sessions = [[("trades", 0, 20, 3), ("drop",)], [("trades", 35, 60, 4)]]
    provider = AlpacaStreamProvider(settings_for(fake), ["BTC/USD"], gap_page_limit=5)
    trades = asyncio.run(collect(provider, 60))

    assert sorted(t.trade_id for t in trades) == sorted(str(p.trade_id) for p in fake.crypto_tape)
    assert len({t.trade_id for t in trades}) == 60
    assert fake.crypto_connections == 2 and provider.counters["reconnects"] == 1
    assert provider.counters["duplicates"] > 0  # REST and stream overlapped
    # from the crypto endpoint (no feed), from the last streamed print minus the overlap
    paths = {r["path"] for r in fake.rest_requests}
    assert paths == {"/v1beta3/crypto/us/trades"} and len(fake.rest_requests) > 1
    first = fake.rest_requests[0]
    assert "feed" not in first and first["symbols"] == "BTC/USD"
    assert datetime.fromisoformat(first["start"]) == fake.crypto_tape[19].ts - timedelta(
        seconds=0.05
    )
    # the taker side survives the REST path too
    gap = {str(p.trade_id): p.taker for p in fake.crypto_tape[20:35]}
    assert all(
        t.side == parsing.TAKER_SIDES[gap[t.trade_id] or ""] for t in trades if t.trade_id in gap
    )


def test_the_crypto_silence_watchdog_is_always_armed(
    fake: FakeAlpaca, crypto_capture: dict
) -> None:
    """Pairs trade 24/7: a quiet crypto socket is presumed dead whatever XNYS is doing."""
    fake.crypto_tape = crypto_tape_from_capture(crypto_capture, 6)
    fake.crypto_sessions = [[("trades", 0, 3)], [("trades", 3, 6)]]
    settings = settings_for(fake, alpaca_silence_seconds=0.5)
    provider = AlpacaStreamProvider(settings, ["BTC/USD"], market_open=lambda now: False)
    trades = asyncio.run(collect(provider, 6))
    assert len({t.trade_id for t in trades}) == 6
    assert provider.counters["silence_reconnects"] == 1


def test_captured_crypto_rest_page_parses_with_the_taker_side(captures: Path) -> None:
    page = json.loads((captures / "alpaca" / "rest_crypto_trades_multi.json").read_text())
    pairs = parsing.rest_trades(page["trades"])
    trades = [parsing.parse_trade(item, symbol) for symbol, item in pairs]
    assert [(t.symbol, t.side, t.trade_id) for t in trades] == [
        ("BTCUSD", 1, "293648598"),
        ("ETHUSD", -1, "236866246"),
    ]
    assert trades[0].size == 0.00315427


@pytest.mark.parametrize(("tks", "side"), [("B", 1), ("S", -1), ("-", None), (None, None)])
def test_taker_side_values(tks: str | None, side: int | None) -> None:
    msg = {"T": "t", "S": "BTC/USD", "p": 1.0, "s": 0.5, "i": 7, "t": "2024-03-12T10:27:48Z"}
    if tks is not None:
        msg["tks"] = tks
    assert parsing.parse_trade(msg).side == side
