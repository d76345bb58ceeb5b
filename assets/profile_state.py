"""What an incremental profile run resumes from, read back from PostgreSQL.

Per symbol and session: the minute × bin cells already stored before the resume minute
(`volume_profile`), the order flow's per-minute trade counts (to check those cells), the
tick-rule state at the resume point and the ticks from the resume minute on. All reads
happen in the caller's read-only snapshot, so state and ticks belong to one instant.
The rule itself is in docs/profiles-incremental.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import psycopg

from analytics.aggressor_side import AggressorState
from analytics.bar_stats import BAR_COLUMNS
from analytics.order_flow import ORDER_FLOW_COLUMNS
from analytics.session_resume import METRICS_COMPARED, resume_state
from analytics.session_vwap import VwapState
from storage.tick_reads import ticks_by_symbol

# the validity rule of compute_session (finite, positive price and size), so the tick-rule
# state is taken from the same prints the analytics classify; NaN sorts above infinity
VALID_PRINT = (
    "t.price > 0 and t.price < 'infinity'::float8 and t.size > 0 and t.size < 'infinity'::float8"
)


# the cells of a session with nothing stored
EMPTY_CELLS = pd.DataFrame(
    {
        "bucket": pd.Series([], dtype="datetime64[ns, UTC]"),
        "price_level": pd.Series([], dtype="float64"),
        "total_volume": pd.Series([], dtype="float64"),
        "buy_volume": pd.Series([], dtype="float64"),
        "trade_count": pd.Series([], dtype="int64"),
    }
)


# the 1m/session metrics of a session with nothing stored
EMPTY_METRICS = pd.DataFrame(
    {
        "horizon": pd.Series([], dtype=object),
        "bucket": pd.Series([], dtype="datetime64[ns, UTC]"),
        **{c: pd.Series([], dtype="float64") for c in METRICS_COMPARED},
    }
)


@dataclass(frozen=True)
class SessionKey:
    """One symbol's session inside the window."""

    symbol_id: int
    open_ts: datetime
    close_ts: datetime


@dataclass(frozen=True)
class ResumePoint:
    """Where one symbol's session continues: cells before `resume_at` are kept."""

    session: SessionKey
    resume_at: datetime

    @property
    def symbol_id(self) -> int:
        return self.session.symbol_id


def _unnest(points: Sequence[ResumePoint]) -> tuple[list[int], list[datetime], list[datetime]]:
    return (
        [p.symbol_id for p in points],
        [p.session.open_ts for p in points],
        [p.resume_at for p in points],
    )


def last_stored_minutes(
    conn: psycopg.Connection, sessions: Sequence[SessionKey]
) -> dict[int, datetime]:
    """Per symbol, the newest order-flow minute stored for its session (absent: none)."""
    rows = conn.execute(
        "select s.id, max(o.bucket) from unnest(%s::bigint[], %s::timestamptz[], "
        "%s::timestamptz[]) as s (id, open_ts, close_ts) "
        "join order_flow as o on o.symbol_id = s.id "
        "and o.bucket >= date_trunc('minute', s.open_ts) and o.bucket < s.close_ts group by s.id",
        (
            [s.symbol_id for s in sessions],
            [s.open_ts for s in sessions],
            [s.close_ts for s in sessions],
        ),
    ).fetchall()
    return {int(r[0]): r[1] for r in rows if r[1] is not None}


CHANGED_MINUTE_SQL = f"""
with s as (
    select * from unnest(%(ids)s::bigint[], %(froms)s::timestamptz[], %(tos)s::timestamptz[])
        as s (id, from_ts, to_ts)
),
printed as (
    select t.symbol_id, date_trunc('minute', t.ts) as minute, count(*) as n
    from ticks as t
    join s on t.symbol_id = s.id and t.ts >= s.from_ts and t.ts < s.to_ts
    where t.ts >= %(first)s and t.ts < %(last)s and {VALID_PRINT}
    group by 1, 2
),
stored as (
    select o.symbol_id, o.bucket as minute, o.trade_count as n
    from order_flow as o
    join s on o.symbol_id = s.id and o.bucket >= s.from_ts and o.bucket < s.to_ts
),
recounted as (
    select coalesce(p.symbol_id, o.symbol_id) as symbol_id, coalesce(p.minute, o.minute) as minute
    from printed as p
    full join stored as o on o.symbol_id = p.symbol_id and o.minute = p.minute
    where p.n is distinct from o.n and coalesce(p.n, 0) + coalesce(o.n, 0) > 0
),
amended as (
    select c.symbol_id, date_trunc('minute', c.tick_ts) as minute
    from tick_corrections as c
    join s on c.symbol_id = s.id and c.tick_ts >= s.from_ts and c.tick_ts < s.to_ts
    where c.outcome = 'applied' and c.tick_ts >= %(first)s and c.tick_ts < %(last)s
)
select symbol_id, min(minute)
from (select * from recounted union all select * from amended) as changed
group by 1
"""


