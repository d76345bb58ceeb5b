"""A 24/7 morning of footprint rows, for the footprint API and browser tests.

``seed_footprint(db_url)`` writes for BTCUSD (row size 0.5), 23 Nov 2026 UTC: the session's
order flow zero-filled from midnight, as the profile assets write it, and trading from
06:00 for ``minutes`` minutes, each minute with ``rows`` price rows of cells
(``volume_profile``), its candle, its bar statistics, its imbalances found by the
analytics' own rule (``analytics.imbalances.cell_imbalances``, R = 3), the session VWAP
with its sd, and the session's profile metrics with the initial balance.
``add_footprint_minutes`` writes the minutes after them, as the next profile runs would.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg

from analytics.imbalances import cell_imbalances

SYMBOL = "BTCUSD"
ROW = 0.5
SESSION = date(2026, 11, 23)
MIDNIGHT = datetime(2026, 11, 23, tzinfo=UTC)
FIRST_TRADE = MIDNIGHT + timedelta(hours=6)
BASE = 95_000.0


def _minute_cells(i: int, rows: int) -> tuple[float, np.ndarray, np.ndarray]:
    """The lowest row's price of minute ``i`` and its buy and sell volume per row."""
    low = BASE + ROW * round(8 * math.sin(i * 0.05) + 4 * math.sin(i * 0.31))
    k = np.arange(rows)
    shape = 2.0 + 10.0 * np.exp(-(((k - rows / 2) / (rows / 5)) ** 2))
    tilt = 1.0 + 0.6 * np.sin(k * 0.9 + i)
    buy = np.round(shape * tilt, 3)
    sell = np.round(shape * (2.0 - tilt), 3)
    # a buy stack of three rows every seventh minute: each buy >= 3 x the sells below
    if i % 7 == 0 and rows >= 8:
        for r in range(rows // 2, rows // 2 + 3):
            buy[r] = 20.0 + r % 3
            sell[r - 1] = min(sell[r - 1], 1.0)
    return low, buy, sell


class _Minutes:
    """The rows of minutes ``first`` .. ``first + count - 1`` of the morning (the session
    VWAP and CVD run on from minute 0, so later minutes continue the earlier ones)."""

    def __init__(self, sid: int, first: int, count: int, rows: int) -> None:
        self.flow: list[tuple] = []
        self.candles: list[tuple] = []
        self.profile: list[tuple] = []
        self.imbalances: list[tuple] = []
        self.vwaps: list[tuple] = []
        self.ib_high, self.ib_low = -math.inf, math.inf
        cvd = pv = v = pv2 = 0.0
        for i in range(first + count):
            ts = FIRST_TRADE + timedelta(minutes=i)
            low, buy, sell = _minute_cells(i, rows)
            prices = low + ROW * np.arange(rows)
            total = buy + sell
            delta = float(buy.sum() - sell.sum())
            cvd += delta
            volume = float(total.sum())
            pv += float((prices * total).sum())
            v += volume
            pv2 += float((prices * prices * total).sum())
            mean = pv / v
            self.volume = v
            if i < 60:
                self.ib_high = max(self.ib_high, float(prices[-1]))
                self.ib_low = min(self.ib_low, float(prices[0]))
            if i < first:
                continue
            for p, b, s in zip(prices, buy, sell, strict=True):
                self.profile.append((sid, ts, float(p), float(b + s), float(b), float(s), 3))
            found = cell_imbalances(np.arange(rows), total, buy, rows, 3.0, 0.0)
            for side in ("buy", "sell"):
                for k, vol, opp, stack in zip(
                    found[f"{side}_cells"],
                    found[f"{side}_volume"],
                    found[f"{side}_opposite"],
                    found[f"{side}_stack"],
                    strict=True,
                ):
                    self.imbalances.append((sid, ts, float(prices[k]), side, vol, opp, int(stack)))
            self.candles.append(
                (sid, ts, float(prices[rows // 3]), float(prices[-1]), float(prices[0]),
                 float(prices[2 * rows // 3]), volume, 3 * rows)
            )  # fmt: skip
            self.flow.append(
                (sid, ts, delta, cvd, cvd, float(buy.sum()), float(sell.sum()),
                 50.0, 50.0, 3 * rows, max(delta, 0.0) + 5.0, min(delta, 0.0) - 5.0)
            )  # fmt: skip
            self.vwaps.append((sid, ts, SESSION, mean, math.sqrt(max(pv2 / v - mean * mean, 0)), v))

    def write(self, conn: psycopg.Connection, zero_filled: list[tuple]) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into order_flow (symbol_id, bucket, delta, cvd, cvd_total, buy_volume,"
                " sell_volume, buy_pressure, sell_pressure, trade_count, max_delta, min_delta)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                zero_filled + self.flow,
            )
            cur.executemany(
                "insert into candles_1m (symbol_id, ts, open, high, low, close, volume,"
                " trade_count) values (%s, %s, %s, %s, %s, %s, %s, %s)",
                self.candles,
            )
            cur.executemany(
                "insert into volume_profile (symbol_id, bucket, price_level, total_volume,"
                " buy_volume, sell_volume, trade_count) values (%s, %s, %s, %s, %s, %s, %s)",
                self.profile,
            )
            cur.executemany(
                "insert into footprint_imbalances (symbol_id, bucket, price, side, volume,"
                " opposite, stack_len) values (%s, %s, %s, %s, %s, %s, %s)",
                self.imbalances,
            )
            cur.executemany(
                "insert into session_vwap (symbol_id, bucket, session_date, vwap, sd, volume)"
                " values (%s, %s, %s, %s, %s, %s)",
                self.vwaps,
            )


def _symbol_id(conn: psycopg.Connection) -> int:
    row = conn.execute("select id from symbols where symbol = %s", (SYMBOL,)).fetchone()
    assert row is not None
    return int(row[0])


def seed_footprint(db_url: str, minutes: int = 60, rows: int = 20) -> dict[str, float]:
    with psycopg.connect(db_url, autocommit=False) as conn:
        sid = _symbol_id(conn)
        conn.execute("update symbols set row_size = %s where id = %s", (ROW, sid))
        zero = (0.0, 0.0, 0.0, 0.0, 0.0, 50.0, 50.0, 0, None, None)
        zero_filled = [
            (sid, MIDNIGHT + timedelta(minutes=m), *zero)
            for m in range(int((FIRST_TRADE - MIDNIGHT).total_seconds() // 60))
        ]
        made = _Minutes(sid, 0, minutes, rows)
        made.write(conn, zero_filled)
        last = made.vwaps[-1]
        conn.execute(
            "insert into profile_metrics (symbol_id, horizon, bucket, session_date, poc, vah,"
            " val, total_volume, lvns, hvns, ib_high, ib_low) values"
            " (%s, 'session', %s, %s, %s, %s, %s, %s, '[]', '[]', %s, %s)",
            (sid, FIRST_TRADE + timedelta(minutes=minutes - 1), SESSION, BASE + 5, BASE + 9,
             BASE + 1, made.volume, made.ib_high, made.ib_low),
        )  # fmt: skip
        conn.commit()
    return {"vwap": last[3], "sd": last[4], "ib_high": made.ib_high, "ib_low": made.ib_low}


def add_footprint_minutes(
    db_url: str, first: int, count: int = 1, rows: int = 20
) -> dict[str, float]:
    """Write minutes ``first`` .. ``first + count - 1`` after a ``seed_footprint`` of
    ``first`` minutes, as the next minute profile runs would; returns the last VWAP."""
    with psycopg.connect(db_url, autocommit=False) as conn:
        made = _Minutes(_symbol_id(conn), first, count, rows)
        made.write(conn, [])
        conn.commit()
    return {"vwap": made.vwaps[-1][3], "sd": made.vwaps[-1][4]}
