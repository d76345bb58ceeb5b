"""The footprint and order flow as a data engineer would compute them with DuckDB or Polars.

The work, the same for both and a subset of what ``compute_session`` does: each print's
aggressor side by the tick rule with zero-tick continuation (an unchanged price keeps the
last non-zero direction; before any change a print is split half/half), its price bin
``floor(price / row_size + 0.5)``, the footprint (minute × bin: volume, buy, sell, count,
ordered by minute then bin), per minute buy, sell, delta and the session CVD, and the
footprint additions of docs/semantics.md: the diagonal imbalances with their stack
lengths (R = 3, V_min = 0), the bar statistics (trades, the running delta's extremes in
print order, mean print size and its sd) and the session VWAP and sd through each minute
(from sums of price differences to the session's first price, so the variance keeps its
digits).

Written the idiomatic way for each engine (DuckDB's SQL is ``bench/profile_duckdb.py``):
the previous price from a window (``lag`` / ``diff``), the continuation as a forward fill
over the non-zero changes (``last_value(... ignore nulls)`` / ``forward_fill``), one
running sum of the signed sizes over the session (a minute's running delta is it less its
value before the minute's first print), group-bys, self-joins of the footprint on the
neighbouring rows, and runs numbered by bin minus row number (gaps and islands). Both
engines use all cores; the input is already in the engine's own memory (a DuckDB table, a
Polars frame), so loading is not timed. The engines are the optional ``bench`` extra,
imported only here and in ``bench/profile_duckdb.py``.

``bincount_floor`` is the memory-bandwidth floor: one ``np.bincount`` of the prints'
precomputed cell keys and sizes, the least any footprint can cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NS_PER_MINUTE = 60_000_000_000
RATIO = 3.0  # the default imbalance ratio (analytics.footprint_config); V_min is 0


@dataclass(frozen=True)
class EngineResult:
    """The work's outputs in a common shape (for comparing, not timed)."""

    footprint: pd.DataFrame  # minute (UTC), bin, volume, buy, sell, trades
    flow: pd.DataFrame  # minute (UTC), buy, sell, delta, cvd
    bars: pd.DataFrame  # minute, trades, max_delta, min_delta, mean_size, size_sd, vwap, sd
    imbalances: pd.DataFrame  # minute, bin, side, volume, opposite, stack_len


def polars_frame(ticks: pd.DataFrame) -> Any:
    import polars as pl

    return pl.from_pandas(ticks[["ts", "price", "size"]])


def polars_run(frame: Any, row_size: float) -> tuple[Any, ...]:
    """Footprint, flow, bars and imbalances as Polars frames: the classified prints and the
    footprint are materialised once (each is read by several outputs), the rest is one
    lazy plan per output, collected together."""
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
    first = frame["price"][0] if len(frame) else 0.0
    flow_of = pl.col("size") * pl.col("tick")
    classified = (
        frame.lazy()
        .select(
            minute=pl.col("ts").dt.truncate("1m"),
            bin=(pl.col("price") * (1.0 / row_size) + 0.5).floor().cast(pl.Int64),
            size=pl.col("size"),
            away=pl.col("price") - first,
            tick=tick,
        )
        # the running delta of the whole session: a minute's runs from its first print's
        .with_columns(running=flow_of.cum_sum())
        .collect()
    )
    footprint = (
        classified.lazy()
        .group_by("minute", "bin")
        .agg(
            volume=pl.col("size").sum(),
            buy=(pl.col("size") * (pl.col("tick") + 1) / 2).sum(),
            sell=(pl.col("size") * (1 - pl.col("tick")) / 2).sum(),
            trades=pl.len(),
        )
        .sort("minute", "bin")
        .collect()
    )
    flow = (
        footprint.lazy()
        .group_by("minute")
        .agg(buy=pl.col("buy").sum(), sell=pl.col("sell").sum())
        .sort("minute")
        .with_columns(delta=pl.col("buy") - pl.col("sell"))
        .with_columns(cvd=pl.col("delta").cum_sum())
    )
    bars = (
        classified.lazy()
        .group_by("minute")
        .agg(
            trades=pl.len(),
            high=pl.col("running").max(),
            low=pl.col("running").min(),
            base=(pl.col("running") - flow_of).first(),
            mean_size=pl.col("size").mean(),
            size_sd=pl.col("size").std(ddof=0),
            volume=pl.col("size").sum(),
            notional=(pl.col("size") * pl.col("away")).sum(),
            squares=(pl.col("size") * pl.col("away") * pl.col("away")).sum(),
        )
        .sort("minute")
        .with_columns(
            mean_away=pl.col("notional").cum_sum() / pl.col("volume").cum_sum(),
            square_away=pl.col("squares").cum_sum() / pl.col("volume").cum_sum(),
        )
        .select(
            "minute",
            "trades",
            max_delta=pl.col("high") - pl.col("base"),
            min_delta=pl.col("low") - pl.col("base"),
            mean_size="mean_size",
            size_sd="size_sd",
            vwap=first + pl.col("mean_away"),
            sd=(pl.col("square_away") - pl.col("mean_away") ** 2).clip(0.0).sqrt(),
        )
    )
    cells = footprint.lazy()
    below = cells.select("minute", bin=pl.col("bin") + 1, sells_below=pl.col("sell"))
    above = cells.select("minute", bin=pl.col("bin") - 1, buys_above=pl.col("buy"))
    neighbours = (
        cells.join(below, on=["minute", "bin"], how="left")
        .join(above, on=["minute", "bin"], how="left")
        .with_columns(pl.col("sells_below", "buys_above").fill_null(0.0))
    )
    sides = [
        neighbours.filter((pl.col(mine) > 0) & (pl.col(mine) >= RATIO * pl.col(other))).select(
            "minute", "bin", side=pl.lit(side), volume=mine, opposite=other
        )
        for side, mine, other in (("buy", "buy", "sells_below"), ("sell", "sell", "buys_above"))
    ]
    run = pl.col("bin") - pl.int_range(pl.len()).over("minute", "side")
    imbalances = (
        pl.concat(sides)
        .sort("minute", "side", "bin")
        .with_columns(run=run)
        .with_columns(stack_len=pl.len().over("minute", "side", "run"))
        .drop("run")
        .sort("minute", "bin", "side")
    )
    return (footprint, *pl.collect_all([flow, bars, imbalances]))


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


