"""ig against a local IG REST gateway (session v2, markets v3, search v1)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from core.events import Quote, Trade
from core.settings import Settings
from streaming.providers.base import MissingCredential, ProviderError
from streaming.venues.ig.data import IgProvider
from streaming.venues.ig.parsing import choose_epic, parse_market, quote_events
from tests.support.fake_ig import FakeIg, market
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(60)

VOD = "IX.D.VOD.DAILY.IP"
BP = "IX.D.BP.DAILY.IP"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeIg]:
    with serving(FakeIg()) as (fake,):
        yield fake


@pytest.fixture
def fake(server: FakeIg) -> FakeIg:
    server.reset()
    return server


def settings_for(fake: FakeIg, **overrides: Any) -> Settings:
    base = Settings(
        _env_file=None,
        IG_API_KEY=fake.api_key,
        IG_USERNAME=fake.username,
        IG_PASSWORD=fake.password,
    )
    values: dict[str, Any] = {
        "ig_url": fake.url,
        "ig_poll_seconds": 0.02,
        "ig_requests_per_minute": 100_000,
        "ig_max_failures": 3,
        "ig_cooldown_seconds": 0.2,
    }
    values.update(overrides)
    return base.model_copy(update=values)


async def collect(provider: IgProvider, count: int, timeout: float = 5.0, on_event=None) -> list:
    out: list = []

    async def consume() -> None:
        async for event in provider:
            out.append(event)
            if on_event is not None:
                on_event(len(out))
            if len(out) >= count:
                provider.stop()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(consume(), timeout)
    return out


def test_login_poll_and_quote_ticks(fake: FakeIg) -> None:
    fake.markets = {VOD: market(VOD, "Vodafone Group PLC", 72.10, 72.16)}
    provider = IgProvider(settings_for(fake), ["VOD.L"], epics={"VOD.L": VOD})
    quote, tick = asyncio.run(collect(provider, 2))

    assert fake.calls[0] == ("POST", "/gateway/deal/session", "2")
    assert fake.calls[1] == ("GET", f"/gateway/deal/markets/{VOD}", "3")
    assert isinstance(quote, Quote) and (quote.bid, quote.ask) == (72.10, 72.16)
    assert isinstance(tick, Trade)
    assert tick.size == 0 and tick.price == pytest.approx(72.13)  # a quote tick at the mid
    assert (tick.bid, tick.ask, tick.exchange, tick.conditions) == (72.10, 72.16, "IG", ("quote",))
    assert tick.trade_id.startswith(f"ig:{VOD}:") and tick.trade_id.endswith("T101501")
    assert tick.ts.utcoffset().total_seconds() == 0
    assert provider.zero_size_ok


def test_debug_logging_never_shows_tokens_or_credentials(
    fake: FakeIg, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in review: with ``marketflow -v`` httpcore's trace logs every response's
    headers, so IG's session tokens (CST, X-SECURITY-TOKEN) reached the log."""
    fake.markets = {VOD: market(VOD, "Vodafone Group PLC", 72.10, 72.16)}
    provider = IgProvider(settings_for(fake), ["VOD.L"], epics={"VOD.L": VOD})
    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(collect(provider, 2))
    assert provider.counters["logins"] >= 1
    assert not re.search(r"\b[cx]st-\d+", caplog.text)  # the fake's session tokens
    for secret in (fake.api_key, fake.password):
        assert secret not in caplog.text, secret


def test_unchanged_snapshot_is_not_repeated_and_changes_are(fake: FakeIg) -> None:
    same = market(VOD, "Vodafone", 72.10, 72.16)
    moved = market(VOD, "Vodafone", 72.12, 72.18, update_time="10:15:09")
    fake.markets = {VOD: [same, same, same, moved]}
    provider = IgProvider(settings_for(fake), ["VOD.L"], epics={"VOD.L": VOD})
    events = asyncio.run(collect(provider, 4))
    ticks = [e for e in events if isinstance(e, Trade)]
    assert [t.bid for t in ticks] == [72.10, 72.12]
    assert provider.counters["polls"] == 4  # three identical polls gave one quote


def test_expired_session_logs_in_again(fake: FakeIg) -> None:
    fake.markets = {VOD: market(VOD, "Vodafone", 72.10, 72.16)}
    provider = IgProvider(settings_for(fake), ["VOD.L"], epics={"VOD.L": VOD})

    def expire(n: int) -> None:
        if n == 2:
            fake.expire_sessions()
            fake.markets[VOD] = market(VOD, "Vodafone", 72.2, 72.3, update_time="10:16:00")

    events = asyncio.run(collect(provider, 4, on_event=expire))
    assert len(events) == 4
    assert fake.logins == 2
    assert provider.counters["failures"] == 0  # a 401 is re-auth, not a failure


def test_repeated_failures_cool_down_then_recover(
    fake: FakeIg, caplog: pytest.LogCaptureFixture
) -> None:
    fake.markets = {VOD: market(VOD, "Vodafone", 72.10, 72.16)}
    fake.fail_logins = [503, 503, 503, 500]
    provider = IgProvider(settings_for(fake), ["VOD.L"], epics={"VOD.L": VOD})
    with caplog.at_level(logging.WARNING, "streaming.venues.ig.data"):
        events = asyncio.run(collect(provider, 2))
    assert len(events) == 2
    assert provider.counters["cooldowns"] == 1
    assert provider.counters["failures"] == 4
    assert provider.state == "running"
    assert "pausing" in caplog.text and "503" in caplog.text
    assert fake.password not in caplog.text and fake.api_key not in caplog.text


