"""Names shared across processes: Redis channels, tables, enumerations (docs/architecture.md).

Defined once here and imported everywhere; never spell a channel or table name inline.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Redis pub/sub channels; payloads are JSON objects (docs/architecture.md)."""

    CANDLES = "ticks:candles"  # {symbol, time, open, high, low, close, volume}
    TRADES = "ticks:trades"  # conflated trade prints
    SIGNALS = "signals"  # {symbol, strategy, type, time, details}
    MARKET_STATE = "market_state"
    ALERTS = "alerts"
    BINARY_PRICES = "binary:prices"
    BINARY_ARBITRAGE = "binary:arbitrage"


class Table(StrEnum):
    SYMBOLS = "symbols"
    SYMBOL_PROVIDERS = "symbol_providers"
    TICKS = "ticks"
    TICK_ARCHIVE = "tick_archive"  # one row per tick day moved to Parquet
    CANDLES_1M = "candles_1m"
    VOLUME_PROFILE = "volume_profile"
    PROFILE_METRICS = "profile_metrics"
    ORDER_FLOW = "order_flow"
    FOOTPRINT_IMBALANCES = "footprint_imbalances"
    SESSION_VWAP = "session_vwap"
    BIG_PRINTS = "big_prints"
    FOOTPRINT_CONFIG = "footprint_config"
    MARKET_STATE = "market_state"
    STRATEGIES = "strategies"
    STRATEGY_CONFIGS = "strategy_configs"
    SIGNALS = "signals"
    ORDERS = "orders"
    BINARY_MARKETS = "binary_markets"
    BINARY_PRICES = "binary_prices"
    BINARY_POSITIONS = "binary_positions"
    BINARY_OPPORTUNITIES = "binary_opportunities"
    INGEST_REJECTS = "ingest_rejects"
    TICK_CORRECTIONS = "tick_corrections"
    TICK_HISTORY_PROGRESS = "tick_history_progress"


class AssetType(StrEnum):
    STOCK = "stock"
    BINARY_OPTION = "binary_option"
    CRYPTO = "crypto"
    FOREX = "forex"
    INDEX = "index"


class TickSource(StrEnum):
    """How a print reached ``ticks.source`` (docs/history.md)."""

    STREAM = "stream"  # a live provider
    GAP_FILL = "gap_fill"  # the venue's REST history after a reconnect
    BACKFILL = "backfill"  # the tick_history asset / `marketflow backfill`
    REPLAY = "replay"  # a recorded file
    UNKNOWN = "unknown"  # stored before provenance was recorded, or by hand


# Alpaca's equity feeds (ALPACA_FEED): a symbol's ticks come from one of them, never two
# (`symbols.equity_feed`, docs/history.md). Crypto has one feed per location.
EQUITY_FEEDS: tuple[str, ...] = ("iex", "sip", "delayed_sip", "boats", "overnight")
CRYPTO_FEED = "crypto_us"  # ticks.feed of Alpaca's /v1beta3/crypto/us


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class MarketStateName(StrEnum):
    BALANCE = "BALANCE"
    IMBALANCE_UP = "IMBALANCE_UP"
    IMBALANCE_DOWN = "IMBALANCE_DOWN"
    UNKNOWN = "UNKNOWN"


class Horizon(StrEnum):
    MINUTE = "1m"
    SESSION = "session"
    COMPOSITE = "composite"


# Health of long-running processes: each writes a Redis hash `status:<process>` with at
# least pid, started_at and heartbeat_at (UTC ISO 8601) plus its own counters, refreshed
# every few seconds with a TTL; `marketflow status` reads them.
STATUS_KEY_PREFIX = "status:"
STATUS_TTL_SECONDS = 30
