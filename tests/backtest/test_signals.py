"""Signals of the batched backtest: equal to the engine's per-minute step, never reading a
row stamped after the minute they are decided in, on the engine's session clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from backtest.frames import decision_instants, session_opens, snapshot_at
from backtest.reference import loop_signals
from backtest.signals import symbol_signals
from bench.synthetic.history import footprint, history, truncated
from strategies.definitions import parse_strategy
from strategies.model import SymbolConfig
from strategies.session_clock import current_session
from strategies.snapshot import candle_window

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
STRATEGIES = {
    "sma": {"type": "price_above_sma", "period": 20, "symbols": ["AAA", "BBB"]},
    "auction": {"type": "auction_market", "allow_balance_trades": True, "symbols": ["AAA", "BBB"]},
    "rules": {
        "type": "rules",
        "signal": "SELL",
        "symbols": ["AAA", "BBB"],
        "all": [
            {"metric": "price", "op": "<", "ref": "vwap"},
            {"metric": "cvd_slope", "op": "<", "value": 0},
        ],
        "any": [
            {"metric": "market_state", "op": "!=", "value": "BALANCE"},
            {"metric": "price", "op": "<", "ref": "composite_val"},
        ],
    },
    "footprint": {
        "type": "rules",
        "symbols": ["AAA", "BBB"],
        "all": [{"metric": "stacked_sell_imbalance", "op": "<", "value": 4}],
        "any": [
            {"metric": "stacked_buy_imbalance", "op": ">=", "value": 3},
            {"metric": "price", "op": ">=", "ref": "vwap_upper", "k": 1.5},
            {"metric": "big_print", "op": "==", "value": "ANY", "seconds": 90},
        ],
    },
}


def histories(hours: float = 8):
    ts = START.timestamp() + 60.0 * np.arange(int(hours * 60))
    hs = [history(1, "AAA", ts, seed=1), history(2, "BBB", ts, seed=2, price=50.0)]
    return [
        replace(h, footprint=footprint(h.ts, h.close, h.session.poc, k)) for k, h in enumerate(hs)
    ]


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_batched_signals_equal_the_per_minute_engine_step(name: str) -> None:
    strategy = parse_strategy(7, name, STRATEGIES[name], 180)
    hs = histories(4)
    asof = decision_instants(START, START + timedelta(hours=4))
    loop = loop_signals(strategy, hs, asof, {}, 70.0)
    batched = sorted(
        (s.ts, s.symbol_id, s.type)
        for h in hs
        for s in symbol_signals(strategy, h, asof, {}, 70.0, batch=97).signals
    )
    assert len(loop) > 5  # the data makes the condition rise and fall
    assert batched == sorted(loop)


def test_cooldown_swallows_edges_and_disabled_configs_skip_symbols() -> None:
    strategy = parse_strategy(7, "sma", STRATEGIES["sma"], 1800)
    hs = histories()
    asof = decision_instants(START, START + timedelta(hours=8))
    fired = symbol_signals(strategy, hs[0], asof, {}, 70.0).signals
    gaps = np.diff([s.ts for s in fired])
    assert len(fired) > 2 and gaps.min() >= 1800
    off = {(1, "sma"): SymbolConfig(enabled=False)}
    assert symbol_signals(strategy, hs[0], asof, off, 70.0).signals == []


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_no_look_ahead_a_signal_never_depends_on_later_rows(name: str) -> None:
    """Cut the history after minute m (every later candle, profile and flow row gone):
    the signals up to m are the same as with the whole history."""
    strategy = parse_strategy(7, name, STRATEGIES[name], 120)
    h = histories()[0]
    asof = decision_instants(START, START + timedelta(hours=8))
    full = symbol_signals(strategy, h, asof, {}, 70.0).signals
    for m in (45, 200, 333, 479):
        t = float(asof[m])
        cut = truncated(h, t)
        upto = symbol_signals(strategy, cut, asof[: m + 1], {}, 70.0).signals
        assert [(s.ts, s.type, s.price) for s in upto] == [
            (s.ts, s.type, s.price) for s in full if s.ts <= t
        ]


def test_snapshot_rows_are_stamped_at_or_before_their_minute() -> None:
    h = histories()[0]
    asof = decision_instants(START, START + timedelta(hours=8))[::7]
    snap = snapshot_at(h, asof, candle_window(frozenset({20})), want_vwap=True)
    group = np.repeat(np.arange(len(asof)), np.diff(snap.candle_offsets))
    assert (snap.candle_ts <= asof[group]).all()
    assert (snap.candle_ts > asof[group] - candle_window(frozenset({20})).total_seconds()).all()
    assert (
        snap.session.bucket[np.isfinite(snap.session.bucket)]
        <= asof[np.isfinite(snap.session.bucket)]
    ).all()
    assert (np.diff(snap.flow_offsets) <= 5).all()
    # footprint: every instant's VWAP row, stacks and prints from at or before it, and some
    fp = snapshot_at(h, asof, timedelta(minutes=61), want_footprint=True).footprint
    assert fp is not None
    stamps = [fp.vwap_bucket, fp.stack_buy_bucket, fp.stack_sell_bucket, *fp.big_ts.T]
    for stamp in stamps:
        seen = np.isfinite(stamp)
        assert seen.any() and (stamp[seen] <= asof[seen]).all()
    assert (asof[:, None] - fp.big_ts < 900)[np.isfinite(fp.big_ts)].all()
    # the decision instant is the minute's last second: its own candle is in, the next not
    assert asof[0] % 60 == 59


@pytest.mark.parametrize("market", ["XNYS", "24/7", "XLON"])
def test_session_opens_match_the_engine_session_clock(market: str) -> None:
    # three weeks over Good Friday / Easter Monday 2026 (April 3 / 6), every 37 minutes
    start = datetime(2026, 3, 28, tzinfo=UTC)
    asof = start.timestamp() + 37 * 60.0 * np.arange(3 * 7 * 24 * 60 // 37)
    opens, previous = session_opens(market, asof)
    for k, t in enumerate(asof.tolist()):
        s = current_session(market, datetime.fromtimestamp(t, UTC))
        want_open = np.nan if s is None else s.open.timestamp()
        want_prev = np.nan if s is None or s.previous_open is None else s.previous_open.timestamp()
        assert opens[k] == pytest.approx(want_open, nan_ok=True), (market, t)
        assert previous[k] == pytest.approx(want_prev, nan_ok=True), (market, t)


def test_signals_over_forked_workers_equal_one_process() -> None:
    from backtest.run import Request, collect_signals, collect_signals_forked

    strategy = parse_strategy(7, "auction", STRATEGIES["auction"], 120)
    hs = histories(4)
    request = Request("auction", START.date(), START.date())
    one = collect_signals(strategy, hs, {}, request)
    seen: list[int] = []
    two = collect_signals_forked(strategy, hs, {}, request, 2, seen.append)
    assert two == one and len(one[0]) > 0
    assert sum(seen) == 2 * 1440  # progress: every symbol's minutes of the day
