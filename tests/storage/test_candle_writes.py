"""Candle upserts on a real PostgreSQL: merge keeps earliest open / latest close, replace wins."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core.candle import Candle
from core.timestamps import to_datetime, to_ns
from storage.candle_writes import fold, merge_candles, replace_candles
from storage.db import connect

MINUTE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return MINUTE + timedelta(seconds=seconds)


def bar_of(symbol_id: int, prints: list[tuple[datetime, float, float]]) -> Candle:
    """The candle of some prints (time, price, size), as a stream increment."""
    prints = sorted(prints, key=lambda p: p[0])
    volume = sum(s for _, _, s in prints)
    return Candle(
        symbol_id=symbol_id,
        minute_ns=to_ns(MINUTE),
        open=prints[0][1],
        high=max(p for _, p, _ in prints),
        low=min(p for _, p, _ in prints),
        close=prints[-1][1],
        volume=volume,
        trade_count=len(prints),
        value=sum(p * s for _, p, s in prints),
        first_ts_ns=to_ns(prints[0][0]),
        last_ts_ns=to_ns(prints[-1][0]),
    )


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture
def aapl(conn: psycopg.Connection) -> int:
    return conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]


def stored(conn: psycopg.Connection, symbol_id: int) -> tuple:
    return conn.execute(
        "select open, high, low, close, volume, trade_count, vwap, first_ts, last_ts, source "
        "from candles_1m where symbol_id = %s and ts = %s",
        (symbol_id, MINUTE),
    ).fetchone()


def test_v11_late_trade_merges_into_the_stored_bar(conn: psycopg.Connection, aapl: int) -> None:
    # the late-print example: the 12:00 bar from 12:00:05 p10 s100, 12:00:40 p11 s50,
    # 12:00:59 p9 s25 is stored; a late 12:00:30 p12 s5 arrives after it
    full = bar_of(aapl, [(at(5), 10, 100), (at(40), 11, 50), (at(59), 9, 25)])
    merge_candles(conn, [full])
    assert stored(conn, aapl)[:6] == (10, 11, 9, 9, 175, 3)

    merge_candles(conn, [bar_of(aapl, [(at(30), 12, 5)])])
    o, h, low, c, v, n, vwap, first, last, source = stored(conn, aapl)
    assert (o, h, low, c, v, n) == (10, 12, 9, 9, 180, 4)  # close stays 9: 12:00:59 is later
    assert math.isclose(vwap, (10 * 100 + 11 * 50 + 9 * 25 + 12 * 5) / 180)
    assert (first, last, source) == (at(5), at(59), "stream")


def test_late_earliest_print_takes_the_open(conn: psycopg.Connection, aapl: int) -> None:
    merge_candles(conn, [bar_of(aapl, [(at(10), 100, 1), (at(20), 101, 1)])])
    merge_candles(conn, [bar_of(aapl, [(at(2), 99.5, 3)])])
    merge_candles(conn, [bar_of(aapl, [(at(50), 100.5, 2)])])
    assert stored(conn, aapl)[:6] == (99.5, 101, 99.5, 100.5, 7, 4)


def test_increments_in_any_order_give_the_bar_of_all_prints(
    conn: psycopg.Connection, aapl: int
) -> None:
    rng = random.Random(11)
    for trial in range(5):
        conn.execute("delete from candles_1m")
        seconds = rng.sample(range(60), 24)  # distinct times: open/close are unambiguous
        prints = [
            (at(s), round(rng.uniform(99, 101), 2), float(rng.randint(1, 50))) for s in seconds
        ]
        parts: list[list[tuple[datetime, float, float]]] = [[] for _ in range(6)]
        for p in prints:
            parts[rng.randrange(6)].append(p)
        increments = [bar_of(aapl, part) for part in parts if part]
        rng.shuffle(increments)
        # some increments meet in one batch (combined in Python), some meet the stored bar
        cut = rng.randrange(1, len(increments) + 1)
        merge_candles(conn, increments[:cut])
        for inc in increments[cut:]:
            merge_candles(conn, [inc])
        expect = bar_of(aapl, prints)
        got = stored(conn, aapl)
        assert got[:6] == (
            expect.open,
            expect.high,
            expect.low,
            expect.close,
            expect.volume,
            expect.trade_count,
        ), trial
        assert math.isclose(got[6], expect.vwap)
        assert (got[7], got[8]) == (to_datetime(expect.first), to_datetime(expect.last))

        # folding in one batch gives what meeting the stored bar gave
        folded = fold(increments)
        assert len(folded) == 1
        assert (folded[0].open, folded[0].close, folded[0].volume) == (
            expect.open,
            expect.close,
            expect.volume,
        )


def test_replace_overwrites_and_merge_then_continues(conn: psycopg.Connection, aapl: int) -> None:
    merge_candles(conn, [bar_of(aapl, [(at(1), 50, 10)])])
    reconciled = bar_of(aapl, [(at(0.5), 49, 5), (at(1), 50, 10), (at(58), 48, 1)])
    replace_candles(conn, [reconciled])
    row = stored(conn, aapl)
    assert row[:6] == (49, 50, 48, 48, 16, 3) and row[9] == "reconciled"
    # a provider bar without print times spans its minute; replacing twice keeps the last
    bars = [
        Candle.bar(aapl, MINUTE, (1.0, 2.0, 0.5, 1.5, 10.0)),
        Candle.bar(aapl, MINUTE, (1.0, 3.0, 0.5, 2.5, 12.0)),
    ]
    assert replace_candles(conn, bars, source="alpha_vantage") == 1
    row = stored(conn, aapl)
    assert row[:6] == (1.0, 3.0, 0.5, 2.5, 12.0, 0)
    assert (row[7], row[8]) == (MINUTE, MINUTE + timedelta(seconds=60) - timedelta(microseconds=1))


def test_merge_many_symbols_in_one_statement(conn: psycopg.Connection) -> None:
    ids = [r[0] for r in conn.execute("select id from symbols order by id").fetchall()]
    bars = [bar_of(i, [(at(3), 10.0 + i, 1.0)]) for i in ids]
    assert merge_candles(conn, bars + bars) == len(ids)  # duplicates combine in the batch
    volumes = conn.execute("select distinct volume from candles_1m").fetchall()
    assert volumes == [(2.0,)]


def test_merge_keeps_stored_open_on_equal_first_time() -> None:
    t5 = to_ns(at(5))
    a = Candle(1, to_ns(MINUTE), 10, 10, 10, 10, 1, 1, 10.0, t5, t5)
    b = Candle(1, to_ns(MINUTE), 11, 11, 11, 11, 1, 1, 11.0, t5, t5)
    merged = a.merge(b)
    assert (merged.open, merged.close, merged.vwap) == (10, 11, 10.5)
    no_vwap = a.merge(Candle.bar(1, MINUTE, (12, 12, 12, 12, 3)))
    assert no_vwap.vwap is None and no_vwap.close == 12  # a timeless bar ends at :59.999999


def test_bar_from_database_values_round_trips() -> None:
    c = Candle.bar(1, MINUTE, (1.0, 2.0, 0.5, 1.5, 3.0), 0, None, None, at(59))
    assert c.vwap is None and c.first == to_ns(MINUTE) and c.last == to_ns(at(59))
    assert c.ts == MINUTE and to_datetime(to_ns(at(12.345678))) == at(12.345678)
    empty = Candle.bar(1, MINUTE, (1.0, 1.0, 1.0, 1.0, 0.0))
    assert empty.value == 0.0 and empty.vwap is None  # no volume: nothing unknown to carry
