"""Alpaca's REST trades client against a local server speaking the API, fed with the captured
pages in tests/data/alpaca: paging, rate limits, retries, bad pages and bad trades."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from core.events import Rejects
from streaming.venues.alpaca import trade_pages
from streaming.venues.alpaca.parsing import alpaca_symbol
from streaming.venues.alpaca.rest import (
    AlpacaRestClient,
    AssetClass,
    RestError,
    RestUnavailable,
    TradesQuery,
)
from tests.support.fake_alpaca import FakeAlpaca, tape_from_rest
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(60)
START = datetime(2022, 3, 9, tzinfo=UTC)
NS = 1_000_000_000


def capture(captures: Path, name: str) -> dict[str, Any]:
    return json.loads((captures / "alpaca" / name).read_text())


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAlpaca]:
    with serving(FakeAlpaca()) as (fake,):
        yield fake


@pytest.fixture
def fake(server: FakeAlpaca) -> FakeAlpaca:
    server.reset()
    return server


def client_for(fake: FakeAlpaca, **kw: Any) -> AlpacaRestClient:
    values: dict[str, Any] = {"data_url": fake.rest_url, "backoff_base": 0.01, **kw}
    return AlpacaRestClient(SecretStr(fake.key), SecretStr(fake.secret), **values)


def reader(names: dict[str, str], rejects: Rejects, window: Any = None) -> Any:
    return lambda body: trade_pages.read_page(body, names, rejects, window)


def stocks(*symbols: str, **kw: Any) -> TradesQuery:
    return TradesQuery(AssetClass.STOCKS, symbols, START, START + timedelta(days=1), "iex", **kw)


def test_captured_pages_are_read_exactly(fake: FakeAlpaca, captures: Path) -> None:
    """The captured bodies as Alpaca sent them: a stock page with a token, then the last
    page of a two-symbol answer, and a crypto page with the taker side."""
    for name in ("rest_stock_trades_page.json", "rest_stock_trades_multi.json"):
        fake.verbatim.append((captures / "alpaca" / name).read_bytes())
    client, rejects = client_for(fake), Rejects("t")
    pages = list(
        client.pages(stocks("AAPL", "TSLA"), reader({"AAPL": "AAPL", "TSLA": "TSLA"}, rejects))
    )
    assert [p.next_page_token for p in pages] == [
        capture(captures, "rest_stock_trades_page.json")["next_page_token"],
        None,
    ]
    first = pages[0].symbols[0]
    assert first.symbol == "AAPL" and first.trade_id.tolist() == ["D-151", "D-168"]
    assert first.price.tolist() == [159.07, 159.07] and first.size.tolist() == [1.0, 2.0]
    assert first.ts_ns.tolist() == [1646802002183000000, 1646802016910000000]
    assert first.conditions.tolist() == [("@", "T", "I"), ("@", "T", "I")]
    tsla = pages[1].symbols[1]
    assert (tsla.symbol, tsla.price.tolist(), tsla.trade_id.tolist()) == (
        "TSLA",
        [833.0],
        ["D-145"],
    )
    # the second request followed the captured token, with the feed explicit every time
    assert fake.rest_requests[1]["page_token"] == pages[0].next_page_token
    assert all(r["feed"] == "iex" and r["limit"] == "10000" for r in fake.rest_requests)
    assert rejects.total == 0

    fake.verbatim.append((captures / "alpaca" / "rest_crypto_trades_multi.json").read_bytes())
    query = TradesQuery(AssetClass.CRYPTO, ("BTC/USD", "ETH/USD"), START)
    names = {"BTC/USD": "BTCUSD", "ETH/USD": "ETHUSD"}
    (page,) = client.pages(query, reader(names, rejects))
    assert fake.rest_requests[-1]["path"] == "/v1beta3/crypto/us/trades"
    assert "feed" not in fake.rest_requests[-1]
    btc, eth = page.symbols
    assert (btc.symbol, btc.side.tolist(), btc.trade_id.tolist()) == ("BTCUSD", [1], ["293648598"])
    assert (eth.symbol, eth.side.tolist(), eth.size.tolist()) == ("ETHUSD", [-1], [0.001])
    assert alpaca_symbol("BTCUSD") == "BTC/USD" and alpaca_symbol("ETHBTC") == "ETH/BTC"


def tape(captures: Path, count: int, symbol: str = "AAPL") -> list[Any]:
    trade = capture(captures, "rest_stock_trades_multi.json")["trades"]["AAPL"][0]
    return tape_from_rest(trade, symbol, count, START + timedelta(hours=15), timedelta(seconds=1))


def test_short_pages_are_not_the_end(fake: FakeAlpaca, captures: Path) -> None:
    fake.tape = tape(captures, 40) + tape(captures, 25, "TSLA")
    fake.page_size, fake.page_sizes = 10_000, [3, 1, 7, 2]  # shorter than the limit, mid-day
    rejects = Rejects("t")
    pages = list(
        client_for(fake).pages(
            stocks("AAPL", "TSLA"), reader({"AAPL": "AAPL", "TSLA": "TSLA"}, rejects)
        )
    )
    assert [p.kept for p in pages] == [3, 1, 7, 2, 52]
    ids = [tid for p in pages for s in p.symbols for tid in s.trade_id]
    assert ids == [f"D-{p.trade_id}" for p in sorted(fake.tape, key=lambda p: (p.symbol, p.ts))]
    assert len(fake.rest_requests) == 5


def test_429_waits_for_the_reset_then_succeeds(fake: FakeAlpaca, captures: Path) -> None:
    fake.tape = tape(captures, 5)
    fake.answer_429, fake.rate_window_s = 1, 1.0
    client = client_for(fake)
    (page,) = client.pages(stocks("AAPL"), reader({"AAPL": "AAPL"}, Rejects("t")))
    assert page.kept == 5
    assert fake.rate_limited == 1 and len(fake.rest_requests) == 2
    assert client.counters.rate_limited == 1 and client.counters.rate_limit_waits == 1
    assert 0 < client.counters.rate_limit_wait_s <= 2.5  # until the window's reset, no longer
    assert client.rate.limit == 200 and client.rate.remaining is not None


def test_nothing_left_in_the_window_waits_before_asking(fake: FakeAlpaca, captures: Path) -> None:
    """With X-RateLimit-Remaining at 0 the client waits for the reset instead of collecting
    a 429."""
    fake.tape = tape(captures, 12)
    fake.page_size, fake.rate_limit, fake.rate_window_s = 3, 2, 1.0
    client = client_for(fake)
    pages = list(client.pages(stocks("AAPL"), reader({"AAPL": "AAPL"}, Rejects("t"))))
    assert sum(p.kept for p in pages) == 12
    assert fake.rate_limited == 0
    assert client.counters.rate_limit_waits >= 1 and client.counters.rate_limited == 0


def test_5xx_and_pages_that_are_not_json_are_retried(fake: FakeAlpaca, captures: Path) -> None:
    fake.tape = tape(captures, 9)
    fake.page_size, fake.fail_pages, fake.garbage_pages = 3, ["3"], ["6"]
    rejects = Rejects("t")
    client = client_for(fake, rejects=rejects)
    pages = list(client.pages(stocks("AAPL"), reader({"AAPL": "AAPL"}, rejects)))
    assert sum(p.kept for p in pages) == 9
    tokens = [r.get("page_token", "") for r in fake.rest_requests]
    assert tokens == ["", "3", "3", "6", "6"]  # each failed page asked again from its token
    assert client.counters.server_errors == 1 and client.counters.malformed_pages == 1
    assert rejects.counts == {"malformed_page": 1}


def test_a_page_down_for_good_gives_up_after_its_attempts(fake: FakeAlpaca, captures: Path) -> None:
    fake.tape = tape(captures, 9)
    fake.page_size, fake.down_pages = 3, {"3"}
    client = client_for(fake, attempts=3)
    got = []
    with pytest.raises(RestUnavailable, match="3 times in a row"):
        for page in client.pages(stocks("AAPL"), reader({"AAPL": "AAPL"}, Rejects("t"))):
            got.append(page.kept)
    assert got == [3]  # what came before the outage was handed over
    assert [r.get("page_token", "") for r in fake.rest_requests] == ["", "3", "3", "3"]


def test_wrong_credentials_name_the_variables(fake: FakeAlpaca) -> None:
    client = AlpacaRestClient(SecretStr("nope"), SecretStr("nope"), data_url=fake.rest_url)
    with pytest.raises(RestError, match="ALPACA_API_KEY and ALPACA_SECRET_KEY") as info:
        client.page(stocks("AAPL"), None, reader({"AAPL": "AAPL"}, Rejects("t")))
    assert info.value.status == 401
    assert "nope" not in str(info.value)


def bad_page(captures: Path, *, typed: bool) -> bytes:
    """The captured AAPL trade and variations that break each rule; ``typed=False`` adds a
    price that is a string, which only the explicit reader accepts to count."""
    good = capture(captures, "rest_stock_trades_multi.json")["trades"]["AAPL"][0]

    def variant(k: int, **change: Any) -> dict[str, Any]:
        trade = {**good, "i": 1000 + k, "t": f"2022-03-09T15:00:{k:02d}.5Z", **change}
        return {key: value for key, value in trade.items() if value is not None}

    trades = [
        variant(0),
        variant(1, i=None),  # no id
        variant(2, p=None),  # no price
        variant(3, s=None),  # no size
        variant(4, p=0),
        variant(5, p=-1.5),
        variant(6, s=0),
        variant(7, t="2022-03-10T00:00:00.000000001Z"),  # the next day
        variant(8, u="canceled"),
        variant(9, u="incorrect"),
        variant(10, u="corrected", p=159.5),  # the corrected print: kept once
    ]
    if not typed:
        trades.append(variant(11, p="159.07"))
    body = {"trades": {"AAPL": trades, "MSFT": [good]}, "next_page_token": None}
    return orjson.dumps(body)


@pytest.mark.parametrize("typed", [True, False], ids=["arrow", "explicit"])
def test_bad_trades_are_counted_by_reason_and_skipped(captures: Path, typed: bool) -> None:
    rejects = Rejects("t")
    window = (int(START.timestamp()) * NS, int((START + timedelta(days=1)).timestamp()) * NS)
    page = trade_pages.read_page(bad_page(captures, typed=typed), {"AAPL": "AAPL"}, rejects, window)
    (aapl,) = page.symbols
    assert aapl.trade_id.tolist() == ["D-1000", "D-1010"]
    assert aapl.price.tolist() == [159.07, 159.5]
    expected = {
        "missing_id": 1, "missing_price": 1, "missing_size": 1, "non_positive_price": 2,
        "bad_size": 1, "outside_day": 1, "unknown_symbol": 1,
    }  # fmt: skip
    if not typed:
        expected["malformed"] = 1
    assert rejects.counts == expected
    assert page.flagged == {"canceled": 1, "incorrect": 1}
    assert page.received == len(orjson.loads(bad_page(captures, typed=typed))["trades"]["AAPL"]) + 1


def test_a_body_that_is_not_a_json_object_is_not_a_page() -> None:
    for body in (b"<html>502</html>", b"[1, 2]", b""):
        with pytest.raises(trade_pages.NotAPage):
            trade_pages.read_page(body, {"AAPL": "AAPL"}, Rejects("t"))