def test_cooldowns_grow_with_jitter_while_failures_continue(fake: FakeIg) -> None:
    """Found in review: every cooldown was exactly IG_COOLDOWN_SECONDS, so an outage was
    retried at a fixed rhythm forever and several IG workers retried in lock step
    (docs/providers.md: backoff and jitter). Now: at least the setting, doubling, capped,
    jittered."""
    provider = IgProvider(settings_for(fake, ig_cooldown_seconds=10.0), ["VOD.L"])
    delays = [provider._cooldown.next_delay() for _ in range(5)]
    assert 10 <= delays[0] <= 20 and 20 <= delays[1] <= 40 and 40 <= delays[2] <= 80
    assert all(40 <= d <= 80 for d in delays[3:])  # capped at 8 × the setting
    other = IgProvider(settings_for(fake, ig_cooldown_seconds=10.0), ["VOD.L"])
    assert [other._cooldown.next_delay() for _ in range(5)] != delays  # not in lock step
    provider._cooldown.reset()  # a successful poll
    assert provider._cooldown.next_delay() <= 20


def test_bad_credentials_stop_loudly_without_retrying(fake: FakeIg) -> None:
    settings = settings_for(fake).model_copy(update={"ig_password": SecretStr("wrong")})
    provider = IgProvider(settings, ["VOD.L"], epics={"VOD.L": VOD})
    with pytest.raises(ProviderError) as info:
        asyncio.run(collect(provider, 1))
    assert "IG_PASSWORD" in str(info.value) and "invalid-details" in str(info.value)
    assert "wrong" not in str(info.value)
    assert len(fake.calls) == 1


def test_epic_from_search_when_not_in_table(fake: FakeIg) -> None:
    fake.search = {
        "BP": [
            {"epic": "UC.D.BPUS.CASH.IP", "instrumentName": "BP ADR", "instrumentType": "SHARES"},
            {"epic": BP, "instrumentName": "BP PLC", "instrumentType": "SHARES"},
        ]
    }
    # the ADR also "contains" BP; the first SHARES hit whose name contains the term wins
    fake.search["BP"].reverse()
    fake.markets = {BP: market(BP, "BP PLC", 480.1, 480.5)}
    provider = IgProvider(settings_for(fake), ["BP.L"], epics={})
    events = asyncio.run(collect(provider, 2))
    assert len(events) == 2 and events[0].symbol == "BP.L"
    assert ("GET", "/gateway/deal/markets?searchTerm=BP", "1") in fake.calls
    assert provider.epics == {"BP.L": BP}


def test_unknown_epic_and_closed_market_do_not_stop_others(
    fake: FakeIg, caplog: pytest.LogCaptureFixture
) -> None:
    fake.markets = {
        VOD: market(VOD, "Vodafone", 72.10, 72.16),
        BP: market(BP, "BP", None, None, status="CLOSED"),
    }
    provider = IgProvider(
        settings_for(fake),
        ["GONE.L", "BP.L", "VOD.L"],
        epics={"GONE.L": "IX.D.GONE.DAILY.IP", "BP.L": BP, "VOD.L": VOD},
    )
    with caplog.at_level(logging.ERROR, "streaming.venues.ig.data"):
        events = asyncio.run(collect(provider, 2))
    assert {e.symbol for e in events} == {"VOD.L"}
    assert "GONE.L" in caplog.text and "symbol_providers" in caplog.text
    assert provider.counters["not_tradeable"] >= 1


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(MissingCredential) as info:
        IgProvider(Settings(_env_file=None, IG_API_KEY="k"), ["VOD.L"])
    assert "IG_USERNAME" in str(info.value) and "IG_PASSWORD" in str(info.value)
    assert "IG_API_KEY" not in str(info.value)


def test_snapshot_parsing_edges() -> None:
    snap = parse_market(market(VOD, "Vodafone", 72.1, 72.0), VOD)  # crossed
    assert quote_events("VOD.L", snap, datetime.now(UTC)) is None
    with pytest.raises(ValueError):
        parse_market({"instrument": {}}, VOD)
    with pytest.raises(ValueError):
        parse_market({"snapshot": {"bid": "x", "offer": 1}}, VOD)
    with pytest.raises(ValueError):  # JSON integers are unbounded; float() overflows
        parse_market({"snapshot": {"bid": 10**400, "offer": 1}}, VOD)
    assert choose_epic("^FTSE", [{"epic": "CS.D.X"}, {"epic": "IX.D.FTSE.DAILY.IP"}]) == (
        "IX.D.FTSE.DAILY.IP"
    )
    assert choose_epic("NONE", []) is None


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=_json
    | st.fixed_dictionaries(
        {
            "snapshot": st.dictionaries(
                st.sampled_from(["bid", "offer", "marketStatus", "updateTime"]), _json
            )
        },
        optional={"instrument": _json},
    )
)
def test_fuzzed_snapshots_parse_or_raise_value_error(payload: object) -> None:
    try:
        snap = parse_market(payload, VOD)
    except ValueError:
        return  # counted as malformed_snapshot by the provider
    events = quote_events("VOD.L", snap, datetime.now(UTC))
    if events is not None:
        quote, tick = events
        assert 0 < quote.bid <= quote.ask and tick.size == 0
