"""The monitor's per-market view, episodes and staleness (in memory, no servers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.polymarket.book import BookStore
from streaming.polymarket.monitor import MarketInfo, Monitor
from tests.support.polymarket_fakes import snapshot

PAIR = MarketInfo("0xm1", 1, "PM:m1", "y1", "n1", fee_rate=0.0)


def fed(books: BookStore, now: float, yes_ask: str = "0.45", no_ask: str = "0.50") -> None:
    books.apply(snapshot("y1", [("0.44", "100")], [(yes_ask, "100"), ("0.60", "500")]), now)
    books.apply(snapshot("n1", [("0.49", "100")], [(no_ask, "40"), ("0.52", "500")]), now)


def make(markets=(PAIR,), stale_seconds: float = 30.0) -> tuple[Monitor, BookStore]:
    books = BookStore(assets=[])
    clock = iter(datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC) for i in range(60))
    monitor = Monitor(
        list(markets),
        books,
        min_edge=0.005,
        stale_seconds=stale_seconds,
        paper_max_cost=1000.0,
        clock=lambda: next(clock),
    )
    return monitor, books


def test_row_and_episode_opened_once():
    monitor, books = make()
    fed(books, 0.0)
    monitor.on_changed(["y1", "n1"], 0.0)
    (row,) = monitor.take_rows()
    assert (row.yes_bid, row.yes_ask, row.no_bid, row.no_ask) == (0.44, 0.45, 0.49, 0.50)
    assert row.spread == pytest.approx(0.95) and row.edge == pytest.approx(0.05)
    # 40 @ 0.45+0.50, then 0.45+0.52 = 0.97 still clears: 60 more (yes level exhausted)
    assert row.executable_size == pytest.approx(100)
    assert row.arbitrage and not row.stale
    (event,) = monitor.take_events()
    assert event.action == "open" and event.episode.kind == "pair"
    assert event.episode.entry.shares == pytest.approx(100)
    # more messages inside the same episode: no new episode, no duplicate row
    monitor.on_changed(["y1"], 1.0)
    monitor.on_changed(["n1"], 2.0)
    assert monitor.take_events() == [] and monitor.take_rows() == []


def test_stale_book_never_flags_and_closes_the_episode():
    monitor, books = make(stale_seconds=30.0)
    fed(books, 0.0)
    monitor.on_changed(["y1", "n1"], 0.0)
    monitor.take_rows()
    monitor.take_events()
    monitor.sweep(31.0)  # silence, no PONG: both books stale
    (row,) = monitor.take_rows()
    assert row.stale and not row.arbitrage and row.edge == pytest.approx(0.05)
    (event,) = monitor.take_events()
    assert event.action == "close"
    # a fresh snapshot while the other side stays silent: still stale, still no flag
    books.apply(snapshot("y1", [("0.43", "100")], [("0.44", "100")]), 40.0)
    monitor.on_changed(["y1"], 40.0)
    (row,) = monitor.take_rows()
    assert row.yes_ask == 0.44 and row.edge == pytest.approx(0.06)
    assert row.stale and not row.arbitrage
    assert monitor.take_events() == []


def test_episode_reopens_after_closing():
    monitor, books = make()
    fed(books, 0.0)
    monitor.on_changed(["y1", "n1"], 0.0)
    fed(books, 1.0, yes_ask="0.55")  # 0.55 + 0.50 > 1: gone
    monitor.on_changed(["y1"], 1.0)
    fed(books, 2.0)
    monitor.on_changed(["y1"], 2.0)
    assert [e.action for e in monitor.take_events()] == ["open", "close", "open"]


def test_neg_risk_basket_and_augmented_event():
    outcomes = [
        MarketInfo(f"0xe{i}", i, f"PM:e{i}", f"ey{i}", f"en{i}", event_id="ev", neg_risk=True)
        for i in range(3)
    ]
    augmented = [
        MarketInfo(
            f"0xa{i}",
            10 + i,
            f"PM:a{i}",
            f"ay{i}",
            f"an{i}",
            event_id="aug",
            neg_risk=True,
            augmented=True,
        )
        for i in range(3)
    ]
    monitor, books = make(outcomes + augmented)
    for prefix in ("e", "a"):
        for i, ask in enumerate(["0.30", "0.33", "0.31"]):
            books.apply(snapshot(f"{prefix}y{i}", [("0.2", "10")], [(ask, "50")]), 0.0)
            books.apply(snapshot(f"{prefix}n{i}", [("0.6", "10")], [("0.75", "50")]), 0.0)
    monitor.on_changed([f"{p}y{i}" for p in "ea" for i in range(3)], 0.0)
    baskets = [e for e in monitor.take_events() if e.episode.kind == "neg_risk"]
    assert len(baskets) == 1  # the augmented event is skipped
    ep = baskets[0].episode
    assert ep.key == "ev" and ep.best_edge == pytest.approx(0.06) and ep.size == 50
    assert ep.details["ask_sum"] == pytest.approx(0.94)


def test_reset_marks_rows_stale():
    monitor, books = make()
    fed(books, 0.0)
    monitor.on_changed(["y1", "n1"], 0.0)
    monitor.take_rows()
    books.reset(["y1", "n1"])
    monitor.on_changed(["y1", "n1"], 0.5)
    (row,) = monitor.take_rows()
    assert row.stale and row.yes_ask is None and not row.arbitrage


def test_last_trade_price_reaches_the_row():
    monitor, books = make()
    fed(books, 0.0)
    monitor.on_changed(["y1", "n1"], 0.0)
    monitor.take_rows()
    trade = {
        "event_type": "last_trade_price",
        "asset_id": "n1",
        "price": "0.491",
        "size": "85.36",
        "side": "SELL",
        "timestamp": "1724564136087",
    }
    monitor.on_changed(books.apply(trade, 1.0), 1.0)
    (row,) = monitor.take_rows()
    assert row.no_last == 0.491 and row.yes_last is None


def test_depth_behind_the_top_is_watched_only_while_the_edge_clears():
    monitor, books = make()
    fed(books, 0.0)
    monitor.on_changed(["y1", "n1"], 0.0)
    assert monitor.take_rows()[0].executable_size == pytest.approx(100)
    assert books.watch == {"y1", "n1"}
    # a deeper NO level grows: the top is unchanged but the executable size is not
    grow = {
        "event_type": "price_change",
        "asset_id": "n1",
        "price": "0.52",
        "size": "900",
        "side": "SELL",
        "timestamp": "2",
    }
    deeper_yes = {
        "event_type": "price_change",
        "asset_id": "y1",
        "price": "0.46",
        "size": "100",
        "side": "SELL",
        "timestamp": "3",
    }
    monitor.on_changed(books.apply(deeper_yes, 1.0), 1.0)
    (row,) = monitor.take_rows()
    assert row.executable_size == pytest.approx(200)  # 100 more at 0.46 + 0.52 = 0.98
    assert books.apply(grow, 1.5) == ["n1"]
    # the edge goes away: depth no longer matters, changes behind the top are not reported
    fed(books, 2.0, yes_ask="0.55")
    monitor.on_changed(["y1"], 2.0)
    assert books.watch == set()
    assert books.apply(grow | {"size": "901"}, 3.0) == []


_num = st.one_of(
    st.sampled_from(["0.45", "0.5", "0.55", "0", "1", "", "-0.1", "1.5", "nan", "1e309"]),
    st.floats(allow_nan=True),
    st.none(),
    st.integers(-2, 2),
)
_token = st.sampled_from(["y1", "n1", "zz", ""])
_entry = st.fixed_dictionaries(
    {
        "asset_id": _token,
        "price": _num,
        "size": _num,
        "side": st.sampled_from(["BUY", "SELL", "x", None]),
    },
    optional={"best_bid": _num, "best_ask": _num},
)
_event = st.one_of(
    st.builds(
        lambda t, b, a: {
            "event_type": "book",
            "asset_id": t,
            "bids": [{"price": p, "size": s} for p, s in b],
            "asks": [{"price": p, "size": s} for p, s in a],
        },
        _token,
        st.lists(st.tuples(_num, _num), max_size=3),
        st.lists(st.tuples(_num, _num), max_size=3),
    ),
    st.builds(
        lambda es: {"event_type": "price_change", "price_changes": es}, st.lists(_entry, max_size=3)
    ),
    st.builds(lambda e: {"event_type": "price_change", **e}, _entry),
    st.builds(
        lambda t, x: {"event_type": "tick_size_change", "asset_id": t, "new_tick_size": x},
        _token,
        _num,
    ),
    st.builds(
        lambda t, p: {
            "event_type": "last_trade_price",
            "asset_id": t,
            "price": p,
            "size": "1",
            "side": "BUY",
        },
        _token,
        _num,
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frames=st.lists(st.one_of(_event, st.lists(_event, max_size=3)), max_size=12),
    cut=st.integers(0, 5),
)
def test_fuzzed_frames_through_the_stream_callback(frames, cut):
    from streaming.polymarket.stream import PolymarketStream, StreamConfig

    cfg = StreamConfig(ws_url="ws://unused", min_edge=0.005, stale_seconds=30.0)
    stream = PolymarketStream(cfg, "postgresql://unused/x", None, [PAIR])
    for i, frame in enumerate(frames):
        text = json.dumps(frame)
        stream._on_frame(text, float(i))  # the exact callback the client calls per frame
        stream._on_frame(text[: len(text) - cut] if cut else text, float(i))
    stream.monitor.sweep(100.0)
    for row in stream.monitor.take_rows():
        if row.arbitrage:
            assert not row.stale and row.edge > 0.005 and row.executable_size > 0
        for price in (row.yes_bid, row.yes_ask, row.no_bid, row.no_ask):
            assert price is None or 0.0 <= price <= 1.0


def test_neg_risk_basket_needs_every_live_outcome():
    """Found in review: the basket summed the YES asks of the outcomes the monitor holds,
    i.e. the ACTIVE markets only. An outcome that is closed but not resolved (trading
    paused, awaiting resolution) dropped out of the sum, and a subset of outcomes under 1
    is not an arbitrage (the missing outcome may win). Every outcome not resolved NO must
    be present."""
    outcomes = [
        MarketInfo(
            f"0xe{i}",
            i,
            f"PM:e{i}",
            f"ey{i}",
            f"en{i}",
            event_id="ev",
            neg_risk=True,
            event_outcomes=4,
        )
        for i in range(3)
    ]
    monitor, books = make(outcomes)
    for i, ask in enumerate(["0.30", "0.33", "0.31"]):
        books.apply(snapshot(f"ey{i}", [("0.2", "10")], [(ask, "50")]), 0.0)
        books.apply(snapshot(f"en{i}", [("0.6", "10")], [("0.75", "50")]), 0.0)
    monitor.on_changed([f"ey{i}" for i in range(3)], 0.0)
    assert not [e for e in monitor.take_events() if e.episode.kind == "neg_risk"]
    complete = [MarketInfo(**{**m.__dict__, "event_outcomes": 3}) for m in outcomes]
    monitor, books = make(complete)
    for i, ask in enumerate(["0.30", "0.33", "0.31"]):
        books.apply(snapshot(f"ey{i}", [("0.2", "10")], [(ask, "50")]), 0.0)
    monitor.on_changed([f"ey{i}" for i in range(3)], 0.0)
    assert [e.episode.key for e in monitor.take_events() if e.episode.kind == "neg_risk"] == ["ev"]


def test_refreshed_market_info_replaces_the_old():
    """A refresh that re-reads a tracked market (an outcome of its event resolved NO, a new
    fee rate) updates it in place: add_markets used to skip every known market id."""
    old = [
        MarketInfo(
            f"0xe{i}",
            i,
            f"PM:e{i}",
            f"ey{i}",
            f"en{i}",
            event_id="ev",
            neg_risk=True,
            event_outcomes=4,
        )
        for i in range(3)
    ]
    monitor, books = make(old)
    for i, ask in enumerate(["0.30", "0.33", "0.31"]):
        books.apply(snapshot(f"ey{i}", [("0.2", "10")], [(ask, "50")]), 0.0)
    monitor.on_changed([f"ey{i}" for i in range(3)], 0.0)
    assert not monitor.take_events()
    assert (
        monitor.add_markets([MarketInfo(**{**m.__dict__, "event_outcomes": 3}) for m in old]) == []
    )
    assert monitor.by_token["ey1"][0].event_outcomes == 3
    monitor.on_changed(["ey0"], 1.0)
    assert [e.episode.key for e in monitor.take_events()] == ["ev"]
