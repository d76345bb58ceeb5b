"""Incremental session profiles equal a full recompute, bit for bit.

The pure part continues `compute_session` from its own cells minute by minute; the
database part builds a session through the real tick sensor and the real profile asset on
PostgreSQL (late prints into computed minutes, a restart, damaged state) and compares
every stored row with one full recompute of the day.
"""

from __future__ import annotations

import warnings

import dagster as dg
import numpy as np
import pandas as pd
import psycopg
import pytest

from analytics.pipeline import compute_session
from analytics.session_resume import Footprint, StoredRows, resume_session, resume_state
from analytics.session_vwap import SESSION_OPEN, VwapState
from analytics.sessions import session_bounds
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from bench.synthetic.ticks import insert_ticks
from orchestration.checks import ASSET_CHECKS
from orchestration.definitions import defs
from orchestration.sensors import tick_stream_sensor

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAY = "2024-03-04"  # a Monday: XNYS 14:30-21:00 UTC
TABLES = {
    "volume_profile": "symbol_id, bucket, price_level",
    "order_flow": "symbol_id, bucket",
    "profile_metrics": "symbol_id, horizon, bucket",
    "footprint_imbalances": "symbol_id, bucket, price, side",
    "session_vwap": "symbol_id, bucket",
    "big_prints": "symbol_id, bucket, print_no",
    "naked_pocs": "symbol_id, session_date",
}


