"""The whole session pipeline against a literal per-print loop written from docs/semantics.md.

Prints mix venue sides, quotes (at/outside and strictly inside the spread) and bare
prints over several minutes, with bad rows and out-of-session rows, so the aggressor
precedence, the zero-tick continuation across minutes, the integer bins, the per-minute
and running-session metrics and the order flow are all checked against one plain loop.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.pipeline import compute_session
from tests.support.reference_rules import walk

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
    """POC, VAL, VAH bins and LVN/HVN (low, high) runs over the full lowest..highest range."""
    lo, hi = min(levels), max(levels)
    volumes = [levels.get(b, 0.0) for b in range(lo, hi + 1)]
    poc, val, vah = walk(volumes)
    mean = sum(volumes) / len(volumes)

    def runs(flag) -> list[tuple[int, int]]:
        out, start = [], None
        for i, v in enumerate([*volumes, None]):
            if v is not None and flag(v):
                start = i if start is None else start
            elif start is not None:
                out.append((lo + start, lo + i - 1))
                start = None
        return out

    return (
        lo + poc,
        lo + val,
        lo + vah,
        runs(lambda v: v < 0.3 * mean),
        runs(lambda v: v > 1.5 * mean),
    )


def node_bins(nodes: list[dict]) -> list[tuple[int, int]]:
    return [(round(n["low"] / ROW), round(n["high"] / ROW)) for n in nodes]


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
    for r, s in zip(good, sides, strict=True):
        minute = int((r["ts"] - OPEN) // pd.Timedelta(minutes=1))
        b = round(r["price"] / ROW)
        cell = minutes.setdefault(minute, {}).setdefault(b, [0.0, 0.0, 0])
        cell[0] += r["size"]
        cell[1] += r["size"] * (s + 1) / 2
        cell[2] += 1

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
    assert len(metrics[metrics.horizon == "1m"]) == len(minutes)
