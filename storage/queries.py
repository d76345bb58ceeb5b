"""Shared reads and the bad-input counters: a candle window and ``ingest_rejects``
(ticks are read through ``storage.tick_reads``)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import psycopg

from core.events import Rejects

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