def session_ticks(
    open_: pd.Timestamp, minutes: int, count: int, seed: int, tick: float = 0.01
) -> pd.DataFrame:
    """Fractional sizes (sums round), a range that keeps widening, zero ticks, and a third
    each of venue sides, quotes and bare prints; two quiet stretches without any print."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, minutes * 60_000_000, count))
    ts = open_ + pd.to_timedelta(offsets, unit="us")
    minute = offsets // 60_000_000
    keep = ~np.isin(minute, [40, 41, 170])
    steps = rng.choice(np.array([-3, -1, 0, 0, 0, 1, 3]), count) * tick
    price = np.round(100.0 + np.cumsum(steps), 6)
    kind = rng.integers(0, 3, count)
    side = np.where(kind == 0, rng.choice(np.array([1.0, -1.0]), count), np.nan)
    quoted = kind == 1
    frame = pd.DataFrame(
        {
            "ts": ts,
            "price": price,
            "size": np.round(rng.exponential(2.5, count), 4) + 0.0003,
            "side": side,
            "bid": np.where(quoted, price - tick, np.nan),
            "ask": np.where(quoted, price + tick, np.nan),
        }
    )
    return frame[keep].reset_index(drop=True)


def tickless_candles(open_: pd.Timestamp) -> pd.DataFrame:
    """Bars for two of the minutes without prints (the candle fallback)."""
    return pd.DataFrame(
        {
            "ts": [open_ + pd.Timedelta(minutes=40), open_ + pd.Timedelta(minutes=170)],
            "open": [100.02, 99.5],
            "high": [100.11, 99.57],
            "low": [99.97, 99.43],
            "close": [100.0, 99.55],
            "volume": [17.3, 5.25],
        }
    )


def state_before(ticks: pd.DataFrame, moment: pd.Timestamp):
    """The tick-rule state as the asset reads it from the database: two prices."""
    price = ticks.loc[ticks["ts"] < moment, "price"].to_numpy()
    if price.size == 0:
        return resume_state(None, None)
    other = np.flatnonzero(price != price[-1])
    return resume_state(price[-1], price[other[-1]] if other.size else None)


@pytest.mark.parametrize(("tick", "row_size"), [(0.01, 0.01), (0.0003, 0.0001)])
def test_resuming_minute_by_minute_equals_one_compute_session(tick: float, row_size: float):
    """Each step resumes from the cells the previous one produced, from its last minute
    (and once from well before it: late prints). 0.0001 rows give a 10 k-bin grid that
    the kernel works in several blocks."""
    open_, close = session_bounds("XNYS", DAY)
    ticks = session_ticks(open_, 390, 6000, seed=3, tick=tick)
    candles = tickless_candles(open_)
    cells = Footprint.from_rows(pd.DataFrame(columns=list(_CELL_COLUMNS)), row_size, open_)
    flow = metrics = vwap = big = None  # what is "stored": every row the earlier steps wrote
    last = open_
    for step, minutes in enumerate((1, 2, 7, 41, 42, 100, 171, 172, 250, 389, 390)):
        now = open_ + pd.Timedelta(minutes=minutes)
        resume = last - pd.Timedelta(minutes=30) if step == 7 else last
        resume = max(resume, open_)
        seen = ticks[ticks["ts"] < now]
        stored = None
        if flow is not None and metrics is not None and vwap is not None:
            numbers = metrics.loc[metrics["horizon"] != "composite", list(_METRIC_KEYS)]
            before = vwap[vwap["bucket"] < resume]
            stored = StoredRows(
                flow[flow["bucket"] < resume].reset_index(drop=True),
                numbers[numbers["bucket"] < resume].reset_index(drop=True),
                VwapState(*before[["volume", "vwap", "sd"]].iloc[-1])
                if len(before)
                else SESSION_OPEN,
            )
        frames = resume_session(
            seen[seen["ts"] >= resume],
            row_size,
            open_,
            close,
            resume_at=resume,
            footprint=cells,
            aggressor_state=state_before(seen, resume),
            cvd_total_before=12.5,
            candles=candles[(candles["ts"] >= resume) & (candles["ts"] < now)],
            stored=stored,
        )
        full = compute_session(
            seen,
            row_size,
            open_,
            close,
            cvd_total_before=12.5,
            candles=candles[candles["ts"] < now],
        )
        for part in ("volume_profile", "order_flow", "session_profile", "imbalances"):
            assert_bitwise(getattr(frames, part), getattr(full, part), part)
        assert frames.aggressor_state == full.aggressor_state
        # the session VWAP and big prints come back from the resume minute on; with the
        # rows kept from before, exactly the full computation's
        resumed = {"session_vwap": frames.session_vwap, "big_prints": frames.big_prints}
        for part, rows in resumed.items():
            stored_part = vwap if part == "session_vwap" else big
            kept = stored_part[stored_part["bucket"] < resume] if stored_part is not None else None
            assert (rows["bucket"] >= resume).all() or frames.first_changed is None, part
            joined = (
                rows
                if kept is None or frames.first_changed is None
                else pd.concat([kept, rows], ignore_index=True)
            )
            assert_bitwise(joined, getattr(full, part), part)
        vwap, big = full.session_vwap, full.big_prints
        # only rows from the first changed minute come back; the stored ones before it are
        # exactly what a full recompute gives
        changed = frames.first_changed or open_  # None: nothing stored before the resume
        assert changed <= resume
        later = full.profile_metrics["bucket"] >= changed
        assert_bitwise(frames.profile_metrics, full.profile_metrics[later], "profile_metrics")
        if metrics is not None:
            kept = metrics[metrics["bucket"] < changed]
            assert_bitwise(kept, full.profile_metrics[~later], "kept profile_metrics")
            metrics = pd.concat([kept, frames.profile_metrics], ignore_index=True)
        else:
            metrics = frames.profile_metrics
        metrics = metrics.sort_values(["horizon", "bucket"], kind="stable", ignore_index=True)
        flow = frames.order_flow
        cells = Footprint.from_rows(frames.volume_profile, row_size, open_)
        last = frames.order_flow["bucket"].iloc[-1]


_METRIC_KEYS = ("horizon", "bucket", "poc", "vah", "val", "total_volume")
_CELL_COLUMNS = ("bucket", "price_level", "total_volume", "buy_volume", "trade_count")


def assert_bitwise(left: pd.DataFrame, right: pd.DataFrame, what: str) -> None:
    """Same rows and columns; floats compared by their bits, not within a tolerance."""
    left, right = left.reset_index(drop=True), right.reset_index(drop=True)
    assert list(left.columns) == list(right.columns), what
    assert len(left) == len(right), what
    for column in left.columns:
        a, b = left[column], right[column]
        if a.dtype == np.float64 and b.dtype == np.float64:
            assert a.to_numpy().tobytes() == b.to_numpy().tobytes(), f"{what}.{column}"
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), f"{what}.{column}"


# --- through the sensor and the asset, on PostgreSQL ---------------------------------------


def _ids(conn: psycopg.Connection) -> tuple[int, int]:
    rows = dict(conn.execute("select symbol, id from symbols").fetchall())
    return int(rows["AAPL"]), int(rows["ETHUSDT"])


def _insert(url: str, frame: pd.DataFrame, tag: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        frame = frame.assign(trade_id=[f"{tag}-{i}" for i in range(len(frame))])
        insert_ticks(conn, frame)


def flow_metadata(result: dg.ExecuteInProcessResult):
    """The order_flow materialization's metadata of a run (the run's shared facts)."""
    events = result.get_asset_materialization_events()
    (flow,) = [m for m in events if m.asset_key.path == ["order_flow"]]
    return flow.step_materialization_data.materialization.metadata


def sensor_runs(url: str, instance: dg.DagsterInstance, cursor: str | None) -> tuple[str, list]:
    """One evaluation of tick_stream_sensor and the profile runs it asks for, executed."""
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        resources={"postgres": PostgresResource(database_url=url)},
    )
    evaluation = tick_stream_sensor.evaluate_tick(context)
    metadata = []
    for request in evaluation.run_requests:
        result = dg.materialize(
            [session_profiles],
            partition_key=request.partition_key,
            tags=request.tags,
            resources={"postgres": PostgresResource(database_url=url)},
            instance=instance,
        )
        assert result.success
        (flow,) = [
            m
            for m in result.get_asset_materialization_events()
            if m.asset_key.path == ["order_flow"]
        ]
        metadata.append(flow.step_materialization_data.materialization.metadata)
    return evaluation.cursor or cursor or "", metadata


def stored(url: str) -> dict[str, pd.DataFrame]:
    """Every derived row, exactly as stored (binary doubles), in key order."""
    out = {}
    with psycopg.connect(url) as conn, conn.cursor(binary=True) as cur:
        for table, order in TABLES.items():
            cur.execute(f"select * from {table} order by {order}")
            columns = [d.name for d in cur.description]
            frame = pd.DataFrame(cur.fetchall(), columns=columns)
            out[table] = frame.drop(columns=["updated_at"], errors="ignore")
    return out


def full_recompute(url: str) -> dict[str, pd.DataFrame]:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"delete from {table}")
    dg.materialize(
        [session_profiles],
        partition_key=DAY,
        resources={"postgres": PostgresResource(database_url=url)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    return stored(url)


def assert_same_tables(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        frame, other = left[table], right[table]
        assert len(frame) == len(other), table
        for column in frame.columns:
            if (
                frame[column].dtype == object
                and len(frame)
                and isinstance(frame[column].iloc[0], float)
            ):
                frame[column] = frame[column].astype(np.float64)
                other[column] = other[column].astype(np.float64)
        assert_bitwise(frame, other, table)


def xmins(url: str, symbol_id: int) -> pd.DataFrame:
    """Which transaction wrote each of a symbol's cells (unchanged rows keep theirs)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select bucket, price_level, xmin::text from volume_profile where symbol_id = %s "
            "order by 1, 2",
            (symbol_id,),
        ).fetchall()
    return pd.DataFrame(rows, columns=["bucket", "price_level", "xmin"])


