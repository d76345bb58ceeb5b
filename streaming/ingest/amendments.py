"""Corrections and cancels on the ingest path (docs/corrections.md).

An amendment is staged when it arrives, becomes *ready* when the pipeline seals the prints
received before it (so the print it amends is in the buffer ahead of it), and is applied
once the buffer is written: in order, each in its own transaction
(``storage.tick_amendments``). The candles of the minutes it changed are then rebuilt from
the amended tape; a minute still held by the candle builder is marked so its candle is
rebuilt, not merged, when it is written. Unmatched amendments are counted as bad input
(``amendment_unmatched``), repeated ones as ``amendments_duplicate``.

When PostgreSQL is down at shutdown, what is not applied goes to a JSON-lines file beside
the tick spool and is applied after the spooled ticks on the next start: nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from core.events import Rejects, TradeAmendment
from storage.tick_amendments import (
    APPLIED,
    DUPLICATE,
    UNMATCHED,
    AmendmentResult,
    AmendmentRow,
    changed_minutes,
)

log = logging.getLogger(__name__)
UNMATCHED_REASON = "amendment_unmatched"


def to_row(amendment: TradeAmendment, symbol_id: int) -> AmendmentRow:
    a = amendment
    return AmendmentRow(
        symbol_id=symbol_id,
        kind=a.kind,
        venue_ts=a.ts,
        trade_id=a.trade_id,
        price=a.price,
        size=a.size,
        conditions=tuple(a.conditions),
        corrected_trade_id=a.corrected_trade_id,
        corrected_price=a.corrected_price,
        corrected_size=a.corrected_size,
        corrected_conditions=tuple(a.corrected_conditions),
        exchange=a.exchange,
        tape=a.tape,
    )


def _dump(row: AmendmentRow) -> str:
    fields = asdict(row)
    fields["venue_ts"] = row.venue_ts.isoformat()
    return json.dumps(fields)


def _load(line: str) -> AmendmentRow:
    fields = json.loads(line)
    fields["venue_ts"] = datetime.fromisoformat(fields["venue_ts"])
    for key in ("conditions", "corrected_conditions"):
        fields[key] = tuple(fields[key])
    return AmendmentRow(**fields)


class AmendmentQueue:
    """Staged → ready → applied, with the counts behind the status line."""

    def __init__(self, spool_path: Path, rejects: Rejects) -> None:
        self.path = spool_path
        self.rejects = rejects
        self.staged: list[AmendmentRow] = []
        self.ready: list[AmendmentRow] = []
        self.counts = {APPLIED: 0, UNMATCHED: 0, DUPLICATE: 0}
        self._from_file = False  # rows restored from the spool file are not applied yet
        self._restored = False

    def __len__(self) -> int:
        return len(self.staged) + len(self.ready)

    def stage(self, row: AmendmentRow) -> None:
        self.staged.append(row)

    def seal(self) -> None:
        """The prints received so far are sealed: the amendments received so far may go."""
        self.ready.extend(self.staged)
        self.staged.clear()

    def take_ready(self) -> list[AmendmentRow]:
        rows, self.ready = self.ready, []
        return rows

    def put_back(self, rows: list[AmendmentRow]) -> None:
        """Not applied (the database failed): first in line again."""
        self.ready[:0] = rows

    def settle(self, results: list[AmendmentResult]) -> set[tuple[int, int]]:
        """Count the outcomes; the (symbol_id, minute_ns) whose candles must be rebuilt."""
        for result in results:
            self.counts[result.outcome] += 1
            if result.outcome == UNMATCHED:
                self.rejects.add(UNMATCHED_REASON, result.row)
        if self._from_file:  # restored rows go first: they are all applied now
            self._from_file = False
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        return changed_minutes(results)

    # --- across restarts ----------------------------------------------------------------
    def spill(self) -> int:
        """Everything not applied to the file (written whole, then renamed over it: the
        restored rows not applied yet are among them); how many."""
        rows = self.ready + self.staged
        if not rows:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text("".join(_dump(row) + "\n" for row in rows), encoding="utf-8")
        partial.replace(self.path)
        self.ready, self.staged = [], []
        return len(rows)

    def restore(self) -> int:
        """Amendments a previous run spilled, ready to apply after the spooled ticks; the
        file stays until they are applied. Once per run (a start that retries calls it
        again)."""
        if self._restored or not self.path.exists():
            return 0
        self._restored = True
        rows = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                rows.append(_load(line))
            except (ValueError, TypeError, KeyError):
                self.rejects.add("amendment_spool_unreadable", f"line {number}: {line[:120]}")
        self.ready[:0] = rows
        self._from_file = bool(rows)
        if rows:
            log.info("%d corrections/cancels from the last run's spool to apply", len(rows))
        return len(rows)
