"""The symbol page's footprint and VWAP follow the market in Debian's Chromium (the
fixtures of test_dashboard_browser.py): minutes written to the database while the page is
open (as the next profile runs would) appear without a reload, the current bar grows, a new
one is appended, the user's scroll and zoom stay, and every request after the first asks
only for the bars from the last one shown (``from=``)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import redis
from playwright.sync_api import Page, Request, expect
from pytest import approx

from core.contracts import Channel
from tests.support.footprint_seed import FIRST_TRADE, add_footprint_minutes, seed_footprint
from tests.support.web_served import serve
from tests.web.test_dashboard_browser import browser, open_page, page, shot

__all__ = ["browser", "page"]  # the fixtures, shared

# the page follows every 10 s (FOLLOW_MS in pages/symbol.js) and 1.5 s after a live minute
FOLLOWED = 15_000
VIEW = """() => { const ts = window.mfSymbol.footprint.chart.timeScale();
  return { range: ts.getVisibleRange(), spacing: ts.options().barSpacing,
           width: ts.getVisibleLogicalRange().to - ts.getVisibleLogicalRange().from }; }"""


def _t(minute: int) -> int:
    """A bar's ``t`` (local wall-clock seconds; BTCUSD's zone is UTC)."""
    return int((FIRST_TRADE + timedelta(minutes=minute)).timestamp())


def _same_cells(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Cells equal but for the last digits of sums (SQL sums in any order)."""
    flags = ("price", "buy_imbalance", "sell_imbalance", "buy_stack", "sell_stack")
    return len(a) == len(b) and all(
        all(x[k] == y[k] for k in flags) and (x["buy"], x["sell"]) == approx((y["buy"], y["sell"]))
        for x, y in zip(a, b, strict=True)
    )


def _candle(minute: int) -> str:
    at = (FIRST_TRADE + timedelta(minutes=minute)).isoformat()
    return json.dumps(
        {"symbol": "BTCUSD", "time": at, "open": 95_000, "high": 95_010, "low": 94_990}
        | {"close": 95_005, "volume": 10}
    )


def test_the_footprint_and_vwap_follow_new_minutes(page: Page, redis_url: str, db_url: str) -> None:
    seed_footprint(db_url, minutes=38, rows=16)  # 5m bars 06:00 .. 06:35 (minutes 35-37)
    asked: list[str] = []

    def record(request: Request) -> None:
        if "/api/footprint" in request.url or "/api/vwap" in request.url:
            asked.append(request.url)

    page.on("request", record)
    pub = redis.Redis.from_url(redis_url)
    with serve(redis_url, db_url) as web:
        open_page(page, f"{web.base}/symbol/BTCUSD?tf=5m")
        fp = page.locator("#fpbox")
        expect(fp).to_have_attribute("data-bars", "8")
        # the trader scrolls two bars back into history, at the page's zoom
        page.evaluate("window.mfSymbol.footprint.chart.timeScale().scrollToPosition(-2, false)")
        page.wait_for_timeout(200)
        before: dict[str, Any] = page.evaluate(VIEW)

        # minutes 38-39 finish the 06:35 bar, 40 opens 06:40: found by the timer
        add_footprint_minutes(db_url, 38, count=3, rows=16)
        expect(fp).to_have_attribute("data-bars", "9", timeout=FOLLOWED)
        page.wait_for_timeout(200)
        assert page.evaluate(VIEW) == before  # neither scrolled nor zoomed
        shown = page.evaluate("window.mfSymbol.footprint.bars()")
        served = httpx.get(
            f"{web.base}/api/footprint", params={"symbol": "BTCUSD", "tf": "5m"}, timeout=10
        ).json()["bars"]
        assert [b["t"] for b in shown] == [b["t"] for b in served]
        assert shown[-2]["volume"] == approx(served[-2]["volume"])  # the grown bar
        assert _same_cells(shown[-2]["cells"], served[-2]["cells"])
        assert shown[-1]["t"] == _t(40) and _same_cells(shown[-1]["cells"], served[-1]["cells"])

        # a live minute makes the page look at once: minutes 41-45 close 06:40, open 06:45
        added = add_footprint_minutes(db_url, 41, count=5, rows=16)
        pub.publish(Channel.CANDLES, _candle(45))
        pub.publish(Channel.CANDLES, _candle(46))
        expect(fp).to_have_attribute("data-bars", "10", timeout=FOLLOWED)
        expect(fp.locator(".fp-note")).to_contain_text("5m · 10 bars")
        page.wait_for_function(f"window.mfSymbol.vwapLast().t === {_t(45)}", timeout=FOLLOWED)
        last = page.evaluate("window.mfSymbol.vwapLast()")
        assert last["vwap"] == approx(added["vwap"]) and last["sd"] == approx(added["sd"])
        after = page.evaluate(VIEW)
        assert after["spacing"] == before["spacing"] and after["width"] == approx(before["width"])
        shot(page, "symbol-footprint-live")
    pub.close()

    # the page's first load asked for the window; everything after only from its last bar
    footprints = [u for u in asked if "/api/footprint" in u]
    vwaps = [u for u in asked if "/api/vwap" in u]
    assert len(footprints) >= 3 and len(vwaps) >= 3
    assert "from=" not in footprints[0] and all("from=" in u for u in footprints[1:])
    assert "from=" not in vwaps[0] and all("from=" in u for u in vwaps[1:])
