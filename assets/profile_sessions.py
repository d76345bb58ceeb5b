"""How the profile run gets one symbol's session frames: from every tick, or resumed.

`full_sessions` reads every tick of the window (backfills, repairs, runs without a resume
point). `resumed_sessions` serves a single-day run that names the earliest minute that can
have changed (the sensor's write-from tag): each symbol continues from its stored cells,
its tick-rule state and the ticks from min(that minute, its last stored minute) on, and
falls back to its full session when that state is missing or inconsistent. Both give the
same frames, bit for bit (docs/profiles-incremental.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
import psycopg

from analytics.aggressor_side import SESSION_START, AggressorState
from analytics.pipeline import SessionFrames, compute_session
from analytics.session_resume import Footprint, StoredRows, resume_session
from analytics.session_vwap import SESSION_OPEN
from analytics.sessions import UnknownMarketError, session_bounds
from assets import profile_io, profile_state
from assets.profile_state import ResumePoint, SessionKey

VALUE_AREA_METHOD = "single"  # the documented default (docs/semantics.md)

Bounds = tuple[pd.Timestamp, pd.Timestamp]
# (symbol, session day, session bounds, cvd_total before it) → frames, None when no data
SessionCompute = Callable[[profile_io.SymbolRow, date, Bounds, float], SessionFrames | None]

EMPTY_TICKS = pd.DataFrame(
    {
        "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
        "price": [],
        "size": [],
        "side": [],
        "bid": [],
        "ask": [],
    }
)
EMPTY_CANDLES = pd.DataFrame(
    {
        "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
        "open": [],
        "high": [],
        "low": [],
        "close": [],
        "volume": [],
    }
)


NO_CELLS = Footprint.from_rows(profile_state.EMPTY_CELLS, 1.0, pd.Timestamp(0, tz="UTC"))


@dataclass
class SourceStats:
    """What the sessions read: ticks, and which symbols resumed or were recomputed."""

    ticks: int = 0
    resumed: dict[int, datetime] = field(default_factory=dict)  # symbol_id → resume minute
    # symbol_id → first minute whose order flow / metrics changed (<= its resume minute)
    rows_from: dict[int, datetime] = field(default_factory=dict)
    inconsistent: list[int] = field(default_factory=list)  # state found inconsistent
    # symbols with stored state and no new print: left as they are (not rewritten)
    unchanged: set[int] = field(default_factory=set)


def in_range(frame: pd.DataFrame, first: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Rows with first <= ts < end of a frame sorted by ts."""
    if frame.empty:
        return frame
    ts = frame["ts"]
    lo, hi = int(ts.searchsorted(first)), int(ts.searchsorted(end))
    return frame.iloc[lo:hi]


def split_by_symbol(frame: pd.DataFrame) -> dict[int, pd.DataFrame]:
    return {
        int(symbol_id): group.drop(columns="symbol_id").reset_index(drop=True)
        for symbol_id, group in frame.groupby("symbol_id", sort=False)
    }


def full_sessions(
    conn: psycopg.Connection, days: list[date], start: datetime, stats: SourceStats
) -> SessionCompute:
    """Every session from all its ticks (and the candles of tick-less minutes)."""
    ticks_by_day: dict[date, dict[int, pd.DataFrame]] = {}
    candles_by_day: dict[date, dict[int, pd.DataFrame]] = {}
    for day in days:
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=start.tzinfo)
        day_end = day_start + timedelta(days=1)
        ticks_by_day[day] = profile_io.load_ticks(conn, day_start, day_end)
        candles_by_day[day] = split_by_symbol(profile_io.load_candles(conn, day_start, day_end))

    def compute(
        symbol: profile_io.SymbolRow, day: date, bounds: Bounds, cvd_total: float
    ) -> SessionFrames | None:
        ticks = in_range(ticks_by_day[day].get(symbol.id, EMPTY_TICKS), *bounds)
        candles = in_range(candles_by_day[day].get(symbol.id, EMPTY_CANDLES), *bounds)
        if ticks.empty and candles.empty:
            return None
        stats.ticks += len(ticks)
        return compute_session(
            ticks,
            symbol.row_size,
            *bounds,
            cvd_total_before=cvd_total,
            method=VALUE_AREA_METHOD,
            candles=None if candles.empty else candles,
            config=symbol.config,
        )

    return compute


@dataclass(frozen=True)
class _Resume:
    at: pd.Timestamp
    footprint: Footprint
    state: AggressorState
    stored: StoredRows


