"""What ``/api/footprint`` answers: per bar the cells (sells × buys per price row) with
their imbalance flags and stack lengths, and the bar's statistics (SQL in
``queries/footprint.py``, shaping in ``footprint.py``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from streaming.web.models.common import Day, Row, Timestamp
from streaming.web.models.market import Timeframe


class FootprintCell(Row):
    price: float  # the row's price (the profile's bin)
    buy: float
    sell: float
    buy_imbalance: bool  # buys >= R × the sells one row below (docs/semantics.md)
    sell_imbalance: bool  # sells >= R × the buys one row above
    buy_stack: int = Field(ge=0)  # the length of the buy stack this cell is in, 0 if none
    sell_stack: int = Field(ge=0)


class FootprintBar(Row):
    time: Timestamp  # the bar's start
    t: int  # the bar's start as market-local wall-clock seconds (the chart's axis)
    delta: float
    trades: int
    max_delta: float | None  # the running delta's extremes within the bar (null: no prints)
    min_delta: float | None
    volume: float
    cells: list[FootprintCell]  # ascending by price


class Footprint(BaseModel):
    symbol: str
    timezone: str
    timeframe: Timeframe
    row_size: float  # the price step between rows
    imbalance_ratio: float  # R of the symbol's footprint_config (3 by default)
    bars: list[FootprintBar]  # oldest first


class VwapBar(Row):
    time: Timestamp  # the bar's start
    t: int
    session_date: Day
    vwap: float  # the session VWAP at the bar's last minute (docs/semantics.md)
    sd: float  # its volume-weighted standard deviation: bands at vwap ± 1, 2, 3 sd


class Vwap(BaseModel):
    symbol: str
    timezone: str
    timeframe: Timeframe
    vwap: list[VwapBar]  # oldest first
