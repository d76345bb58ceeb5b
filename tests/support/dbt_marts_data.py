"""A day of market data, signals, market states and Polymarket opportunities for the signal
marts' tests (tests/dagster/test_dbt_marts.py), plus the marts' rules recomputed in Python from the
stored candles, independently of the SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd
import psycopg

from analytics.sessions import session_bounds
from assets.market_data import candles_1m
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from bench.synthetic.ticks import insert_ticks, make_ticks

DAY = "2024-03-05"
HORIZONS = (1, 5, 15, 60)
ATR = 0.05


def at(hhmmss: str) -> datetime:
    return pd.Timestamp(f"{DAY} {hhmmss}", tz="UTC").to_pydatetime()


@dataclass(frozen=True)
class SignalSpec:
    symbol: str
    ts: datetime
    type: str
    stop_multiplier: float = 1.5
    target_multiplier: float = 3.0


# AAPL trades 14:30-21:00 UTC that day; ETHUSDT all day. The ETH signal of 23:30 has no
# candles an hour later (the data ends at midnight): its 60-minute outcomes stay null.
SIGNALS = (
    SignalSpec("AAPL", at("15:00:20"), "BUY"),
    SignalSpec("AAPL", at("16:30:45"), "SELL", 1.0, 2.0),
    SignalSpec("AAPL", at("20:40:05"), "BUY"),
    SignalSpec("ETHUSDT", at("09:10:00"), "SELL"),
    SignalSpec("ETHUSDT", at("23:30:10"), "BUY"),
)

# AAPL's states through the session: (time, state)
STATES = (
    ("14:31:00", "UNKNOWN"),
    ("14:45:00", "BALANCE"),
    ("15:00:00", "IMBALANCE_UP"),
    ("15:30:00", "BALANCE"),
    ("15:40:00", "BALANCE"),  # a keep-alive: same state, not a transition
    ("16:00:00", "IMBALANCE_DOWN"),
    ("20:00:00", "BALANCE"),
)

# market m1: two opportunities 30 s apart merge, the third (8 min later) is an episode alone
OPPORTUNITIES = (
    ("m1", "10:00:00", "10:00:30", 0.010, 40.0),
    ("m1", "10:01:00", "10:02:00", 0.030, 15.0),
    ("m1", "10:10:00", "10:11:00", 0.020, 10.0),
)
# (market, time, yes_bid, no_bid, edge, executable_size)
PRICES = (
    ("m1", "10:00:10", 0.47, 0.50, 0.010, 50.0),
    ("m1", "10:01:30", 0.46, 0.49, 0.035, 20.0),
    ("m1", "10:02:00", 0.45, 0.52, -0.010, 0.0),
    ("m1", "10:10:30", 0.48, 0.49, 0.020, 12.0),
    ("m1", "10:11:00", 0.50, 0.49, -0.005, 0.0),
)


def load(url: str) -> None:
    """Ticks → candles and profiles for DAY (Dagster), then signals, states, opportunities."""
    with psycopg.connect(url, autocommit=True) as conn:
        ids = dict(conn.execute("select symbol, id from symbols").fetchall())
        open_, close = session_bounds("XNYS", DAY)
        start, end = session_bounds("24/7", DAY)
        ticks = pd.concat(
            [
                make_ticks([ids["AAPL"]], open_, close, 4000, seed=3),
                make_ticks([ids["ETHUSDT"]], start, end, 4000, seed=4),
            ],
            ignore_index=True,
        )
        ticks["trade_id"] = [f"m{i}" for i in range(len(ticks))]
        insert_ticks(conn, ticks)
    result = dg.materialize(
        [candles_1m, session_profiles],
        resources={"postgres": PostgresResource(database_url=url)},
        partition_key=DAY,
    )
    assert result.success
    with psycopg.connect(url, autocommit=True) as conn:
        strategy = conn.execute("select id from strategies order by id limit 1").fetchone()[0]
        for spec in SIGNALS:
            price = last_close_before(conn, ids[spec.symbol], spec.ts)
            details = {
                "price": price,
                "atr": ATR,
                "atr_stop_multiplier": spec.stop_multiplier,
                "atr_target_multiplier": spec.target_multiplier,
                "aggression_score": 75.0,
            }
            conn.execute(
                "insert into signals (ts, strategy_id, symbol_id, type, price, details) "
                "values (%s, %s, %s, %s, %s, %s)",
                (spec.ts, strategy, ids[spec.symbol], spec.type, price, json.dumps(details)),
            )
        for hhmmss, state in STATES:
            conn.execute(
                "insert into market_state (symbol_id, ts, state, confidence, details) "
                "values (%s, %s, %s, 60, %s)",
                (ids["AAPL"], at(hhmmss), state, json.dumps({"aggression_score": 40.0})),
            )
        for market, opened, closed, edge, size in OPPORTUNITIES:
            conn.execute(
                "insert into binary_opportunities (market_id, kind, opened_at, closed_at, "
                "best_edge, size, details) values (%s, 'pair', %s, %s, %s, %s, '{}')",
                (market, at(opened), at(closed), edge, size),
            )
        for market, ts, yes_bid, no_bid, edge, size in PRICES:
            conn.execute(
                "insert into binary_prices (ts, market_id, yes_bid, no_bid, edge, "
                "executable_size, arbitrage) values (%s, %s, %s, %s, %s, %s, %s)",
                (at(ts), market, yes_bid, no_bid, edge, size, edge > 0),
            )


def last_close_before(conn: psycopg.Connection, symbol_id: int, ts: datetime) -> float:
    row = conn.execute(
        "select close from candles_1m where symbol_id = %s and ts < %s order by ts desc limit 1",
        (symbol_id, ts),
    ).fetchone()
    assert row is not None
    return float(row[0])


def candles(conn: psycopg.Connection, symbol_id: int) -> pd.DataFrame:
    rows = conn.execute(
        "select ts, high, low, close from candles_1m where symbol_id = %s order by ts",
        (symbol_id,),
    ).fetchall()
    return pd.DataFrame(rows, columns=["ts", "high", "low", "close"])


def expected_outcome(bars: pd.DataFrame, spec: SignalSpec, price: float) -> dict[str, object]:
    """The documented rules, minute by minute: horizons count whole minutes after the
    signal's minute; a level reached by both sides in one minute counts as the stop."""
    direction = 1 if spec.type == "BUY" else -1
    minute = pd.Timestamp(spec.ts).floor("min")
    last = bars["ts"].max()
    after = bars[(bars["ts"] > minute) & (bars["ts"] <= minute + timedelta(minutes=60))]
    out: dict[str, object] = {}
    for h in HORIZONS:
        end = minute + timedelta(minutes=h)
        if last < end:
            out[f"fwd_return_{h}m_pct"] = None
            continue
        inside = after[after["ts"] <= end]
        close = float(inside["close"].iloc[-1]) if len(inside) else price
        out[f"fwd_return_{h}m_pct"] = direction * (close - price) / price * 100
    complete = last >= minute + timedelta(minutes=60)
    stop = price - direction * ATR * spec.stop_multiplier
    target = price + direction * ATR * spec.target_multiplier
    outcome = None
    for _, bar in after.iterrows():
        hit_stop = bar["low"] <= stop if direction == 1 else bar["high"] >= stop
        hit_target = bar["high"] >= target if direction == 1 else bar["low"] <= target
        if hit_stop:
            outcome = "stop_loss"
            break
        if hit_target:
            outcome = "take_profit"
            break
    if outcome is None and complete:
        outcome = "neither"
    out["bracket_outcome"] = outcome
    if complete:
        favourable = after["high"].max() if direction == 1 else after["low"].min()
        adverse = after["low"].min() if direction == 1 else after["high"].max()
        out["mfe_60m_pct"] = max(0.0, direction * (favourable - price) / price * 100)
        out["mae_60m_pct"] = min(0.0, direction * (adverse - price) / price * 100)
    else:
        out["mfe_60m_pct"] = out["mae_60m_pct"] = None
    return out
