"""Profiles, footprint and order flow: `volume_profile`, `profile_metrics` (1m, session,
composite), `order_flow`, `footprint_imbalances`, `session_vwap`, `big_prints` and
`naked_pocs`, one daily partition (or a single-run range of them) at a time.

The tables come out of one `analytics.pipeline.compute_session` call per symbol and
session, so they are one multi-asset written in one transaction: delete the window, insert
it again. Re-runs and backfills are idempotent; a reader never sees half a window.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import dagster as dg
import pandas as pd
import psycopg

from analytics.composite import DEFAULT_COMPOSITE_SESSIONS, composite_metrics
from analytics.pipeline import SessionFrames
from analytics.sessions import session_bounds
from assets import profile_io
from assets.market_data import TICK_HISTORY, TICKS
from assets.naked_poc_touches import minute_ranges, symbol_naked_pocs
from assets.partitions import (
    WRITE_FROM_TAG,
    daily_partitions,
    window_days,
    write_from_tag,
)
from assets.profile_sessions import (
    VALUE_AREA_METHOD,
    SessionCompute,
    SourceStats,
    full_sessions,
    resumed_sessions,
)
from assets.resources import PostgresResource
from core.contracts import Table
from storage.tick_archive import TickArchive

VOLUME_PROFILE = dg.AssetKey(Table.VOLUME_PROFILE.value)
PROFILE_METRICS = dg.AssetKey(Table.PROFILE_METRICS.value)
ORDER_FLOW = dg.AssetKey(Table.ORDER_FLOW.value)
FOOTPRINT_IMBALANCES = dg.AssetKey(Table.FOOTPRINT_IMBALANCES.value)
SESSION_VWAP = dg.AssetKey(Table.SESSION_VWAP.value)
BIG_PRINTS = dg.AssetKey(Table.BIG_PRINTS.value)
NAKED_POCS = dg.AssetKey("naked_pocs")
PROFILE_ASSETS: tuple[dg.AssetKey, ...] = (
    VOLUME_PROFILE,
    PROFILE_METRICS,
    ORDER_FLOW,
    FOOTPRINT_IMBALANCES,
    SESSION_VWAP,
    BIG_PRINTS,
    NAKED_POCS,
)
CANDLES = dg.AssetKey(Table.CANDLES_1M.value)

SKIPPED_METADATA = "skipped"
# Five sessions back never spans more than two weeks, holidays included.
COMPOSITE_LOOKBACK_DAYS = 14

# During the US session (10:00–15:45 New York, weekdays) a profile older than 15 minutes is
# a stalled stream or sensor. Outside it nothing is expected: crypto-only nights and
# weekends stay quiet instead of failing all night.
PROFILE_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="*/15 10-15 * * 1-5",
    lower_bound_delta=timedelta(minutes=15),
    timezone="America/New_York",
)


@dataclass
class WindowResult:
    """Rows of one window, all symbols, ready for `profile_io.replace_window`."""

    volume_profile: list[pd.DataFrame] = field(default_factory=list)
    profile_metrics: list[pd.DataFrame] = field(default_factory=list)
    order_flow: list[pd.DataFrame] = field(default_factory=list)
    imbalances: list[pd.DataFrame] = field(default_factory=list)
    session_vwap: list[pd.DataFrame] = field(default_factory=list)
    big_prints: list[pd.DataFrame] = field(default_factory=list)
    naked_pocs: list[pd.DataFrame] = field(default_factory=list)
    sessions: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # symbol → why
    incremental: bool = False  # sessions resumed from stored state where it was sound
    read: SourceStats = field(default_factory=SourceStats)

    def add(self, symbol_id: int, frames: SessionFrames) -> None:
        for target, frame in (
            (self.volume_profile, frames.volume_profile),
            (self.profile_metrics, frames.profile_metrics),
            (self.order_flow, frames.order_flow),
            (self.imbalances, frames.imbalances),
            (self.session_vwap, frames.session_vwap),
            (self.big_prints, frames.big_prints),
        ):
            if not frame.empty:
                target.append(frame.assign(symbol_id=symbol_id))
        for reason, count in frames.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count

    def merge(self, part: "WindowResult") -> None:
        """Add one symbol's rows, computed into their own result so a failure drops them."""
        self.volume_profile += part.volume_profile
        self.profile_metrics += part.profile_metrics
        self.order_flow += part.order_flow
        self.imbalances += part.imbalances
        self.session_vwap += part.session_vwap
        self.big_prints += part.big_prints
        self.naked_pocs += part.naked_pocs
        self.sessions += part.sessions
        for reason, count in part.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass(frozen=True)
