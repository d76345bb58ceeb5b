"""Synthetic footprint rows beside a synthetic history (``bench.synthetic.history``), stored
as the footprint assets store them: a session VWAP row per minute, stacked imbalances on
some bars, big prints now and then, and the initial balance on the session profile rows."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg

from bench.synthetic.history import SymbolHistory


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def store_footprint(conn: psycopg.Connection, h: SymbolHistory, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sid, n = h.symbol_id, len(h.ts)
    day = h.ts[0] // 86_400 * 86_400
    session_date = _at(day).date()
    # VWAP: the session's running mean close; sd half the value area's spread
    sd = (h.session.vah - h.session.val) / 4
    vwap_rows = [
        (sid, _at(t), session_date, float(v), float(s), 1000.0 * (k + 1))
        for k, (t, v, s) in enumerate(zip(h.ts, h.session.poc, sd, strict=True))
    ]
    stacks, prints = [], []
    for k in range(n):
        t, close = float(h.ts[k]), float(h.close[k])
        for side in ("buy", "sell"):
            if rng.random() < 0.25:
                length = int(rng.integers(1, 6))
                base = round(close, 2) + (0.05 if side == "buy" else -0.05)
                for j in range(length):
                    price = round(base + 0.01 * j, 2)
                    stacks.append((sid, _at(t), price, side, 40.0, 5.0, length))
        if rng.random() < 0.12:
            for no in range(int(rng.integers(1, 3))):
                side = ["buy", "sell", None][int(rng.integers(0, 3))]
                ts = t + float(rng.integers(0, 60))
                size = float(rng.uniform(500, 2000))
                prints.append((sid, _at(t), no, _at(ts), close, size, side, 400.0))
    # IB: the high and low of the session's first hour so far, on every session row
    first_hour = np.minimum(np.arange(n), 59)
    ib_high = np.maximum.accumulate(h.high)[first_hour]
    ib_low = np.minimum.accumulate(h.low)[first_hour]
    with conn.cursor() as cur:
        cur.executemany(
            "insert into session_vwap (symbol_id, bucket, session_date, vwap, sd, volume)"
            " values (%s, %s, %s, %s, %s, %s)",
            vwap_rows,
        )
        cur.executemany(
            "insert into footprint_imbalances (symbol_id, bucket, price, side, volume, opposite,"
            " stack_len) values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
            stacks,
        )
        cur.executemany(
            "insert into big_prints (symbol_id, bucket, print_no, ts, price, size, side,"
            " threshold) values (%s, %s, %s, %s, %s, %s, %s, %s)",
            prints,
        )
        cur.executemany(
            "update profile_metrics set ib_high = %s, ib_low = %s"
            " where symbol_id = %s and horizon = 'session' and bucket = %s",
            [
                (float(a), float(b), sid, _at(t))
                for a, b, t in zip(ib_high, ib_low, h.ts, strict=True)
            ],
        )
