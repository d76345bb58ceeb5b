"""Parity of the footprint conditions: over one stored session with footprint rows (session
VWAP, stacked imbalances, big prints, initial balance), a backtest of strategies using
them sends the signals the engine's own loop sends on a simulated clock, minute for
minute, with the same details (real PostgreSQL and Redis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from backtest.frames import decision_instants
from bench.synthetic.history import history
from tests.support.backtest_seed import DAY, backtest_signals, by_time, engine_signals, store
from tests.support.footprint_history import store_footprint

OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
MINUTES = 120
SYMBOLS = ["AAPL", "ETHUSDT"]
STRATEGIES = {
    "fp stack": (
        {"type": "rules", "signal": "BUY", "symbols": SYMBOLS,
         "all": [{"metric": "stacked_buy_imbalance", "op": ">=", "value": 4},
                 {"metric": "price", "op": ">", "ref": "session_vwap"}]},
        0,
    ),
    "fp bands": (
        {"type": "rules", "signal": "SELL", "symbols": SYMBOLS,
         "all": [{"metric": "stacked_sell_imbalance", "op": "<", "value": 3}],
         "any": [{"metric": "price", "op": ">=", "ref": "vwap_upper", "k": 1},
                 {"metric": "price", "op": "<=", "ref": "vwap_lower", "k": 1.5}]},
        60,
    ),
    "fp ib and prints": (
        {"type": "rules", "signal": "BUY", "symbols": SYMBOLS,
         "any": [{"metric": "ib_break", "op": "==", "value": "BELOW"},
                 {"metric": "big_print", "op": "==", "value": "BUY", "seconds": 120}]},
        0,
    ),
}  # fmt: skip


@pytest.fixture
def seeded(db_url: str) -> None:
    ts = OPEN.timestamp() + 60.0 * np.arange(MINUTES)
    with psycopg.connect(db_url, autocommit=True) as conn:
        ids = dict(conn.execute("select symbol, id from symbols").fetchall())
        for seed, (symbol, market, kind, price) in enumerate(
            [("AAPL", "XNYS", "stock", 100.0), ("ETHUSDT", "24/7", "crypto", 2000.0)]
        ):
            h = history(ids[symbol], symbol, ts, seed=21 + seed, market=market, asset_type=kind,
                        price=price)  # fmt: skip
            store(conn, h)
            store_footprint(conn, h, seed=31 + seed)
        conn.execute("update strategies set active = false")
        for name, (definition, cooldown) in STRATEGIES.items():
            conn.execute(
                "insert into strategies (name, definition, cooldown_seconds) values (%s, %s, %s)",
                (name, json.dumps(definition), cooldown),
            )


def test_footprint_conditions_signal_the_same_in_the_engine_and_the_backtest(
    db_url: str, redis_url: str, seeded: None
) -> None:
    instants = decision_instants(OPEN, OPEN + timedelta(minutes=MINUTES + 10)).tolist()
    live = engine_signals(db_url, redis_url, instants)
    replayed = backtest_signals(db_url, list(STRATEGIES), DAY, instants[-1])
    live, replayed = by_time(live), by_time(replayed)
    counts = {(n, s): sum(1 for r in live if r[1:3] == (n, s)) for n in STRATEGIES for s in SYMBOLS}
    assert all(c >= 2 for c in counts.values()), counts
    assert [r[:4] for r in replayed] == [r[:4] for r in live]
    for mine, theirs in zip(replayed, live, strict=True):
        assert mine[4].keys() == theirs[4].keys()
        for k, v in theirs[4].items():
            if isinstance(v, dict):
                assert mine[4][k] == pytest.approx(v), k
            else:
                assert mine[4][k] == (pytest.approx(v) if isinstance(v, float) else v), k
    # the details name the footprint values the conditions read
    details = {r[1]: r[4] for r in live}
    assert {"stacked_buy_imbalance", "session_vwap", "vwap_sd"} <= details["fp stack"].keys()
    assert {"ib_high", "ib_low", "big_print"} <= details["fp ib and prints"].keys()