class WindowInputs:
    """Everything read from the database for one window (one snapshot)."""

    days: list[date]
    end: datetime
    session_frames: SessionCompute
    cvd_total_before: dict[int, float]
    prior_profiles: pd.DataFrame  # symbol_id, session_date, price_level, total_volume
    open_pocs: pd.DataFrame  # symbol_id, session_date, poc, touched_at


def _symbol_window(
    conn: psycopg.Connection,
    symbol: profile_io.SymbolRow,
    inputs: WindowInputs,
    result: WindowResult,
) -> None:
    """Every session of one symbol inside the window, oldest first, chaining the CVD."""
    prior = inputs.prior_profiles
    prior = prior.loc[prior["symbol_id"] == symbol.id].drop(columns="symbol_id")
    profiles = [prior] if not prior.empty else []
    session_pocs: list[tuple[date, float]] = []
    ranges: list[pd.DataFrame] = []
    cvd_total = inputs.cvd_total_before.get(symbol.id, 0.0)
    for day in inputs.days:
        bounds = session_bounds(symbol.market, day)
        if bounds is None:
            continue
        frames = inputs.session_frames(symbol, day, bounds, cvd_total)
        if frames is None:
            continue
        result.add(symbol.id, frames)
        result.sessions += 1
        if not frames.order_flow.empty:
            cvd_total = float(frames.order_flow["cvd_total"].iloc[-1])
        running = frames.profile_metrics[frames.profile_metrics["horizon"] == "session"]
        if running.empty:
            continue
        profiles.append(frames.session_profile.assign(session_date=day))
        composite = composite_metrics(
            pd.concat(profiles, ignore_index=True),
            symbol.row_size,
            method=VALUE_AREA_METHOD,
            sessions=DEFAULT_COMPOSITE_SESSIONS,
            bucket=running["bucket"].iloc[-1],
            config=symbol.config,
        )
        if not composite.empty:
            result.profile_metrics.append(composite.assign(symbol_id=symbol.id))
        session_pocs.append((day, float(running["poc"].iloc[-1])))
        ranges.append(minute_ranges(frames.volume_profile, day))
    pocs = symbol_naked_pocs(conn, symbol, session_pocs, ranges, inputs.open_pocs, inputs.end)
    if pocs is not None:
        result.naked_pocs.append(pocs)


def compute_window(
    postgres: PostgresResource,
    start: datetime,
    end: datetime,
    write_from: datetime | None = None,
) -> tuple[WindowResult, list[profile_io.SymbolRow], int]:
    """Read the window (one snapshot) and compute every symbol's sessions in it.

    With `write_from` inside a single-day window (a sensor run), each symbol resumes from
    its stored state instead of reading the whole day (`profile_sessions`); without it,
    every session is computed from all its ticks. An archived day is always computed from
    all its ticks: the resume counts prints and finds the tick-rule state in SQL, and its
    ticks are no longer in PostgreSQL (docs/retention.md).
    """
    days = window_days(start, end)
    result = WindowResult()
    with postgres.connect(read_only=True) as conn:
        symbols = profile_io.active_symbols(conn)
        max_seq = profile_io.max_tick_seq(conn, start, end)
        # asked with `ticks` locked by this snapshot: a day archived later is dropped only
        # after it ends, one dropped earlier has its manifest published already
        archived = TickArchive.configured().archived_in(start, end)
        if write_from is not None and len(days) == 1 and start < write_from < end and not archived:
            result.incremental = True
            session_frames = resumed_sessions(conn, symbols, days[0], write_from, end, result.read)
        else:
            session_frames = full_sessions(conn, days, start, result.read)
        inputs = WindowInputs(
            days=days,
            end=end,
            session_frames=session_frames,
            cvd_total_before=profile_io.cvd_totals_before(conn, start),
            prior_profiles=profile_io.prior_session_profiles(conn, start, COMPOSITE_LOOKBACK_DAYS),
            open_pocs=profile_io.open_naked_pocs(conn, days[0]),
        )
        computed = []
        for symbol in symbols:
            if symbol.id in result.read.unchanged:
                continue  # nothing new: its stored rows stand, nothing is rewritten
            part = WindowResult()
            try:
                _symbol_window(conn, symbol, inputs, part)
            except psycopg.Error:
                raise  # the database, not the symbol: the run fails and retries
            except Exception as exc:  # one symbol must never fail the others
                # an unknown market, absurd prints (too many bins), any analytics error:
                # the symbol keeps its stored rows and is reported (metadata, asset check)
                result.skipped[symbol.symbol] = f"{type(exc).__name__}: {exc}"
                continue
            result.merge(part)
            computed.append(symbol)
    return result, computed, max_seq