def _resume_points(
    conn: psycopg.Connection,
    symbols: list[profile_io.SymbolRow],
    day: date,
    write_from: datetime,
    unchanged: set[int],
) -> list[ResumePoint]:
    """Per symbol with a session: its last stored minute, or the first minute from
    write_from on that received prints after it was stored, or its open (nothing stored).
    Symbols without any new print go to `unchanged` instead."""
    sessions = []
    for symbol in symbols:
        try:
            bounds = session_bounds(symbol.market, day)
        except UnknownMarketError:
            continue  # skipped and reported when its session is computed
        if bounds is not None:
            open_, close = (b.to_pydatetime() for b in bounds)
            sessions.append(SessionKey(symbol.id, open_, close))
    last = profile_state.last_stored_minutes(conn, sessions)
    # recount the prints per minute from write_from to the close: minutes whose count still
    # matches the stored trade count keep their cells (ticks are only ever added)
    spans = [
        (key.symbol_id, max(write_from, key.open_ts), key.close_ts)
        for key in sessions
        if key.symbol_id in last
    ]
    recounted = profile_state.first_recounted_minutes(conn, spans)
    points = []
    for key in sessions:
        stored = last.get(key.symbol_id)
        if stored is None:
            resume = key.open_ts
        elif key.symbol_id not in recounted:
            unchanged.add(key.symbol_id)  # not one print since its last run
            continue
        else:
            resume = min(recounted[key.symbol_id], stored)
        points.append(ResumePoint(key, max(resume, key.open_ts)))
    return points


def resumed_sessions(
    conn: psycopg.Connection,
    symbols: list[profile_io.SymbolRow],
    day: date,
    write_from: datetime,
    end: datetime,
    stats: SourceStats,
) -> SessionCompute:
    """Each session of `day` continued from its stored state (see the module docstring)."""
    rows = {s.id: s for s in symbols}
    points = _resume_points(conn, symbols, day, write_from, stats.unchanged)
    resumed = [p for p in points if p.resume_at > p.session.open_ts]
    cells = profile_state.load_footprints(conn, resumed)
    flows = profile_state.stored_flow(conn, resumed)
    metrics = profile_state.stored_metrics(conn, resumed)
    vwaps = profile_state.stored_vwap(conn, resumed)
    states = profile_state.aggressor_states(conn, resumed)
    plans: dict[int, _Resume] = {}
    for point in resumed:
        sid = point.symbol_id
        first_minute = pd.Timestamp(point.session.open_ts).floor("min")
        stored = cells.get(sid, profile_state.EMPTY_CELLS)
        at = pd.Timestamp(point.resume_at)
        vwap_minute, vwap = vwaps.get(sid, (None, SESSION_OPEN))
        consistent = profile_state.footprint_consistent(
            stored, flows.get(sid), first_minute, at, vwap_minute
        )
        if not consistent:
            stats.inconsistent.append(sid)
            continue
        footprint = Footprint.from_rows(stored, rows[sid].row_size, first_minute)
        stored_rows = StoredRows(
            flows[sid],
            metrics.get(sid, profile_state.EMPTY_METRICS),
            vwap,
        )
        plans[sid] = _Resume(at, footprint, states.get(sid, SESSION_START), stored_rows)
        stats.resumed[sid] = point.resume_at
    since = [
        p if p.symbol_id in plans else ResumePoint(p.session, p.session.open_ts) for p in points
    ]
    ticks = profile_state.load_ticks_since(conn, since, end)
    candles = profile_state.load_candles_since(conn, since, end)

    def compute(
        symbol: profile_io.SymbolRow, _day: date, bounds: Bounds, cvd_total: float
    ) -> SessionFrames | None:
        plan = plans.get(symbol.id)
        open_ = bounds[0]
        at = plan.at if plan else open_
        tail = in_range(ticks.get(symbol.id, EMPTY_TICKS), max(at, open_), bounds[1])
        bars = in_range(candles.get(symbol.id, EMPTY_CANDLES), max(at, open_), bounds[1])
        if tail.empty and bars.empty and plan is None:
            return None
        stats.ticks += len(tail)
        frames = resume_session(
            tail,
            symbol.row_size,
            *bounds,
            resume_at=at,
            footprint=plan.footprint if plan else NO_CELLS,
            aggressor_state=plan.state if plan else SESSION_START,
            cvd_total_before=cvd_total,
            method=VALUE_AREA_METHOD,
            candles=None if bars.empty else bars,
            stored=plan.stored if plan else None,
            config=symbol.config,
        )
        if frames.first_changed is not None:
            stats.rows_from[symbol.id] = frames.first_changed.to_pydatetime()
        return frames

    return compute