def first_recounted_minutes(
    conn: psycopg.Connection, spans: Sequence[tuple[int, datetime, datetime]]
) -> dict[int, datetime]:
    """Per symbol, the first minute in [from, to) whose valid prints no longer number the
    order flow's trade count (prints committed after the run that stored it, or new
    minutes) or whose prints a venue corrected or cancelled (``tick_corrections``: a
    correction keeps the count); absent: nothing changed. Otherwise ticks are only ever
    added, so an unchanged count is an unchanged minute; counting in SQL spares reading the
    sensor's margin again."""
    if not spans:
        return {}
    rows = conn.execute(
        CHANGED_MINUTE_SQL,
        {
            "ids": [s[0] for s in spans],
            "froms": [s[1] for s in spans],
            "tos": [s[2] for s in spans],
            "first": min(s[1] for s in spans),
            "last": max(s[2] for s in spans),
        },
    ).fetchall()
    return {int(r[0]): r[1] for r in rows}


FOOTPRINT_SQL = """
select v.symbol_id, array_agg(v.bucket_us), array_agg(v.price_level),
       array_agg(v.total_volume), array_agg(v.buy_volume), array_agg(v.trade_count)
from (
    select v.symbol_id, (extract(epoch from v.bucket) * 1000000)::bigint as bucket_us,
           v.price_level, v.total_volume, v.buy_volume, v.trade_count::bigint as trade_count
    from volume_profile as v
    join unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) as s (id, open_ts, resume_ts)
      on v.symbol_id = s.id and v.bucket >= date_trunc('minute', s.open_ts)
     and v.bucket < s.resume_ts
    order by v.symbol_id, v.bucket, v.price_level
) as v
group by v.symbol_id
"""


def load_footprints(
    conn: psycopg.Connection, points: Sequence[ResumePoint]
) -> dict[int, pd.DataFrame]:
    """Stored cells of each session before its resume minute: bucket, price_level,
    total_volume, buy_volume, trade_count. Binary, so every double comes back exactly."""
    frames: dict[int, pd.DataFrame] = {}
    with conn.cursor(binary=True) as cur:
        for symbol_id, bucket, level, total, buy, count in cur.execute(
            FOOTPRINT_SQL, _unnest(points)
        ):
            frames[int(symbol_id)] = pd.DataFrame(
                {
                    "bucket": pd.to_datetime(np.asarray(bucket, np.int64), unit="us", utc=True),
                    "price_level": np.asarray(level, np.float64),
                    "total_volume": np.asarray(total, np.float64),
                    "buy_volume": np.asarray(buy, np.float64),
                    "trade_count": np.asarray(count, np.int64),
                }
            )
    return frames


FLOW_SQL = """
select o.symbol_id, o.bucket, o.delta, o.cvd, o.cvd_total, o.buy_volume, o.sell_volume,
       o.buy_pressure, o.sell_pressure, o.trade_count::bigint, o.max_delta, o.min_delta,
       o.mean_trade_size, o.trade_size_sd
from order_flow as o
join unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) as s (id, open_ts, resume_ts)
  on o.symbol_id = s.id and o.bucket >= date_trunc('minute', s.open_ts)
 and o.bucket < s.resume_ts
order by 1, 2
"""
METRICS_SQL = """
select m.symbol_id, m.horizon, m.bucket, m.poc, m.vah, m.val, m.total_volume
from profile_metrics as m
join unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) as s (id, open_ts, resume_ts)
  on m.symbol_id = s.id and m.bucket >= date_trunc('minute', s.open_ts)
 and m.bucket < s.resume_ts
where m.horizon <> 'composite'
order by 1, 2, 3
"""


def _by_symbol(conn: psycopg.Connection, query: str, points, columns) -> dict[int, pd.DataFrame]:
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(query, _unnest(points)).fetchall()
    frame = pd.DataFrame(rows, columns=["symbol_id", *columns])
    for column in BAR_COLUMNS:  # nulls (minutes without prints) as NaN, not None
        if column in frame.columns:
            frame[column] = frame[column].astype(np.float64)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True).astype("datetime64[ns, UTC]")
    return {
        int(symbol_id): group.drop(columns="symbol_id").reset_index(drop=True)
        for symbol_id, group in frame.groupby("symbol_id", sort=False)
    }


def stored_flow(conn: psycopg.Connection, points: Sequence[ResumePoint]) -> dict[int, pd.DataFrame]:
    """Per symbol, the stored order-flow rows before the resume minute (binary: exact)."""
    return _by_symbol(conn, FLOW_SQL, points, ORDER_FLOW_COLUMNS)


VWAP_SQL = """
select distinct on (v.symbol_id) v.symbol_id, v.bucket, v.volume, v.vwap, v.sd
from session_vwap as v
join unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) as s (id, open_ts, resume_ts)
  on v.symbol_id = s.id and v.bucket >= date_trunc('minute', s.open_ts)
 and v.bucket < s.resume_ts
order by v.symbol_id, v.bucket desc
"""


def stored_vwap(
    conn: psycopg.Connection, points: Sequence[ResumePoint]
) -> dict[int, tuple[datetime, VwapState]]:
    """Per symbol, the last session VWAP row before the resume minute, its minute and the
    state it holds (binary: exact); absent: no print before it."""
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(VWAP_SQL, _unnest(points)).fetchall()
    return {int(r[0]): (r[1], VwapState(float(r[2]), float(r[3]), float(r[4]))) for r in rows}


