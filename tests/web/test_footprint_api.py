"""``/api/footprint`` on a seeded 24/7 morning (tests/support/footprint_seed.py): cells and
the stored imbalances of 1-minute bars, longer bars summed and judged by the same rule,
bar statistics, the window's bounds, refusals; what the page asks when it follows the
market (``from=`` its last bar, of the footprint and the VWAP); and ``/api/flow`` without
the zero-filled minutes before the session's first trade."""

from __future__ import annotations

from datetime import timedelta

import httpx
import numpy as np
from pytest import approx

from tests.support.footprint_seed import (
    FIRST_TRADE,
    ROW,
    _minute_cells,
    add_footprint_minutes,
    seed_footprint,
)
from tests.support.web_served import serve


def get(base: str, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{base}{path}", params=params, timeout=10)


def test_one_minute_bars_carry_cells_imbalances_and_statistics(redis_url: str, db_url: str) -> None:
    seed_footprint(db_url, minutes=30, rows=12)
    with serve(redis_url, db_url) as web:
        got = get(web.base, "/api/footprint", symbol="btcusd", limit=30).json()
        window = get(
            web.base,
            "/api/footprint",
            symbol="BTCUSD",
            **{"from": "2026-11-23T06:10:00Z", "to": "2026-11-23T06:12:00+00:00"},
        ).json()
        tail = get(web.base, "/api/footprint", symbol="BTCUSD", limit=5).json()
    assert got["timeframe"] == "1m" and got["row_size"] == ROW and got["imbalance_ratio"] == 3
    bars = got["bars"]
    assert len(bars) == 30 and bars[0]["time"] == "2026-11-23T06:00:00+00:00"
    low, buy, sell = _minute_cells(0, 12)
    first = bars[0]
    assert [c["price"] for c in first["cells"]] == [low + ROW * k for k in range(12)]
    assert [c["buy"] for c in first["cells"]] == list(buy)
    assert [c["sell"] for c in first["cells"]] == list(sell)
    assert first["delta"] == approx(sum(buy) - sum(sell)) and first["trades"] == 36
    assert first["volume"] == approx(sum(buy) + sum(sell))
    assert first["max_delta"] == max(first["delta"], 0) + 5
    # minute 0 has the seeded stack of three buy imbalances in the middle rows
    stacked = [c for c in first["cells"] if c["buy_imbalance"] and c["buy_stack"] >= 3]
    assert [c["price"] for c in stacked][:3] == [low + ROW * k for k in (6, 7, 8)]
    assert all(c["buy_stack"] == 0 for c in first["cells"] if not c["buy_imbalance"])
    assert [b["time"][11:16] for b in window["bars"]] == ["06:10", "06:11"]
    assert [b["time"][11:16] for b in tail["bars"]] == ["06:25", "06:26", "06:27", "06:28", "06:29"]


def test_longer_bars_sum_their_minutes_and_judge_their_own_imbalances(
    redis_url: str, db_url: str
) -> None:
    seed_footprint(db_url, minutes=30, rows=12)
    with serve(redis_url, db_url) as web:
        one = get(web.base, "/api/footprint", symbol="BTCUSD", tf="1m", limit=30).json()
        five = get(web.base, "/api/footprint", symbol="BTCUSD", tf="5m", limit=30).json()
    assert [b["time"][11:16] for b in five["bars"]] == [
        "06:00", "06:05", "06:10", "06:15", "06:20", "06:25",
    ]  # fmt: skip
    minutes, bar = one["bars"][:5], five["bars"][0]
    assert bar["delta"] == approx(sum(m["delta"] for m in minutes))
    assert bar["trades"] == sum(m["trades"] for m in minutes)
    # the running delta across the bar: each minute's extreme after the earlier minutes
    before = np.concatenate([[0], np.cumsum([m["delta"] for m in minutes])[:-1]])
    pairs = list(zip(before, minutes, strict=True))
    assert bar["max_delta"] == approx(max(b + m["max_delta"] for b, m in pairs))
    assert bar["min_delta"] == approx(min(b + m["min_delta"] for b, m in pairs))
    summed: dict[float, list[float]] = {}
    for m in minutes:
        for c in m["cells"]:
            s = summed.setdefault(c["price"], [0.0, 0.0])
            s[0] += c["buy"]
            s[1] += c["sell"]
    assert [c["price"] for c in bar["cells"]] == sorted(summed)
    for c in bar["cells"]:
        assert [c["buy"], c["sell"]] == approx(summed[c["price"]])
    prices = sorted(summed)
    for k, c in enumerate(bar["cells"]):
        below = summed[prices[k - 1]][1] if k and prices[k - 1] == c["price"] - ROW else 0.0
        assert c["buy_imbalance"] == (c["buy"] > 0 and c["buy"] >= 3 * below)


def test_refusals_and_an_empty_window(redis_url: str, db_url: str) -> None:
    seed_footprint(db_url, minutes=5, rows=4)
    with serve(redis_url, db_url) as web:
        unknown = get(web.base, "/api/footprint", symbol="NOPE")
        bad_tf = get(web.base, "/api/footprint", symbol="BTCUSD", tf="2h")
        bad_time = get(web.base, "/api/footprint", symbol="BTCUSD", **{"from": "yesterday"})
        too_many = get(web.base, "/api/footprint", symbol="BTCUSD", limit=501)
        empty = get(web.base, "/api/footprint", symbol="AAPL").json()
        naive = get(web.base, "/api/footprint", symbol="BTCUSD", **{"to": "2026-11-23T06:02"})
    assert unknown.status_code == 404
    assert bad_tf.status_code == bad_time.status_code == too_many.status_code == 400
    assert empty["bars"] == []
    assert [b["time"][11:16] for b in naive.json()["bars"]] == ["06:00", "06:01"]


def test_following_from_the_last_bar_shown(redis_url: str, db_url: str) -> None:
    """The page asks for the bars from its last one: that bar again, with the minutes it
    gained, and the ones after it; the VWAP likewise."""
    seed_footprint(db_url, minutes=12, rows=6)
    last_5m = (FIRST_TRADE + timedelta(minutes=10)).isoformat()  # 06:10, minutes 10-11
    with serve(redis_url, db_url) as web:
        before = get(web.base, "/api/footprint", symbol="BTCUSD", tf="5m").json()["bars"]
        added = add_footprint_minutes(db_url, 12, count=4, rows=6)  # 06:12 .. 06:15
        after = get(web.base, "/api/footprint", symbol="BTCUSD", tf="5m", **{"from": last_5m})
        vwap = get(web.base, "/api/vwap", symbol="BTCUSD", tf="5m", **{"from": last_5m})
        minute = get(web.base, "/api/vwap", symbol="BTCUSD", **{"from": "2026-11-23T06:14Z"})
    assert before[-1]["time"] == last_5m
    bars = after.json()["bars"]
    assert [b["time"][11:16] for b in bars] == ["06:10", "06:15"]
    _, buy, sell = _minute_cells(15, 6)
    assert bars[1]["delta"] == approx(sum(buy) - sum(sell))
    assert bars[0]["volume"] > before[-1]["volume"]  # 06:10 gained minutes 12-14
    rows = vwap.json()["vwap"]
    assert [r["time"][11:16] for r in rows] == ["06:10", "06:15"]
    assert rows[-1]["vwap"] == approx(added["vwap"]) and rows[-1]["sd"] == approx(added["sd"])
    assert [r["time"][11:16] for r in minute.json()["vwap"]] == ["06:14", "06:15"]


def test_flow_starts_at_the_first_trade(redis_url: str, db_url: str) -> None:
    """The session's order flow is zero-filled from midnight: those minutes are no bars, so
    the delta and CVD panes begin with the candles."""
    seed_footprint(db_url, minutes=10, rows=4)
    with serve(redis_url, db_url) as web:
        flow = get(web.base, "/api/flow", symbol="BTCUSD", limit=2000).json()["flow"]
        hourly = get(web.base, "/api/flow", symbol="BTCUSD", tf="1h", limit=50).json()["flow"]
    assert len(flow) == 10
    assert flow[0]["time"] == FIRST_TRADE.isoformat()
    assert flow[-1]["time"] == (FIRST_TRADE + timedelta(minutes=9)).isoformat()
    assert [b["time"] for b in hourly] == [FIRST_TRADE.isoformat()]
