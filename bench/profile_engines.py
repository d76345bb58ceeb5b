"""The footprint and order flow as a data engineer would compute them with DuckDB or Polars.

The work, the same for both and a subset of what ``compute_session`` does: each print's
aggressor side by the tick rule with zero-tick continuation (an unchanged price keeps the
last non-zero direction; before any change a print is split half/half), its price bin
``floor(price / row_size + 0.5)``, the footprint (minute × bin: volume, buy, sell, count,
ordered by minute then bin), and per minute buy, sell, delta and the session CVD.

Written the idiomatic way for each engine: the previous price from a window (``lag`` /
``diff``), the continuation as a forward fill over the non-zero changes (``last_value(...
ignore nulls)`` / ``forward_fill``), then a group-by. Both engines use all cores; the
input is already in the engine's own memory (a DuckDB table, a Polars frame), so loading
is not timed. The engines are the optional ``bench`` extra, imported only here.

``bincount_floor`` is the memory-bandwidth floor: one ``np.bincount`` of the prints'
precomputed cell keys and sizes, the least any footprint can cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NS_PER_MINUTE = 60_000_000_000

DUCKDB_FOOTPRINT = """
create or replace temp table footprint as
with changes as (
    select
        seq,
        size,
        date_trunc('minute', ts) as minute,
        floor(price * $inverse + 0.5)::bigint as bin,
        case
            when price > lag(price) over by_arrival then 1
            when price < lag(price) over by_arrival then -1
        end as change
    from ticks
    window by_arrival as (order by seq)
),
classified as (
    select
        minute,
        bin,
        size,
        coalesce(
            last_value(change ignore nulls) over (
                order by seq rows between unbounded preceding and current row
            ),
            0
        ) as tick
    from changes
)
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


@dataclass(frozen=True)
class EngineResult:
    """Footprint and per-minute flow in a common shape (for comparing, not timed)."""

    footprint: pd.DataFrame  # minute (UTC), bin, volume, buy, sell, trades
    flow: pd.DataFrame  # minute (UTC), buy, sell, delta, cvd


def duckdb_table(ticks: pd.DataFrame) -> Any:
    """A DuckDB connection holding the ticks as table ``ticks`` (seq = arrival order)."""
    import duckdb

    con = duckdb.connect()
    frame = ticks[["ts", "price", "size"]].assign(seq=np.arange(len(ticks), dtype=np.int64))
    con.register("ticks_frame", frame)
    con.execute("create table ticks as select * from ticks_frame")
    con.unregister("ticks_frame")
    return con


def duckdb_run(con: Any, row_size: float) -> tuple[dict, dict]:
    """Footprint and flow columns as numpy arrays."""
    con.execute(DUCKDB_FOOTPRINT, {"inverse": 1.0 / row_size})
    footprint = con.execute("select * from footprint").fetchnumpy()
    flow = con.execute(DUCKDB_FLOW).fetchnumpy()
    return footprint, flow


def polars_frame(ticks: pd.DataFrame) -> Any:
    import polars as pl

    return pl.from_pandas(ticks[["ts", "price", "size"]])


def polars_run(frame: Any, row_size: float) -> tuple[Any, Any]:
    """Footprint and flow as Polars frames (one lazy plan, collected together)."""
    import polars as pl

    change = pl.col("price").diff()
    tick = (
        pl.when(change > 0)
        .then(1)
        .when(change < 0)
        .then(-1)
        .otherwise(None)
        .forward_fill()
        .fill_null(0)
    )
    classified = frame.lazy().select(
        minute=pl.col("ts").dt.truncate("1m"),
        bin=(pl.col("price") * (1.0 / row_size) + 0.5).floor().cast(pl.Int64),
        size=pl.col("size"),
        tick=tick,
    )
    footprint = (
        classified.group_by("minute", "bin")
        .agg(
            volume=pl.col("size").sum(),
            buy=(pl.col("size") * (pl.col("tick") + 1) / 2).sum(),
            sell=(pl.col("size") * (1 - pl.col("tick")) / 2).sum(),
            trades=pl.len(),
        )
        .sort("minute", "bin")
    )
    flow = (
        footprint.group_by("minute")
        .agg(buy=pl.col("buy").sum(), sell=pl.col("sell").sum())
        .sort("minute")
        .with_columns(delta=pl.col("buy") - pl.col("sell"))
        .with_columns(cvd=pl.col("delta").cum_sum())
    )
    footprint_frame, flow_frame = pl.collect_all([footprint, flow])
    return footprint_frame, flow_frame


def cell_keys(ticks: pd.DataFrame, row_size: float, open_ns: int) -> tuple[np.ndarray, int]:
    """Each print's minute × bin cell (for the floor; computed before timing) and the cells."""
    minute = (ticks["ts"].array.asi8 - open_ns) // NS_PER_MINUTE
    bins = np.floor(ticks["price"].to_numpy() * (1.0 / row_size) + 0.5).astype(np.int64)
    n_bins = int(bins.max() - bins.min()) + 1
    return minute * n_bins + (bins - bins.min()), int(minute.max() + 1) * n_bins


def bincount_floor(keys: np.ndarray, cells: int, size: np.ndarray) -> np.ndarray:
    return np.bincount(keys, weights=size, minlength=cells)


def _utc(values: Any) -> pd.Series:
    return pd.Series(pd.to_datetime(values, utc=True)).dt.as_unit("ns")


def from_duckdb(result: tuple[dict, dict]) -> EngineResult:
    footprint, flow = (pd.DataFrame(part) for part in result)
    footprint["minute"] = _utc(footprint["minute"])
    flow["minute"] = _utc(flow["minute"])
    return EngineResult(footprint, flow)


def from_polars(result: tuple[Any, Any]) -> EngineResult:
    footprint, flow = (part.to_pandas() for part in result)
    footprint["minute"] = _utc(footprint["minute"])
    flow["minute"] = _utc(flow["minute"])
    return EngineResult(footprint, flow)


def from_frames(volume_profile: pd.DataFrame, order_flow: pd.DataFrame, row_size: float):
    """compute_session's frames in the same shape (traded minutes only)."""
    footprint = pd.DataFrame(
        {
            "minute": _utc(volume_profile["bucket"]),
            "bin": np.floor(volume_profile["price_level"].to_numpy() / row_size + 0.5).astype(
                np.int64
            ),
            "volume": volume_profile["total_volume"].to_numpy(),
            "buy": volume_profile["buy_volume"].to_numpy(),
            "sell": volume_profile["sell_volume"].to_numpy(),
            "trades": volume_profile["trade_count"].to_numpy(),
        }
    )
    traded = order_flow[order_flow["trade_count"] > 0]
    flow = pd.DataFrame(
        {
            "minute": _utc(traded["bucket"]),
            "buy": traded["buy_volume"].to_numpy(),
            "sell": traded["sell_volume"].to_numpy(),
            "delta": traded["delta"].to_numpy(),
            "cvd": traded["cvd"].to_numpy(),
        }
    )
    return EngineResult(footprint, flow)
