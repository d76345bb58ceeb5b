"""What a chaos run proves on the stored data, after the platform stopped.

* ticks: every sequence number the demo ledger says was emitted is stored once (by
  ``trade_id`` ``<tag>-<n>`` per symbol); stored ids the ledger does not know are counted;
* candles: ``candles_1m`` equals candles recomputed from the stored ticks (the reconciliation
  rules: open/close by (ts, seq), volume to a relative 1e-9);
* profiles: what the run's profile asset runs stored (a full run, then incremental runs as
  the tick sensor requests them) equals a fresh full recompute over the final ticks, table by
  table (compared in a transaction that is rolled back).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from storage.db import libpq_url
from streaming.providers.demo_run import read_ledger


@dataclass(frozen=True)
class TickCount:
    emitted: int
    stored: int  # distinct (symbol, sequence number) of the run's trade ids
    lost: int  # emitted, not stored
    duplicated: int  # rows beyond the first of one (symbol, sequence number)
    unexpected: int  # stored under the run's tag, never emitted per the ledger
    foreign: int  # stored rows whose trade_id is not the run's at all


def count_ticks(
    emitted: dict[str, list[tuple[int, int]]], tags: set[str], stored: list[tuple[str, str]]
) -> TickCount:
    """Pure: ``emitted`` merged ranges per symbol, ``stored`` (symbol, trade_id) rows."""
    seqs: dict[str, list[int]] = {}
    foreign = 0
    for symbol, trade_id in stored:
        tag, _, n = trade_id.rpartition("-")
        if tag not in tags or not n.isdigit():
            foreign += 1
            continue
        seqs.setdefault(symbol, []).append(int(n))
    total_emitted = sum(hi - lo for r in emitted.values() for lo, hi in r)
    stored_n = lost_hit = duplicated = unexpected = 0
    for symbol in set(seqs) | set(emitted):
        values = np.asarray(seqs.get(symbol, []), dtype=np.int64)
        unique = np.unique(values)
        duplicated += int(values.size - unique.size)
        stored_n += int(unique.size)
        ranges = emitted.get(symbol, [])
        if ranges:
            starts = np.array([lo for lo, _ in ranges], dtype=np.int64)
            ends = np.array([hi for _, hi in ranges], dtype=np.int64)
            at = np.searchsorted(starts, unique, side="right") - 1
            inside = (at >= 0) & (unique < ends[np.maximum(at, 0)])
        else:
            inside = np.zeros(unique.size, dtype=bool)
        lost_hit += int(inside.sum())
        unexpected += int((~inside).sum())
    return TickCount(
        total_emitted, stored_n, total_emitted - lost_hit, duplicated, unexpected, foreign
    )


def tick_accounting(conn: psycopg.Connection, ledger: Path) -> TickCount:
    tags, emitted = read_ledger(ledger)
    rows = conn.execute(
        "select s.symbol, t.trade_id from ticks t join symbols s on s.id = t.symbol_id"
    ).fetchall()
    return count_ticks(emitted, tags, [(str(r[0]), str(r[1])) for r in rows])


def altered_ticks(conn: psycopg.Connection, *, rate: float, seed: int, start_ns: int) -> int:
    """Stored trades of the run whose time (to 1 µs), price or size differ from the seeded
    path's print of the same sequence number: stored exactly, not only once."""
    from streaming.providers.demo import run_prints

    tag = format(start_ns // 1_000_000_000, "x")
    rows = conn.execute(
        "select s.symbol, t.trade_id, (extract(epoch from t.ts) * 1000000)::bigint, "
        "t.price, t.size from ticks t join symbols s on s.id = t.symbol_id "
        "where t.trade_id like %s",
        (f"{tag}-%",),
    ).fetchall()
    by_symbol: dict[str, list[tuple[int, int, float, float]]] = {}
    for symbol, trade_id, us, price, size in rows:
        seq = str(trade_id).rpartition("-")[2]
        if seq.isdigit():
            by_symbol.setdefault(str(symbol), []).append((int(seq), int(us), price, size))
    altered = 0
    for symbol, stored in by_symbol.items():
        count = max(n for n, *_ in stored) + 1
        path = run_prints(symbol, rate=rate, seed=seed, start_ns=start_ns, count=count)
        for n, us, price, size in stored:
            if n >= path.ts_ns.size:
                altered += 1
                continue
            same_time = abs(int(path.ts_ns[n]) // 1000 - us) <= 1
            if not (same_time and path.price[n] == price and path.size[n] == size):
                altered += 1
    return altered


CANDLE_MISMATCH_SQL = """
with agg as (
    select
        symbol_id,
        date_trunc('minute', ts) as ts,
        (array_agg(price order by ts, seq))[1] as open,
        max(price) as high,
        min(price) as low,
        (array_agg(price order by ts desc, seq desc))[1] as close,
        sum(size) as volume,
        count(*)::integer as trade_count
    from ticks
    group by symbol_id, date_trunc('minute', ts)
)
select count(*)
from agg a
full join candles_1m c on c.symbol_id = a.symbol_id and c.ts = a.ts
where a.symbol_id is null
   or c.symbol_id is null
   or (c.open, c.high, c.low, c.close, c.trade_count)
      is distinct from (a.open, a.high, a.low, a.close, a.trade_count)
   or abs(c.volume - a.volume) > 1e-9 * greatest(1.0, abs(a.volume))
"""


def candle_mismatches(conn: psycopg.Connection) -> int:
    row = conn.execute(CANDLE_MISMATCH_SQL).fetchone()
    return int(row[0]) if row else 0


def _quiet_dagster() -> None:
    """The profile asset's module is loaded here outside Dagster: its beta and preview
    notices about the asset's own definition are noise in a chaos report."""
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def _profile_tables() -> dict[str, tuple[str, ...]]:
    from analytics.pipeline import (
        BIG_PRINT_COLUMNS,
        IMBALANCE_COLUMNS,
        ORDER_FLOW_COLUMNS,
        PROFILE_METRICS_COLUMNS,
        SESSION_VWAP_COLUMNS,
        VOLUME_PROFILE_COLUMNS,
    )

    return {
        "volume_profile": ("symbol_id", *VOLUME_PROFILE_COLUMNS),
        "profile_metrics": ("symbol_id", *PROFILE_METRICS_COLUMNS),
        "order_flow": ("symbol_id", *ORDER_FLOW_COLUMNS),
        "footprint_imbalances": ("symbol_id", *IMBALANCE_COLUMNS),
        "session_vwap": ("symbol_id", *SESSION_VWAP_COLUMNS),
        "big_prints": ("symbol_id", *BIG_PRINT_COLUMNS),
    }


QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # no step events


def materialize_profiles(database_url: str, day: datetime, write_from: datetime | None) -> int:
    """One run of the real ``session_profiles`` asset for the UTC day of ``day`` (in
    process, an ephemeral Dagster instance), tagged with ``write_from`` as the tick sensor
    tags its runs; returns the newest tick sequence number the run saw."""
    _quiet_dagster()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the ephemeral instance's schema
    import dagster as dg

    from assets.partitions import WRITE_FROM_TAG, partition_key_for
    from assets.profiles import session_profiles
    from assets.resources import PostgresResource

    tags = {WRITE_FROM_TAG: write_from.isoformat()} if write_from is not None else {}
    result = dg.materialize(
        [session_profiles],
        partition_key=partition_key_for(day),
        resources={"postgres": PostgresResource(database_url=database_url)},
        tags=tags,
        run_config=QUIET_RUN,
    )
    seqs = [
        int(m.metadata["max_seq"].value)  # type: ignore[arg-type]
        for m in result.asset_materializations_for_node("session_profiles")
        if "max_seq" in m.metadata
    ]
    return max(seqs, default=0)


def sensor_write_from(database_url: str, after_seq: int) -> datetime | None:
    """Where the tick sensor would start rewriting after cursor ``after_seq``."""
    _quiet_dagster()
    from orchestration.sensors import WRITE_FROM_MARGIN, tick_progress

    with psycopg.connect(libpq_url(database_url)) as conn:
        progress = tick_progress(conn, after_seq)
    if progress.first_ts is None:
        return None
    first: datetime = progress.first_ts
    return first - WRITE_FROM_MARGIN


def profile_mismatches(database_url: str, start: datetime, end: datetime) -> dict[str, int]:
    """Rows that differ (either way) between the stored profile tables and a fresh
    recompute of [start, end), per table; nothing is changed (rolled back)."""
    _quiet_dagster()
    from assets import profile_io
    from assets.profiles import compute_window, concat_frames
    from assets.resources import PostgresResource

    result, symbols, _ = compute_window(PostgresResource(database_url=database_url), start, end)
    ids = [s.id for s in symbols]
    tables = _profile_tables()
    out: dict[str, int] = {}
    with psycopg.connect(libpq_url(database_url)) as conn:
        where = sql.SQL("symbol_id = any(%(ids)s) and bucket >= %(start)s and bucket < %(end)s")
        params = {"ids": ids, "start": start, "end": end}
        for table, columns in tables.items():
            conn.execute(
                sql.SQL("create temp table {} on commit drop as select {} from {} where {}").format(
                    sql.Identifier(f"chaos_{table}"),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.Identifier(table),
                    where,
                ),
                params,
            )
        profile_io.replace_window(
            conn,
            start,
            end,
            ids,
            volume_profile=concat_frames(result.volume_profile),
            profile_metrics=concat_frames(result.profile_metrics),
            order_flow=concat_frames(result.order_flow),
            footprint=profile_io.FootprintRows(
                concat_frames(result.imbalances),
                concat_frames(result.session_vwap),
                concat_frames(result.big_prints),
            ),
        )
        for table, columns in tables.items():
            cols = sql.SQL(", ").join(map(sql.Identifier, columns))
            fresh = sql.SQL("select {} from {} where {}").format(cols, sql.Identifier(table), where)
            kept = sql.SQL("select {} from {}").format(cols, sql.Identifier(f"chaos_{table}"))
            query = sql.SQL(
                "select count(*) from (({} except all {}) union all ({} except all {})) d"
            ).format(kept, fresh, fresh, kept)
            row = conn.execute(query, params).fetchone()
            out[table] = int(row[0]) if row else 0
        conn.rollback()
    return out
