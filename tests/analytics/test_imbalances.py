"""Diagonal imbalances and stacks (docs/semantics.md) on hand-built bars.

A bar is given as rows (price bins, low to high) of (buys, sells); a buy imbalance at r
compares buys(r) with sells(r − 1), a sell imbalance at r sells(r) with buys(r + 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.footprint_config import FootprintConfig
from analytics.imbalances import cell_imbalances, stack_lengths
from analytics.pipeline import compute_session

OPEN = pd.Timestamp("2024-03-11 13:30", tz="UTC")
CLOSE = pd.Timestamp("2024-03-11 20:00", tz="UTC")


def imbalances(
    rows: list[tuple[float, float]], ratio: float = 3.0, min_volume: float = 0.0
) -> dict[str, list[tuple[int, float, float, int]]]:
    """(row, volume, opposite, stack) per side for one bar laid in a grid with an empty
    column each side (the bar's own edges are then interior to the grid too)."""
    n_bins = len(rows) + 2
    buy = np.zeros((1, n_bins))
    volume = np.zeros((1, n_bins))
    for r, (buys, sells) in enumerate(rows, start=1):
        buy[0, r], volume[0, r] = buys, buys + sells
    cells = np.flatnonzero(volume.reshape(-1) > 0)
    found = cell_imbalances(cells, volume, buy, n_bins, ratio, min_volume)
    return {
        side: [
            (int(c) - 1, float(v), float(o), int(k))
            for c, v, o, k in zip(
                found[f"{side}_cells"],
                found[f"{side}_volume"],
                found[f"{side}_opposite"],
                found[f"{side}_stack"],
                strict=True,
            )
        ]
        for side in ("buy", "sell")
    }


def test_diagonal_comparison_and_edge_rows() -> None:
    # rows low → high as (buys, sells)
    bar = [(5, 2), (7, 4), (30, 20), (10, 1), (2, 9)]
    found = imbalances(bar)
    # buys(r) >= 3 × sells(r − 1): row 0 has no row below (0 sells), 7 >= 6, 30 >= 12;
    # 10 < 60 and 2 < 3 are not
    assert found["buy"] == [(0, 5.0, 0.0, 3), (1, 7.0, 2.0, 3), (2, 30.0, 4.0, 3)]
    # sells(r) >= 3 × buys(r + 1): only row 4, which has no row above (0 buys)
    assert found["sell"] == [(4, 9.0, 0.0, 1)]


def test_a_tie_at_the_ratio_is_an_imbalance() -> None:
    assert imbalances([(0, 4), (12, 0)])["buy"] == [(1, 12.0, 4.0, 1)]  # 12 == 3 × 4
    assert imbalances([(0, 4), (11.99, 0)])["buy"] == []


def test_a_row_without_the_side_is_no_imbalance() -> None:
    # buys(r) > 0 is required: a row of sells only is never a buy imbalance
    found = imbalances([(0, 5), (0, 5)])
    assert found["buy"] == []
    assert [r for r, *_ in found["sell"]] == [0, 1]


def test_ratio_and_minimum_volume_change_the_result() -> None:
    bar = [(1, 4), (9, 1), (6, 2)]
    assert [r for r, *_ in imbalances(bar, ratio=3.0)["buy"]] == [0, 2]  # 9 < 12
    assert [r for r, *_ in imbalances(bar, ratio=2.0)["buy"]] == [0, 1, 2]
    # V_min: an imbalance also needs that much volume (the edge row's 1 falls out)
    assert [r for r, *_ in imbalances(bar, ratio=2.0, min_volume=5.0)["buy"]] == [1, 2]


def test_stacks_are_maximal_runs_of_one_side() -> None:
    bar = [(9, 1), (9, 1), (9, 1), (1, 1), (9, 1), (9, 1)]  # 1 < 3 × 1 breaks the buys
    found = imbalances(bar)
    assert [(r, k) for r, _, _, k in found["buy"]] == [(0, 3), (1, 3), (2, 3), (4, 2), (5, 2)]
    assert [(r, k) for r, _, _, k in found["sell"]] == [(5, 1)]


def test_stack_lengths_break_at_gaps_and_between_minutes() -> None:
    # flat cells of a 2 × 5 grid: 3, 4 end one row; 5 starts the next
    assert stack_lengths(np.array([0, 1, 3, 4, 5, 6, 8]), 5).tolist() == [2, 2, 2, 2, 2, 2, 1]
    assert stack_lengths(np.array([], dtype=np.int64), 5).tolist() == []


def prints(rows: dict[float, tuple[float, float]], minute: int = 0) -> pd.DataFrame:
    """One print per side and row, with the venue's side, in the given minute."""
    records = []
    for k, (price, (buys, sells)) in enumerate(sorted(rows.items())):
        for side, size in ((1.0, buys), (-1.0, sells)):
            if size:
                ts = OPEN + pd.Timedelta(minutes=minute, seconds=1 + k)
                records.append({"ts": ts, "price": price, "size": size, "side": side})
    return pd.DataFrame(records)


def test_compute_session_stores_every_level_with_prices_as_volume_profile() -> None:
    ticks = pd.concat(
        [
            prints({10.00: (5, 0), 10.01: (1, 6), 10.02: (30, 1)}, minute=0),
            prints({10.00: (1, 1)}, minute=2),
        ],
        ignore_index=True,
    )
    frames = compute_session(ticks, 0.01, OPEN, CLOSE)
    got = frames.imbalances
    assert list(got.columns) == ["bucket", "price", "side", "volume", "opposite", "stack_len"]
    first = got[got["bucket"] == OPEN]
    # buys: 5 >= 3 × 0 (nothing below), 1 >= 3 × 0 (no sells at 10.00), 30 >= 3 × 6: one
    # stack of three; sells: 6 < 3 × 30 at 10.01, 1 >= 3 × 0 at 10.02 (nothing above)
    assert first[["price", "side", "volume", "opposite", "stack_len"]].values.tolist() == [
        [10.0, "buy", 5.0, 0.0, 3],
        [10.01, "buy", 1.0, 0.0, 3],
        [10.02, "buy", 30.0, 6.0, 3],
        [10.02, "sell", 1.0, 0.0, 1],
    ]
    # the minute with a single row: both sides are imbalances against empty rows
    later = got[got["bucket"] == OPEN + pd.Timedelta(minutes=2)]
    assert later[["side", "stack_len"]].values.tolist() == [["buy", 1], ["sell", 1]]
    # the price column is the cell's as volume_profile writes it
    assert set(got["price"]) <= set(frames.volume_profile["price_level"])


def test_the_symbols_config_is_used() -> None:
    ticks = prints({10.00: (2, 0), 10.01: (5, 1)})
    loose = compute_session(ticks, 0.01, OPEN, CLOSE)
    strict = compute_session(
        ticks, 0.01, OPEN, CLOSE, config=FootprintConfig(imbalance_min_volume=3.0)
    )
    assert len(loose.imbalances) == 3 and strict.imbalances["price"].tolist() == [10.01]


def test_candle_fallback_minutes_have_no_imbalances() -> None:
    candles = pd.DataFrame(
        {
            "ts": [OPEN + pd.Timedelta(minutes=5)],
            "open": [10.0],
            "high": [10.05],
            "low": [9.95],
            "close": [10.02],
            "volume": [100.0],
        }
    )
    frames = compute_session(prints({10.0: (1, 1)}), 0.01, OPEN, CLOSE, candles=candles)
    assert (frames.volume_profile["bucket"] == OPEN + pd.Timedelta(minutes=5)).sum() == 11
    assert set(frames.imbalances["bucket"]) == {OPEN}


@pytest.mark.parametrize("empty", [True, False])
def test_a_symbol_without_prints_yields_no_rows(empty: bool) -> None:
    ticks = pd.DataFrame(
        {"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "price": [], "size": []}
    )
    if not empty:
        ticks = prints({10.0: (1, 0)}).assign(ts=OPEN - pd.Timedelta(hours=1))  # before the open
    frames = compute_session(ticks, 0.01, OPEN, CLOSE)
    assert frames.imbalances.empty and frames.session_vwap.empty and frames.big_prints.empty
    assert list(frames.imbalances.columns)[:3] == ["bucket", "price", "side"]
