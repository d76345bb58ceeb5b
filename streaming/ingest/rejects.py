"""Bad-input counters made visible: deltas persisted to ``ingest_rejects`` and a log line.

Each counter source (the pipeline's own validation, the provider's parser) is a
``streaming.events.Rejects``; the ledger remembers what it already persisted, so each flush
adds only the new counts to the day's row (``count = count + delta``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg

from streaming.events import Rejects

_UPSERT = """
insert into ingest_rejects (day, source, reason, count, sample, last_seen)
values (%s, %s, %s, %s, %s, %s)
on conflict (day, source, reason) do update set
    count = ingest_rejects.count + excluded.count,
    sample = excluded.sample,
    last_seen = excluded.last_seen
"""


class RejectLedger:
    def __init__(self) -> None:
        self._persisted: dict[tuple[str, str], int] = {}

    def deltas(self, sources: Iterable[Rejects]) -> list[tuple[str, str, int, str]]:
        """(source, reason, new count, sample) not persisted yet (pure)."""
        out = []
        for rejects in sources:
            for reason, count in rejects.counts.items():
                done = self._persisted.get((rejects.source, reason), 0)
                if count > done:
                    sample = rejects.samples.get(reason, "")
                    out.append((rejects.source, reason, count - done, sample))
        return out

    def mark(self, deltas: Iterable[tuple[str, str, int, str]]) -> None:
        for source, reason, delta, _ in deltas:
            key = (source, reason)
            self._persisted[key] = self._persisted.get(key, 0) + delta


def persist(conn: psycopg.Connection, deltas: list[tuple[str, str, int, str]]) -> None:
    if not deltas:
        return
    now = datetime.now(UTC)
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            _UPSERT,
            [(now.date(), src, reason, n, sample, now) for src, reason, n, sample in deltas],
        )


def summary(sources: Iterable[Rejects]) -> str:
    """``reason=count`` pairs over every source, most frequent first."""
    merged: dict[str, int] = {}
    for rejects in sources:
        for reason, count in rejects.counts.items():
            merged[reason] = merged.get(reason, 0) + count
    return ", ".join(f"{r}={n}" for r, n in sorted(merged.items(), key=lambda kv: -kv[1]))
