"""Market-state rows: written when a symbol's state changes or every N seconds, published
on the ``market_state`` channel (docs/semantics.md, Market state).

Not a row per symbol every few seconds forever: a row is
written only when the state or its confidence changes, or as a keep-alive every
``ENGINE_STATE_REFRESH_SECONDS``, so the table records transitions, not a metronome.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from analytics.market_state import STATE_NAMES, UNKNOWN
from strategies.snapshot import (
    PROFILE_CURRENT,
    PROFILE_STALE,
    Metrics,
    Universe,
    json_number,
)

UNKNOWN_NAME = STATE_NAMES[UNKNOWN].value

INSERT_SQL = """
insert into market_state (symbol_id, ts, state, balance_high, balance_low, poc, confidence,
                          details)
values (%s, %s, %s, %s, %s, %s, %s, %s)
on conflict (symbol_id, ts) do update set
    state = excluded.state, balance_high = excluded.balance_high,
    balance_low = excluded.balance_low, poc = excluded.poc,
    confidence = excluded.confidence, details = excluded.details
"""


@dataclass(frozen=True)
class StateRow:
    symbol_id: int
    symbol: str
    ts: datetime
    state: str
    confidence: float
    vah: float | None
    val: float | None
    poc: float | None
    details: dict[str, Any]

    def params(self) -> tuple[Any, ...]:
        return (
            self.symbol_id,
            self.ts,
            self.state,
            self.vah,
            self.val,
            self.poc,
            self.confidence,
            json.dumps(self.details),
        )

    def message(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "time": self.ts.isoformat(),
            "state": self.state,
            "confidence": self.confidence,
            "poc": self.poc,
            "vah": self.vah,
            "val": self.val,
            "details": self.details,
        }


def _profile_details(metrics: Metrics, i: int) -> dict[str, Any]:
    """Which session profile the state used, or why there was none (an UNKNOWN's reason)."""
    status = int(metrics.profile_status[i]) if len(metrics.profile_status) else PROFILE_CURRENT
    if status == PROFILE_CURRENT:
        return {"profile": "session"}
    if status == PROFILE_STALE:
        bucket = float(metrics.profile_bucket[i])
        stamp = datetime.fromtimestamp(bucket, UTC).isoformat() if math.isfinite(bucket) else None
        return {
            "profile": None,
            "reason": "stale_session_profile",
            "stale_profile_bucket": stamp,
        }
    return {"profile": None, "reason": "no_session_profile"}


class StateRecorder:
    """Decides which symbols get a row this time (changed or due), remembering what it wrote.

    ``mark_written`` is called only after the rows reached the database, so a failed write
    (PostgreSQL down) is retried on the next market-state pass.
    """

    def __init__(self, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        # id → (state, confidence, why there is no profile, written at)
        self._written: dict[int, tuple[str, float, str | None, float]] = {}

    def due(
        self,
        universe: Universe,
        metrics: Metrics,
        state: npt.NDArray[np.int8],
        confidence: npt.NDArray[np.float64],
        now: datetime,
    ) -> list[StateRow]:
        t = now.timestamp()
        rows: list[StateRow] = []
        for i, sid in enumerate(universe.ids.tolist()):
            name = STATE_NAMES[int(state[i])].value
            conf = float(confidence[i])
            profile = _profile_details(metrics, i)
            last = self._written.get(sid)
            if (
                last is not None
                # a new reason (no profile → stale profile) is a change worth a row
                and last[:3] == (name, conf, profile.get("reason"))
                and (
                    # UNKNOWN (no data) is recorded once, not kept alive: a closed market would
                    # otherwise write a row per symbol per refresh all night
                    name == UNKNOWN_NAME or t - last[3] < self.refresh_seconds
                )
            ):
                continue
            known = int(state[i]) != UNKNOWN
            rows.append(
                StateRow(
                    symbol_id=sid,
                    symbol=universe.symbols[i],
                    ts=now,
                    state=name,
                    confidence=conf,
                    vah=json_number(metrics.vah[i]),
                    val=json_number(metrics.val[i]),
                    poc=json_number(metrics.poc[i]),
                    details={
                        "price": json_number(metrics.price[i]),
                        "distance_from_poc_pct": (
                            json_number(metrics.distance_pct[i]) if known else None
                        ),
                        "in_value_area": bool(
                            known and metrics.val[i] <= metrics.price[i] <= metrics.vah[i]
                        ),
                        "momentum_pct": json_number(metrics.momentum_pct[i]),
                        "pressure_imbalance": json_number(
                            metrics.buy_pressure[i] - metrics.sell_pressure[i]
                        ),
                        "aggression_score": json_number(metrics.aggression[i]),
                        **profile,
                    },
                )
            )
        return rows

    def mark_written(self, rows: list[StateRow]) -> None:
        for row in rows:
            self._written[row.symbol_id] = (
                row.state,
                row.confidence,
                row.details.get("reason"),
                row.ts.timestamp(),
            )


async def write_states(conn: psycopg.AsyncConnection, rows: list[StateRow]) -> None:
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(INSERT_SQL, [r.params() for r in rows])


async def refresh_states(
    conn: psycopg.AsyncConnection,
    recorder: StateRecorder,
    current: dict[int, tuple[int, float]],
    universe: Universe,
    metrics: Metrics,
    now: datetime,
) -> list[StateRow]:
    """The state task: ``current`` (symbol id → state code, confidence) takes this tick's
    market state, and the rows due are written and returned for publishing."""
    for k, sid in enumerate(universe.ids.tolist()):
        current[sid] = (int(metrics.state[k]), float(metrics.confidence[k]))
    rows = recorder.due(universe, metrics, metrics.state, metrics.confidence, now)
    await write_states(conn, rows)
    recorder.mark_written(rows)
    return rows
