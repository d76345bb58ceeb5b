"""The whole session pipeline against a literal per-print loop written from docs/semantics.md.

Prints mix venue sides, quotes (at/outside and strictly inside the spread) and bare
prints over several minutes, with bad rows and out-of-session rows, so the aggressor
precedence, the zero-tick continuation across minutes, the integer bins, the per-minute
and running-session metrics (nodes and unfinished auctions included), the order flow with
its bar statistics, the diagonal imbalances and the session VWAP are all checked against
one plain loop.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.pipeline import compute_session
from tests.support.reference_rules import literal_nodes, walk

OPEN = pd.Timestamp("2024-03-11 13:30", tz="UTC")
CLOSE = pd.Timestamp("2024-03-11 20:00", tz="UTC")
ROW = 0.05  # prices are whole cents: price / ROW never lands on a half bin


def literal_side(prints: list[dict]) -> list[int]:
    """+1 buy, -1 sell, 0 split: venue, then quote, then the tick rule (docs/semantics.md)."""
    out, last_price, last_dir = [], None, 0
    for p in prints:
        if last_price is not None and p["price"] != last_price:
            last_dir = 1 if p["price"] > last_price else -1
        last_price = p["price"]
        if p["side"] in (1, -1):
            out.append(p["side"])
        elif p["ask"] is not None and p["price"] >= p["ask"]:
            out.append(1)
        elif p["bid"] is not None and p["price"] <= p["bid"]:
            out.append(-1)
        else:  # no venue side, no quote, or strictly inside the spread: the tick rule
            out.append(last_dir)
    return out


def literal_metrics(levels: dict[int, float]) -> tuple[int, int, int, list, list]:
    """POC, VAL, VAH bins and LVN/HVN (centre, low, high) bins over the full lowest..highest
    range."""
    lo, hi = min(levels), max(levels)
    volumes = [levels.get(b, 0.0) for b in range(lo, hi + 1)]
    poc, val, vah = walk(volumes)
    nodes = literal_nodes(volumes)
    return (
        lo + poc,
        lo + val,
        lo + vah,
        [(lo + n[1], lo + n[2], lo + n[3]) for n in nodes if n[0] == "LVN"],
        [(lo + n[1], lo + n[2], lo + n[3]) for n in nodes if n[0] == "HVN"],
    )


def node_bins(nodes: list[dict]) -> list[tuple[int, int, int]]:
    return [(round(n["price"] / ROW), round(n["low"] / ROW), round(n["high"] / ROW)) for n in nodes]


def literal_imbalances(cells: dict[int, list[float]]) -> set[tuple[int, str, int]]:
    """(bin, side, stack length) of one minute's imbalances at R = 3, V_min = 0."""

    def buys(b: int) -> float:
        return cells[b][1] if b in cells else 0.0

    def sells(b: int) -> float:
        return cells[b][0] - cells[b][1] if b in cells else 0.0

    flagged = {
        "buy": {b for b in cells if buys(b) > 0 and buys(b) >= 3.0 * sells(b - 1)},
        "sell": {b for b in cells if sells(b) > 0 and sells(b) >= 3.0 * buys(b + 1)},
    }
    out = set()
    for side, rows in flagged.items():
        for b in rows:
            low = b
            while low - 1 in rows:
                low -= 1
            high = b
            while high + 1 in rows:
                high += 1
            out.add((b, side, high - low + 1))
    return out


one_print = st.fixed_dictionaries(
    {
        "second": st.integers(-30, 300),  # a few before the open: outside the session
        "cents": st.integers(9990, 10010),
        "size": st.sampled_from([1.0, 2.0, 5.0, 0.5, -1.0, float("nan")]),
        "side": st.sampled_from([None, None, None, 1, -1]),
        "quote": st.sampled_from([None, None, (-2, 2), (0, 3), (-3, 0), (-1, 1)]),
    }
)


