"""The strategies task: each strategy evaluated over the universe, its rising edges fired
(``EdgeTracker``), recorded in ``signals`` and described for the ``signals`` channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import psycopg

from strategies.edges import EdgeTracker
from strategies.evaluation import evaluate
from strategies.model import Candidate, Strategy, SymbolConfig
from strategies.snapshot import Metrics, Universe

SIGNAL_SQL = """
insert into signals (ts, strategy_id, symbol_id, type, price, details)
values (%s, %s, %s, %s, %s, %s) on conflict do nothing
"""

Fired = list[tuple[Strategy, Candidate]]


def fire_signals(
    strategies: list[Strategy],
    universe: Universe,
    metrics: Metrics,
    state: np.ndarray,
    confidence: np.ndarray,
    configs: Mapping[tuple[int, str], SymbolConfig],
    default_min_score: float,
    targets: Mapping[int, np.ndarray],
    edges: EdgeTracker,
    now: datetime,
) -> Fired:
    """The (strategy, candidate) pairs whose edge fires now (``targets``: each strategy's
    target mask by id, kept from the last reference load)."""
    fired: Fired = []
    t = now.timestamp()
    ids = universe.ids
    for strategy in strategies:
        holding = {
            int(ids[c.index]): c
            for c in evaluate(
                strategy,
                universe,
                metrics,
                state,
                confidence,
                configs,
                default_min_score,
                # kept from the last reference load: not rebuilt per strategy per tick
                targets.get(strategy.id),
            )
        }
        for sid in edges.holding(strategy.id) - holding.keys():
            edges.observe((strategy.id, sid), None, t, strategy.cooldown_seconds)
        for sid, cand in holding.items():
            if edges.observe((strategy.id, sid), cand.type, t, strategy.cooldown_seconds):
                fired.append((strategy, cand))
    edges.forget({s.id for s in strategies})
    return fired


async def record_signals(
    conn: psycopg.AsyncConnection,
    fired: Fired,
    universe: Universe,
    edges: EdgeTracker,
    now: datetime,
) -> None:
    """Insert the fired signals; when that fails their edges are rolled back (so they fire
    again next tick) and the error propagates."""
    try:
        async with conn.cursor() as cur:
            await cur.executemany(
                SIGNAL_SQL,
                [
                    (
                        now,
                        s.id,
                        int(universe.ids[c.index]),
                        c.type,
                        c.price,
                        json.dumps(c.details),
                    )
                    for s, c in fired
                ],
            )
    except BaseException:
        for s, c in fired:  # not recorded: let the edge fire again next tick
            edges.rollback((s.id, int(universe.ids[c.index])))
        raise


def signal_messages(fired: Fired, universe: Universe, now: datetime) -> list[dict[str, Any]]:
    """The ``signals`` channel's message of each fired signal."""
    return [
        {
            "symbol": universe.symbols[c.index],
            "strategy": s.name,
            "type": c.type,
            "time": now.isoformat(),
            "details": c.details,
        }
        for s, c in fired
    ]
