"""What the asset checks share: the symbols' session bounds as SQL arrays and a result
that carries the failing rows' count and a few examples, so a failure in the UI says where
to look. Each check lives beside the asset it checks."""

from datetime import datetime

import dagster as dg
import psycopg

from analytics.sessions import UnknownMarketError, session_bounds
from assets.partitions import window_days
from assets.profile_io import active_symbols

# Relative tolerance for sums of doubles computed in a different order on each side.
REL_TOL = 1e-9
SAMPLE_ROWS = 5

SESSIONS_CTE = """
sessions as (
    select * from unnest(%(ids)s::bigint[], %(opens)s::timestamptz[], %(closes)s::timestamptz[])
        as s (symbol_id, open_ts, close_ts)
)"""


def session_params(conn: psycopg.Connection, start: datetime, end: datetime) -> dict:
    """Every symbol's session bounds inside the window, as arrays for `unnest`."""
    ids: list[int] = []
    opens: list[datetime] = []
    closes: list[datetime] = []
    for symbol in active_symbols(conn):
        for day in window_days(start, end):
            try:
                bounds = session_bounds(symbol.market, day)
            except UnknownMarketError:
                break  # the asset skipped this symbol too (and said so)
            if bounds is not None:
                ids.append(symbol.id)
                opens.append(bounds[0].to_pydatetime())
                closes.append(bounds[1].to_pydatetime())
    return {"ids": ids, "opens": opens, "closes": closes, "start": start, "end": end}


def check_result(rows: list[tuple], columns: tuple[str, ...], what: str) -> dg.AssetCheckResult:
    sample = [dict(zip(columns, (str(v) for v in row), strict=True)) for row in rows[:SAMPLE_ROWS]]
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(rows)} {what}" if rows else None,
        metadata={"failures": len(rows), "sample": dg.MetadataValue.json(sample)},
    )
