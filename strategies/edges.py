"""When a holding condition becomes a signal: rising edge and cooldown per (strategy,
symbol)."""

from __future__ import annotations

from collections.abc import Mapping


class EdgeTracker:
    """Rising edge + cooldown per (strategy, symbol).

    ``observe`` gets the signal type a condition gives now (None when it does not hold)
    and says whether to fire: only when it turns on (or changes type) and the last signal
    of that pair is at least ``cooldown`` seconds old. An edge inside the cooldown is
    swallowed, not queued: the condition must fall and rise again. Only pairs whose
    condition holds are remembered, so a loop touches the true pairs, not every symbol.
    """

    def __init__(self) -> None:
        self._holding: dict[int, dict[int, str]] = {}  # strategy → symbol → signal type
        self._fired_at: dict[tuple[int, int], float] = {}
        self._undo: dict[tuple[int, int], tuple[str | None, float | None]] = {}

    def seed(self, fired_at: Mapping[tuple[int, int], float]) -> None:
        """Last signal times from the ``signals`` table, so a restart keeps the cooldown."""
        for key, ts in fired_at.items():
            self._fired_at[key] = max(ts, self._fired_at.get(key, float("-inf")))

    def holding(self, strategy_id: int) -> set[int]:
        """Symbols whose condition held at the last observation for this strategy."""
        return set(self._holding.get(strategy_id, ()))

    def observe(self, key: tuple[int, int], value: str | None, now: float, cooldown: float) -> bool:
        strategy_id, symbol_id = key
        held = self._holding.setdefault(strategy_id, {})
        previous = held.get(symbol_id)
        self._undo[key] = (previous, self._fired_at.get(key))
        if value is None:
            held.pop(symbol_id, None)
            return False
        held[symbol_id] = value
        if value == previous:
            return False
        if now - self._fired_at.get(key, float("-inf")) < cooldown:
            return False
        self._fired_at[key] = now
        return True

    def rollback(self, key: tuple[int, int]) -> None:
        """Undo the last ``observe`` of ``key`` (its signal could not be recorded)."""
        if key not in self._undo:
            return
        last, fired = self._undo.pop(key)
        held = self._holding.setdefault(key[0], {})
        if last is None:
            held.pop(key[1], None)
        else:
            held[key[1]] = last
        if fired is None:
            self._fired_at.pop(key, None)
        else:
            self._fired_at[key] = fired

    def forget(self, strategy_ids: set[int]) -> None:
        """Drop the remembered conditions of strategies no longer active."""
        for sid in [s for s in self._holding if s not in strategy_ids]:
            del self._holding[sid]
