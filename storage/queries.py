"""Reads the command line shares with the rest (a symbol, a candle window, a stored session
profile, the newest print) and the bad-input counters (``ingest_rejects``). Ticks
themselves are read through ``storage.tick_reads``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import psycopg
import pyarrow.compute as pc
from psycopg.rows import dict_row

from core.events import Rejects
from storage.tick_archive import TickArchive


@dataclass(frozen=True)
class SymbolInfo:
    id: int
    symbol: str
    market: str
    timezone: str
    row_size: float


def find_symbol(conn: psycopg.Connection, symbol: str) -> SymbolInfo | None:
    """A symbol's id, market, time zone and row size (None when unknown)."""
    row = conn.execute(
        "select id, symbol, market, timezone, row_size from symbols where symbol = %s",
        (symbol.upper(),),
    ).fetchone()
    return None if row is None else SymbolInfo(int(row[0]), row[1], row[2], row[3], float(row[4]))


def footprint_configs(
    conn: psycopg.Connection, symbol_ids: list[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Each symbol's footprint_config row as {parameter: value} (absent: no row, every
    parameter at its default; a null value is a default too). The parameters' meaning and
    defaults are analytics.footprint_config's."""
    where, params = (
        ("", ()) if symbol_ids is None else (" where symbol_id = any(%s)", (symbol_ids,))
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"select * from footprint_config{where}", params).fetchall()
    return {
        int(row.pop("symbol_id")): {k: v for k, v in row.items() if k != "updated_at"}
        for row in rows
    }


def known_symbols(conn: psycopg.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("select symbol from symbols order by 1")]


def last_tick_time(
    conn: psycopg.Connection, symbol_id: int, archive: TickArchive | None = None
) -> datetime | None:
    """The symbol's newest print: in PostgreSQL, else in the newest archived day holding it
    (docs/retention.md)."""
    row = conn.execute("select max(ts) from ticks where symbol_id = %s", (symbol_id,)).fetchone()
    if row is not None and row[0] is not None:
        return row[0]
    archive = archive or TickArchive.configured()
    for day in sorted(archive.days(), reverse=True):
        ts = archive.read(day, ["ts"], symbol_ids=[symbol_id]).column("ts")
        if len(ts):
            return pc.max(ts).as_py()
    return None


def newest_tick(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The most recently stored print: symbol, ts, received_at, seq."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select s.symbol, t.ts, t.received_at, t.seq"
            " from ticks t join symbols s on s.id = t.symbol_id order by t.seq desc limit 1"
        ).fetchone()


def stored_profile(
    conn: psycopg.Connection, symbol_id: int, start: datetime, end: datetime
) -> pd.DataFrame:
    """volume_profile rows of one symbol with ``start <= bucket < end``."""
    with conn.cursor() as cur:
        cur.execute(
            "select bucket, price_level::float8, total_volume, buy_volume, sell_volume,"
            " trade_count from volume_profile where symbol_id = %s"
            " and bucket >= %s and bucket < %s order by bucket, price_level",
            (symbol_id, start, end),
        )
        columns = [d.name for d in cur.description or []]
        rows = pd.DataFrame(cur.fetchall(), columns=columns)
    if not rows.empty:
        rows["bucket"] = pd.to_datetime(rows["bucket"], utc=True)
    return rows


_CANDLE_COLS = "symbol_id, ts, open, high, low, close, volume, trade_count, vwap"


def candles_window(
    conn: psycopg.Connection, symbol_id: int, start: datetime, end: datetime
) -> pd.DataFrame:
    """Candles of one symbol with ``start <= ts < end``, oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            f"select {_CANDLE_COLS} from candles_1m where symbol_id = %s and ts >= %s "
            "and ts < %s order by ts",
            (symbol_id, start, end),
        )
        frame = pd.DataFrame(cur.fetchall(), columns=_CANDLE_COLS.split(", "))
    if not frame.empty:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def record_rejects(conn: psycopg.Connection, rejects: Rejects, day: date | None = None) -> int:
    """Add the counts of ``rejects`` to ``ingest_rejects`` (per UTC day, source, reason),
    keeping the newest sample. Returns the number of reasons written."""
    if not rejects.counts:
        return 0
    day = day or datetime.now(UTC).date()
    rows = [
        (day, rejects.source, reason, count, rejects.samples.get(reason))
        for reason, count in sorted(rejects.counts.items())
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into ingest_rejects (day, source, reason, count, sample, last_seen) "
            "values (%s, %s, %s, %s, %s, now()) on conflict (day, source, reason) do update "
            "set count = ingest_rejects.count + excluded.count,"
            " sample = coalesce(excluded.sample, ingest_rejects.sample),"
            " last_seen = excluded.last_seen",
            rows,
        )
    return len(rows)


def recent_rejects(conn: psycopg.Connection, limit: int = 10) -> list[dict[str, Any]]:
    """The most frequent bad-input reasons of today and yesterday (UTC)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select source, reason, count, last_seen from ingest_rejects"
            " where day >= (now() at time zone 'utc')::date - 1 order by count desc limit %s",
            (limit,),
        ).fetchall()


# the plausibility band's seeds: each symbol's last stored close of the past week
LAST_CLOSES_SQL = """
select s.symbol, c.close from symbols s
cross join lateral (
    select close from candles_1m
    where symbol_id = s.id and ts > now() - interval '7 days' and close > 0
    order by ts desc limit 1
) as c
"""


def last_closes(conn: psycopg.Connection) -> dict[str, float]:
    """Symbol → its last stored close within a week (symbols without one are absent)."""
    with conn.cursor() as cur:
        cur.execute(LAST_CLOSES_SQL)
        return {str(sym): float(close) for sym, close in cur.fetchall()}
