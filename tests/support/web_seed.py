"""A trading morning in the market database, for the dashboard's API and browser tests.

``seed(db_url)`` writes, for 23 Nov 2026 (a Monday; 09:30 New York = 14:30 UTC): 120 one-minute
candles of AAPL (a deterministic walk) and 30 of MSFT and VOD.L, AAPL's order flow per minute,
its session volume profile and metrics (POC/VAH/VAL, LVNs, HVNs), a naked POC of an earlier
session and the session's own POC candidate (not naked yet), market states, signals of both
seeded strategies, orders (one filled), and a Polymarket market with quotes, one open
opportunity and one closed.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import psycopg

SESSION = date(2026, 11, 23)
OPEN_UTC = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
AAPL_MINUTES = 120
MARKET_ID = "0xfeedbeef"


def walk(n: int, start: float, seed: int) -> list[tuple[float, float, float, float]]:
    """``n`` OHLC bars of a deterministic walk (no randomness: the same every run)."""
    bars = []
    price = start
    for i in range(n):
        step = math.sin(i * 0.37 + seed) * 0.35 + math.cos(i * 0.11 + seed) * 0.2
        open_ = price
        close = round(price + step, 2)
        high = round(max(open_, close) + 0.12 + abs(math.sin(i + seed)) * 0.1, 2)
        low = round(min(open_, close) - 0.1 - abs(math.cos(i + seed)) * 0.1, 2)
        bars.append((round(open_, 2), high, low, close))
        price = close
    return bars


def _sid(conn: psycopg.Connection, symbol: str) -> int:
    row = conn.execute("select id from symbols where symbol = %s", (symbol,)).fetchone()
    assert row is not None
    return int(row[0])


def _candles(
    conn: psycopg.Connection,
    sid: int,
    start: datetime,
    bars: list[tuple[float, float, float, float]],
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into candles_1m (symbol_id, ts, open, high, low, close, volume, trade_count,"
            " vwap) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    sid,
                    start + timedelta(minutes=i),
                    o,
                    h,
                    lo,
                    c,
                    1000 + 37 * (i % 11),
                    20 + i % 7,
                    round((h + lo + c) / 3, 4),
                )
                for i, (o, h, lo, c) in enumerate(bars)
            ],
        )


def seed(db_url: str) -> dict[str, float]:
    """Write the morning; returns a few values the tests look for."""
    aapl = walk(AAPL_MINUTES, 180.0, 1)
    with psycopg.connect(db_url, autocommit=False) as conn:
        sids = {s: _sid(conn, s) for s in ("AAPL", "MSFT", "VOD.L")}
        # the previous session's last close, for the day's change
        _candles(
            conn,
            sids["AAPL"],
            OPEN_UTC - timedelta(days=3, hours=-5),
            [(179.0, 179.4, 178.8, 179.2)],
        )
        _candles(conn, sids["AAPL"], OPEN_UTC, aapl)
        _candles(conn, sids["MSFT"], OPEN_UTC, walk(30, 410.0, 2))
        _candles(conn, sids["VOD.L"], datetime(2026, 11, 23, 8, 0, tzinfo=UTC), walk(30, 72.0, 3))
        cvd = 0.0
        flow = []
        for i in range(AAPL_MINUTES):
            delta = round(math.sin(i * 0.3) * 400 + 80, 1)
            cvd += delta
            buy = 600 + max(delta, 0)
            sell = 600 + max(-delta, 0)
            flow.append(
                (
                    sids["AAPL"],
                    OPEN_UTC + timedelta(minutes=i),
                    delta,
                    cvd,
                    cvd,
                    buy,
                    sell,
                    100 * buy / (buy + sell),  # pressure in percent, buy + sell = 100
                    100 * sell / (buy + sell),
                    30,
                )
            )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into order_flow (symbol_id, bucket, delta, cvd, cvd_total, buy_volume,"
                " sell_volume, buy_pressure, sell_pressure, trade_count)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                flow,
            )
        lows = [b[2] for b in aapl]
        highs = [b[1] for b in aapl]
        lo, hi = math.floor(min(lows) * 4) / 4, math.ceil(max(highs) * 4) / 4
        levels = [round(lo + 0.25 * k, 2) for k in range(int((hi - lo) / 0.25) + 1)]
        poc = levels[len(levels) // 2]
        cells = []
        for k, level in enumerate(levels):
            weight = math.exp(-(((level - poc) / ((hi - lo) / 5)) ** 2)) * 5000 + 200
            if k == len(levels) // 4:
                weight = 60.0  # a low-volume node
            buy = round(weight * (0.55 if level < poc else 0.45), 1)
            cells.append(
                (
                    sids["AAPL"],
                    OPEN_UTC + timedelta(minutes=k % AAPL_MINUTES),
                    level,
                    weight,
                    buy,
                    weight - buy,
                    9,
                )
            )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into volume_profile (symbol_id, bucket, price_level, total_volume,"
                " buy_volume, sell_volume, trade_count) values (%s, %s, %s, %s, %s, %s, %s)",
                cells,
            )
        lvn = levels[len(levels) // 4]
        hvn = poc
        vah, val = levels[len(levels) // 2 + 3], levels[len(levels) // 2 - 3]
        conn.execute(
            "insert into profile_metrics (symbol_id, horizon, bucket, session_date, poc, vah, val,"
            " total_volume, lvns, hvns) values (%s, 'session', %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                sids["AAPL"],
                OPEN_UTC,
                SESSION,
                poc,
                vah,
                val,
                sum(c[3] for c in cells),
                json.dumps([{"price": lvn, "volume": 60.0}]),
                json.dumps([{"price": hvn}]),
            ),
        )
        naked_poc = round(aapl[0][0] - 1.1, 2)
        # the earlier session's POC is naked; the session's own POC is stored as the candidate
        # it becomes once the session ends, untouched (touched_at null) and not naked yet
        for day, level in ((SESSION - timedelta(days=3), naked_poc), (SESSION, poc)):
            conn.execute(
                "insert into naked_pocs (symbol_id, session_date, poc) values (%s, %s, %s)",
                (sids["AAPL"], day, level),
            )
        for k, (state, conf) in enumerate((("BALANCE", 55.0), ("IMBALANCE_UP", 72.0))):
            conn.execute(
                "insert into market_state (symbol_id, ts, state, confidence, poc, balance_high,"
                " balance_low) values (%s, %s, %s, %s, %s, %s, %s)",
                (
                    sids["AAPL"],
                    OPEN_UTC + timedelta(minutes=30 + 60 * k),
                    state,
                    conf,
                    poc,
                    vah,
                    val,
                ),
            )
        strategies = dict(conn.execute("select name, id from strategies").fetchall())
        sma, auction = strategies["AAPL SMA20 Breakout"], strategies["auction_market"]
        for minute, strategy, kind in (
            (25, sma, "BUY"),
            (70, auction, "SELL"),
            (100, auction, "BUY"),
        ):
            conn.execute(
                "insert into signals (ts, strategy_id, symbol_id, type, price, details)"
                " values (%s, %s, %s, %s, %s, '{}')",
                (
                    OPEN_UTC + timedelta(minutes=minute),
                    strategy,
                    sids["AAPL"],
                    kind,
                    aapl[minute][3],
                ),
            )
        conn.execute(
            "insert into orders (client_order_id, symbol_id, strategy_id, side, qty, order_type,"
            " entry, stop, target, status, filled_qty, filled_avg_price, filled_at, created_at)"
            " values ('mf-1', %s, %s, 'buy', 10, 'bracket', %s, %s, %s, 'filled', 10, %s, %s, %s),"
            " ('mf-2', %s, %s, 'sell', 5, 'bracket', %s, null, null, 'rejected', null, null,"
            " null, %s)",
            (
                sids["AAPL"],
                auction,
                aapl[100][3],
                aapl[100][3] - 1.5,
                aapl[100][3] + 3,
                aapl[100][3],
                OPEN_UTC + timedelta(minutes=101),
                OPEN_UTC + timedelta(minutes=100),
                sids["MSFT"],
                auction,
                411.0,
                OPEN_UTC + timedelta(minutes=20),
            ),
        )
        conn.execute(
            "insert into binary_markets (market_id, question, category, status, end_date)"
            " values (%s, 'Will the Fed cut rates in December?', 'economics', 'active', %s)",
            (MARKET_ID, datetime(2026, 12, 17, tzinfo=UTC)),
        )
        conn.execute(
            "insert into binary_prices (ts, market_id, yes_bid, yes_ask, yes_mid, no_bid, no_ask,"
            " no_mid, spread, edge, executable_size) values"
            " (%s, %s, 0.41, 0.43, 0.42, 0.55, 0.57, 0.56, 0.02, 0.012, 250)",
            (OPEN_UTC + timedelta(minutes=5), MARKET_ID),
        )
        conn.execute(
            "insert into binary_opportunities (market_id, kind, opened_at, closed_at, best_edge,"
            " size) values (%s, 'pair', %s, null, 0.012, 250), (%s, 'pair', %s, %s, 0.02, 120)",
            (
                MARKET_ID,
                OPEN_UTC + timedelta(minutes=5),
                MARKET_ID,
                OPEN_UTC - timedelta(hours=2),
                OPEN_UTC - timedelta(hours=2) + timedelta(seconds=42),
            ),
        )
        conn.commit()
    return {
        "last_close": aapl[-1][3],
        "poc": poc,
        "lvn": lvn,
        "vah": vah,
        "val": val,
        "naked_poc": naked_poc,
    }
