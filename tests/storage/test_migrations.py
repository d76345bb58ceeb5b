"""Alembic migrations on a real server: upgrade, downgrade, re-upgrade, seeds, partitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from core.contracts import Table
from storage.migrate import current_revision, downgrade, head_revision, upgrade


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select tablename from pg_tables where schemaname = current_schema()"
        ).fetchall()
    return {r[0] for r in rows}


def _partitions(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
        "where i.inhparent = 'ticks'::regclass"
    ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_upgrade(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    assert {t.value for t in Table} <= _tables(empty_db_url)

    downgrade(empty_db_url, "base")
    assert current_revision(empty_db_url) is None
    left = _tables(empty_db_url) - {"alembic_version"}
    assert left == set()
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select to_regclass('ticks_seq')").fetchone() == (None,)
        funcs = conn.execute(
            "select count(*) from pg_proc where proname = 'ensure_tick_partitions'"
        ).fetchone()
        assert funcs == (0,)

    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select count(*) from symbols").fetchone() == (11,)


def test_downgrade_to_schema_only_and_back(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    downgrade(empty_db_url, "0001")
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select count(*) from symbols").fetchone() == (0,)
        assert conn.execute("select count(*) from strategies").fetchone() == (0,)
    upgrade(empty_db_url)
    upgrade(empty_db_url)  # already at head: a no-op
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select count(*) from strategy_configs").fetchone() == (7,)


def test_seeds(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = {
            r[0]: r[1:]
            for r in conn.execute(
                "select symbol, market, timezone, row_size, asset_type from symbols"
            ).fetchall()
        }
        assert set(rows) == {
            "AAPL",
            "MSFT",
            "NVDA",
            "SPY",
            "QQQ",
            "TSLA",
            "AMZN",
            "VOD.L",
            "BP.L",
            "BTCUSD",
            "ETHUSDT",
        }
        assert rows["AAPL"] == ("XNYS", "America/New_York", 0.01, "stock")
        assert rows["VOD.L"] == ("XLON", "Europe/London", 0.01, "stock")
        assert rows["BTCUSD"] == ("24/7", "UTC", 0.5, "crypto")
        assert rows["ETHUSDT"] == ("24/7", "UTC", 0.05, "crypto")

        epic = conn.execute(
            "select provider, epic from symbol_providers where symbol = 'VOD.L'"
        ).fetchone()
        assert epic == ("ig", "IX.D.VOD.DAILY.IP")
        assert conn.execute(
            "select provider from symbol_providers where symbol = 'AAPL'"
        ).fetchone() == ("alpaca_ws",)

        sma = conn.execute(
            "select definition from strategies where name = 'AAPL SMA20 Breakout'"
        ).fetchone()
        assert sma == (
            {"type": "price_above_sma", "period": 20, "symbol": "AAPL", "signal": "BUY"},
        )
        configs = conn.execute(
            "select s.symbol, c.parameters from strategy_configs c "
            "join symbols s on s.id = c.symbol_id where c.strategy_name = 'auction_market'"
        ).fetchall()
        assert {c[0] for c in configs} == {"AAPL", "MSFT", "NVDA", "SPY", "QQQ", "TSLA", "AMZN"}
        assert all(
            c[1]
            == {
                "min_aggression_score": 70,
                "atr_stop_multiplier": 1.5,
                "atr_target_multiplier": 3.0,
            }
            for c in configs
        )


def test_partitions_created_ahead_and_function_idempotent(db_url: str) -> None:
    today = datetime.now(UTC).date()
    with psycopg.connect(db_url, autocommit=True) as conn:
        parts = _partitions(conn)
        for offset in range(-2, 8):
            assert f"ticks_{today + timedelta(days=offset):%Y%m%d}" in parts

        assert conn.execute(
            "select ensure_tick_partitions(%s, %s)", (today, today + timedelta(days=7))
        ).fetchone() == (0,)

        far = date(2001, 9, 10)
        created = conn.execute(
            "select ensure_tick_partitions(%s, %s)", (far, far + timedelta(days=1))
        ).fetchone()
        assert created == (2,)
        assert conn.execute("select ensure_tick_partitions(%s, %s)", (far, far)).fetchone() == (0,)
        assert {"ticks_20010910", "ticks_20010911"} <= _partitions(conn)

        # the partition's bounds are the UTC day: 23:59:59.999999Z of the 10th lands in it
        sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        conn.execute(
            "insert into ticks (symbol_id, ts, trade_id, price, size) values "
            "(%s, '2001-09-10 23:59:59.999999+00', 'a', 1, 1),"
            "(%s, '2001-09-11 00:00:00+00', 'b', 1, 1)",
            (sid, sid),
        )
        where = conn.execute(
            "select tableoid::regclass::text, trade_id from ticks order by trade_id"
        ).fetchall()
        assert where == [("ticks_20010910", "a"), ("ticks_20010911", "b")]
        seqs = conn.execute("select seq from ticks order by seq").fetchall()
        assert len({s[0] for s in seqs}) == 2  # seq filled from ticks_seq by default


def test_tick_outside_partitions_is_rejected(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "insert into ticks (symbol_id, ts, trade_id, price, size) "
                "values (%s, '1990-01-01T00:00:00Z', 'x', 1, 1)",
                (sid,),
            )


def test_ticks_keep_referential_integrity_with_symbols(db_url: str) -> None:
    """The per-statement check (0003) rejects what the foreign key did."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        spare = conn.execute(
            "insert into symbols (symbol) values ('SPARE') returning id"
        ).fetchone()[0]
        ts = datetime.now(UTC)
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="999999"):
            conn.execute(
                "insert into ticks (symbol_id, ts, trade_id, price, size) values "
                "(%s, %s, 'a', 1, 1), (999999, %s, 'b', 1, 1)",
                (sid, ts, ts),
            )
        with (
            pytest.raises(psycopg.errors.ForeignKeyViolation),
            conn.cursor() as cur,
            cur.copy("copy ticks (symbol_id, ts, trade_id, price, size) from stdin") as copy,
        ):
            copy.write_row((424242, ts, "c", 1.0, 1.0))
        assert conn.execute("select count(*) from ticks").fetchone() == (0,)

        conn.execute(
            "insert into ticks (symbol_id, ts, trade_id, price, size) values (%s, %s, 'a', 1, 1)",
            (sid, ts),
        )
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still has ticks"):
            conn.execute("delete from symbols where id = %s", (sid,))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("update symbols set id = 777777 where id = %s", (sid,))
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("truncate symbols cascade")
        conn.execute("delete from symbols where id = %s", (spare,))  # no ticks: fine
        conn.execute("update symbols set name = 'Apple' where id = %s", (sid,))
        assert conn.execute("select count(*) from ticks").fetchone() == (1,)


