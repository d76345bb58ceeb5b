"""TickWriter on a real PostgreSQL: idempotent COPY, distinct same-instant prints, partitions."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from core.events import Trade
from storage.db import connect
from storage.tick_rows import derived_trade_id
from storage.tick_writer import TickWriter

T0 = datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with connect(db_url, autocommit=True) as c:
        yield c


def _count(conn: psycopg.Connection, where: str = "true", params: tuple = ()) -> int:
    return conn.execute(f"select count(*) from ticks where {where}", params).fetchone()[0]


def _eth_trades(captures: Path, with_ids: bool = True) -> list[Trade]:
    with open(captures / "trades" / "ethusdt_1000_trades.csv", newline="") as fh:
        return [
            Trade(
                symbol="ETHUSDT",
                ts=datetime.fromtimestamp(int(r["timestamp"]) / 1000, tz=UTC),
                price=float(r["price"]),
                size=float(r["amount"]),
                trade_id=r["id"] if with_ids else None,
                side=1 if r["side"] == "buy" else -1,
                exchange="BINANCE",
            )
            for r in csv.DictReader(fh)
        ]


def test_same_instant_same_price_distinct_prints_are_kept(conn: psycopg.Connection) -> None:
    writer = TickWriter(conn)
    trades = [
        Trade("AAPL", T0, 150.25, 100, trade_id="1"),
        Trade("AAPL", T0, 150.25, 100, trade_id="2"),  # same instant, price, size: new id
        Trade("AAPL", T0, 150.25, 100),  # no venue id: derived
        Trade("AAPL", T0, 150.25, 100),  # an identical id-less print in the same batch
        Trade("AAPL", T0, 150.25, 50),
    ]
    result = writer.write(trades)
    assert (result.inserted, result.duplicates, result.rejected) == (5, 0, 0)
    rows = conn.execute("select trade_id, size from ticks order by seq").fetchall()
    assert rows == [
        ("1", 100.0),
        ("2", 100.0),
        (derived_trade_id(150.25, 100.0, 0), 100.0),
        (derived_trade_id(150.25, 100.0, 1), 100.0),
        (derived_trade_id(150.25, 50.0, 0), 50.0),
    ]


def test_overlapping_batches_drop_duplicates(conn: psycopg.Connection) -> None:
    writer = TickWriter(conn)
    trades = [
        Trade("MSFT", T0 + timedelta(milliseconds=i), 400 + i / 100, 10, trade_id=str(i))
        for i in range(300)
    ]
    first = writer.write(trades[:200])
    assert (first.inserted, first.staged) == (200, False)
    # a reconnect re-sends 50 stored prints followed by 100 new ones
    second = writer.write(trades[150:])
    assert (second.inserted, second.duplicates, second.staged) == (100, 50, True)
    # a fresh writer (new process) replaying everything stores nothing new
    again = TickWriter(conn).write(trades)
    assert (again.inserted, again.duplicates) == (0, 300)
    assert _count(conn) == 300
    # a duplicate inside one batch is dropped too
    dup = writer.write([Trade("MSFT", T0, 1.0, 1, trade_id="x")] * 2)
    assert (dup.inserted, dup.duplicates) == (1, 1)
    seqs = [r[0] for r in conn.execute("select seq from ticks").fetchall()]
    assert len(set(seqs)) == len(seqs) == 301


def test_replaying_the_same_file_twice_stores_once(
    conn: psycopg.Connection, captures: Path
) -> None:
    for with_ids in (True, False):
        conn.execute("delete from ticks")
        trades = _eth_trades(captures, with_ids=with_ids)
        for _ in range(2):
            writer = TickWriter(conn, source="replay")
            for start in range(0, len(trades), 250):
                writer.write(trades[start : start + 250])
        assert _count(conn) == 1000, with_ids
        total = conn.execute("select sum(size) from ticks").fetchone()[0]
        assert math.isclose(total, sum(t.size for t in trades))
    # sides travel: the file's known facts (tests/data/README.md): the 0.05 bin at 1666.20
    sells, buys = conn.execute(
        "select sum(size) filter (where side = -1), sum(size) filter (where side = 1) "
        "from ticks where round(price / 0.05) = 33324"
    ).fetchone()
    assert math.isclose(sells, 197.512) and math.isclose(buys, 88.98)


def test_new_day_partition_is_created(conn: psycopg.Connection) -> None:
    day = datetime(2009, 1, 3, 18, 15, 5, tzinfo=UTC)
    assert conn.execute("select to_regclass('ticks_20090103')").fetchone() == (None,)
    result = TickWriter(conn).write(
        [
            Trade("BTCUSD", day, 0.01, 50, trade_id="genesis"),
            Trade("BTCUSD", day + timedelta(days=1), 0.02, 1, trade_id="next"),
        ]
    )
    assert result.inserted == 2
    where = conn.execute("select tableoid::regclass::text from ticks order by ts").fetchall()
    assert where == [("ticks_20090103",), ("ticks_20090104",)]


def test_bad_prints_are_rejected_counted_and_skipped(conn: psycopg.Connection) -> None:
    now = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    writer = TickWriter(conn, source="test", clock=lambda: now)
    trades = [
        Trade("AAPL", T0, float("nan"), 10, trade_id="nan"),
        Trade("AAPL", T0, 150.0, -5, trade_id="neg"),
        Trade("AAPL", T0, -1.0, 5, trade_id="negp"),
        Trade("AAPL", T0, float("inf"), 5, trade_id="inf"),
        Trade("AAPL", T0.replace(tzinfo=None), 150.0, 5, trade_id="naive"),
        Trade("AAPL", now + timedelta(days=3), 150.0, 5, trade_id="future"),
        Trade("", T0, 150.0, 5, trade_id="nosym"),
        Trade("AAPL", T0, 150.0, 5, trade_id="ok", bid=float("nan"), ask=150.01),
    ]
    result = writer.write(trades)
    assert (result.received, result.inserted, result.rejected) == (8, 1, 7)
    rejects = writer.take_rejects()
    assert rejects.counts == {
        "bad_price": 3,
        "bad_size": 1,
        "naive_timestamp": 1,
        "timestamp_in_future": 1,
        "bad_symbol": 1,
    }
    assert "nan" in rejects.samples["bad_price"]
    assert writer.rejects.total == 0
    # the good print is stored; a broken quote is unknown, not a reason to drop the print
    assert conn.execute("select trade_id, bid, ask from ticks").fetchall() == [("ok", None, 150.01)]


def test_unknown_symbol_is_created_and_fields_round_trip(conn: psycopg.Connection) -> None:
    trade = Trade(
        "ZZZT",
        T0,
        12.5,
        0.125,
        trade_id="77",
        exchange="V",
        conditions=("@", "I"),
        side=-1,
        bid=12.49,
        ask=12.51,
    )
    assert TickWriter(conn).write([trade]).inserted == 1
    row = conn.execute(
        "select s.symbol, s.asset_type, t.ts, t.price, t.size, t.exchange, t.conditions,"
        " t.side, t.bid, t.ask, t.received_at is not null "
        "from ticks t join symbols s on s.id = t.symbol_id"
    ).fetchone()
    assert row == ("ZZZT", "stock", T0, 12.5, 0.125, "V", ["@", "I"], -1, 12.49, 12.51, True)


def test_write_inside_callers_transaction_rolls_back_with_it(conn: psycopg.Connection) -> None:
    writer = TickWriter(conn)
    with pytest.raises(RuntimeError), conn.transaction():
        writer.write([Trade("AAPL", T0, 1.0, 1, trade_id="a")])
        raise RuntimeError("caller fails after the write")
    assert _count(conn) == 0
    assert writer.write([Trade("AAPL", T0, 1.0, 1, trade_id="a")]).inserted == 1
    assert _count(conn) == 1


def test_int_sizes_and_other_timezones_map_to_the_same_keys(conn: psycopg.Connection) -> None:
    from zoneinfo import ZoneInfo

    writer = TickWriter(conn)
    local = T0.astimezone(ZoneInfo("America/New_York"))
    first = writer.write([Trade("AAPL", T0, 150, 100), Trade("AAPL", T0, 150.5, 7, trade_id=9)])
    assert first.inserted == 2
    # the same prints again, as floats and in New York time: nothing new
    again = writer.write(
        [Trade("AAPL", local, 150.0, 100.0), Trade("AAPL", local, 150.5, 7.0, trade_id="9")]
    )
    assert (again.inserted, again.duplicates) == (0, 2)
    assert conn.execute("select ts from ticks").fetchall() == [(T0,), (T0,)]
    bad_quote = writer.write([Trade("AAPL", T0, 1.0, 1, trade_id="q", bid="x", ask=-1)])  # type: ignore[arg-type]
    assert bad_quote.inserted == 1


def test_concurrent_writers_with_overlapping_prints_store_each_once(db_url: str) -> None:
    import threading

    trades = [
        Trade("NVDA", T0 + timedelta(microseconds=i), 100.0, 1.0, trade_id=str(i))
        for i in range(4000)
    ]
    batches_a = [trades[i : i + 500] for i in range(0, 4000, 500)]
    batches_b = [list(reversed(b)) for b in reversed(batches_a)]  # opposite order: deadlocks
    errors: list[BaseException] = []
    inserted: list[int] = []

    def work(batches: list[list[Trade]]) -> None:
        try:
            with connect(db_url, autocommit=True) as conn:
                writer = TickWriter(conn)
                inserted.append(sum(writer.write(b).inserted for b in batches))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,)) for b in (batches_a, batches_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(inserted) == 4000
    with connect(db_url) as conn:
        assert _count(conn) == 4000


def test_partition_dropped_under_the_writer_is_recreated(conn: psycopg.Connection) -> None:
    writer = TickWriter(conn)
    old = datetime(2015, 6, 1, 12, tzinfo=UTC)
    assert writer.write([Trade("SPY", old, 200.0, 1, trade_id="a")]).inserted == 1
    conn.execute("drop table ticks_20150601")  # retention dropped the day meanwhile
    assert writer.write([Trade("SPY", old, 200.0, 1, trade_id="b")]).inserted == 1
    assert _count(conn) == 1


def test_live_day_creates_partitions_ahead(conn: psycopg.Connection) -> None:
    now = datetime(2031, 5, 1, 23, 59, tzinfo=UTC)
    writer = TickWriter(conn, clock=lambda: now)
    assert writer.write([Trade("AAPL", now, 10.0, 1, trade_id="1")]).inserted == 1
    names = {
        r[0]
        for r in conn.execute(
            "select relname from pg_class where relname like 'ticks_203105%%' and relkind = 'r'"
        ).fetchall()
    }
    assert names == {f"ticks_203105{d:02d}" for d in range(1, 9)}
    # the next day is already there: writing into it creates nothing new
    assert conn.execute("select ensure_tick_partitions('2031-05-02', '2031-05-08')").fetchone() == (
        0,
    )


def test_streaming_path_falls_back_for_new_symbols_days_and_counts_rejects_once(
    conn: psycopg.Connection,
) -> None:
    now = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    writer = TickWriter(conn, clock=lambda: now)
    writer.write([Trade("AAPL", T0, 1.0, 1, trade_id="warm")])  # known day and symbol now
    batch = [
        Trade("AAPL", T0, 2.0, 1, trade_id="s1"),
        Trade("AAPL", T0, float("nan"), 1, trade_id="bad"),
        Trade("AAPL", T0, 2.0, -1, trade_id="bad2"),
    ]
    result = writer.write(batch)  # the streaming path (nothing to set up)
    assert (result.inserted, result.rejected, result.staged) == (1, 2, False)
    assert writer.rejects.counts == {"bad_price": 1, "bad_size": 1}

    # a symbol the writer never saw, mid-batch: the COPY is abandoned and redone exactly
    mixed = [
        Trade("AAPL", T0, 3.0, 1, trade_id="s2"),
        Trade("NEWSYM", T0, 3.0, 1, trade_id="n1"),
        Trade("AAPL", T0, float("inf"), 1, trade_id="bad3"),
    ]
    result = writer.write(mixed)
    assert (result.inserted, result.rejected) == (2, 1)
    assert writer.rejects.counts == {"bad_price": 2, "bad_size": 1}

    # a day without a known partition, mid-batch
    old = datetime(2012, 7, 4, 15, tzinfo=UTC)
    result = writer.write(
        [Trade("AAPL", T0, 4.0, 1, trade_id="s3"), Trade("AAPL", old, 4.0, 1, trade_id="o1")]
    )
    assert result.inserted == 2
    assert _count(conn) == 6
    assert sorted(r[0] for r in conn.execute("select trade_id from ticks").fetchall()) == [
        "n1",
        "o1",
        "s1",
        "s2",
        "s3",
        "warm",
    ]