@settings(max_examples=150, deadline=None)
@given(st.lists(one_print, min_size=1, max_size=60))
def test_session_equals_the_literal_loop(raw: list[dict]) -> None:
    rows = []
    for k, r in enumerate(sorted(raw, key=lambda r: r["second"])):
        price = r["cents"] / 100
        bid = ask = None
        if r["quote"] is not None:  # quote offsets in cents around the print
            bid, ask = (r["cents"] + r["quote"][0]) / 100, (r["cents"] + r["quote"][1]) / 100
        rows.append(
            {
                "ts": OPEN + pd.Timedelta(seconds=r["second"]) + pd.Timedelta(microseconds=k),
                "price": price,
                "size": r["size"],
                "side": r["side"],
                "bid": bid,
                "ask": ask,
            }
        )
    ticks = pd.DataFrame(rows)
    frames = compute_session(ticks, ROW, OPEN, CLOSE)

    good = [r for r in rows if r["ts"] >= OPEN and math.isfinite(r["size"]) and r["size"] > 0]
    assert sum(frames.rejected.values()) == len(rows) - len(good)
    if not good:
        assert frames.order_flow.empty and frames.profile_metrics.empty
        return
    sides = literal_side(good)
    minutes: dict[int, dict[int, list[float]]] = {}
    running_delta: dict[int, list[float]] = {}
    sizes: dict[int, list[float]] = {}
    session_prints: dict[int, list[tuple[float, float]]] = {}
    for r, s in zip(good, sides, strict=True):
        minute = int((r["ts"] - OPEN) // pd.Timedelta(minutes=1))
        b = round(r["price"] / ROW)
        cell = minutes.setdefault(minute, {}).setdefault(b, [0.0, 0.0, 0])
        cell[0] += r["size"]
        cell[1] += r["size"] * (s + 1) / 2
        cell[2] += 1
        deltas = running_delta.setdefault(minute, [])
        deltas.append((deltas[-1] if deltas else 0.0) + r["size"] * s)
        sizes.setdefault(minute, []).append(r["size"])
        session_prints.setdefault(minute, []).append((r["price"], r["size"]))

    # order flow: every minute from the open to the last traded one
    flow = frames.order_flow
    assert len(flow) == max(minutes) + 1
    cvd = 0.0
    for m in range(max(minutes) + 1):
        buy = sum(c[1] for c in minutes.get(m, {}).values())
        total = sum(c[0] for c in minutes.get(m, {}).values())
        cvd += 2 * buy - total
        row = flow.iloc[m]
        assert row.buy_volume == np.float64(buy) or abs(row.buy_volume - buy) < 1e-9
        assert abs(row.delta - (2 * buy - total)) < 1e-9 and abs(row.cvd - cvd) < 1e-9
        want = 100 * buy / total if total else 50.0
        assert abs(row.buy_pressure - want) < 1e-9
        assert row.trade_count == sum(c[2] for c in minutes.get(m, {}).values())
        if m in minutes:  # bar statistics: the running delta after each print, the sizes
            assert (row.max_delta, row.min_delta) == pytest.approx(
                (max(running_delta[m]), min(running_delta[m]))
            )
            assert row.mean_trade_size == pytest.approx(float(np.mean(sizes[m])))
            assert row.trade_size_sd == pytest.approx(float(np.std(sizes[m])), abs=1e-9)
        else:
            assert np.isnan(row.max_delta) and np.isnan(row.mean_trade_size)

    # imbalances, minute by minute (R = 3, V_min = 0)
    got = {
        (
            int((row.bucket - OPEN) // pd.Timedelta(minutes=1)),
            round(row.price / ROW),
            row.side,
            row.stack_len,
        )
        for row in frames.imbalances.itertuples()
    }
    want = {(m, *found) for m, cells in minutes.items() for found in literal_imbalances(cells)}
    assert got == want

    # session VWAP and sd through each minute from the first print on
    vwap = frames.session_vwap.set_index("bucket")
    seen: list[tuple[float, float]] = []
    for m in range(min(minutes), max(minutes) + 1):
        seen += session_prints.get(m, [])
        weight = sum(v for _, v in seen)
        mean = sum(p * v for p, v in seen) / weight
        sd = math.sqrt(sum(v * (p - mean) ** 2 for p, v in seen) / weight)
        row = vwap.loc[OPEN + pd.Timedelta(minutes=m)]
        assert row.vwap == pytest.approx(mean, rel=1e-12) and row.volume == pytest.approx(weight)
        assert row.sd == pytest.approx(sd, rel=1e-6, abs=1e-9)
    assert len(vwap) == max(minutes) - min(minutes) + 1

    # 1m and running-session metrics
    metrics = frames.profile_metrics
    running: dict[int, float] = {}
    for m in range(min(minutes), max(minutes) + 1):
        for b, cell in minutes.get(m, {}).items():
            running[b] = running.get(b, 0.0) + cell[0]
        bucket = OPEN + pd.Timedelta(minutes=m)
        horizons = [("session", running)]
        if m in minutes:
            horizons.append(("1m", {b: c[0] for b, c in minutes[m].items()}))
        for horizon, levels in horizons:
            (row,) = metrics[(metrics.horizon == horizon) & (metrics.bucket == bucket)].itertuples()
            poc, val, vah, lvns, hvns = literal_metrics(levels)
            got = [round(x / ROW) for x in (row.poc, row.val, row.vah)]
            assert got == [poc, val, vah], (horizon, m)
            assert node_bins(row.lvns) == lvns and node_bins(row.hvns) == hvns, (horizon, m)
            cells = minutes[m] if horizon == "1m" else session_cells(minutes, m)
            assert (row.unfinished_high, row.unfinished_low) == (
                both_sides(cells, max(levels)),
                both_sides(cells, min(levels)),
            ), (horizon, m)
    assert len(metrics[metrics.horizon == "1m"]) == len(minutes)


def session_cells(minutes: dict[int, dict[int, list[float]]], through: int) -> dict:
    """Every bin's (volume, buy) summed over the session's minutes through ``through``."""
    cells: dict[int, list[float]] = {}
    for m, minute in minutes.items():
        if m <= through:
            for b, (volume, buy, _count) in minute.items():
                cell = cells.setdefault(b, [0.0, 0.0, 0])
                cell[0] += volume
                cell[1] += buy
    return cells


def both_sides(cells: dict, b: int) -> bool:
    """Buyers and sellers both traded at bin b (an unfinished auction at an extreme)."""
    volume, buy = cells[b][0], cells[b][1]
    return buy > 0 and volume - buy > 0
