"""Footprint bars for the chart: each bar's cells (sells × buys per price row) with their
imbalance flags and stack lengths, beside the bar's statistics (docs/dashboard.md, "The
footprint chart").

1-minute bars carry the imbalances the profile assets stored (``footprint_imbalances``).
A longer bar's cells are its minutes' cells summed per row, and its imbalances are found on
those sums by the same rule (``analytics.imbalances.cell_imbalances``, the symbol's ratio and
minimum volume): a 5-minute bar's auction is judged on its own cells, as a trader reads a
5-minute footprint. Only rows some minute traded print by print can be imbalanced (a
candle-fallback cell is a conventional split, not an auction).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from analytics.footprint_config import FootprintConfig
from analytics.imbalances import cell_imbalances

Row = dict[str, Any]


def _cell(price: float, buy: float, sell: float) -> Row:
    return {
        "price": price,
        "buy": buy,
        "sell": sell,
        "buy_imbalance": False,
        "sell_imbalance": False,
        "buy_stack": 0,
        "sell_stack": 0,
    }


def _mark(cell: Row, side: str, stack: int) -> None:
    cell[f"{side}_imbalance"] = True
    cell[f"{side}_stack"] = int(stack)


def _judge(cells: list[Row], printed: list[bool], row_size: float, config: FootprintConfig) -> None:
    """Flag the imbalances of one bar's cells (ascending prices) on their own sums."""
    if not any(printed):
        return
    bins = np.rint(np.array([c["price"] for c in cells]) / row_size).astype(np.int64)
    first = int(bins[0])
    n_bins = int(bins[-1]) - first + 1
    volume = np.zeros(n_bins)
    buy = np.zeros(n_bins)
    for k, c in zip(bins - first, cells, strict=True):
        volume[k] += c["buy"] + c["sell"]
        buy[k] += c["buy"]
    at = {int(k): i for i, k in enumerate(bins - first)}
    traded = np.array(sorted(int(k) for k, p in zip(bins - first, printed, strict=True) if p))
    found = cell_imbalances(
        traded, volume, buy, n_bins, config.imbalance_ratio, config.imbalance_min_volume
    )
    for side in ("buy", "sell"):
        for k, stack in zip(found[f"{side}_cells"], found[f"{side}_stack"], strict=True):
            _mark(cells[at[int(k)]], side, stack)


def footprint_bars(
    bars: Sequence[Row],
    cells: Sequence[Row],
    stored: Sequence[Row],
    timeframe: str,
    row_size: float,
    config: FootprintConfig,
) -> list[Row]:
    """Bars (oldest first, with ``t``) joined with their cells (``t, price, buy, sell,
    printed``, ascending by t then price) and, for 1m, the stored imbalances (``t, price,
    side, stack_len``)."""
    by_bar: dict[int, list[Row]] = defaultdict(list)
    printed: dict[int, list[bool]] = defaultdict(list)
    for c in cells:
        by_bar[c["t"]].append(_cell(c["price"], c["buy"] or 0.0, c["sell"] or 0.0))
        printed[c["t"]].append(bool(c["printed"]))
    if timeframe == "1m":
        where = {
            (t, round(cell["price"] / row_size)): cell
            for t, rows in by_bar.items()
            for cell in rows
        }
        for i in stored:
            found = where.get((i["t"], round(i["price"] / row_size)))
            if found is not None:
                _mark(found, i["side"], i["stack_len"])
    else:
        for t, rows in by_bar.items():
            _judge(rows, printed[t], row_size, config)
    return [{**bar, "cells": by_bar.get(bar["t"], [])} for bar in bars]
