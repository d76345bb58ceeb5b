"""Bad-input counters made visible: deltas persisted to ``ingest_rejects`` and a log line.

Each counter source (the pipeline's own validation, the provider's parser) is a
``core.events.Rejects``; the ledger remembers what it already persisted, so each flush
adds only the new counts to the day's row (``storage.queries.record_rejects`` adds).
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from core.events import Rejects
from storage.queries import record_rejects


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
    """Add the deltas to today's rows (``storage.queries.record_rejects``, per source)."""
    by_source: dict[str, Rejects] = {}
    for source, reason, delta, sample in deltas:
        rejects = by_source.setdefault(source, Rejects(source))
        rejects.counts[reason] = rejects.counts.get(reason, 0) + delta
        rejects.samples[reason] = sample
    for rejects in by_source.values():
        record_rejects(conn, rejects)


def summary(sources: Iterable[Rejects]) -> str:
    """``reason=count`` pairs over every source, most frequent first."""
    merged: dict[str, int] = {}
    for rejects in sources:
        for reason, count in rejects.counts.items():
            merged[reason] = merged.get(reason, 0) + count
    return ", ".join(f"{r}={n}" for r, n in sorted(merged.items(), key=lambda kv: -kv[1]))
