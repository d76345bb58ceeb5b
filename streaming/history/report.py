"""What one day of history did (``DayReport``): the numbers a Dagster partition shows in its
metadata and ``marketflow backfill`` sums in its summary (docs/history.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.events import Rejects
from streaming.venues.alpaca.rest import RestCounters


@dataclass
class DayReport:
    day: date
    feed: str
    symbols: list[str] = field(default_factory=list)  # asked for (stored names)
    fetched: list[str] = field(default_factory=list)  # read from the venue this run
    already_complete: list[str] = field(default_factory=list)  # nothing left to ask
    resumed: dict[str, str] = field(default_factory=dict)  # symbol → resume point (ISO)
    refused: dict[str, str] = field(default_factory=dict)  # symbol → why
    complete: list[str] = field(default_factory=list)  # the venue's whole day is stored
    received: int = 0  # trade objects in the pages
    kept: int = 0  # trades that passed the checks
    stored: int = 0  # new rows in ticks
    flagged: dict[str, int] = field(default_factory=dict)  # venue "u" → prints skipped
    rejects: Rejects = field(default_factory=lambda: Rejects("backfill"))
    rest: RestCounters = field(default_factory=RestCounters)
    elapsed_s: float = 0.0

    @property
    def duplicates(self) -> int:
        """Kept trades already in ``ticks`` (a resumed page, a print the stream stored)."""
        return self.kept - self.stored

    def metadata(self) -> dict[str, Any]:
        """Flat numbers and small JSON objects, for a Dagster partition's metadata."""
        rate = self.stored / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return {
            "day": self.day.isoformat(),
            "feed": self.feed,
            "symbols": len(self.symbols),
            "symbols_fetched": len(self.fetched),
            "symbols_already_complete": len(self.already_complete),
            "symbols_complete": len(self.complete),
            "trades_received": self.received,
            "trades_stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejects.total,
            "rejects": dict(self.rejects.counts),
            "venue_flagged": dict(self.flagged),
            "refused": dict(self.refused),
            "resumed": dict(self.resumed),
            **self.rest.as_dict(),
            "elapsed_s": round(self.elapsed_s, 3),
            "trades_per_s": round(rate, 1),
        }
