"""Query helpers on a real PostgreSQL: tick columns, latest candles, progress, rejects."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest

from core.events import Rejects, Trade
from storage.db import ConnectionPool, connect
from storage.queries import record_rejects
from storage.tick_reads import tick_columns
from storage.tick_writer import TickWriter

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with connect(db_url, autocommit=True) as c:
        yield c


def test_tick_columns_decode_binary_copy(conn: psycopg.Connection) -> None:
    writer = TickWriter(conn)
    trades = [
        Trade(
            "AAPL",
            T0 + timedelta(microseconds=i * 1500),
            100 + i * 0.01,
            1.5 * i,
            trade_id=str(i),
            side=(1, -1, None)[i % 3],
            bid=None if i % 2 else 99.99,
            ask=None if i % 2 else 100.5,
        )
        for i in range(50)
    ] + [Trade("MSFT", T0, 400.0, 2.0, trade_id="m")]
    writer.write(trades)
    ids = dict(conn.execute("select symbol, id from symbols").fetchall())

    cols = tick_columns(conn, T0, T0 + timedelta(minutes=1), ids["AAPL"])
    assert len(cols) == 50
    assert cols.ts.dtype == np.int64 and cols.price.dtype == np.float64
    expected_ns = [
        int((T0 + timedelta(microseconds=i * 1500)).timestamp()) * 10**9 + i * 1_500_000
        for i in range(50)
    ]
    assert cols.ts.tolist() == expected_ns
    assert np.allclose(cols.price, [100 + i * 0.01 for i in range(50)])
    assert cols.side.tolist() == [(1, -1, 0)[i % 3] for i in range(50)]
    assert np.isnan(cols.bid[1]) and cols.bid[0] == 99.99
    assert (np.diff(cols.seq) > 0).all()
    frame = cols.frame()
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]" and frame["ts"].iloc[0] == T0

    both = tick_columns(conn, T0, T0 + timedelta(minutes=1))
    assert len(both) == 51 and set(both.symbol_id.tolist()) == {ids["AAPL"], ids["MSFT"]}
    assert len(tick_columns(conn, T0 - timedelta(days=1), T0)) == 0
    assert list(cols.profile_frame().columns) == ["ts", "price", "size", "side", "bid", "ask"]
    # a venue that sent no side and no quote in the window: nothing is shipped for them,
    # the columns read as unknown and the profile computation is not given them
    msft = tick_columns(conn, T0, T0 + timedelta(minutes=1), ids["MSFT"])
    assert len(msft) == 1 and msft.known == frozenset()
    assert msft.side.tolist() == [0] and np.isnan(msft.bid).all() and np.isnan(msft.ask).all()
    assert list(msft.profile_frame().columns) == ["ts", "price", "size"]
    assert list(msft.frame().columns) == list(cols.frame().columns)


def test_record_rejects_accumulates(conn: psycopg.Connection) -> None:
    rejects = Rejects("alpaca_ws")
    rejects.add("bad_price", {"p": "nan"})
    rejects.add("bad_price", {"p": -1})
    rejects.add("bad_json", "{oops")
    day = date(2026, 3, 2)
    assert record_rejects(conn, rejects, day) == 2
    record_rejects(conn, rejects, day)
    rows = conn.execute(
        "select reason, count, sample from ingest_rejects order by reason"
    ).fetchall()
    assert rows == [("bad_json", 2, "'{oops'"), ("bad_price", 4, "{'p': 'nan'}")]
    assert record_rejects(conn, Rejects("x"), day) == 0


def test_pool_reuses_connections(db_url: str) -> None:
    pool = ConnectionPool(db_url, size=2)
    with pool.connection() as a:
        pid = a.info.backend_pid
    with pool.connection() as b:
        assert b.info.backend_pid == pid
        with pool.connection() as c:
            assert c.info.backend_pid != pid
    with pytest.raises(psycopg.errors.UndefinedTable), pool.connection() as d:
        d.execute("select * from no_such_table")
    with pool.connection() as e:
        assert e.execute("select 1").fetchone() == (1,)
    pool.close()
