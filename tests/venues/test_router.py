"""router: per-symbol routes from symbol_providers (real PostgreSQL), credentials, and
supervised workers over the local Alpaca and IG servers — one failing never stops another."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from core.events import Quote, Trade
from core.settings import Settings
from storage.db import sqlalchemy_url
from streaming.providers.base import Provider, ProviderError
from streaming.providers.router import RouterProvider
from streaming.providers.router_table import (
    Route,
    default_provider,
    load_table,
    plan,
    routes_for,
)
from tests.support.fake_alpaca import FakeAlpaca, tape_from_capture
from tests.support.fake_ig import FakeIg, market
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(60)
VOD = "IX.D.VOD.DAILY.IP"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeAlpaca, FakeIg]]:
    with serving(FakeAlpaca(), FakeIg()) as (alpaca, ig):
        yield alpaca, ig


@pytest.fixture
def fakes(servers: tuple[FakeAlpaca, FakeIg]) -> tuple[FakeAlpaca, FakeIg]:
    for fake in servers:
        fake.reset()
    return servers


@pytest.fixture(scope="module")
def capture(captures: Path) -> dict[str, Any]:
    return json.loads((captures / "alpaca" / "stream_session_frames.json").read_text())


def settings_for(alpaca: FakeAlpaca | None, ig: FakeIg | None, **overrides: Any) -> Settings:
    env: dict[str, Any] = {}
    values: dict[str, Any] = {"provider_backoff_max_seconds": 0.2}
    if alpaca is not None:
        env.update(ALPACA_API_KEY=alpaca.key, ALPACA_SECRET_KEY=alpaca.secret)
        values.update(alpaca_stream_url=alpaca.ws_url, alpaca_data_url=alpaca.rest_url)
    if ig is not None:
        env.update(IG_API_KEY=ig.api_key, IG_USERNAME=ig.username, IG_PASSWORD=ig.password)
        values.update(
            ig_url=ig.url,
            ig_poll_seconds=0.02,
            ig_requests_per_minute=100_000,
            ig_cooldown_seconds=0.2,
        )
    values.update(overrides)
    return Settings(_env_file=None, **env).model_copy(update=values)


TABLE = {
    "AAPL": Route("AAPL", "alpaca_ws", None, True),
    "VOD.L": Route("VOD.L", "ig", VOD, True),
}


async def collect(provider: Provider, until: Any, timeout: float = 8.0) -> list[Any]:
    out: list[Any] = []

    async def consume() -> None:
        async for event in provider:
            out.append(event)
            if until(out):
                provider.stop()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(consume(), timeout)
    return out


# --- routing rules ---------------------------------------------------------------------


def test_default_routes_fix_the_original_order() -> None:
    assert default_provider("AAPL") == "alpaca_ws"
    assert default_provider("VOD.L") == "ig"
    assert default_provider("^FTSE") == "ig"
    assert default_provider("EURUSD") == "ig"  # FX pairs go to IG, not Alpaca
    assert default_provider("GBP/JPY") == "ig"
    assert default_provider("BTCUSD") == "alpaca_ws"  # not an ISO currency pair
    assert default_provider("PM:will-it-rain") == "polymarket"
    assert default_provider("fed-cuts-rates-in-march") == "polymarket"


def test_plan_skips_missing_credentials_and_external(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(_env_file=None, IG_API_KEY="k", IG_USERNAME="u", IG_PASSWORD="p")
    routes = routes_for(["AAPL", "vod.l", "PM:rain", "MSFT"], {"VOD.L": TABLE["VOD.L"]})
    result = plan(routes, settings)
    assert result.workers == {"ig": ["VOD.L"]}
    assert result.external == {"polymarket": ["PM:RAIN"]}
    assert result.missing == {
        "alpaca_ws": (["ALPACA_API_KEY", "ALPACA_SECRET_KEY"], ["AAPL", "MSFT"])
    }
    assert result.epics == {"VOD.L": VOD}


def test_table_is_read_from_symbol_providers(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into symbol_providers (symbol, provider, active) values "
            "('EURUSD', 'alpha_vantage', true), ('OFF', 'ig', false)"
        )
    table = load_table(db_url)
    assert table["AAPL"].provider == "alpaca_ws"
    assert table["VOD.L"] == Route("VOD.L", "ig", VOD, True)
    assert table["EURUSD"].provider == "alpha_vantage"  # the table beats the default rule
    assert "OFF" not in table
    # the driver-qualified spelling the rest of marketflow accepts reads the same table
    assert load_table(sqlalchemy_url(db_url)) == table


def test_unreadable_table_warning_never_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found in review: psycopg echoes a conninfo it cannot parse (a ``+psycopg`` URL)
    whole, password included, and the router logged that message."""
    settings = Settings(
        _env_file=None,
        DATABASE_URL="postgresql+psycopg://trader:hunter2@127.0.0.1:1/market",
        REDIS_URL="redis://127.0.0.1:1/0",
    )
    router = RouterProvider(settings, ["AAPL"])
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(router._load_table()) == {}
    assert "symbol_providers not readable" in caplog.text
    assert "hunter2" not in caplog.text


# --- supervised workers ----------------------------------------------------------------


