"""What the engine reports: the running ``Counters`` behind its heartbeat (``status``) and
the ``TickReport`` of one tick (what ran, what was written, published and ordered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strategies.intents import OrderIntent


@dataclass
class Counters:
    loops: int = 0
    skipped_ticks: int = 0
    lag_ms: float = 0.0
    last_loop_ms: float = 0.0
    db_errors: int = 0
    redis_errors: int = 0
    state_rows: int = 0
    signals: int = 0
    alerts: int = 0
    symbols: int = 0
    strategies: int = 0
    bad_strategies: int = 0
    # symbols whose newest session / composite profile is older than allowed, as of the
    # last tick (profile runs stopped): their profile is ignored
    stale_session_profiles: int = 0
    stale_composite_profiles: int = 0

    def as_dict(self) -> dict[str, int | float]:
        return dict(self.__dict__)


@dataclass
class TickReport:
    ok: bool
    ran: list[str] = field(default_factory=list)
    state_rows: int = 0
    signals: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    error: str | None = None
    read_only: bool = False  # another engine holds the engine lock
