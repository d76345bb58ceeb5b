"""alpha_vantage against a local /query server fed with the real MSFT intraday capture."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import Bar
from core.settings import Settings
from streaming.providers.base import MissingCredential
from streaming.venues.alpha_vantage.data import AlphaVantageProvider
from streaming.venues.alpha_vantage.parsing import (
    Answer,
    RequestBudget,
    default_interval,
    parse_intraday,
)
from tests.support.fake_alpha_vantage import ERROR, INFORMATION, NOTE, FakeAlphaVantage
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def msft(captures: Path) -> dict[str, Any]:
    path = captures / "alphavantage" / "time_series_intraday_1min_msft.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAlphaVantage]:
    with serving(FakeAlphaVantage()) as (fake,):
        yield fake


@pytest.fixture
def fake(server: FakeAlphaVantage) -> FakeAlphaVantage:
    server.reset()
    return server


def settings_for(fake: FakeAlphaVantage, **overrides: Any) -> Settings:
    base = Settings(_env_file=None, ALPHA_VANTAGE_API_KEY=fake.key)
    values: dict[str, Any] = {
        "alpha_vantage_url": fake.url,
        "alpha_vantage_poll_seconds": 0.01,
        "alpha_vantage_daily_limit": 1000,
        "alpha_vantage_minute_limit": 1000,
        "alpha_vantage_throttle_seconds": 0.05,
        "provider_backoff_max_seconds": 0.1,
    }
    values.update(overrides)
    return base.model_copy(update=values)


async def collect(provider: AlphaVantageProvider, count: int, timeout: float = 5.0) -> list[Bar]:
    out: list[Bar] = []

    async def consume() -> None:
        async for event in provider:
            out.append(event)
            if len(out) >= count:
                provider.stop()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(consume(), timeout)
    return out


def relabel(payload: dict[str, Any], day: str, first: str, count: int) -> dict[str, Any]:
    """The capture's bars re-stamped as ``count`` minutes from ``day first`` (Eastern)."""
    out = copy.deepcopy(payload)
    rows = list(payload["Time Series (1min)"].values())[:count]
    start = datetime.fromisoformat(f"{day} {first}")
    stamps = [(start + timedelta(minutes=k)).strftime("%Y-%m-%d %H:%M:%S") for k in range(count)]
    out["Time Series (1min)"] = dict(zip(reversed(stamps), rows, strict=True))  # newest first
    return out


def test_capture_becomes_utc_bars_oldest_first(fake: FakeAlphaVantage, msft: dict) -> None:
    fake.answers = {"MSFT": [msft]}
    bars = asyncio.run(collect(AlphaVantageProvider(settings_for(fake), ["msft"]), 100))
    assert len(bars) == 100
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)
    newest = bars[-1]  # "2017-12-18 14:56:00" US/Eastern, winter: UTC−5
    assert newest.ts == datetime(2017, 12, 18, 19, 56, tzinfo=UTC)
    assert (newest.open, newest.high, newest.low, newest.close, newest.volume) == (
        86.49,
        86.5,
        86.475,
        86.5,
        10494.0,
    )
    assert all(b.symbol == "MSFT" for b in bars)
    request = fake.requests[0]
    assert request["function"] == "TIME_SERIES_INTRADAY" and request["interval"] == "1min"
    assert request["symbol"] == "MSFT" and request["apikey"] == fake.key


def test_only_new_bars_are_emitted(fake: FakeAlphaVantage, msft: dict) -> None:
    later = copy.deepcopy(msft)
    later["Time Series (1min)"] = {
        "2017-12-18 14:57:00": {
            "1. open": "86.5000",
            "2. high": "86.5200",
            "3. low": "86.4900",
            "4. close": "86.5100",
            "5. volume": "20000",
        },
        **msft["Time Series (1min)"],
    }
    fake.answers = {"MSFT": [msft, msft, later]}
    provider = AlphaVantageProvider(settings_for(fake), ["MSFT"])
    bars = asyncio.run(collect(provider, 101))
    assert len(bars) == 101
    assert len({b.ts for b in bars}) == 101  # the repeated answer added nothing
    assert bars[-1].ts == datetime(2017, 12, 18, 19, 57, tzinfo=UTC)
    assert len(fake.requests) == 3


def test_throttle_answers_back_off_then_recover(
    fake: FakeAlphaVantage, msft: dict, caplog: pytest.LogCaptureFixture
) -> None:
    fake.answers = {"MSFT": [NOTE, INFORMATION, 503, "<html>not json", msft]}
    provider = AlphaVantageProvider(settings_for(fake), ["MSFT"])
    with caplog.at_level(logging.WARNING, "streaming.venues.alpha_vantage.data"):
        bars = asyncio.run(collect(provider, 100))
    assert len(bars) == 100
    assert provider.counters["throttled"] == 2
    assert provider.rejects.counts == {"malformed_response": 1}
    assert "throttled" in caplog.text and "25 requests per day" in caplog.text
    assert "HTTP 503" in caplog.text
    assert fake.key not in caplog.text


