"""The running counts of one ingest pipeline, behind its status line and heartbeat."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counters:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    candles_written: int = 0
    candles_recomputed: int = 0
    bars_written: int = 0
    db_errors: int = 0
    last_print_ns: int = 0
    extra: dict[str, float] = field(default_factory=dict)
