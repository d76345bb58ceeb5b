"""Parity: over the same stored session, the backtest's signals equal the signals the
engine itself sends when ticked on a simulated clock, minute for minute (real PostgreSQL
and Redis, the engine's own loop)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from backtest.frames import decision_instants
from bench.synthetic.history import history
from tests.support.backtest_seed import DAY, backtest_signals, by_time, engine_signals, store

OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
MINUTES = 150
STRATEGIES = {
    "bt sma": ({"type": "price_above_sma", "period": 10, "symbols": ["AAPL", "ETHUSDT"]}, 120),
    "bt auction": (
        {"type": "auction_market", "allow_balance_trades": True, "symbols": ["AAPL", "ETHUSDT"],
         "trade": False},
        60,
    ),
    "bt rules": (
        {"type": "rules", "signal": "SELL", "symbols": ["AAPL", "ETHUSDT"],
         "all": [{"metric": "price", "op": "<", "ref": "vwap"},
                 {"metric": "aggression_score", "op": ">=", "value": 40}],
         "any": [{"metric": "market_state", "op": "==", "value": "IMBALANCE_DOWN"},
                 {"metric": "price", "op": "<", "ref": "composite_poc"}]},
        0,
    ),
}  # fmt: skip


@pytest.fixture
def seeded(db_url: str) -> dict[str, int]:
    ts = OPEN.timestamp() + 60.0 * np.arange(MINUTES)
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = dict(conn.execute("select symbol, id from symbols").fetchall())
        store(conn, history(ids["AAPL"], "AAPL", ts, seed=11, market="XNYS", asset_type="stock"))
        store(conn, history(ids["ETHUSDT"], "ETHUSDT", ts, seed=12, price=2000.0))
        conn.execute("update strategies set active = false")
        for name, (definition, cooldown) in STRATEGIES.items():
            conn.execute(
                "insert into strategies (name, definition, cooldown_seconds) values (%s, %s, %s)",
                (name, json.dumps(definition), cooldown),
            )
    return ids


def test_backtest_signals_equal_the_engine_on_a_simulated_clock(
    db_url: str, redis_url: str, seeded: dict[str, int]
) -> None:
    # the engine ticks at each minute's decision instant, up to 20 minutes after the data
    end = OPEN + timedelta(minutes=MINUTES + 20)
    instants = decision_instants(OPEN, end).tolist()
    live = engine_signals(db_url, redis_url, instants)

    replayed = backtest_signals(db_url, list(STRATEGIES), DAY, instants[-1])
    live, replayed = by_time(live), by_time(replayed)
    by_strategy = {n: sum(1 for r in live if r[1] == n) for n in STRATEGIES}
    assert all(count >= 2 for count in by_strategy.values()), by_strategy
    assert [r[:4] for r in replayed] == [r[:4] for r in live]
    for mine, theirs in zip(replayed, live, strict=True):
        assert mine[4].keys() == theirs[4].keys()
        for k, v in theirs[4].items():
            assert mine[4][k] == (pytest.approx(v) if isinstance(v, float) else v), k
