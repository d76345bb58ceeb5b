"""A fired signal as the order the trader is asked for (``OrderIntent``): US equities
only, with the strategy's trade limits for the symbol and the age of its price."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from core.contracts import Side
from streaming.engine.snapshot import Snapshot
from streaming.engine.strategies.definitions import trade_limits
from streaming.engine.strategies.model import Candidate, Strategy, SymbolConfig
from streaming.engine.trader import OrderIntent


def order_intent(
    snap: Snapshot,
    strategy: Strategy,
    cand: Candidate,
    configs: Mapping[tuple[int, str], SymbolConfig],
    now: datetime,
) -> OrderIntent | None:
    """The order for one fired signal, None when the symbol cannot be traded."""
    universe = snap.universe
    sid = int(universe.ids[cand.index])
    config = configs.get((sid, strategy.name))
    if universe.asset_types[cand.index] != "stock" or universe.markets[cand.index] != "XNYS":
        return None  # Alpaca bracket orders exist for US equities only
    limits = trade_limits(strategy, config)
    # the price is its symbol's latest candle close: current at most since that
    # candle's minute began (an upper bound of its age)
    end = int(snap.candle_offsets[cand.index + 1])
    price_time = (
        datetime.fromtimestamp(float(snap.candle_ts[end - 1]), UTC)
        if end > int(snap.candle_offsets[cand.index])
        else None
    )
    return OrderIntent(
        strategy_id=strategy.id,
        strategy=strategy.name,
        symbol_id=sid,
        symbol=universe.symbols[cand.index],
        market=universe.markets[cand.index],
        side=Side(cand.type.lower()),
        signal_time=now,
        price=cand.price,
        atr=cand.details.get("atr"),
        stop_multiplier=float(cand.details.get("atr_stop_multiplier", 1.5)),
        target_multiplier=float(cand.details.get("atr_target_multiplier", 3.0)),
        risk_pct=limits.risk_pct,
        reason=str(cand.details.get("reason", strategy.name)),
        price_time=price_time,
        max_positions=limits.max_positions,
        max_daily_loss_pct=limits.max_daily_loss_pct,
    )
