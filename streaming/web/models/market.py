"""What the market-data endpoints answer: symbols, the watchlist, bars of a timeframe, order
flow, the session profile, signals and market states (SQL in ``queries/market.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from streaming.web.models.common import Day, OpenRow, Row, Timestamp

Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "1d"]


class Health(BaseModel):
    ok: bool
    redis: bool  # the Redis subscription of the live feed is up


class SymbolRow(Row):
    symbol: str
    name: str | None
    market: str
    timezone: str
    asset_type: str
    state: str | None
    confidence: float | None
    poc: float | None
    state_ts: Timestamp | None


class Symbols(BaseModel):
    symbols: list[SymbolRow]


class WatchlistRow(OpenRow):
    """From the raw tables every field is present; from the ``watchlist_latest`` mart,
    the mart's columns with the symbol's name and time zone."""

    symbol: str
    name: str | None = None
    timezone: str | None = None
    asset_type: str | None = None
    market: str | None = None
    last_price: float | None = None
    last_price_at: Timestamp | None = None
    previous_close: float | None = None
    price_change: float | None = None
    price_change_pct: float | None = None
    market_state: str | None = None
    state_confidence: float | None = None
    state_at: Timestamp | None = None
    buy_pressure: float | None = None
    sell_pressure: float | None = None
    session_cvd: float | None = None
    flow_at: Timestamp | None = None
    session_date: Day | None = None
    profile_at: Timestamp | None = None  # the profile run the POC/VA come from (raw only)
    session_poc: float | None = None
    session_vah: float | None = None
    session_val: float | None = None
    nearest_lvn: float | None = None
    last_signal_at: Timestamp | None = None
    last_signal_type: str | None = None
    last_signal_strategy: str | None = None
    last_signal_price: float | None = None


class Watchlist(BaseModel):
    source: Literal["raw", "watchlist_latest"]
    rows: list[WatchlistRow]


class Timeframes(BaseModel):
    timeframes: list[Timeframe]


class Candle(Row):
    time: Timestamp  # the bar's start
    t: int  # the bar's start as market-local wall-clock seconds (the chart's axis)
    open: float
    high: float
    low: float
    close: float
    volume: float
    trade_count: int
    vwap: float | None


class Candles(BaseModel):
    symbol: str
    timezone: str
    timeframe: Timeframe
    candles: list[Candle]


class FlowBar(Row):
    time: Timestamp
    t: int
    delta: float | None
    cvd: float | None  # the session CVD at the bar's end
    buy_volume: float | None
    sell_volume: float | None


class Flow(BaseModel):
    symbol: str
    timezone: str
    timeframe: Timeframe
    flow: list[FlowBar]


class ProfileNode(OpenRow):
    price: float


class SessionProfile(Row):
    session_date: Day | None
    bucket: Timestamp
    poc: float | None
    vah: float | None
    val: float | None
    total_volume: float | None
    lvns: list[ProfileNode] | None
    hvns: list[ProfileNode] | None
    ib_high: float | None  # the initial balance: the session's first hour's range
    ib_low: float | None


class PriceLevel(Row):
    price: float
    buy: float | None
    sell: float | None
    total: float | None


class NakedPoc(Row):
    session_date: Day
    poc: float


class Profile(BaseModel):
    symbol: str
    session: SessionProfile | None
    levels: list[PriceLevel]
    naked_pocs: list[NakedPoc]


class SignalRow(Row):
    ts: Timestamp
    symbol: str
    strategy: str | None
    type: str
    price: float | None
    details: dict[str, Any] | None


class Signals(BaseModel):
    signals: list[SignalRow]


class StateRow(Row):
    ts: Timestamp
    state: str
    confidence: float | None
    poc: float | None
    balance_high: float | None
    balance_low: float | None
    details: dict[str, Any] | None


class States(BaseModel):
    states: list[StateRow]