def latest_profile_metadata(
    instance: dg.DagsterInstance, partition_key: str
) -> Mapping[str, dg.MetadataValue] | None:
    """Metadata of the newest profile run of a partition (None: it never ran)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=VOLUME_PROFILE, asset_partitions=[partition_key]),
        limit=1,
    ).records
    materialization = records[0].asset_materialization if records else None
    return materialization.metadata if materialization is not None else None


def profiled_seq(instance: dg.DagsterInstance, partition_key: str) -> int | None:
    """The newest tick sequence the last profile run of a partition saw (None: unknown)."""
    metadata = latest_profile_metadata(instance, partition_key)
    seen = metadata.get("max_seq") if metadata is not None else None
    return int(seen.value) if seen is not None else None  # type: ignore[arg-type]


def _table_spec(key: dg.AssetKey, description: str, *, fresh: bool = True) -> dg.AssetSpec:
    """One of the tables the profile run writes; all read ticks (streamed or backfilled)
    and reconciled candles."""
    return dg.AssetSpec(
        key,
        deps=[TICKS, TICK_HISTORY, CANDLES],
        group_name="profiles",
        kinds={"postgres"},
        freshness_policy=PROFILE_FRESHNESS if fresh else None,
        description=description,
    )


@dg.multi_asset(
    name="session_profiles",
    specs=[
        _table_spec(
            VOLUME_PROFILE, "Volume per price bin per minute with buy, sell and trade count."
        ),
        _table_spec(
            PROFILE_METRICS,
            "POC, value area (70 %, single-bin walk), LVN/HVN (the most prominent valleys "
            "and peaks), unfinished auctions, and for the session the initial balance, for "
            "horizons 1m, session (running since the open) and composite (last 5 sessions).",
        ),
        _table_spec(
            ORDER_FLOW,
            "Per-minute delta, session CVD, never-resetting CVD, pressures and the bar "
            "statistics (trades, max/min running delta, mean print size and its sd).",
        ),
        _table_spec(
            FOOTPRINT_IMBALANCES,
            "Diagonal buy/sell imbalances at every price row of every minute, with the "
            "length of the stack each belongs to (the symbol's ratio and minimum volume).",
        ),
        _table_spec(
            SESSION_VWAP,
            "Session VWAP and its standard deviation through the end of each minute.",
        ),
        _table_spec(
            BIG_PRINTS,
            "Prints at least k standard deviations above the mean print size of the "
            "previous minutes (the symbol's k and window), with their aggressor side.",
        ),
        _table_spec(
            NAKED_POCS,
            "Each session's POC and the first minute a later session traded through it "
            "(null while naked); earlier sessions' touches are updated by later windows.",
            fresh=False,
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def session_profiles(context: dg.AssetExecutionContext, postgres: PostgresResource):
    window = context.partition_time_window
    start, end = window.start, window.end
    write_from = write_from_tag(context.run.tags.get(WRITE_FROM_TAG))
    result, symbols, max_seq = compute_window(postgres, start, end, write_from)
    ids = [s.id for s in symbols]
    # resumed symbols rewrite their cells from the resume minute and their order flow and
    # metrics from the first row that changed; the others rewrite the window
    incremental = result.incremental
    with postgres.connect() as conn:
        written = profile_io.replace_window(
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
            write_from=None if incremental else write_from,
            cells_from=result.read.resumed,
            rows_from=result.read.rows_from,
        )
        pocs = profile_io.write_naked_pocs(
            conn, window_days(start, end), ids, concat_frames(result.naked_pocs)
        )
    if result.rejected:
        context.log.warning("ticks skipped by the analytics: %s", result.rejected)
    if result.skipped:
        context.log.error("symbols skipped: %s", result.skipped)
    common = {
        "write_from": (write_from or start).isoformat(),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "sessions": result.sessions,
        "ticks": result.read.ticks,
        # the schedule compares this with the newest tick to see whether profiles lag
        "max_seq": max_seq,
        "incremental": incremental,
        "symbols_resumed": len(result.read.resumed),
        "symbols_recomputed": len(symbols) - len(result.read.resumed),
        "symbols_unchanged": len(result.read.unchanged),
        "state_inconsistent": len(result.read.inconsistent),
        "symbols_skipped": len(result.skipped),
        # symbol → why; the asset check `profile_symbols_computed` fails while any is listed
        SKIPPED_METADATA: dg.MetadataValue.json(result.skipped),
    }
    written[NAKED_POCS.path[-1]] = pocs
    for key in PROFILE_ASSETS:
        yield dg.MaterializeResult(
            asset_key=key, metadata={**common, "rows": written[key.path[-1]]}
        )
