"""A symbol's footprint history and what the engine's footprint reads returned at each
instant (``streaming.engine.footprint_reads``): the newest ``session_vwap`` row, the
longest stack per side among the bars of ``STACK_WINDOW`` and the newest big print per
side within ``BIG_PRINT_WINDOW``, each with the engine's tie rules (the newest bar of
equal stacks; the last stored of prints at one instant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import psycopg

from strategies.footprint import (
    BIG_PRINT_WINDOW,
    SIDES,
    STACK_WINDOW,
    Footprint,
    longest_stacks,
    newest_prints,
)

F = npt.NDArray[np.float64]


def _empty() -> F:
    return np.zeros(0)


@dataclass(frozen=True)
class FootprintHistory:
    """Sorted by time; stacks one row per bar and side (its longest); prints per side
    column (``strategies.footprint.SIDES``) sorted as the engine breaks ties."""

    vwap_bucket: F = field(default_factory=_empty)
    vwap: F = field(default_factory=_empty)
    vwap_sd: F = field(default_factory=_empty)
    stack_bucket: tuple[F, F] = field(default_factory=lambda: (_empty(), _empty()))
    stack_len: tuple[F, F] = field(default_factory=lambda: (_empty(), _empty()))
    print_ts: tuple[F, F, F] = field(default_factory=lambda: (_empty(), _empty(), _empty()))
    print_price: tuple[F, F, F] = field(default_factory=lambda: (_empty(), _empty(), _empty()))
    print_size: tuple[F, F, F] = field(default_factory=lambda: (_empty(), _empty(), _empty()))


VWAP_SQL = """
select date_part('epoch', bucket), vwap, sd from session_vwap
where symbol_id = %s and bucket > %s and bucket < %s order by bucket
"""
STACKS_SQL = """
select date_part('epoch', bucket), max(stack_len)::float8 from footprint_imbalances
where symbol_id = %s and side = %s and bucket > %s and bucket < %s
group by bucket order by bucket
"""
PRINTS_SQL = """
select date_part('epoch', ts), price, size from big_prints
where symbol_id = %s and side is not distinct from %s and bucket > %s and bucket < %s
order by ts, bucket, print_no
"""


def _columns(rows: list[tuple], width: int) -> list[F]:
    m = np.array(rows, dtype=np.float64) if rows else np.zeros((0, width))
    return [m[:, k].copy() for k in range(width)]


def load_footprint(
    conn: psycopg.Connection, sid: int, start: datetime, end: datetime, session_since: datetime
) -> FootprintHistory:
    """The footprint rows of minutes before ``end`` that instants from ``start`` can see
    (``session_since``: how far back a session's VWAP row may lie)."""
    with conn.cursor(binary=True) as cur:
        vwap = _columns(cur.execute(VWAP_SQL, (sid, session_since, end)).fetchall(), 3)
        stacks = [
            _columns(cur.execute(STACKS_SQL, (sid, side, start - STACK_WINDOW, end)).fetchall(), 2)
            for side in ("buy", "sell")
        ]
        since = start - BIG_PRINT_WINDOW - timedelta(minutes=1)
        prints = [
            _columns(cur.execute(PRINTS_SQL, (sid, side, since, end)).fetchall(), 3)
            for side in SIDES  # buy, sell, None (split), the column order
        ]
    return FootprintHistory(
        vwap_bucket=vwap[0],
        vwap=vwap[1],
        vwap_sd=vwap[2],
        stack_bucket=(stacks[0][0], stacks[1][0]),
        stack_len=(stacks[0][1], stacks[1][1]),
        print_ts=(prints[0][0], prints[1][0], prints[2][0]),
        print_price=(prints[0][1], prints[1][1], prints[2][1]),
        print_size=(prints[0][2], prints[1][2], prints[2][2]),
    )


def footprint_at(fh: FootprintHistory, asof: F) -> Footprint:
    """One group per instant of ``asof`` (sorted), as the engine read it then."""
    n = len(asof)
    fp = Footprint.empty(n)
    k = np.searchsorted(fh.vwap_bucket, asof, side="right") - 1
    has = k >= 0
    if len(fh.vwap_bucket):
        kk = np.maximum(k, 0)
        fp.vwap[:] = np.where(has, fh.vwap[kk], np.nan)
        fp.vwap_sd[:] = np.where(has, fh.vwap_sd[kk], np.nan)
        fp.vwap_bucket[:] = np.where(has, fh.vwap_bucket[kk], np.nan)
    fp.stack_buy[:], fp.stack_buy_bucket[:] = longest_stacks(
        fh.stack_bucket[0], fh.stack_len[0], asof
    )
    fp.stack_sell[:], fp.stack_sell_bucket[:] = longest_stacks(
        fh.stack_bucket[1], fh.stack_len[1], asof
    )
    for col in range(3):
        ts, price, size = newest_prints(
            fh.print_ts[col], fh.print_price[col], fh.print_size[col], asof
        )
        fp.big_ts[:, col], fp.big_price[:, col], fp.big_size[:, col] = ts, price, size
    return fp