def _common(parts: list[pd.DataFrame]) -> EngineResult:
    for part in parts:
        part["minute"] = _utc(part["minute"])
    parts[3]["side"] = parts[3]["side"].astype(str)
    return EngineResult(*parts)


def from_duckdb(result: tuple[dict, ...]) -> EngineResult:
    return _common([pd.DataFrame(part) for part in result])


def from_polars(result: tuple[Any, ...]) -> EngineResult:
    return _common([part.to_pandas() for part in result])


def from_frames(frames: Any, row_size: float) -> EngineResult:
    """compute_session's frames in the same shape (traded minutes only)."""
    volume_profile, order_flow = frames.volume_profile, frames.order_flow
    footprint = pd.DataFrame(
        {
            "minute": _utc(volume_profile["bucket"]),
            "bin": _bins(volume_profile["price_level"], row_size),
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
    vwap = frames.session_vwap.set_index("bucket").reindex(traded["bucket"])
    bars = pd.DataFrame(
        {
            "minute": _utc(traded["bucket"]),
            "trades": traded["trade_count"].to_numpy(),
            "max_delta": traded["max_delta"].to_numpy(),
            "min_delta": traded["min_delta"].to_numpy(),
            "mean_size": traded["mean_trade_size"].to_numpy(),
            "size_sd": traded["trade_size_sd"].to_numpy(),
            "vwap": vwap["vwap"].to_numpy(),
            "sd": vwap["sd"].to_numpy(),
        }
    )
    found = frames.imbalances
    imbalances = pd.DataFrame(
        {
            "minute": _utc(found["bucket"]),
            "bin": _bins(found["price"], row_size),
            "side": found["side"].astype(str).to_numpy(),
            "volume": found["volume"].to_numpy(),
            "opposite": found["opposite"].to_numpy(),
            "stack_len": found["stack_len"].to_numpy(),
        }
    )
    return EngineResult(footprint, flow, bars, imbalances)


def _bins(prices: pd.Series, row_size: float) -> np.ndarray:
    return np.floor(prices.to_numpy(np.float64) / row_size + 0.5).astype(np.int64)


def check_same_work(name: str, got: EngineResult, expected: EngineResult) -> None:
    """The engine's outputs equal compute_session's (sums within float tolerance)."""
    if len(got.footprint) != len(expected.footprint):
        raise RuntimeError(
            f"{name} footprint has {len(got.footprint)} cells, expected {len(expected.footprint)}"
        )
    checks = [("flow", column, 1e-9) for column in ("buy", "sell", "delta", "cvd")]
    checks += [("bars", c, 1e-9) for c in ("trades", "max_delta", "min_delta", "mean_size")]
    checks += [("bars", "size_sd", 1e-6), ("bars", "vwap", 1e-12), ("bars", "sd", 1e-6)]
    checks += [("imbalances", c, 1e-9) for c in ("bin", "volume", "opposite", "stack_len")]
    for part, column, rtol in checks:
        a = getattr(got, part)[column].to_numpy(np.float64)
        b = getattr(expected, part)[column].to_numpy(np.float64)
        if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=1e-6):
            raise RuntimeError(f"{name} {part}.{column} disagrees with compute_session")
    if got.imbalances["side"].tolist() != expected.imbalances["side"].tolist():
        raise RuntimeError(f"{name} imbalance sides disagree with compute_session")
