"""Order books from the real market-channel captures (docs/semantics.md), and a fuzz of frames."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.polymarket.book import BookStore

BOOK_ASSET = "48331043336612883890938759509493159234755048973500640148014422747788308965732"


def load(captures: Path, name: str) -> dict:
    return json.loads((captures / "polymarket" / f"{name}.json").read_text())


def test_snapshot_best_levels_are_last(captures):
    store = BookStore()
    raw = load(captures, "book")
    assert store.apply(raw, 1.0) == [BOOK_ASSET]
    book = store.book(BOOK_ASSET)
    assert (book.best_bid, book.best_ask) == (0.511, 0.514)
    assert raw["bids"][0]["price"] != "0.511"  # element 0 is the WORST level
    assert len(book.bids) == 76 and len(book.asks) == 86
    assert book.best_ask_size() == 20230.87
    assert book.ask_ladder()[:2] == [(0.514, 20230.87), (0.515, 43551.96)]
    assert book.bid_ladder()[0] == (0.511, 1304.72)
    # the array form (snapshots for several assets in one frame) and no event_type
    store2 = BookStore()
    bare = {k: v for k, v in raw.items() if k != "event_type"}
    assert store2.apply([bare], 1.0) == [BOOK_ASSET]
    assert store2.book(BOOK_ASSET).best_bid == 0.511


def test_legacy_price_change_updates_a_level(captures):
    store = BookStore()
    store.apply(load(captures, "book"), 1.0)
    change = load(captures, "price_change_legacy")  # SELL 0.514 → 21574.08
    # applied, but the top prices did not move: nothing to re-evaluate
    assert store.apply(change, 2.0) == []
    assert store.applied == 2
    book = store.book(BOOK_ASSET)
    assert book.asks[0.514] == 21574.08
    assert (book.best_bid, book.best_ask) == (0.511, 0.514)
    # a new better ask, then its removal by size 0
    assert store.apply(dict(change, price="0.513", size="10"), 3.0) == [BOOK_ASSET]
    assert book.best_ask == 0.513
    store.apply(dict(change, price="0.513", size="0"), 4.0)
    assert book.best_ask == 0.514 and 0.513 not in book.asks


def test_size_zero_at_a_deep_level_leaves_top(captures):
    store = BookStore()
    store.apply(load(captures, "book"), 1.0)
    book = store.book(BOOK_ASSET)
    deep = load(captures, "price_change_legacy") | {"price": "0.999", "size": "0"}
    assert store.apply(deep, 2.0) == []  # behind the top: not reported …
    store.watch.add(BOOK_ASSET)
    assert store.apply(deep | {"price": "0.998"}, 2.5) == [BOOK_ASSET]  # … unless watched
    assert 0.998 not in book.asks
    store.watch.clear()
    assert 0.999 not in book.asks and len(book.asks) == 84
    assert (book.best_bid, book.best_ask) == (0.511, 0.514)
    deep_bid = deep | {"side": "BUY", "price": load(captures, "book")["bids"][0]["price"]}
    store.apply(deep_bid, 3.0)
    assert len(book.bids) == 75 and book.best_bid == 0.511


def test_v2_price_changes_best_fields_are_authoritative(captures):
    v2 = load(captures, "price_change_v2")
    asset = v2["price_changes"][0]["asset_id"]
    store = BookStore()
    # a book on that asset first (derived from the real snapshot): bids ≤ 0.55, asks ≥ 0.7
    snap = {
        "event_type": "book",
        "asset_id": asset,
        "market": v2["market"],
        "timestamp": "1",
        "bids": [{"price": "0.4", "size": "10"}, {"price": "0.55", "size": "5"}],
        "asks": [{"price": "0.8", "size": "10"}, {"price": "0.7", "size": "7"}],
    }
    store.apply(snap, 1.0)
    assert store.apply(v2, 2.0) == [asset]  # three entries, one asset, reported once
    book = store.book(asset)
    # BUY 0.7 would cross the 0.7 ask; the venue says best bid 0.6, so it is not a bid
    assert (book.best_bid, book.best_ask) == (0.6, 0.7)
    assert 0.7 not in book.bids and book.bids[0.6] == 3300 and book.bids[0.5] == 3400
    assert book.asks[0.7] == 7
    assert book.ts_ms == 1729084877448


def test_price_change_before_any_snapshot_is_ignored(captures):
    store = BookStore()
    store.apply(load(captures, "price_change_legacy"), 1.0)
    book = store.book(BOOK_ASSET)
    assert not book.valid and not book.asks
    assert store.rejects.total == 0


def test_tick_size_change_invalidates_until_snapshot(captures):
    tick = load(captures, "tick_size_change")
    raw = load(captures, "book") | {"asset_id": tick["asset_id"]}
    store = BookStore()
    store.apply(raw, 1.0)
    book = store.book(tick["asset_id"])
    assert book.valid
    store.apply(tick, 2.0)
    assert not book.valid and book.best_bid is None and book.tick_size == 0.001
    assert book.is_stale(2.0, 30.0)  # invalid ⇒ stale regardless of recency
    store.apply(load(captures, "price_change_legacy") | {"asset_id": tick["asset_id"]}, 3.0)
    assert not book.valid and not book.asks  # deltas wait for the snapshot
    store.apply(raw, 4.0)
    assert book.valid and (book.best_bid, book.best_ask) == (0.511, 0.514)


def test_last_trade_recorded(captures):
    trade = load(captures, "last_trade_price")
    store = BookStore()
    assert store.apply(trade, 1.0) == [trade["asset_id"]]
    last = store.book(trade["asset_id"]).last_trade
    assert (last.price, last.size, last.side, last.ts_ms) == (0.491, 85.36, "SELL", 1724564136087)


def test_staleness_by_silence_and_heartbeat(captures):
    store = BookStore()
    store.apply(load(captures, "book"), 100.0)
    book = store.book(BOOK_ASSET)
    assert not book.is_stale(120.0, 30.0)
    assert book.is_stale(131.0, 30.0)
    store.touch([BOOK_ASSET], 130.0)  # the connection answered PONG: quiet, not stale
    assert not book.is_stale(131.0, 30.0)
    store.reset()
    assert book.is_stale(131.0, 30.0)


def test_unsubscribed_assets_are_ignored(captures):
    store = BookStore(assets=["other"])
    assert store.apply(load(captures, "book"), 1.0) == []
    assert store.ignored == 1 and store.book(BOOK_ASSET) is None


def test_malformed_elements_counted_and_skipped(captures):
    store = BookStore()
    store.apply(load(captures, "book"), 1.0)
    assert store.apply_text("{not json", 2.0) == []
    assert (
        store.apply_text(
            json.dumps(
                {
                    "event_type": "price_change",
                    "asset_id": BOOK_ASSET,
                    "price": "NaN",
                    "size": "1",
                    "side": "SELL",
                }
            ),
            2.0,
        )
        == []
    )
    assert (
        store.apply(
            [1, {"event_type": "book", "asset_id": BOOK_ASSET, "bids": "x", "asks": []}], 2.0
        )
        == []
    )
    v2 = {
        "event_type": "price_change",
        "price_changes": [
            {"asset_id": BOOK_ASSET, "price": "0.52", "size": "-1", "side": "SELL"},
            {"asset_id": BOOK_ASSET, "price": "0.513", "size": "5", "side": "SELL"},
        ],
    }
    assert store.apply(v2, 3.0) == [BOOK_ASSET]  # the good entry still applies
    assert store.book(BOOK_ASSET).best_ask == 0.513
    assert store.rejects.counts == {
        "bad_json": 1,
        "bad_price": 1,
        "not_an_object": 1,
        "bad_levels": 1,
        "bad_size": 1,
    }


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.sampled_from(["0.5", "0.514", "0", "1", "-1", "BUY", "SELL"]),
)
_level = st.one_of(st.fixed_dictionaries({"price": _values, "size": _values}), _values)
_frame = st.one_of(
    st.fixed_dictionaries(
        {
            "event_type": st.sampled_from(
                [
                    "book",
                    "price_change",
                    "tick_size_change",
                    "last_trade_price",
                    "best_bid_ask",
                    "other",
                ]
            ),
            "asset_id": st.sampled_from([BOOK_ASSET, "", None, 7]),
        },
        optional={
            "bids": st.one_of(_values, st.lists(_level, max_size=4)),
            "asks": st.one_of(_values, st.lists(_level, max_size=4)),
            "price": _values,
            "size": _values,
            "side": _values,
            "best_bid": _values,
            "best_ask": _values,
            "new_tick_size": _values,
            "timestamp": _values,
            "changes": st.one_of(_values, st.lists(_level, max_size=3)),
            "price_changes": st.one_of(
                _values,
                st.lists(
                    st.dictionaries(
                        st.sampled_from(
                            ["asset_id", "price", "size", "side", "best_bid", "best_ask"]
                        ),
                        _values,
                    ),
                    max_size=3,
                ),
            ),
        },
    ),
    _values,
    st.lists(_values, max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(_frame, max_size=8))
def test_fuzzed_frames_never_crash_and_keep_books_consistent(frames):
    store = BookStore()
    for i, frame in enumerate(frames):
        store.apply(frame, float(i))
        store.apply_text(json.dumps(frame, default=str)[:-1], float(i))  # truncated JSON
    for book in store.books.values():
        if book.bids:
            assert book.best_bid is None or book.best_bid >= max(book.bids)
        if book.asks:
            assert book.best_ask is None or book.best_ask <= min(book.asks)
        assert all(0 <= p <= 1 and s > 0 for p, s in book.bids.items())
        assert all(0 <= p <= 1 and s > 0 for p, s in book.asks.items())


def test_malformed_legacy_changes_and_infinite_timestamps_are_rejects_not_crashes(captures):
    """Found in review: a legacy ``changes`` element that is not an object raised TypeError,
    and an infinite timestamp (JSON ``Infinity``) raised OverflowError, out of ``apply``
    and into the socket loop, which then dropped the connection for one bad frame."""
    store = BookStore()
    store.apply(load(captures, "book"), 1.0)
    legacy = {"event_type": "price_change", "asset_id": BOOK_ASSET, "changes": [5, "x"]}
    assert store.apply(legacy, 2.0) == []
    assert store.rejects.counts.get("bad_change") == 2
    frame = (
        '{"event_type": "book", "asset_id": "%s", "timestamp": Infinity, "bids": [], "asks": []}'
    )
    assert store.apply_text(frame % BOOK_ASSET, 3.0) == [BOOK_ASSET]
    assert store.book(BOOK_ASSET).ts_ms is None  # unusable timestamp: unknown, not a crash
    change = {
        "event_type": "price_change",
        "timestamp": 1e400,
        "price_changes": [{"asset_id": BOOK_ASSET, "price": "0.5", "size": "1", "side": "BUY"}],
    }
    assert store.apply(change, 4.0) == [BOOK_ASSET]


def test_a_best_field_that_is_absent_leaves_its_side_alone(captures):
    """Found in review: a change carrying ``best_ask`` but no ``best_bid`` key (or a
    ``best_bid_ask`` event missing one) read the absent field as "no bids" and wiped the
    whole bid ladder. Only the fields present are authoritative."""
    store = BookStore()
    store.apply(load(captures, "book"), 1.0)
    book = store.book(BOOK_ASSET)
    bids_before = dict(book.bids)
    change = {
        "event_type": "price_change",
        "timestamp": "2",
        "price_changes": [
            {
                "asset_id": BOOK_ASSET,
                "price": "0.6",
                "size": "5",
                "side": "SELL",
                "best_ask": "0.514",
            }
        ],
    }
    store.apply(change, 2.0)
    assert book.bids == bids_before and book.best_bid == 0.511
    assert (book.best_ask, book.asks[0.6]) == (0.514, 5.0)
    store.apply({"event_type": "best_bid_ask", "asset_id": BOOK_ASSET, "best_bid": "0.51"}, 3.0)
    assert book.best_bid == 0.51 and 0.511 not in book.bids  # the bid side is authoritative
    assert book.best_ask == 0.514 and book.asks  # the absent ask side is untouched
