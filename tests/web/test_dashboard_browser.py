"""The dashboard in Debian's Chromium, driven by Playwright: every page loads with data, live
updates published to Redis appear, a stored backtest run is drawn, a strategy edit without
the token is refused, the token leaves the address bar, and a stalled client does not hold
up the browser.

Chromium comes from Debian (`make install` as root runs `apt-get install -y chromium`);
Playwright's own browser download is not used. Without Chromium these tests fail, never skip.
A screenshot of each page is kept under tests/artifacts/dashboard/ (gitignored).
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator

import psycopg
import pytest
import redis
from playwright.sync_api import Browser, Page, expect, sync_playwright

from core.contracts import Channel
from streaming.web.pages import CHARTS_MISSING, charts_installed
from tests.support import paths
from tests.support.backtest_seed import STRATEGY, seed_backtest, start_unfinished
from tests.support.web_seed import MARKET_ID, seed
from tests.support.web_served import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = paths.ARTIFACTS / "dashboard"
TOKEN = "s3cret-t0ken"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make install` as root, or "
            "`apt-get update && apt-get install -y chromium`"
        )
    if not charts_installed():
        pytest.fail(f"{CHARTS_MISSING} (the pages are tested with their charts)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1480, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    # locator waits, not wait_for_function: the page's CSP forbids eval, which that uses
    expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=15000)
    expect(page.locator("body")).to_have_attribute("data-ws", "open", timeout=15000)


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let the charts finish their frame
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_each_page_loads_with_data(page: Page, redis_url: str, db_url: str) -> None:
    seeded = seed(db_url)
    last = f"{seeded['last_close']:.2f}"
    with serve(redis_url, db_url) as web:
        open_page(page, f"{web.base}/")
        row = page.locator("#watchlist tr[data-symbol=AAPL]")
        expect(row).to_contain_text(last)
        expect(row).to_contain_text("IMBALANCE_UP")
        # the engine's confidence is in points: the latest state's 72 reads 72%, not 7,200%
        expect(row.locator("td[data-f=state] .badge")).to_have_text("IMBALANCE_UP 72%")
        expect(row).to_contain_text("BUY")
        expect(page.locator("#watchlist tr[data-symbol='VOD.L']")).to_contain_text("08:29")
        page.locator("th[data-sort=last_price]").click()  # sorts by price, empty rows last
        expect(page.locator("#watchlist tbody tr").first).to_have_attribute("data-symbol", "VOD.L")
        page.locator("th[data-sort=last_price]").click()
        expect(page.locator("#watchlist tbody tr").first).to_have_attribute("data-symbol", "MSFT")
        shot(page, "watchlist")

        open_page(page, f"{web.base}/symbol/AAPL")
        expect(page.locator("#legend")).to_contain_text(f"C {last}")
        # the last bar is 11:29 in New York (16:29 UTC), and the legend names the zone
        expect(page.locator("#legend")).to_contain_text("23 Nov, 11:29 EST")
        expect(page.locator("#levels")).to_contain_text(f"{seeded['poc']:.2f}")
        expect(page.locator("#signals li")).to_have_count(3)
        expect(page.locator("#state")).to_have_attribute("data-state", "IMBALANCE_UP")
        assert page.locator("#chart canvas").count() > 0  # lightweight-charts drew
        shot(page, "symbol-1m")
        page.locator("#tfs button[data-tf='15m']").click()
        expect(page.locator("#legend")).to_contain_text("15m")
        expect(page).to_have_url(f"{web.base}/symbol/AAPL?tf=15m")
        # 120 minutes / 15, and the previous session's last bar
        assert page.evaluate("window.mfSymbol.bars().length") == 9
        shot(page, "symbol-15m")

        # the symbol box in the top bar opens a symbol's page
        page.locator("#goto").fill("msft")
        page.locator("#goto").press("Enter")
        expect(page).to_have_url(f"{web.base}/symbol/MSFT")
        # a symbol without data yet opens quietly; an unknown one says so
        open_page(page, f"{web.base}/symbol/NVDA")
        expect(page.locator("#levels")).to_contain_text("Session")
        page.goto(f"{web.base}/symbol/NOPE")
        expect(page.locator("body")).to_have_attribute("data-ready", "error")
        expect(page.locator("#app")).to_contain_text("unknown symbol NOPE")

        open_page(page, f"{web.base}/strategies")
        expect(page.locator("[data-strategy]")).to_have_count(2)
        expect(page.locator("#strategies")).to_contain_text("auction_market")
        expect(page.locator("#feed li")).to_have_count(3)
        shot(page, "strategies")

        open_page(page, f"{web.base}/orders")
        expect(page.locator("#orders")).to_contain_text("filled")
        expect(page.locator("#orders")).to_contain_text("rejected")
        shot(page, "orders")

        open_page(page, f"{web.base}/polymarket")
        expect(page.locator("#markets")).to_contain_text("Will the Fed cut rates")
        expect(page.locator("#markets")).to_contain_text("1.20¢")
        expect(page.locator("#opps tr")).to_have_count(1)
        shot(page, "polymarket")

        page.goto(f"{web.base}/docs")
        expect(page.locator("table")).to_contain_text("/api/candles")
        shot(page, "api-docs")


def test_backtest_page_shows_a_stored_run(page: Page, redis_url: str, db_url: str) -> None:
    run_id, result = seed_backtest(db_url)
    later = start_unfinished(db_url)
    with serve(redis_url, db_url) as web:
        page.goto(f"{web.base}/backtests")
        # no live feed on this page: it is ready once the newest run is shown
        expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=15000)
        expect(page.locator(f"#runs tr[data-run='{later}']")).to_have_class("link on")
        expect(page.locator("#metrics")).to_contain_text("the run did not finish")
        expect(page.locator("#trades tbody")).to_contain_text("none")
        row = page.locator(f"#runs tr[data-run='{run_id}']")
        row.click()
        expect(row).to_contain_text(STRATEGY)
        expect(row).to_contain_text("succeeded")
        expect(row).to_have_class("link on")
        expect(page).to_have_url(f"{web.base}/backtests?run={run_id}")
        # the address changes before the run is fetched: wait for its trades and its curve
        expect(page.locator("#trades tbody tr")).to_have_count(len(result.trades))
        page.wait_for_function("window.mfBacktest.points() > 100", timeout=15000)
        assert page.locator("#equity canvas").count() > 0  # lightweight-charts drew the curve
        expect(page.locator("#bt-legend")).to_contain_text("Equity")
        first = result.trades[0]
        expect(page.locator("#trades tr[data-trade='1']")).to_contain_text(first.signal.symbol)
        expect(page.locator("#metrics")).to_contain_text(f"{len(result.trades)} (")
        expect(page.locator("#by-symbol tbody tr")).to_have_count(len(result.by_symbol))
        for reason in result.metrics["exit_reasons"]:
            expect(page.locator("#exits")).to_contain_text(reason.replace("_", " "))
        shot(page, "backtests")
        page.goto(f"{web.base}/backtests?run={run_id}")  # a chosen run opens from its address
        expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=15000)
        expect(page.locator("#trades tbody tr")).to_have_count(len(result.trades))
        page.goto(f"{web.base}/backtests?run={later + 99}")  # an unknown run: the newest
        expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=15000)
        expect(page).to_have_url(f"{web.base}/backtests?run={later}")


def test_candle_signal_and_state_appear_live(
    browser: Browser, page: Page, redis_url: str, db_url: str
) -> None:
    seed(db_url)
    pub = redis.Redis.from_url(redis_url)
    with serve(redis_url, db_url) as web:
        open_page(page, f"{web.base}/symbol/AAPL")
        watch = browser.new_context().new_page()
        open_page(watch, f"{web.base}/")
        candle = {
            "symbol": "AAPL",
            "time": "2026-11-23T16:30:00+00:00",  # the minute after the stored ones
            "open": 190.0,
            "high": 199.99,
            "low": 189.5,
            "close": 199.25,
            "volume": 900,
        }
        pub.publish(Channel.CANDLES, json.dumps(candle))
        expect(page.locator("#legend")).to_contain_text("C 199.25")
        expect(page.locator("#last-price")).to_have_text("199.25")
        assert page.evaluate("window.mfSymbol.bars().length") == 122  # 120 + 1 earlier + new
        expect(watch.locator("#watchlist tr[data-symbol=AAPL]")).to_contain_text("199.25")

        signal = {
            "symbol": "AAPL",
            "strategy": "auction_market",
            "type": "SELL",
            "time": "2026-11-23T16:30:00+00:00",
            "details": {},
        }
        pub.publish(Channel.SIGNALS, json.dumps(signal))
        expect(page.locator("#signals li")).to_have_count(4)
        expect(page.locator("#signals li").first).to_contain_text("SELL")
        assert page.evaluate("window.mfSymbol.signals().length") == 4

        state = {"symbol": "AAPL", "time": "2026-11-23T16:30:00+00:00", "state": "IMBALANCE_DOWN"}
        pub.publish(Channel.MARKET_STATE, json.dumps({**state, "confidence": 81.0, "poc": 181.0}))
        expect(page.locator("#state")).to_have_attribute("data-state", "IMBALANCE_DOWN")
        expect(page.locator("#state")).to_contain_text("81%")
        # the live state message's confidence, in points as sent (81 reads 81%)
        watch_state = watch.locator("#watchlist tr[data-symbol=AAPL] td[data-f=state] .badge")
        expect(watch_state).to_have_text("IMBALANCE_DOWN 81%")
        alert = {"symbol": "AAPL", "type": "lvn", "time": "2026-11-23T16:30:00+00:00"}
        pub.publish(Channel.ALERTS, json.dumps({**alert, "lvn": 181.5, "horizon": "session"}))
        expect(page.locator("#alerts li").first).to_contain_text("near LVN 181.50 (session)")
        flow = {"symbol": "AAPL", "type": "aggressive_flow", "time": "2026-11-23T16:30:00+00:00"}
        pub.publish(Channel.ALERTS, json.dumps({**flow, "direction": "buy", "score": 82.4}))
        expect(page.locator("#alerts li").first).to_contain_text("aggressive buy flow, score 82")
        # the footprint alerts, in the fields streaming/engine/footprint_alerts.py publishes
        stack = {**alert, "type": "stacked_imbalance", "side": "buy", "rows": 4}
        pub.publish(Channel.ALERTS, json.dumps({**stack, "bar": "2026-11-23T16:29:00+00:00"}))
        expect(page.locator("#alerts li").first).to_contain_text("stacked buy imbalance, 4 rows")
        band = {**alert, "type": "vwap_band", "band": "upper", "k": 2.0, "level": 198.4}
        pub.publish(
            Channel.ALERTS, json.dumps({**band, "price": 199.25, "vwap": 190.1, "sd": 4.15})
        )
        expect(page.locator("#alerts li").first).to_contain_text(
            "upper VWAP band touched at 199.25 (2.0 sd, band 198.40, VWAP 190.10)"
        )
        big = {**alert, "type": "big_print", "side": "sell", "price": 199.0, "size": 25000.0}
        pub.publish(Channel.ALERTS, json.dumps({**big, "print_time": "2026-11-23T16:29:58+00:00"}))
        expect(page.locator("#alerts li").first).to_contain_text("big print 25,000 @ 199.00 (sell")
        expect(page.locator("#alerts li").first).not_to_contain_text("{")
        shot(page, "symbol-live")
        watch.context.close()
    pub.close()


def _strategy(db_url: str) -> tuple[int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "select id, cooldown_seconds from strategies where name = 'auction_market'"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_strategy_edit_needs_the_token(page: Page, redis_url: str, db_url: str) -> None:
    seed(db_url)
    sid, cooldown = _strategy(db_url)
    with serve(redis_url, db_url, token=TOKEN) as web:
        open_page(page, f"{web.base}/strategies?token={TOKEN}")
        # the token left the address bar (history, bookmarks, screen shares) at once
        assert "token" not in page.url and page.url == f"{web.base}/strategies"
        assert page.evaluate("sessionStorage.getItem('marketflow-token')") == TOKEN
        card = page.locator(f"[data-strategy='{sid}']")
        message = page.locator(f"#strategy-msg-{sid}")

        page.evaluate("sessionStorage.removeItem('marketflow-token')")
        card.locator(".s-cooldown").fill("120")
        card.locator(".s-save").click()
        expect(message).to_contain_text("refused: missing or wrong token")
        assert _strategy(db_url)[1] == cooldown  # nothing written

        page.evaluate(f"sessionStorage.setItem('marketflow-token', '{TOKEN}')")
        definition = card.locator(".s-definition")
        good = definition.input_value()
        definition.fill(good.replace('"atr_stop_multiplier": 1.5', '"atr_stop_multiplier": 0'))
        card.locator(".s-save").click()
        expect(message).to_contain_text("atr_stop_multiplier must be in [0.1, 20]")
        assert _strategy(db_url)[1] == cooldown

        definition.fill(good)
        card.locator(".s-save").click()
        expect(message).to_have_text("saved")
        assert _strategy(db_url)[1] == 120
        shot(page, "strategies-edit")


def test_strategy_edit_with_the_token_of_the_printed_link(
    browser: Browser, page: Page, redis_url: str, db_url: str
) -> None:
    """No token configured: the server generates one; a user opens the printed link, goes
    to the strategies page and saves; a tab opened without the link reads but cannot save."""
    seed(db_url)
    sid, cooldown = _strategy(db_url)
    with serve(redis_url, db_url) as web:
        assert web.server.token_generated and web.server.link.startswith(f"{web.base}/?token=")
        stranger = browser.new_context().new_page()
        open_page(stranger, f"{web.base}/strategies")  # reads need no token on loopback
        expect(stranger.locator("#token-hint")).to_contain_text("open the link printed at start")
        stranger_card = stranger.locator(f"[data-strategy='{sid}']")
        stranger_card.locator(".s-cooldown").fill("45")
        stranger_card.locator(".s-save").click()
        expect(stranger.locator(f"#strategy-msg-{sid}")).to_contain_text(
            "refused: missing or wrong token"
        )
        stranger.context.close()
        assert _strategy(db_url)[1] == cooldown

        open_page(page, web.server.link)
        assert page.url == f"{web.base}/"  # the token left the address bar
        page.locator("nav a", has_text="Strategies").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "1", timeout=15000)
        expect(page.locator("#token-hint")).to_have_count(0)
        card = page.locator(f"[data-strategy='{sid}']")
        card.locator(".s-cooldown").fill("45")
        card.locator(".s-save").click()
        expect(page.locator(f"#strategy-msg-{sid}")).to_have_text("saved")
        assert _strategy(db_url)[1] == 45
        shot(page, "strategies-saved-with-link-token")


def test_a_stalled_client_does_not_delay_the_browser(
    page: Page, redis_url: str, db_url: str
) -> None:
    seed(db_url)
    pub = redis.Redis.from_url(redis_url)
    pad = "x" * 600
    with serve(redis_url, db_url) as web:
        open_page(page, f"{web.base}/symbol/AAPL")
        # a client that completes the handshake and then never reads: a frozen tab
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", web.server.port))
        stalled.sendall(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        port = stalled.getsockname()[1]

        async def stalled_outbox() -> tuple[int, int] | None:
            for client in list(web.server.clients):
                if client.peer[1] == port:
                    return client.outbox.conflated, client.frames
            return None

        for _ in range(100):
            if web.call(stalled_outbox()) is not None:
                break
            page.wait_for_timeout(20)
        for n in range(2000):
            pipe = pub.pipeline(transaction=False)
            for s in range(5):
                pipe.publish(
                    Channel.MARKET_STATE, json.dumps({"symbol": f"S{s}", "n": n, "p": pad})
                )
            pipe.execute()
        final = {"symbol": "AAPL", "time": "2026-11-23T16:30:00+00:00", "open": 190.0}
        pub.publish(Channel.CANDLES, json.dumps({**final, "high": 191, "low": 189, "close": 190.5}))
        expect(page.locator("#legend")).to_contain_text("C 190.50")
        conflated, frames = web.call(stalled_outbox()) or (0, 0)
        assert conflated > 0 and frames < 2000  # it was stalled all along, and conflated
        stalled.close()
    pub.close()


def test_polymarket_quotes_and_opportunities_live(page: Page, redis_url: str, db_url: str) -> None:
    seed(db_url)
    pub = redis.Redis.from_url(redis_url)
    with serve(redis_url, db_url) as web:
        open_page(page, f"{web.base}/polymarket")
        row = page.locator(f"#markets tr[data-market='{MARKET_ID}']")
        expect(row).to_contain_text("41.0")
        quote = {"market_id": MARKET_ID, "symbol": "FED-DEC", "time": "2026-11-23T16:31:00+00:00"}
        prices = {"yes_bid": 0.44, "yes_ask": 0.45, "no_bid": 0.53, "no_ask": 0.54}
        more = {"spread": 0.01, "edge": 0.01, "executable_size": 310, "arbitrage": True}
        pub.publish(Channel.BINARY_PRICES, json.dumps({**quote, **prices, **more}))
        expect(row).to_contain_text("44.0")
        expect(row).to_contain_text("ARB")
        episode = {"kind": "pair", "market_id": MARKET_ID, "opportunity_id": 99, "size": 75}
        opened = {**episode, "opened_at": "2026-11-23T16:31:00+00:00", "best_edge": 0.031}
        pub.publish(Channel.BINARY_ARBITRAGE, json.dumps({**opened, "action": "open"}))
        expect(page.locator("#opps tr")).to_have_count(2)
        expect(page.locator("#opps")).to_contain_text("3.10¢")
        closed = {**opened, "action": "close", "closed_at": "2026-11-23T16:31:30+00:00"}
        pub.publish(Channel.BINARY_ARBITRAGE, json.dumps(closed))
        expect(page.locator("#opps tr")).to_have_count(1)
        expect(page.locator("#episodes tr").first).to_contain_text("30 s")
        shot(page, "polymarket-live")
    pub.close()