def test_a_session_built_by_sensor_runs_equals_a_full_recompute(db_url: str) -> None:
    open_, _close = session_bounds("XNYS", DAY)
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl, eth = _ids(conn)
        bars = tickless_candles(open_).assign(symbol_id=aapl)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into candles_1m (symbol_id, ts, open, high, low, close, volume) "
                "values (%s, %s, %s, %s, %s, %s, %s)",
                bars[["symbol_id", "ts", "open", "high", "low", "close", "volume"]]
                .astype(object)
                .itertuples(index=False),
            )
    ticks = pd.concat(
        [
            session_ticks(open_, 390, 5000, seed=1).assign(symbol_id=aapl),
            session_ticks(open_, 390, 3000, seed=2).assign(symbol_id=eth),
        ],
        ignore_index=True,
    ).sort_values("ts", kind="stable", ignore_index=True)
    late = session_ticks(open_, 390, 400, seed=9).assign(symbol_id=aapl)
    instance = dg.DagsterInstance.ephemeral()
    cursor: str | None = None
    shown = open_
    for step, minutes in enumerate((3, 4, 30, 31, 90, 91, 92, 200, 201, 300, 389, 390)):
        now = open_ + pd.Timedelta(minutes=minutes)
        _insert(db_url, ticks[(ticks["ts"] >= shown) & (ticks["ts"] < now)], f"s{step}")
        shown = now
        if step == 5:
            # a restart: nothing in memory survives, only the cursor the daemon persisted
            instance = dg.DagsterInstance.ephemeral()
        before = xmins(db_url, aapl)
        if step == 7:
            # late prints into minutes computed long ago (75-80) rewrite from there on
            window = (late["ts"] >= open_ + pd.Timedelta(minutes=75)) & (
                late["ts"] < open_ + pd.Timedelta(minutes=80)
            )
            _insert(db_url, late[window], "late")
        cursor, runs = sensor_runs(db_url, instance, cursor)
        assert [m["incremental"].value for m in runs] == [True]
        if step >= 3:  # before, the sensor's five-minute margin reaches back to the open
            assert runs[0]["symbols_resumed"].value == 2
            assert runs[0]["state_inconsistent"].value == 0
        if step == 7:
            after = xmins(db_url, aapl)
            kept = before.merge(after, on=["bucket", "price_level"], suffixes=("", "_after"))
            untouched = kept[kept["xmin"] == kept["xmin_after"]]
            rewritten = after[~after["xmin"].isin(before["xmin"])]
            # rewritten from the first late print's own minute: the sensor's margin before
            # it is recounted in SQL, not recomputed
            resume = late.loc[window, "ts"].min().floor("min")
            assert untouched["bucket"].max() < resume == rewritten["bucket"].min()

    incremental = stored(db_url)
    assert len(incremental["volume_profile"]) > 1000
    assert len(incremental["footprint_imbalances"]) > 1000
    assert len(incremental["session_vwap"]) > 700 and len(incremental["big_prints"]) > 10
    assert_same_tables(incremental, full_recompute(db_url))


