"""A fired signal as the order the trader is asked for (``OrderIntent``): US equities and
crypto pairs (Alpaca trades both), with the strategy's trade limits for the symbol, the age
of its price and the symbol's price and quantity increments. Its
identity as a broker order id (``client_order_id``) and the last check of its parameters
(``parameters_ok``) live with it: the engine's trader and the backtester both use them."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from analytics.increments import EQUITY, Increments
from analytics.sessions import ALWAYS_OPEN
from core.contracts import AssetType, Side
from strategies.definitions import (
    ATR_MULTIPLIER_MAX,
    ATR_MULTIPLIER_MIN,
    RISK_PCT_MAX,
    trade_limits,
)
from strategies.model import Candidate, Strategy, SymbolConfig
from strategies.snapshot import Snapshot


@dataclass(frozen=True)
class OrderIntent:
    strategy_id: int
    strategy: str
    symbol_id: int
    symbol: str
    market: str
    side: Side
    signal_time: datetime  # the signal row's ts: with strategy and symbol, its identity
    price: float
    atr: float | None
    stop_multiplier: float = 1.5
    target_multiplier: float = 3.0
    risk_pct: float | None = None
    reason: str = ""
    price_time: datetime | None = None  # when ``price`` was current (its candle's minute)
    max_positions: int | None = None  # the strategy's cap on its open positions
    max_daily_loss_pct: float | None = None  # the strategy's own, when stricter
    increments: Increments = EQUITY  # the steps of the order's prices and quantity

    @property
    def client_order_id(self) -> str:
        return client_order_id(self.strategy_id, self.symbol_id, self.symbol, self.signal_time)


def client_order_id(strategy_id: int, symbol_id: int, symbol: str, signal_time: datetime) -> str:
    """The signal's identity as a broker order id: the same signal row (strategy, symbol,
    timestamp to the microsecond) always maps to the same id, a different one never does."""
    safe = re.sub(r"[^A-Za-z0-9]", "", symbol)[:20]
    stamp = signal_time.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"mf-{strategy_id}-{symbol_id}-{safe}-{stamp}"


# what the trader can send to Alpaca: US equities (bracket orders) and crypto pairs, which
# trade 24/7 (docs/trading-safety.md)
TRADABLE = {(AssetType.STOCK.value, "XNYS"), (AssetType.CRYPTO.value, ALWAYS_OPEN)}


def tradable(asset_type: str, market: str) -> bool:
    return (asset_type, market) in TRADABLE


def parameters_ok(intent: OrderIntent) -> bool:
    """The strategy bounds again at the last step (validated on load already)."""
    mults = (intent.stop_multiplier, intent.target_multiplier)
    if not all(math.isfinite(m) and ATR_MULTIPLIER_MIN <= m <= ATR_MULTIPLIER_MAX for m in mults):
        return False
    return intent.risk_pct is None or 0 < intent.risk_pct <= RISK_PCT_MAX


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
    if not tradable(universe.asset_types[cand.index], universe.markets[cand.index]):
        return None
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
        increments=universe.increments_of(cand.index),
    )
