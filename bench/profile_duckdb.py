"""The profile benchmark's work in DuckDB's SQL (``bench/profile_engines.py`` says what the
work is and how both engines' results are compared with compute_session's)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.profile_engines import RATIO

DUCKDB_CLASSIFIED = """
create or replace temp table classified as
with changes as (
    select
        seq,
        price,
        size,
        date_trunc('minute', ts) as minute,
        floor(price * $inverse + 0.5)::bigint as bin,
        case
            when price > lag(price) over by_arrival then 1
            when price < lag(price) over by_arrival then -1
        end as change
    from ticks
    window by_arrival as (order by seq)
)
select
    seq,
    minute,
    bin,
    size,
    price - first_value(price) over (order by seq) as away,
    coalesce(
        last_value(change ignore nulls) over (
            order by seq rows between unbounded preceding and current row
        ),
        0
    ) as tick
from changes
"""

# the session's running delta, a minute's runs from the value before its first print
DUCKDB_RUNNING = """
create or replace temp table running as
select
    seq,
    minute,
    size,
    away,
    sum(size * tick) over (order by seq rows between unbounded preceding and current row)
        as running,
    size * tick as flow
from classified
"""

DUCKDB_FOOTPRINT = """
create or replace temp table footprint as
select
    minute,
    bin,
    sum(size) as volume,
    sum(size * (tick + 1) / 2) as buy,
    sum(size * (1 - tick) / 2) as sell,
    count(*) as trades
from classified
group by minute, bin
order by minute, bin
"""

DUCKDB_FLOW = """
select
    minute,
    sum(buy) as buy,
    sum(sell) as sell,
    sum(buy) - sum(sell) as delta,
    sum(sum(buy) - sum(sell)) over (order by minute) as cvd
from footprint
group by minute
order by minute
"""

DUCKDB_BARS = """
with minutes as (
    select
        minute,
        count(*) as trades,
        max(running) - arg_min(running - flow, seq) as max_delta,
        min(running) - arg_min(running - flow, seq) as min_delta,
        avg(size) as mean_size,
        stddev_pop(size) as size_sd,
        sum(size) as volume,
        sum(size * away) as notional,
        sum(size * away * away) as squares
    from running
    group by minute
),
session as (
    select
        *,
        sum(notional) over upto / sum(volume) over upto as mean_away,
        sum(squares) over upto / sum(volume) over upto as square_away
    from minutes
    window upto as (order by minute)
)
select
    minute,
    trades,
    max_delta,
    min_delta,
    mean_size,
    size_sd,
    $first + mean_away as vwap,
    sqrt(greatest(square_away - mean_away * mean_away, 0)) as sd
from session
order by minute
"""

DUCKDB_IMBALANCES = """
with neighbours as (
    select
        f.minute,
        f.bin,
        f.buy,
        f.sell,
        coalesce(below.sell, 0) as sells_below,
        coalesce(above.buy, 0) as buys_above
    from footprint as f
    left join footprint as below on below.minute = f.minute and below.bin = f.bin - 1
    left join footprint as above on above.minute = f.minute and above.bin = f.bin + 1
),
flagged as (
    select minute, bin, 'buy' as side, buy as volume, sells_below as opposite
    from neighbours where buy > 0 and buy >= $ratio * sells_below
    union all
    select minute, bin, 'sell', sell, buys_above
    from neighbours where sell > 0 and sell >= $ratio * buys_above
),
runs as (
    select *, bin - row_number() over (partition by minute, side order by bin) as run
    from flagged
)
select
    minute,
    bin,
    side,
    volume,
    opposite,
    count(*) over (partition by minute, side, run) as stack_len
from runs
order by minute, bin, side
"""


def duckdb_table(ticks: pd.DataFrame) -> Any:
    """A DuckDB connection holding the ticks as table ``ticks`` (seq = arrival order)."""
    import duckdb

    con = duckdb.connect()
    frame = ticks[["ts", "price", "size"]].assign(seq=np.arange(len(ticks), dtype=np.int64))
    con.register("ticks_frame", frame)
    con.execute("create table ticks as select * from ticks_frame")
    con.unregister("ticks_frame")
    return con


def duckdb_run(con: Any, row_size: float) -> tuple[dict, ...]:
    """Footprint, flow, bars and imbalances columns as numpy arrays."""
    con.execute(DUCKDB_CLASSIFIED, {"inverse": 1.0 / row_size})
    con.execute(DUCKDB_FOOTPRINT)
    con.execute(DUCKDB_RUNNING)
    (first,) = con.execute("select price from ticks order by seq limit 1").fetchone()
    return (
        con.execute("select * from footprint").fetchnumpy(),
        con.execute(DUCKDB_FLOW).fetchnumpy(),
        con.execute(DUCKDB_BARS, {"first": first}).fetchnumpy(),
        con.execute(DUCKDB_IMBALANCES, {"ratio": RATIO}).fetchnumpy(),
    )