DAMAGE = {
    # cells of one minute lost (a hand-made delete): the stored state no longer adds up
    "cells": "delete from volume_profile where symbol_id = %s and bucket = %s",
    # a minute's bar statistics missing (rows of a version before them)
    "bar statistics": "update order_flow set max_delta = null where symbol_id = %s and bucket = %s",
    # the session VWAP missing: it cannot be continued
    "session vwap": "delete from session_vwap where symbol_id = %s and bucket >= %s",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_state_is_recomputed_in_full_and_still_matches(db_url: str, damage: str) -> None:
    open_, _close = session_bounds("XNYS", DAY)
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl, _eth = _ids(conn)
    ticks = session_ticks(open_, 120, 1500, seed=4).assign(symbol_id=aapl)
    instance = dg.DagsterInstance.ephemeral()
    _insert(db_url, ticks[ticks["ts"] < open_ + pd.Timedelta(minutes=60)], "a")
    cursor, _ = sensor_runs(db_url, instance, None)
    with psycopg.connect(db_url, autocommit=True) as conn:
        damaged = conn.execute(DAMAGE[damage], (aapl, open_ + pd.Timedelta(minutes=20)))
        assert damaged.rowcount > 0
    _insert(db_url, ticks[ticks["ts"] >= open_ + pd.Timedelta(minutes=60)], "b")
    _cursor, runs = sensor_runs(db_url, instance, cursor)
    assert runs[0]["state_inconsistent"].value == 1
    assert runs[0]["symbols_resumed"].value == 0
    assert_same_tables(stored(db_url), full_recompute(db_url))


def test_a_symbol_without_new_prints_is_left_alone(db_url: str) -> None:
    open_, _close = session_bounds("XNYS", DAY)
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl, eth = _ids(conn)
    ticks = pd.concat(
        [
            session_ticks(open_, 90, 900, seed=7).assign(symbol_id=aapl),
            session_ticks(open_, 90, 900, seed=8).assign(symbol_id=eth),
        ],
        ignore_index=True,
    )
    early = ticks["ts"] < open_ + pd.Timedelta(minutes=60)
    instance = dg.DagsterInstance.ephemeral()
    _insert(db_url, ticks[early], "a")
    cursor, _ = sensor_runs(db_url, instance, None)
    before = xmins(db_url, aapl)
    # only ETHUSDT trades on: AAPL's rows are neither recomputed nor rewritten
    _insert(db_url, ticks[~early & (ticks["symbol_id"] == eth)], "b")
    _cursor, runs = sensor_runs(db_url, instance, cursor)
    assert runs[0]["symbols_unchanged"].value == 1
    assert runs[0]["symbols_resumed"].value == 1
    pd.testing.assert_frame_equal(xmins(db_url, aapl), before)
    assert_same_tables(stored(db_url), full_recompute(db_url))


def test_an_absurd_print_skips_its_symbol_only_and_the_check_names_it(db_url: str) -> None:
    open_, _close = session_bounds("XNYS", DAY)
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl, eth = _ids(conn)
    ticks = pd.concat(
        [
            session_ticks(open_, 60, 500, seed=5).assign(symbol_id=aapl),
            session_ticks(open_, 60, 500, seed=6).assign(symbol_id=eth),
        ],
        ignore_index=True,
    )
    absurd = ticks.iloc[:1].assign(price=38_000.0, ts=open_ + pd.Timedelta(minutes=30))
    _insert(db_url, pd.concat([ticks, absurd.assign(symbol_id=aapl)]), "x")
    result = dg.materialize(
        [session_profiles, *ASSET_CHECKS],
        partition_key=DAY,
        resources={"postgres": PostgresResource(database_url=db_url)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success  # the run, and every other symbol, go on
    metadata = flow_metadata(result)
    assert metadata["symbols_skipped"].value == 1
    assert list(metadata["skipped"].value) == ["AAPL"]
    assert "bins" in metadata["skipped"].value["AAPL"]
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    skipped = checks["profile_symbols_computed"]
    assert not skipped.passed
    assert "AAPL" in str(skipped.metadata["skipped"].value)
    with psycopg.connect(db_url) as conn:
        counts = dict(
            conn.execute("select symbol_id, count(*) from order_flow group by 1").fetchall()
        )
    assert counts.get(eth, 0) > 0 and aapl not in counts


def test_minute_scaling_benchmark_quick(db_url: str) -> None:
    """Smoke run at tiny sizes: both runs measured, the empty run beside them."""
    from bench import BenchContext
    from bench.minute_scaling import DESCRIPTION, run

    scaling, empty = run(BenchContext(db_url, "redis://127.0.0.1:1/0", quick=True))
    assert DESCRIPTION and scaling.value > 0 and scaling.reference_value > 0
    assert scaling.notes["day_ticks_16x"] == 16 * scaling.notes["day_ticks_1x"]
    assert empty.value > 0 and empty.reference_value == scaling.reference_value
