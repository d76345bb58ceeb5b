"""How far the history backfill got: ``tick_history_progress`` per symbol and UTC day
(docs/history.md).

``resume_from`` is the time of the newest print the backfill stored for the symbol and day,
written only after every earlier page of that symbol is committed, so everything before it
is stored: a re-run asks the venue from there (inclusive; the exact keys of ``ticks`` drop
what comes twice). ``complete`` says the venue's day was read to its end after the day was
over: a re-run asks nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

import psycopg


@dataclass(frozen=True)
class DayProgress:
    resume_from: datetime
    complete: bool
    feed: str
    trades_fetched: int


def read_progress(
    conn: psycopg.Connection, day: date, symbol_ids: Iterable[int]
) -> dict[int, DayProgress]:
    """The progress of each symbol that has any for ``day``."""
    rows = conn.execute(
        "select symbol_id, resume_from, complete, feed, trades_fetched"
        " from tick_history_progress where day = %s and symbol_id = any(%s)",
        (day, list(symbol_ids)),
    ).fetchall()
    return {int(r[0]): DayProgress(r[1], bool(r[2]), str(r[3]), int(r[4])) for r in rows}


def advance(
    conn: psycopg.Connection,
    day: date,
    feed: str,
    resume_from: Mapping[int, datetime],
    fetched: Mapping[int, int],
    complete: Iterable[int] = (),
) -> None:
    """Move the symbols' resume points forward (never back), add what they fetched, and mark
    ``complete`` ones done; one statement per call. Every symbol named in ``fetched`` or
    ``complete`` needs its resume point in ``resume_from``."""
    done = set(complete)
    ids = sorted(resume_from)
    if not set(fetched) | done <= set(ids):
        raise ValueError("every symbol advanced needs a resume point")
    if not ids:
        return
    conn.execute(
        """
        insert into tick_history_progress as p
            (symbol_id, day, feed, resume_from, complete, trades_fetched, updated_at)
        select u.symbol_id, %(day)s, %(feed)s, u.resume_from, u.complete, u.fetched, now()
        from unnest(%(ids)s::bigint[], %(resume)s::timestamptz[], %(done)s::boolean[],
                    %(fetched)s::bigint[]) as u (symbol_id, resume_from, complete, fetched)
        on conflict (symbol_id, day) do update set
            feed = excluded.feed,
            resume_from = greatest(p.resume_from, excluded.resume_from),
            complete = p.complete or excluded.complete,
            trades_fetched = p.trades_fetched + excluded.trades_fetched,
            updated_at = now()
        """,
        {
            "day": day,
            "feed": feed,
            "ids": ids,
            "resume": [resume_from.get(i) for i in ids],
            "done": [i in done for i in ids],
            "fetched": [fetched.get(i, 0) for i in ids],
        },
    )
