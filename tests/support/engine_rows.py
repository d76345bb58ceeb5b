"""Rows the engine reads (candles_1m, profile_metrics, order_flow), inserted for its tests
and its benchmark, as the ingest writer and the analytics assets would write them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from core.settings import Settings

MINUTE = timedelta(minutes=1)


def symbol_ids(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("select symbol, id from symbols").fetchall())  # type: ignore[arg-type]


def insert_candles(
    conn: psycopg.Connection,
    symbol_id: int,
    closes: Sequence[float],
    now: datetime,
    spread: float = 0.2,
    volume: float = 1000.0,
) -> None:
    """One candle per minute, the last one the minute before ``now``; OHLC around each close."""
    start = now.replace(second=0, microsecond=0) - MINUTE * len(closes)
    rows = []
    prev = closes[0]
    for k, close in enumerate(closes):
        high = max(prev, close) + spread / 2
        low = min(prev, close) - spread / 2
        rows.append(
            (
                symbol_id,
                start + MINUTE * k,
                prev,
                high,
                low,
                close,
                volume,
                10,
                (high + low + close) / 3,
            )
        )
        prev = close
    with conn.cursor() as cur:
        cur.executemany(
            "insert into candles_1m (symbol_id, ts, open, high, low, close, volume, trade_count,"
            " vwap) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " on conflict (symbol_id, ts) do update set close = excluded.close,"
            " high = excluded.high, low = excluded.low",
            rows,
        )


def insert_profile(
    conn: psycopg.Connection,
    symbol_id: int,
    bucket: datetime,
    poc: float,
    vah: float,
    val: float,
    horizon: str = "session",
    lvns: Sequence[float] = (),
    row: float = 0.01,
) -> None:
    nodes = [{"price": p, "low": round(p - row, 8), "high": round(p + row, 8)} for p in lvns]
    conn.execute(
        "insert into profile_metrics (symbol_id, horizon, bucket, session_date, poc, vah, val,"
        " total_volume, lvns, hvns) values (%s, %s, %s, %s, %s, %s, %s, 1e5, %s, '[]')"
        " on conflict (symbol_id, horizon, bucket) do update set poc = excluded.poc,"
        " vah = excluded.vah, val = excluded.val, lvns = excluded.lvns",
        (symbol_id, horizon, bucket, bucket.date(), poc, vah, val, json.dumps(nodes)),
    )


def insert_flow(
    conn: psycopg.Connection,
    symbol_id: int,
    now: datetime,
    rows: Sequence[tuple[float, float, float]],
) -> None:
    """``rows`` = (buy_pressure, sell_pressure, cvd_total) per minute, oldest first, the last
    one the minute before ``now``."""
    start = now.replace(second=0, microsecond=0) - MINUTE * len(rows)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into order_flow (symbol_id, bucket, delta, cvd, cvd_total, buy_volume,"
            " sell_volume, buy_pressure, sell_pressure, trade_count)"
            " values (%s, %s, 0, %s, %s, %s, %s, %s, %s, 10)"
            " on conflict (symbol_id, bucket) do update set buy_pressure ="
            " excluded.buy_pressure, sell_pressure = excluded.sell_pressure,"
            " cvd_total = excluded.cvd_total, cvd = excluded.cvd",
            [
                (symbol_id, start + MINUTE * k, cvd, cvd, b, s, b, s)
                for k, (b, s, cvd) in enumerate(rows)
            ],
        )


NOW = datetime(2026, 11, 23, 15, 0, 0, tzinfo=UTC)  # a Monday, 10:00 New York


RISING = [99.5 + 0.025 * k for k in range(32)]  # 99.500 … 100.275, above its SMA20


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


def seed_aapl(conn: psycopg.Connection, now: datetime = NOW) -> int:
    aapl = symbol_ids(conn)["AAPL"]
    insert_candles(conn, aapl, RISING, now)
    insert_profile(conn, aapl, now - timedelta(minutes=1), 100.0, 100.2, 99.9, lvns=[100.6, 98.0])
    insert_profile(
        conn, aapl, now - timedelta(minutes=1), 99.0, 100.0, 98.0, horizon="composite", lvns=[101.5]
    )
    insert_flow(
        conn,
        aapl,
        now,
        [(60, 40, 1000), (65, 35, 1300), (70, 30, 1600), (72, 28, 1900), (75, 25, 2200)],
    )
    return aapl