def test_debug_logging_of_every_library_never_shows_the_key(
    fake: FakeAlphaVantage, msft: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """The key travels in the query string: with ``marketflow -v`` (every logger at DEBUG)
    no library may log the request URL, an error's URL, or the response."""
    fake.answers = {"MSFT": [503, "<html>not json", msft]}
    provider = AlphaVantageProvider(settings_for(fake), ["MSFT"])
    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(collect(provider, 100))
    # every record but the fake server's own access log (it sees the URL; not marketflow)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp")]
    assert ours and not any(fake.key in text for text in ours)


def test_error_message_pauses_only_that_symbol(
    fake: FakeAlphaVantage, msft: dict, caplog: pytest.LogCaptureFixture
) -> None:
    fake.answers = {"NOPE": [ERROR], "MSFT": [msft]}
    settings = settings_for(fake, alpha_vantage_throttle_seconds=30)
    provider = AlphaVantageProvider(settings, ["NOPE", "MSFT"])
    with caplog.at_level(logging.ERROR, "streaming.venues.alpha_vantage.data"):
        bars = asyncio.run(collect(provider, 100))
    assert len(bars) == 100 and {b.symbol for b in bars} == {"MSFT"}
    assert provider.counters["errors"] == 1
    assert "NOPE" in caplog.text and "Invalid API call" in caplog.text
    assert [r["symbol"] for r in fake.requests[:2]] == ["NOPE", "MSFT"]


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        ("2024-03-08", 14),  # Friday before the spring change: EST, UTC−5
        ("2024-03-11", 13),  # Monday after: EDT, UTC−4
        ("2024-11-01", 13),  # Friday before the autumn change: EDT
        ("2024-11-04", 14),  # Monday after: EST
    ],
)
def test_dst_both_sides(msft: dict, day: str, utc_hour: int) -> None:
    parsed = parse_intraday(relabel(msft, day, "09:30:00", 5), "MSFT")
    assert parsed.answer is Answer.BARS
    assert parsed.bars[0].ts == datetime.fromisoformat(f"{day}T{utc_hour:02d}:30:00+00:00")
    assert [b.ts.minute for b in parsed.bars] == [30, 31, 32, 33, 34]


def test_dst_change_inside_one_answer(fake: FakeAlphaVantage, msft: dict) -> None:
    """Sunday 2024-03-10: 01:59 EST is 06:59 UTC, the next minute that exists, 03:00 EDT,
    is 07:00 UTC; bars stay contiguous in UTC across the change."""
    answer = relabel(msft, "2024-03-10", "01:55:00", 5)
    series = answer["Time Series (1min)"]
    rows = list(series.values())
    stamps = [
        "2024-03-10 03:01:00",
        "2024-03-10 03:00:00",
        "2024-03-10 01:59:00",
        "2024-03-10 01:58:00",
        "2024-03-10 01:57:00",
    ]
    answer["Time Series (1min)"] = dict(zip(stamps, rows, strict=True))
    fake.answers = {"MSFT": [answer]}
    bars = asyncio.run(collect(AlphaVantageProvider(settings_for(fake), ["MSFT"]), 5))
    assert [b.ts.strftime("%H:%M") for b in bars] == ["06:57", "06:58", "06:59", "07:00", "07:01"]


def test_malformed_rows_are_counted(msft: dict) -> None:
    answer = copy.deepcopy(msft)
    series = answer["Time Series (1min)"]
    first, second = list(series)[:2]
    series[first] = {"1. open": "abc"}
    series[second] = "not a row"
    series["yesterday-ish"] = series[list(series)[3]]
    parsed = parse_intraday(answer, "MSFT")
    assert len(parsed.bars) == 98  # 100 − 2 broken; the bad stamp is the 3rd reject
    assert [reason for reason, _ in parsed.rejects] == ["malformed_bar"] * 3
    assert parse_intraday([1, 2], "MSFT").answer is Answer.MALFORMED
    assert parse_intraday({"foo": 1}, "MSFT").answer is Answer.MALFORMED


def test_budget_honours_minute_and_day_caps() -> None:
    budget = RequestBudget(per_minute=5, per_day=25)
    now = 1_000.0
    for _ in range(5):
        assert budget.wait_seconds(now) == 0
        budget.record(now)
        now += 1
    assert budget.wait_seconds(now) == pytest.approx(55.0)  # 6th in the same minute
    for _ in range(20):
        now += budget.wait_seconds(now)
        budget.record(now)
        now += 1
    assert budget.wait_seconds(now) > 80_000  # 25 spent: wait for the oldest to age out
    # the default spacing spends 25 requests evenly over a day
    assert default_interval(5, 25) == pytest.approx(3456.0)


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(MissingCredential, match="ALPHA_VANTAGE_API_KEY"):
        AlphaVantageProvider(Settings(_env_file=None), ["MSFT"])


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_rows = st.dictionaries(
    st.sampled_from(["1. open", "2. high", "3. low", "4. close", "5. volume", "x"]),
    _json | st.sampled_from(["1.5", "nan", "inf", "-3", ""]),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    payload=_json
    | st.fixed_dictionaries(
        {"Time Series (1min)": st.dictionaries(st.text(max_size=20), _rows | _json, max_size=4)},
        optional={"Meta Data": st.dictionaries(st.just("6. Time Zone"), _json | st.text())},
    )
)
def test_fuzzed_answers_are_classified_never_raised(payload: object) -> None:
    parsed = parse_intraday(payload, "MSFT")
    assert isinstance(parsed.answer, Answer)
    for bar in parsed.bars:
        assert bar.ts.utcoffset() == timedelta(0)