def test_migrate_command(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.settings import get_settings
    from marketflow.cli import main

    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # not used by migrate
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        assert f"base -> {head_revision()}" in capsys.readouterr().out
        assert main(["migrate", "--downgrade", "0001"]) == 0
        assert current_revision(empty_db_url) == "0001"
        assert main(["migrate", "--revision", "0002"]) == 0
        assert current_revision(empty_db_url) == "0002"
        assert main(["migrate", "--downgrade", "base"]) == 0
        assert current_revision(empty_db_url) is None
        capsys.readouterr()
        assert main(["migrate", "--revision", "nope"]) == 1
        assert "failed" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def test_new_partition_does_not_wait_for_readers(db_url: str) -> None:
    reader = psycopg.connect(db_url)  # an open transaction that has read ticks
    try:
        reader.execute("select count(*) from ticks")
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("set lock_timeout = '2s'")
            created = conn.execute(
                "select ensure_tick_partitions('1999-12-31', '2000-01-01')"
            ).fetchone()
            assert created == (2,)
            # the attached partition got the parent's key and seq index
            indexes = conn.execute(
                "select indexdef from pg_indexes where tablename = 'ticks_19991231'"
            ).fetchall()
            defs = " ".join(r[0] for r in indexes)
            assert "(symbol_id, ts, trade_id)" in defs and "(seq)" in defs
            sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
            insert = (
                "insert into ticks (symbol_id, ts, trade_id, price, size) "
                "values (%s, '1999-12-31T23:00:00Z', 'y2k', 1, 1)"
            )
            conn.execute(insert, (sid,))
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(insert, (sid,))
    finally:
        reader.close()


def test_downgrading_seeds_keeps_symbols_that_have_data(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        conn.execute(
            "insert into ticks (symbol_id, ts, trade_id, price, size)"
            " values (%s, now(), 'k', 1, 1)",
            (sid,),
        )
    downgrade(empty_db_url, "0001")
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select symbol from symbols").fetchall() == [("AAPL",)]
        assert conn.execute("select count(*) from ticks").fetchone() == (1,)
        assert conn.execute("select count(*) from strategies").fetchone() == (0,)
    upgrade(empty_db_url)  # the seeds come back around the kept row
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("select count(*) from symbols").fetchone() == (11,)