def stored_metrics(
    conn: psycopg.Connection, points: Sequence[ResumePoint]
) -> dict[int, pd.DataFrame]:
    """Per symbol, the stored 1m and session metrics before the resume minute: horizon,
    bucket and the compared numbers (the node lists follow from the same cells and total)."""
    return _by_symbol(conn, METRICS_SQL, points, ("horizon", "bucket", *METRICS_COMPARED))


def footprint_consistent(
    cells: pd.DataFrame,
    flow: pd.DataFrame | None,
    first_minute: datetime,
    resume_at: datetime,
    vwap_minute: datetime | None,
) -> bool:
    """Whether stored cells and order flow agree before the resume minute: one order-flow
    row for every minute since the session's first, each minute's cells summing to its
    trade count, cells for every minute with volume, bar statistics for every minute with
    prints, and, once there were prints, the session VWAP's row of the minute before the
    resume minute (vwap_minute: the last one stored). Anything else (rows deleted by hand,
    a run that died between tables, rows of an older version) sends the symbol to a full
    recompute."""
    expected = pd.date_range(
        pd.Timestamp(first_minute), pd.Timestamp(resume_at), freq="min", inclusive="left"
    )
    if flow is None or not pd.DatetimeIndex(flow["bucket"]).equals(expected):
        return False
    traded = (flow["buy_volume"] + flow["sell_volume"]).to_numpy() > 0
    grouped = cells.groupby("bucket")["trade_count"]
    counts = grouped.sum().reindex(expected, fill_value=0).to_numpy()
    has_cells = expected.isin(grouped.size().index)
    printed = flow["trade_count"].to_numpy() > 0
    stats_known = ~np.isnan(flow[list(BAR_COLUMNS)].to_numpy(np.float64)).any(axis=1)
    return bool(
        (counts == flow["trade_count"].to_numpy()).all()
        and (has_cells == traded).all()
        and (stats_known == printed).all()
        and (vwap_minute == expected[-1] if printed.any() else vwap_minute is None)
    )


AGGRESSOR_SQL = f"""
select s.id, last.price, earlier.price
from unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) as s (id, open_ts, resume_ts)
left join lateral (
    select t.price from ticks as t
    where t.symbol_id = s.id and t.ts >= s.open_ts and t.ts < s.resume_ts and {VALID_PRINT}
    order by t.ts desc, t.seq desc limit 1
) as last on true
left join lateral (
    select t.price from ticks as t
    where t.symbol_id = s.id and t.ts >= s.open_ts and t.ts < s.resume_ts and {VALID_PRINT}
      and t.price <> last.price
    order by t.ts desc, t.seq desc limit 1
) as earlier on true
"""


def aggressor_states(
    conn: psycopg.Connection, points: Sequence[ResumePoint]
) -> dict[int, AggressorState]:
    """The tick-rule state after the last valid print before each resume minute: that
    print's price and the direction of the last price change (the latest earlier print at
    another price decides it), in the (ts, seq) order the analytics read prints in."""
    rows = conn.execute(AGGRESSOR_SQL, _unnest(points)).fetchall()
    return {int(r[0]): resume_state(r[1], r[2]) for r in rows}


# one index range per symbol (LATERAL): a symbol resuming at its open (no state yet) must
# not turn the read into a scan of the whole day's ticks for every symbol
CANDLES_SINCE_SQL = """
select c.symbol_id, c.ts, c.open, c.high, c.low, c.close, c.volume
from unnest(%(ids)s::bigint[], %(since)s::timestamptz[]) as s (id, from_ts)
cross join lateral (
    select * from candles_1m as c
    where c.symbol_id = s.id and c.ts >= s.from_ts and c.ts < %(end)s
    order by c.ts
) as c
"""


def load_ticks_since(
    conn: psycopg.Connection, points: Sequence[ResumePoint], end: datetime
) -> dict[int, pd.DataFrame]:
    """Each symbol's ticks from its resume minute to `end`, as `profile_io.load_ticks`."""
    since = {p.symbol_id: p.resume_at for p in points}
    by_symbol = ticks_by_symbol(conn, min(since.values(), default=end), end, since)
    return {sid: cols.profile_frame() for sid, cols in by_symbol.items()}


def load_candles_since(
    conn: psycopg.Connection, points: Sequence[ResumePoint], end: datetime
) -> dict[int, pd.DataFrame]:
    """Each symbol's candles_1m rows from its resume minute to `end`: ts, open, high, low,
    close, volume (binary, exact)."""
    if not points:
        return {}
    params = {
        "ids": [p.symbol_id for p in points],
        "since": [p.resume_at.replace(second=0, microsecond=0) for p in points],
        "end": end,
    }
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(CANDLES_SINCE_SQL, params).fetchall()
    columns = ["symbol_id", "ts", "open", "high", "low", "close", "volume"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]")
    return {
        int(symbol_id): group.drop(columns="symbol_id").reset_index(drop=True)
        for symbol_id, group in frame.groupby("symbol_id", sort=False)
    }