def test_failing_provider_never_stops_the_others(
    fakes: tuple[FakeAlpaca, FakeIg], capture: dict, caplog: pytest.LogCaptureFixture
) -> None:
    alpaca, ig = fakes
    alpaca.tape = tape_from_capture(capture, 30)
    alpaca.sessions = [[("trades", 0, 10), ("wait", 0.3), ("trades", 10, 30)]]
    ig.markets = {VOD: market(VOD, "Vodafone", 72.1, 72.16)}
    settings = settings_for(alpaca, ig)
    settings = settings.model_copy(update={"ig_password": SecretStr("wrong")})
    router = RouterProvider(settings, ["AAPL", "VOD.L"], table=TABLE)
    with caplog.at_level(logging.ERROR, "streaming.providers.router"):
        events = asyncio.run(
            collect(router, lambda out: sum(isinstance(e, Trade) for e in out) >= 30)
        )
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(trades) == 30 and {t.symbol for t in trades} == {"AAPL"}
    assert router.worker_state == {"alpaca_ws": "running", "ig": "stopped"}
    assert "ig stopped" in caplog.text and "IG_PASSWORD" in caplog.text
    assert "wrong" not in caplog.text
    assert ig.logins == 0 and len(ig.calls) == 1  # no retry storm against a bad login


def test_both_providers_merge_into_one_stream(
    fakes: tuple[FakeAlpaca, FakeIg], capture: dict
) -> None:
    alpaca, ig = fakes
    alpaca.tape = tape_from_capture(capture, 5)
    alpaca.sessions = [[("trades", 0, 5)]]
    ig.markets = {VOD: market(VOD, "Vodafone", 72.1, 72.16)}
    router = RouterProvider(settings_for(alpaca, ig), ["AAPL", "VOD.L"], table=TABLE)

    def done(out: list[Any]) -> bool:
        symbols = {e.symbol for e in out if isinstance(e, Trade)}
        return symbols == {"AAPL", "VOD.L"} and len(out) >= 7

    events = asyncio.run(collect(router, done))
    assert {e.symbol for e in events if isinstance(e, Trade)} == {"AAPL", "VOD.L"}
    assert any(isinstance(e, Quote) for e in events)
    assert router.zero_size_ok  # IG's quote ticks are allowed through ...
    ig_tick = next(e for e in events if isinstance(e, Trade) and e.symbol == "VOD.L")
    assert ig_tick.size == 0
    # ... and each subscription only carries its own symbols (not every symbol to Alpaca)
    assert alpaca.client_messages[1]["trades"] == ["AAPL"]


class _Flaky(Provider):
    """A provider whose first run crashes after two prints (a bug, a lost library state)."""

    runs = 0

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols, name="flaky")

    async def stream(self) -> AsyncIterator[Trade]:
        type(self).runs += 1
        run = type(self).runs
        from datetime import UTC, datetime

        for k in range(2 if run == 1 else 5):
            yield Trade(self.symbols[0], datetime.now(UTC), 10.0 + k, 1.0, f"{run}-{k}")
            await asyncio.sleep(0)
        if run == 1:
            raise RuntimeError("boom")
        await self.sleep(30)


def test_crashed_worker_is_restarted_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    _Flaky.runs = 0
    settings = Settings(_env_file=None).model_copy(update={"provider_backoff_max_seconds": 0.1})
    table = {"XYZ": Route("XYZ", "demo", None, True)}
    router = RouterProvider(
        settings, ["XYZ"], table=table, factory=lambda name, syms, _plan: _Flaky(syms)
    )
    with caplog.at_level(logging.WARNING, "streaming.providers.router"):
        events = asyncio.run(collect(router, lambda out: len(out) >= 7))
    assert [e.trade_id for e in events] == ["1-0", "1-1", "2-0", "2-1", "2-2", "2-3", "2-4"]
    assert router.counters["demo.restarts"] == 1
    assert "restarting demo" in caplog.text


def test_every_worker_stopped_is_an_error(fakes: tuple[FakeAlpaca, FakeIg]) -> None:
    alpaca, _ = fakes
    alpaca.refuse_auth = [409]
    router = RouterProvider(settings_for(alpaca, None), ["AAPL"], table=TABLE)
    with pytest.raises(ProviderError, match="every provider stopped"):
        asyncio.run(collect(router, lambda out: False, timeout=5))


def test_no_runnable_provider_names_the_variables(caplog: pytest.LogCaptureFixture) -> None:
    router = RouterProvider(Settings(_env_file=None), ["AAPL", "VOD.L"], table=TABLE)
    with caplog.at_level(logging.ERROR), pytest.raises(ProviderError):
        asyncio.run(collect(router, lambda out: False, timeout=2))
    assert "ALPACA_API_KEY" in caplog.text and "IG_USERNAME" in caplog.text


def test_router_reads_only_the_database_it_is_given(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Providers never look servers up: the embedded servers' services.json is the ingest
    command's to read, and it hands the URL over in settings.database_url."""
    urls = {"database_url": "postgresql://u:p@127.0.0.1:1/m", "redis_url": "redis://127.0.0.1:1"}
    (tmp_path / "services.json").write_text(json.dumps(urls))
    settings = Settings(_env_file=None, MARKETFLOW_HOME=str(tmp_path))
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(RouterProvider(settings, ["AAPL"])._load_table()) == {}
    assert "no database given" in caplog.text
    assert "not readable" not in caplog.text  # nothing was tried
