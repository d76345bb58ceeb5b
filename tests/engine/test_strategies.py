"""Strategy definitions: parsing, the rule vocabulary, the auction-market entry, rising edge
and cooldown (pure and through the engine on a real database)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import numpy as np
import psycopg
import pytest

from analytics.market_state import BALANCE, IMBALANCE_DOWN, IMBALANCE_UP, UNKNOWN
from strategies.definitions import parse_config, parse_strategy, trade_limits
from strategies.edges import EdgeTracker
from strategies.evaluation import evaluate
from strategies.model import DefinitionError, SymbolConfig, TradeLimits
from strategies.snapshot import Metrics, Universe
from streaming.engine.loop import Engine
from tests.support.engine_rows import NOW, RISING, insert_candles, seed_aapl, settings, symbol_ids

EXAMPLE_RULES = {
    "type": "rules",
    "all": [
        {"metric": "price", "op": ">", "ref": "sma", "period": 20},
        {"metric": "market_state", "op": "==", "value": "IMBALANCE_UP"},
        {"metric": "aggression_score", "op": ">=", "value": 70},
        {"metric": "cvd_slope", "op": ">", "value": 0},
    ],
    "signal": "BUY",
}


def universe(n: int) -> Universe:
    return Universe(
        ids=np.arange(1, n + 1, dtype=np.int64),
        symbols=tuple(f"S{k}" for k in range(n)),
        markets=("XNYS",) * n,
        asset_types=("stock",) * n,
    )


def metrics(n: int, **over: object) -> Metrics:
    nan = np.full(n, np.nan)
    base: dict[str, object] = {
        "price": np.full(n, 101.0),
        "momentum_pct": np.zeros(n),
        "atr": np.full(n, 0.5),
        "sma": {20: np.full(n, 100.0)},
        "vwap": np.full(n, 100.5),
        "poc": np.full(n, 100.0),
        "vah": np.full(n, 100.8),
        "val": np.full(n, 99.5),
        "composite_poc": nan,
        "composite_vah": nan,
        "composite_val": nan,
        "buy_pressure": np.full(n, 75.0),
        "sell_pressure": np.full(n, 25.0),
        "cvd_momentum": np.full(n, 1200.0),
        "cvd_slope": np.full(n, 300.0),
        "aggression": np.full(n, 100.0),
        "direction": np.ones(n, dtype=np.int8),
        "state": np.full(n, IMBALANCE_UP, np.int8),
        "confidence": np.full(n, 90.0),
        "distance_pct": np.full(n, 1.0),
    }
    base.update(over)
    return Metrics(**base)  # type: ignore[arg-type]


def run_eval(strategy, m: Metrics, configs=None, state=None, min_score=70.0):
    n = len(m.price)
    st = m.state if state is None else np.asarray(state, dtype=np.int8)
    return evaluate(strategy, universe(n), m, st, m.confidence, configs or {}, min_score)


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ([], "JSON object"),
        ({"type": "macd"}, "type must be one of"),
        ({"type": "rules", "all": []}, "non-empty"),
        ({"type": "rules", "all": [{"metric": "price", "op": "~", "value": 1}]}, "op must"),
        ({"type": "rules", "all": [{"metric": "rsi", "op": ">", "value": 1}]}, "unknown metric"),
        (
            {"type": "rules", "all": [{"metric": "price", "op": ">", "value": 1, "ref": "poc"}]},
            "exactly one",
        ),
        ({"type": "rules", "all": [{"metric": "price", "op": ">", "ref": "sma"}]}, "period"),
        ({"type": "rules", "all": [{"metric": "price", "op": ">", "ref": "ema"}]}, "unknown ref"),
        (
            {"type": "rules", "all": [{"metric": "market_state", "op": ">", "value": "BALANCE"}]},
            "== or !=",
        ),
        (
            {"type": "rules", "all": [{"metric": "market_state", "op": "==", "value": "UP"}]},
            "== or !=",
        ),
        (
            {"type": "rules", "all": [{"metric": "price", "op": ">", "value": "high"}]},
            "must be a number",
        ),
        ({"type": "price_above_sma", "period": 0}, "positive"),
        ({"type": "price_above_sma", "signal": "HOLD"}, "BUY or SELL"),
        ({"type": "price_above_sma", "symbols": "AAPL"}, "list"),
    ],
)
def test_bad_definitions_say_why(definition, message):
    with pytest.raises(DefinitionError, match=message):
        parse_strategy(1, "x", definition, 300)


def test_example_rule_and_each_condition():
    s = parse_strategy(7, "rules", {**EXAMPLE_RULES, "symbols": ["S0", "S1", "S2", "S3", "S4"]}, 60)
    assert s.sma_periods() == {20} and not s.trade
    n = 5
    m = metrics(
        n,
        price=np.array([101.0, 99.0, 101.0, 101.0, np.nan]),  # S1 below SMA, S4 no price
        aggression=np.array([100.0, 100, 60, 100, 100]),  # S2 score too low
        cvd_slope=np.array([300.0, 300, 300, -5, 300]),  # S3 slope negative
    )
    got = run_eval(s, m)
    assert [(c.index, c.type) for c in got] == [(0, "BUY")]
    assert got[0].details["sma20"] == 100.0 and got[0].details["market_state"] == "IMBALANCE_UP"
    # state condition
    assert run_eval(s, m, state=[BALANCE] * n) == []


def test_refs_and_any():
    s = parse_strategy(
        1,
        "r",
        {
            "type": "rules",
            "symbols": ["S0", "S1", "S2"],
            "signal": "SELL",
            "all": [{"metric": "price", "op": "<", "ref": "vah"}],
            "any": [
                {"metric": "price", "op": ">=", "ref": "vwap"},
                {"metric": "flow_direction", "op": "==", "value": "SELL"},
            ],
        },
        0,
    )
    m = metrics(
        3, price=np.array([100.6, 100.0, 101.0]), direction=np.array([1, -1, -1], dtype=np.int8)
    )
    # S0: < VAH and ≥ VWAP; S1: < VAH and SELL flow; S2: above VAH
    assert [(c.index, c.type) for c in run_eval(s, m)] == [(0, "SELL"), (1, "SELL")]
    missing = metrics(3, vah=np.full(3, np.nan))
    assert run_eval(s, missing) == []  # a missing ref is never true


def test_price_above_sma_original_rule():
    s = parse_strategy(
        1, "sma", {"type": "price_above_sma", "period": 20, "symbol": "S1", "signal": "BUY"}, 300
    )
    m = metrics(2)
    got = run_eval(s, m)
    assert [(c.index, c.details["price"], c.details["sma"], c.details["period"]) for c in got] == [
        (1, 101.0, 100.0, 20)
    ]
    assert run_eval(s, metrics(2, sma={20: np.full(2, np.nan)})) == []


def test_auction_market_entries():
    s = parse_strategy(
        2, "auction_market", {"type": "auction_market", "min_aggression_score": 70}, 300
    )
    assert s.trade
    n = 6
    configs = {(int(i), "auction_market"): SymbolConfig() for i in range(1, n + 1)}
    m = metrics(
        n,
        direction=np.array([1, -1, -1, 1, 1, 1], dtype=np.int8),
        aggression=np.array([100.0, 60, 100, 100, 100, 100]),
        atr=np.array([0.5, 0.5, 0.5, 0.5, np.nan, 0.5]),
    )
    state = [IMBALANCE_UP, IMBALANCE_DOWN, IMBALANCE_DOWN, IMBALANCE_DOWN, IMBALANCE_UP, UNKNOWN]
    got = run_eval(s, m, configs, state)
    # S0 up+buy ✓; S1 score 60 < 70; S2 down+sell ✓ (SELL); S3 down+buy ✗; S4 no ATR; S5 ✗
    assert [(c.index, c.type) for c in got] == [(0, "BUY"), (2, "SELL")]
    d = got[0].details
    assert d["reason"] == "IMBALANCE_UP + Aggressive BUY (score: 100)"
    assert (d["atr"], d["atr_stop_multiplier"], d["atr_target_multiplier"]) == (0.5, 1.5, 3.0)
    # per-symbol parameters win over the definition; enabled=false excludes
    configs[(1, "auction_market")] = SymbolConfig(parameters={"min_aggression_score": 101})
    configs[(3, "auction_market")] = SymbolConfig(enabled=False)
    assert run_eval(s, m, configs, state) == []
    # BALANCE entries only with allow_balance_trades and a score ≥ 80
    configs = {(1, "auction_market"): SymbolConfig(parameters={"allow_balance_trades": True})}
    bal = metrics(1, direction=np.array([-1], dtype=np.int8), aggression=np.array([80.0]))
    assert [c.type for c in run_eval(s, bal, configs, [BALANCE])] == ["SELL"]
    low = metrics(1, aggression=np.array([79.0]))
    assert run_eval(s, low, configs, [BALANCE]) == []
    assert run_eval(s, bal, {(1, "auction_market"): SymbolConfig()}, [BALANCE]) == []


def test_edge_and_cooldown():
    e = EdgeTracker()
    key = (1, 1)
    assert e.observe(key, "BUY", 0, 300)  # rising edge
    assert not e.observe(key, "BUY", 1, 300)  # still true: no repeat
    assert not e.observe(key, None, 2, 300)
    assert not e.observe(key, "BUY", 100, 300)  # a new edge inside the cooldown is swallowed
    assert not e.observe(key, "BUY", 400, 300)  # ...and not replayed later while it holds
    assert not e.observe(key, None, 401, 300)
    assert e.observe(key, "BUY", 402, 300)  # edge after the cooldown fires
    assert not e.observe(key, "SELL", 403, 300)  # type change is an edge, but cooling down
    assert e.observe(key, "BUY", 800, 0) is True  # SELL → BUY with no cooldown
    # restart: the last signal time from the table keeps the cooldown
    fresh = EdgeTracker()
    fresh.seed({key: 1000.0})
    assert not fresh.observe(key, "BUY", 1100, 300)
    assert not fresh.observe(key, None, 1200, 300)
    assert fresh.observe(key, "BUY", 1301, 300)
    fresh.rollback(key)  # could not be written: fires again next time
    assert fresh.observe(key, "BUY", 1302, 300)


def _signal_count(conn: psycopg.Connection, name: str) -> int:
    return conn.execute(
        "select count(*) from signals s join strategies t on t.id = s.strategy_id"
        " where t.name = %s",
        (name,),
    ).fetchone()[0]


def test_engine_edge_cooldown_and_a_rule_without_code(db_url, redis_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl = seed_aapl(conn)
        conn.execute("update strategies set cooldown_seconds = 60")
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds) values"
            " ('breakout rule', %s, 60), ('broken', %s, 60)",
            (
                json.dumps({**EXAMPLE_RULES, "symbols": ["AAPL"]}),
                json.dumps({"type": "rules", "all": [{"metric": "rsi", "op": ">", "value": 1}]}),
            ),
        )
        falling = [*RISING[:-1], 99.0]  # last close far below the SMA

        async def go() -> Engine:
            engine = Engine(settings(), db_url, redis_url)
            try:
                t = NOW
                for closes, dt in (
                    (RISING, 0),
                    (RISING, 1),
                    (falling, 2),
                    (RISING, 3),
                    (falling, 30),
                    (RISING, 61),
                    (RISING, 62),
                ):
                    # the state cadence is 5 s: force a fresh state for each step
                    insert_candles(conn, aapl, closes, NOW)
                    engine._due.pop("state", None)
                    r = await engine.tick(t + timedelta(seconds=dt))
                    assert r.ok, r.error
                return engine
            finally:
                await engine.close()

        engine = asyncio.run(go())
        # fired at 0, swallowed at 3 (inside 60 s), fired again at 61 after a fall at 30
        assert _signal_count(conn, "AAPL SMA20 Breakout") == 2
        # the rule runs with no code: price > SMA20, IMBALANCE_UP, score ≥ 70, slope > 0
        assert _signal_count(conn, "breakout rule") == 2
        assert engine.counters.bad_strategies == 1  # "broken" skipped, the engine ran on
        times = [
            r[0]
            for r in conn.execute(
                "select s.ts from signals s join strategies t on t.id = s.strategy_id"
                " where t.name = 'AAPL SMA20 Breakout' order by s.ts"
            ).fetchall()
        ]
        assert [(t - NOW).total_seconds() for t in times] == [0.0, 61.0]
        assert symbol_ids(conn)["AAPL"] == aapl


def test_an_absurd_sma_period_is_refused_not_fatal(db_url, redis_url):
    """The candle window grows with the longest SMA: a period of a billion minutes made
    ``now - window`` overflow on every tick, so one typo stopped every strategy."""
    with pytest.raises(DefinitionError, match="period"):
        parse_strategy(1, "x", {"type": "price_above_sma", "period": 10**9}, 300)
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed_aapl(conn)
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds) values ('typo', %s, 60)",
            (json.dumps({"type": "price_above_sma", "period": 10**9, "symbol": "AAPL"}),),
        )

        async def go() -> Engine:
            engine = Engine(settings(), db_url, redis_url)
            try:
                report = await engine.tick(NOW)
                assert report.ok, report.error
                assert report.signals  # the seeded strategies still run
                return engine
            finally:
                await engine.close()

        assert asyncio.run(go()).counters.bad_strategies == 1


# --- trading keys: validated on load and by the database ---------------------------------
AUCTION = {"type": "auction_market", "atr_stop_multiplier": 1.5, "atr_target_multiplier": 3.0}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("atr_stop_multiplier", 0, r"atr_stop_multiplier must be in \[0.1, 20\]"),
        ("atr_stop_multiplier", -1.5, "atr_stop_multiplier must be in"),
        ("atr_target_multiplier", 1e6, "atr_target_multiplier must be in"),
        ("atr_stop_multiplier", "1.5", "must be a number"),
        ("risk_per_trade_pct", 0, r"risk_per_trade_pct must be in \(0, 5\]"),
        ("risk_per_trade_pct", 5.01, "risk_per_trade_pct must be in"),
        ("max_positions", 0, "max_positions must be in"),
        ("max_positions", 2.5, "max_positions must be a whole number"),
        ("max_daily_loss_pct", 80, "max_daily_loss_pct must be in"),
    ],
)
def test_trading_keys_out_of_bounds_are_refused(key, value, message):
    with pytest.raises(DefinitionError, match=message):
        parse_strategy(1, "s", {**AUCTION, key: value}, 60)
    if key != "max_daily_loss_pct":
        with pytest.raises(DefinitionError, match=message):
            parse_config(True, {key: value}, None, None)


def test_trading_keys_in_bounds_and_their_resolution():
    strategy = parse_strategy(
        1,
        "s",
        {**AUCTION, "risk_per_trade_pct": 0.5, "max_positions": 3, "max_daily_loss_pct": 2},
        60,
    )
    assert trade_limits(strategy, None) == TradeLimits(0.5, 3, 2.0)
    config = parse_config(True, {"risk_per_trade_pct": 0.25}, None, 1)
    assert trade_limits(strategy, config) == TradeLimits(0.25, 1, 2.0)
    column = parse_config(True, {"risk_per_trade_pct": 0.25}, 0.75, None)
    assert trade_limits(strategy, column) == TradeLimits(0.75, 3, 2.0)
    plain = parse_strategy(2, "p", {"type": "price_above_sma"}, 60)
    assert trade_limits(plain, None) == TradeLimits()
    with pytest.raises(DefinitionError, match="cooldown"):
        parse_strategy(1, "s", AUCTION, -1)
    with pytest.raises(DefinitionError, match="risk_per_trade_pct"):
        parse_config(True, {}, 7.5, None)


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("configs", "parameters = '{\"atr_stop_multiplier\": 0}'"),
        ("configs", "parameters = '{\"atr_target_multiplier\": -3}'"),
        ("configs", 'parameters = \'{"atr_stop_multiplier": "1.5"}\''),
        ("configs", "parameters = '[]'"),
        ("configs", "risk_per_trade_pct = 0"),
        ("configs", "risk_per_trade_pct = 5.5"),
        ("configs", "max_positions = 0"),
        ("strategies", "definition = definition || '{\"risk_per_trade_pct\": 50}'"),
        ("strategies", "definition = definition || '{\"max_positions\": 2.5}'"),
        ("strategies", "definition = definition || '{\"atr_stop_multiplier\": 25}'"),
        ("strategies", "definition = definition || '{\"max_daily_loss_pct\": 0}'"),
        ("strategies", "cooldown_seconds = -1"),
    ],
)
def test_database_refuses_out_of_bounds_parameters(db_url, table, statement):
    target = "strategy_configs" if table == "configs" else "strategies"
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(f"update {target} set {statement}")  # type: ignore[arg-type]
        # in bounds (and absent or null keys) pass
        conn.execute(
            "update strategy_configs set risk_per_trade_pct = 5, max_positions = 100,"
            ' parameters = \'{"atr_stop_multiplier": 0.1, "atr_target_multiplier": null}\''
        )
        conn.execute(
            "update strategies set definition = definition || "
            '\'{"risk_per_trade_pct": 0.01, "max_daily_loss_pct": 50}\''
        )


def test_a_config_row_out_of_bounds_disables_its_symbol(db_url):
    """A row written before the constraints existed (here: constraint dropped) is not
    trusted: the engine turns the strategy off for that symbol instead of trading it."""
    from streaming.engine.queries import load_configs

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "alter table strategy_configs drop constraint strategy_configs_parameters_check"
        )
        aapl, msft = symbol_ids(conn)["AAPL"], symbol_ids(conn)["MSFT"]
        conn.execute(
            "update strategy_configs set parameters = '{\"atr_stop_multiplier\": 0}'"
            " where symbol_id = %s",
            (aapl,),
        )

    async def load() -> dict:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            return await load_configs(conn)

    configs = asyncio.run(load())
    assert configs[(aapl, "auction_market")] == SymbolConfig(enabled=False)
    good = configs[(msft, "auction_market")]
    assert good.enabled and good.risk_per_trade_pct == 1.0 and good.max_positions == 1
