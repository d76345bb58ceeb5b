"""Amendments on a real server: applied once, recorded with what the print was, an
unmatched one recorded and harmless, the record append-only; the candle of a minute
emptied by a cancel removed; migration 0010 keeps the views over ``backtest_trades``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core.timestamps import MINUTE_NS, to_ns
from storage.candle_writes import rebuild_amended_minutes, rebuild_minutes
from storage.migrate import downgrade, upgrade
from storage.tick_amendments import (
    APPLIED,
    DUPLICATE,
    UNMATCHED,
    AmendmentRow,
    apply_amendments,
    changed_minutes,
)

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def _aapl(conn: psycopg.Connection) -> int:
    row = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()
    assert row is not None
    return int(row[0])


def _seed(conn: psycopg.Connection, sid: int) -> None:
    conn.execute("select ensure_tick_partitions(%s::date, %s::date)", (T0.date(), T0.date()))
    rows = [
        (sid, T0 + timedelta(seconds=k * 10), f"D-{k}", 100.0 + k, 1.0 + k, ["@"])
        for k in range(8)  # minute 15:00 has prints 0..5, minute 15:01 prints 6 and 7
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into ticks (symbol_id, ts, trade_id, price, size, conditions)"
            " values (%s, %s, %s, %s, %s, %s)",
            rows,
        )
    minutes = {(sid, to_ns(T0)), (sid, to_ns(T0) + MINUTE_NS)}
    rebuild_minutes(conn, minutes, "test")


def _ticks(conn: psycopg.Connection, sid: int) -> list[tuple]:
    return conn.execute(
        "select trade_id, price, size, conditions, seq from ticks where symbol_id = %s"
        " order by ts, seq",
        (sid,),
    ).fetchall()


def test_correction_cancel_duplicate_and_unmatched(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _aapl(conn)
        _seed(conn, sid)
        before = _ticks(conn, sid)
        fix = AmendmentRow(
            sid, "correction", T0 + timedelta(seconds=20), "D-2", 102.0, 3.0, ("@",),
            "D-2b", 102.5, 30.0, ("@", "I"),
        )  # fmt: skip
        # stamped with the correction's own time, not the print's: found in the window
        cancel = AmendmentRow(sid, "cancel", T0 + timedelta(minutes=7), "D-7", 107.0, 8.0)
        ghost = AmendmentRow(sid, "cancel", T0, "D-99", 1.0, 1.0)
        results = apply_amendments(conn, [fix, cancel, ghost, fix, cancel], "test")
        assert [r.outcome for r in results] == [APPLIED, APPLIED, UNMATCHED, DUPLICATE, DUPLICATE]
        # a repeat still names the minute it changed, so a caller can rebuild its candle
        assert results[3].minute_ns == results[0].minute_ns == to_ns(T0)
        assert changed_minutes(results) == {(sid, to_ns(T0)), (sid, to_ns(T0) + MINUTE_NS)}
        after = _ticks(conn, sid)
        # corrected in place (same seq: its place in the tape), cancelled print gone
        assert after[2] == ("D-2b", 102.5, 30.0, ["@", "I"], before[2][4])
        assert [t[0] for t in after] == ["D-0", "D-1", "D-2b", "D-3", "D-4", "D-5", "D-6"]
        recorded = conn.execute(
            "select kind, trade_id, outcome, tick_price, tick_size, tick_seq, tick_ts"
            " from tick_corrections order by id"
        ).fetchall()
        assert recorded == [
            ("correction", "D-2", APPLIED, 102.0, 3.0, before[2][4], T0 + timedelta(seconds=20)),
            ("cancel", "D-7", APPLIED, 107.0, 8.0, before[7][4], T0 + timedelta(seconds=70)),
            ("cancel", "D-99", UNMATCHED, None, None, None, None),
        ]
        for statement in ("update tick_corrections set outcome = 'unmatched'",
                          "delete from tick_corrections", "truncate tick_corrections"):  # fmt: skip
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)


def test_a_correction_to_a_print_already_stored_removes_the_original(db_url: str) -> None:
    """The corrected print came first (a gap fill from REST reports trades corrected):
    the original goes, the corrected one is kept once."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _aapl(conn)
        _seed(conn, sid)
        conn.execute(
            "insert into ticks (symbol_id, ts, trade_id, price, size) values (%s, %s, %s, %s, %s)",
            (sid, T0 + timedelta(seconds=20), "D-2b", 102.5, 30.0),
        )
        fix = AmendmentRow(
            sid, "correction", T0 + timedelta(seconds=20), "D-2", 102.0, 3.0, (), "D-2b", 102.5,
            30.0,
        )  # fmt: skip
        (result,) = apply_amendments(conn, [fix], "test")
        assert result.outcome == APPLIED
        ids = [t[0] for t in _ticks(conn, sid)]
        assert ids.count("D-2b") == 1 and "D-2" not in ids


def test_emptied_minute_loses_its_candle(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = _aapl(conn)
        _seed(conn, sid)
        late = T0 + timedelta(minutes=1)
        gone = [AmendmentRow(sid, "cancel", late, f"D-{k}") for k in (6, 7)]
        gone.append(AmendmentRow(sid, "cancel", T0, "D-0"))
        keys = changed_minutes(apply_amendments(conn, gone, "test"))
        assert rebuild_amended_minutes(conn, keys, "test") == 2  # one rebuilt, one removed
        rows = conn.execute(
            "select ts, open, trade_count from candles_1m where symbol_id = %s order by ts",
            (sid,),
        ).fetchall()
        assert rows == [(T0, 101.0, 5)]


def test_migration_retypes_qty_with_views_over_backtest_trades(empty_db_url: str) -> None:
    upgrade(empty_db_url, "0009")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("create schema analytics")
        conn.execute(
            "create view analytics.stg_trades as select run_id, qty, qty * 2 as twice"
            " from backtest_trades"
        )
    upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        types = dict(
            conn.execute(
                "select table_schema || '.' || table_name, data_type from"
                " information_schema.columns where column_name = 'qty'"
                " and table_name in ('backtest_trades', 'stg_trades')"
            ).fetchall()
        )
        assert types == {
            "public.backtest_trades": "double precision",
            "analytics.stg_trades": "double precision",
        }
        columns = conn.execute(
            "select column_name from information_schema.columns where table_name = 'symbols'"
            " and column_name like '%increment%' or column_name = 'min_order_qty' order by 1"
        ).fetchall()
        assert [c[0] for c in columns] == ["min_order_qty", "price_increment", "qty_increment"]
    downgrade(empty_db_url, "0008")
    with psycopg.connect(empty_db_url) as conn:
        (kind,) = conn.execute(
            "select data_type from information_schema.columns where table_name = 'stg_trades'"
            " and column_name = 'qty'"
        ).fetchone() or (None,)
        assert kind == "integer"
        assert conn.execute("select to_regclass('tick_corrections')").fetchone() == (None,)
