"""alpaca_ws against a local server speaking Alpaca's stream (msgpack) and trades REST API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import Trade
from core.settings import Settings
from streaming.providers.base import MissingCredential, ProviderError
from streaming.venues.alpaca.data import AlpacaStreamProvider, xnys_open
from streaming.venues.alpaca.parsing import ErrorAction, TradeDeduper, classify_error
from tests.support.fake_alpaca import FakeAlpaca, tape_from_capture
from tests.support.loop_thread import serving

pytestmark = pytest.mark.timeout(60)


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


def settings_for(fake: FakeAlpaca, **overrides: Any) -> Settings:
    base = Settings(_env_file=None, ALPACA_API_KEY=fake.key, ALPACA_SECRET_KEY=fake.secret)
    values = {
        "alpaca_stream_url": fake.ws_url,
        "alpaca_data_url": fake.rest_url,
        "alpaca_slot_wait_seconds": 0.05,
        "provider_backoff_max_seconds": 0.2,
        "alpaca_backfill_overlap_seconds": 0.05,
    }
    values.update(overrides)
    return base.model_copy(update=values)


async def collect(provider: AlpacaStreamProvider, count: int, timeout: float = 8.0) -> list[Trade]:
    """Trades until ``count`` arrived (or the timeout), then stop the provider."""
    out: list[Trade] = []

    async def consume() -> None:
        async for event in provider:
            if isinstance(event, Trade):
                out.append(event)
                if len(out) >= count:
                    provider.stop()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(consume(), timeout)
    return out


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_handshake_subscribe_and_captured_frames(fake: FakeAlpaca, capture: dict) -> None:
    server_frames = [s["frame"] for s in capture["session"] if s["dir"] == "server"]
    trade_frame = next(f for f in server_frames if f[0]["T"] == "t")
    quote_frame = next(f for f in server_frames if f[0]["T"] == "q")

    def with_ts(msg: dict[str, Any]) -> dict[str, Any]:
        # the capture is JSON; on the msgpack wire `t` is a Timestamp ext (docs/providers.md)
        ts = datetime.fromisoformat(msg["t"])
        ns = int(ts.timestamp()) * 10**9 + ts.microsecond * 1000
        return {**msg, "t": msgpack.Timestamp.from_unix_nano(ns)}

    amd_trade = {**trade_frame[0], "S": "AMD", "i": 5, "p": 87.67, "x": "V"}
    fake.sessions = [
        [
            ("frame", [with_ts(m) for m in trade_frame]),
            ("frame", [with_ts(m) for m in quote_frame]),
            ("frame", [with_ts(amd_trade)]),
        ]
    ]
    provider = AlpacaStreamProvider(settings_for(fake), ["aapl", "AMD"])
    trades = run(collect(provider, 2))

    assert fake.content_types == ["application/msgpack"]
    auth, subscribe = fake.client_messages[:2]
    assert auth == {"action": "auth", "key": fake.key, "secret": fake.secret}
    assert subscribe["action"] == "subscribe"
    assert subscribe["trades"] == ["AAPL", "AMD"] and subscribe["quotes"] == ["AAPL", "AMD"]

    first, second = trades
    assert first.symbol == "AAPL" and first.price == 126.55 and first.size == 1
    assert first.ts == datetime(2021, 2, 22, 15, 51, 44, 208000, tzinfo=UTC)
    assert first.trade_id == "D-96921" and first.exchange == "D"
    assert first.conditions == ("@", "I")
    assert first.bid is None  # no AAPL quote seen yet
    # the last captured AMD quote (87.66 / 87.67) is attached to the next AMD print
    assert (second.symbol, second.bid, second.ask) == ("AMD", 87.66, 87.67)
    assert provider.counters["quotes"] == 3
    assert provider.rejects.total == 0


def test_reconnect_fills_the_gap_exactly_once(fake: FakeAlpaca, capture: dict) -> None:
    fake.tape = tape_from_capture(capture, 60)
    fake.sessions = [
        [("trades", 0, 20, 3), ("drop",)],  # the network dies after 20 prints
        [("trades", 35, 60, 4)],  # 20..34 happened while disconnected: REST only
    ]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    trades = run(collect(provider, 60))

    ids = [t.trade_id for t in trades]
    assert len(ids) == 60, f"got {len(ids)} prints"
    assert sorted(ids) == sorted(f"D-{p.trade_id}" for p in fake.tape)
    assert fake.connections == 2
    assert provider.counters["reconnects"] == 1
    assert provider.counters["duplicates"] > 0  # REST and stream overlapped, deduplicated
    # the gap fill asked from the last streamed print (minus the overlap), paginated
    start = datetime.fromisoformat(fake.rest_requests[0]["start"])
    assert start == fake.tape[19].ts - timedelta(seconds=0.05)
    assert fake.rest_requests[0]["feed"] == "iex"
    assert len(fake.rest_requests) > 1
    assert all(t.ts.tzinfo is not None and t.ts.utcoffset().total_seconds() == 0 for t in trades)
    # provenance: stream prints take the provider's (stream, iex); gap-fill prints say so
    assert provider.tick_source == "stream" and provider.feed == "iex"
    gap = [t for t in trades if t.source is not None]
    assert gap and {(t.source, t.feed) for t in gap} == {("gap_fill", "iex")}
    assert {f"D-{p.trade_id}" for p in fake.tape[20:35]} <= {t.trade_id for t in gap}


def test_gap_fill_pages_through_a_long_outage_with_bounded_buffering(
    fake: FakeAlpaca, capture: dict
) -> None:
    """A long outage: the gap fill must walk the REST API page by page (``limit`` and
    ``page_token``) and hand each page on before asking for the next, never holding the
    whole outage in memory; every print still arrives once, in time order."""
    fake.tape = tape_from_capture(capture, 400)
    fake.sessions = [[("trades", 0, 20, 5), ("drop",)], [("trades", 380, 400, 5)]]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"], queue_size=16, gap_page_limit=5)
    gap_ids = {f"D-{p.trade_id}" for p in fake.tape[20:380]}
    requests_at_first_gap_print: list[int] = []
    peak_queue = 0
    out: list[Trade] = []

    async def consume() -> None:
        nonlocal peak_queue
        async for event in provider:
            peak_queue = max(peak_queue, provider._queue.qsize())
            assert isinstance(event, Trade)
            if event.trade_id in gap_ids and not requests_at_first_gap_print:
                requests_at_first_gap_print.append(len(fake.rest_requests))
            out.append(event)
            if len(out) == 400:
                provider.stop()

    run(asyncio.wait_for(consume(), 30))
    ids = [t.trade_id for t in out]
    assert sorted(ids) == sorted(f"D-{p.trade_id}" for p in fake.tape)
    assert len(set(ids)) == 400
    gap = [t.ts for t in out if t.trade_id in gap_ids]
    assert gap == sorted(gap)  # a symbol's gap prints stay in time order
    assert provider.counters["duplicates"] > 0
    # pages of the asked size, each continuing where the last ended
    assert all(r["limit"] == "5" for r in fake.rest_requests)
    assert "page_token" not in fake.rest_requests[0]
    tokens = [int(r["page_token"]) for r in fake.rest_requests[1:]]
    assert tokens == [5 * k for k in range(1, len(fake.rest_requests))]
    assert len(fake.rest_requests) >= 360 // 5
    # the first gap print reached the consumer long before the last page was asked for
    assert requests_at_first_gap_print[0] <= 8, requests_at_first_gap_print
    assert peak_queue <= 16


def test_a_failed_gap_fill_page_is_retried_from_its_own_token(
    fake: FakeAlpaca, capture: dict
) -> None:
    fake.tape = tape_from_capture(capture, 60)
    fake.sessions = [[("trades", 0, 20, 4), ("drop",)], [("trades", 50, 60, 5)]]
    fake.fail_pages = ["10"]  # the third page fails once
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"], gap_page_limit=5)
    trades = run(collect(provider, 60, timeout=15))
    assert sorted(t.trade_id for t in trades) == sorted(f"D-{p.trade_id}" for p in fake.tape)
    tokens = [r.get("page_token", "") for r in fake.rest_requests]
    assert tokens[:4] == ["", "5", "10", "10"]  # resumed at the failed page, not restarted
    assert provider.counters["gap_fill_failures"] == 0


def test_406_waits_for_the_slot_then_streams(
    fake: FakeAlpaca, capture: dict, caplog: pytest.LogCaptureFixture
) -> None:
    fake.tape = tape_from_capture(capture, 5)
    fake.refuse_auth = [406, 406]
    fake.sessions = [[("trades", 0, 5)]]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    with caplog.at_level(logging.WARNING, "streaming.venues.alpaca.data"):
        trades = run(collect(provider, 5))
    assert len(trades) == 5
    assert provider.counters["slot_busy"] == 2
    assert fake.connections == 3
    assert "406 connection limit exceeded" in caplog.text
    assert fake.secret not in caplog.text


@pytest.mark.parametrize(
    ("code", "setting"), [(402, "ALPACA_API_KEY"), (409, "ALPACA_FEED"), (405, "SYMBOLS")]
)
def test_fatal_codes_stop_with_a_clear_error(fake: FakeAlpaca, code: int, setting: str) -> None:
    if code == 402:
        settings = settings_for(fake).model_copy(update={"alpaca_secret_key": "wrong-secret"})
        from pydantic import SecretStr

        settings = settings.model_copy(update={"alpaca_secret_key": SecretStr("wrong-secret")})
    else:
        settings = settings_for(fake)
        fake.refuse_auth = [code]
    provider = AlpacaStreamProvider(settings, ["AAPL"])
    with pytest.raises(ProviderError) as info:
        run(collect(provider, 1))
    message = str(info.value)
    assert setting in message and str(code) in message
    assert "wrong-secret" not in message and fake.secret not in message
    assert fake.connections == 1  # stopped: no retry storm


def test_error_frame_mid_session_reconnects(fake: FakeAlpaca, capture: dict) -> None:
    fake.tape = tape_from_capture(capture, 10)
    fake.sessions = [[("trades", 0, 4), ("error", 407)], [("trades", 4, 10)]]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    trades = run(collect(provider, 10))
    assert [t.trade_id for t in trades] == [f"D-{p.trade_id}" for p in fake.tape]
    assert provider.counters["reconnects"] == 1


def test_silence_watchdog_reconnects_only_while_market_open(
    fake: FakeAlpaca, capture: dict
) -> None:
    fake.tape = tape_from_capture(capture, 6)
    fake.sessions = [[("trades", 0, 3)], [("trades", 3, 6)]]  # session 1 goes quiet
    settings = settings_for(fake, alpaca_silence_seconds=0.5)
    provider = AlpacaStreamProvider(settings, ["AAPL"], market_open=lambda now: True)
    trades = run(collect(provider, 6))
    assert len({t.trade_id for t in trades}) == 6
    assert provider.counters["silence_reconnects"] == 1

    fake.reset()
    fake.tape = tape_from_capture(capture, 3)
    fake.sessions = [[("trades", 0, 3)]]
    closed = AlpacaStreamProvider(settings, ["AAPL"], market_open=lambda now: False)
    run(collect(closed, 99, timeout=2.0))  # quiet for 4× the threshold: market closed
    assert closed.counters["silence_reconnects"] == 0 and fake.connections == 1


def test_malformed_frames_are_counted_not_fatal(fake: FakeAlpaca, capture: dict) -> None:
    fake.tape = tape_from_capture(capture, 4)
    bad_trade = {"T": "t", "S": "AAPL", "i": 1, "p": "NaN?", "s": 1, "t": "not a time"}
    fake.sessions = [
        [
            ("trades", 0, 2),
            ("raw", b"\xc1\xff garbage"),
            ("raw", msgpack.packb({"T": "t"})),
            ("frame", [bad_trade, {"T": "b", "S": "AAPL"}]),
            ("raw", msgpack.packb([1, "x", None])),
            ("trades", 2, 4),
        ]
    ]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    trades = run(collect(provider, 4))
    assert len(trades) == 4
    assert provider.rejects.counts == {
        "malformed_frame": 1,
        "malformed_trade": 2,
        "malformed_message": 3,
    }
    assert fake.connections == 1


def test_missing_credentials_name_the_variable() -> None:
    with pytest.raises(MissingCredential) as info:
        AlpacaStreamProvider(Settings(_env_file=None), ["AAPL"])
    assert "ALPACA_API_KEY" in str(info.value) and "ALPACA_SECRET_KEY" in str(info.value)


def test_alpaca_py_speaks_the_same_protocol_as_the_fake(fake: FakeAlpaca, capture: dict) -> None:
    """The official SDK's stream client, against the fake, receives the tape: the fake is a
    faithful Alpaca server, so the tests above exercise the real protocol."""
    from alpaca.data.live import StockDataStream

    fake.tape = tape_from_capture(capture, 3)
    fake.sessions = [[("trades", 0, 3)]]
    received: list[Any] = []

    async def main() -> None:
        sdk = StockDataStream(fake.key, fake.secret, url_override=fake.ws_url)
        done = asyncio.Event()

        async def on_trade(trade: Any) -> None:
            received.append(trade)
            if len(received) == 3:
                done.set()

        sdk.subscribe_trades(on_trade, "AAPL")
        task = asyncio.create_task(sdk._run_forever())
        try:
            await asyncio.wait_for(done.wait(), 8)
        finally:
            task.cancel()  # stop() would wait ~5 s for its receive timeout
            with pytest.raises(asyncio.CancelledError):
                await task
            await sdk.close()  # else the legacy socket lingers 10 s in its close timeout

    run(main())
    assert [t.id for t in received] == [p.trade_id for p in fake.tape]
    assert received[0].timestamp == fake.tape[0].ts


# --- pure protocol pieces ----------------------------------------------------------------

_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_values = st.one_of(
    st.none(),
    st.booleans(),
    _int64,
    _int64.map(msgpack.Timestamp.from_unix_nano),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(_int64, max_size=3),
)
_messages = st.one_of(
    _values,
    st.fixed_dictionaries(
        {"T": st.sampled_from(["t", "q", "b", "subscription", "success", "zz"])},
        optional={k: _values for k in ("S", "i", "p", "s", "t", "x", "c", "bp", "ap", "bs")},
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    frames=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.lists(_messages, max_size=5).map(lambda m: msgpack.packb(m)),
            st.text(max_size=20),
        ),
        max_size=5,
    )
)
def test_fuzzed_frames_are_counted_never_raised(frames: list[bytes | str]) -> None:
    provider = AlpacaStreamProvider(
        Settings(_env_file=None, ALPACA_API_KEY="k", ALPACA_SECRET_KEY="s"), ["AAPL"]
    )
    for frame in frames:
        events = provider._parse_frame(frame)
        for event in events:  # whatever passes is a well-formed event
            assert event.ts.tzinfo is not None
            assert isinstance(event.symbol, str) and event.symbol
    # every rejected message left a reason and a sample
    assert set(provider.rejects.counts) == set(provider.rejects.samples)


def test_error_codes_classified() -> None:
    assert classify_error(406)[0] is ErrorAction.SLOT_BUSY
    for code, setting in ((402, "ALPACA_API_KEY"), (409, "ALPACA_FEED")):
        action, named = classify_error(code)
        assert action is ErrorAction.FATAL and setting in (named or "")
    assert classify_error(500)[0] is ErrorAction.RECONNECT
    assert classify_error("junk")[0] is ErrorAction.RECONNECT


def test_deduper_forgets_only_prints_older_than_its_retention() -> None:
    dedupe = TradeDeduper(retention_s=60)
    start = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)

    def trade(k: int, seconds: float) -> Trade:
        return Trade("AAPL", start + timedelta(seconds=seconds), 1.0, 1.0, trade_id=str(k))

    for k in range(5000):
        assert dedupe.first_time(trade(k, k * 0.1))  # 500 s of prints
    assert not dedupe.first_time(trade(4999, 499.9))
    assert not dedupe.first_time(trade(4500, 450.0))  # within 60 s: remembered
    assert len(dedupe) < 5000  # older keys were pruned


def test_deduper_holds_the_gap_window_through_a_long_outage() -> None:
    """A 30-minute outage: the prints just before the drop must still be known when the
    gap fill repeats them, although live prints after the reconnect are 30 min newer."""
    dedupe = TradeDeduper(retention_s=60)
    t0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    before = [Trade("AAPL", t0 + timedelta(seconds=k), 1.0, 1.0, f"b{k}") for k in range(10)]
    for t in before:
        dedupe.first_time(t)
    since = before[-1].ts - timedelta(seconds=2)
    dedupe.hold(since)
    for k in range(9000):  # live prints after the reconnect, 30 min later
        dedupe.first_time(Trade("AAPL", t0 + timedelta(minutes=30, seconds=k / 100), 1, 1, f"a{k}"))
    assert not dedupe.first_time(before[-1])  # the gap fill's repeat is still caught
    dedupe.release(since)
    for k in range(9000, 13000):
        dedupe.first_time(Trade("AAPL", t0 + timedelta(minutes=30, seconds=k / 100), 1, 1, f"a{k}"))
    assert dedupe.first_time(before[0])  # released: the old window is forgotten


def test_xnys_calendar_gates_the_watchdog() -> None:
    assert xnys_open(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # Tuesday 10:00 New York
    assert not xnys_open(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # night
    assert not xnys_open(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # Thanksgiving
    assert not xnys_open(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Saturday


def test_debug_logging_never_shows_the_credentials(
    fake: FakeAlpaca, capture: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in review: with ``marketflow -v`` the websockets library logs every frame it
    sends, and the auth frame's hex dump ended with the secret's last bytes."""
    server_frames = [s["frame"] for s in capture["session"] if s["dir"] == "server"]
    trade = next(f for f in server_frames if f[0]["T"] == "t")[0]
    ts = datetime.fromisoformat(trade["t"])
    msg = {**trade, "t": msgpack.Timestamp.from_unix_nano(int(ts.timestamp()) * 10**9)}
    fake.sessions = [[("frame", [msg])]]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    with caplog.at_level(logging.DEBUG):
        assert run(collect(provider, 1))
    # every record but the fake server's own (it receives the auth frame; not marketflow)
    text = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")
    )
    assert "BINARY" not in text  # no frame dumps at all from the client side
    for secret in (fake.key, fake.secret):
        raw = secret.encode()
        for tail in (raw[-6:].hex(" "), raw[:6].hex(" "), secret[-6:], secret[:6]):
            assert tail not in text, tail


def test_a_future_print_does_not_move_the_gap_fill_start(fake: FakeAlpaca, capture: dict) -> None:
    """One print stamped a day ahead must not become the stream's clock: the gap fill after
    the drop still starts at the last valid print and recovers every missed one."""
    fake.tape = tape_from_capture(capture, 60)
    future = replace(fake.tape[19], ts=datetime.now(UTC) + timedelta(days=1), trade_id=999_999)
    fake.sessions = [
        [("trades", 0, 20, 3), ("frame", [future.stream()]), ("drop",)],
        [("trades", 35, 60, 4)],
    ]
    provider = AlpacaStreamProvider(settings_for(fake), ["AAPL"])
    trades = run(collect(provider, 61))

    ids = {t.trade_id for t in trades}
    assert {f"D-{p.trade_id}" for p in fake.tape} <= ids  # nothing of the gap lost
    start = datetime.fromisoformat(fake.rest_requests[0]["start"])
    assert start == fake.tape[19].ts - timedelta(seconds=0.05)
