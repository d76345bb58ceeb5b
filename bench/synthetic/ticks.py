"""Synthetic trade prints: one session's random walk (``walk_ticks``), many symbols'
sessions with every way a print's side is known (``make_ticks``), and storing them in
``ticks`` the way a test or a benchmark needs them (``insert_ticks``)."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pandas as pd
import psycopg


def make_ticks(
    symbol_ids: list[int],
    session_open: datetime,
    session_close: datetime,
    per_symbol: int,
    *,
    seed: int = 11,
) -> pd.DataFrame:
    """Random-walk prints inside [open, close): symbol_id, ts, trade_id, price, size, side,
    bid, ask. A third carry the venue side, a third a quote, a third neither (tick rule)."""
    rng = np.random.default_rng(seed)
    span_us = int((session_close - session_open).total_seconds() * 1e6)
    frames = []
    for n, symbol_id in enumerate(symbol_ids):
        offsets = np.sort(rng.integers(0, span_us, per_symbol))
        steps = rng.choice(np.array([-1, 0, 0, 1]), per_symbol)
        price = np.round(50.0 + 5 * n + np.cumsum(steps) * 0.01, 2)
        price = np.maximum(price, 1.0)
        kind = rng.integers(0, 3, per_symbol)
        side = np.where(kind == 0, rng.choice(np.array([1.0, -1.0]), per_symbol), np.nan)
        quoted = kind == 1
        frames.append(
            pd.DataFrame(
                {
                    "symbol_id": symbol_id,
                    "ts": pd.Timestamp(session_open) + pd.to_timedelta(offsets, unit="us"),
                    "trade_id": [f"{symbol_id}-{i}" for i in range(per_symbol)],
                    "price": price,
                    "size": rng.integers(1, 400, per_symbol).astype(float),
                    "side": side,
                    "bid": np.where(quoted, price - 0.01, np.nan),
                    "ask": np.where(quoted, price + 0.01, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def insert_ticks(conn: psycopg.Connection, ticks: pd.DataFrame) -> int:
    """COPY prints into `ticks` (seq from its sequence), creating the day partitions."""
    days = ticks["ts"].dt.tz_convert("UTC").dt.date
    conn.execute("select ensure_tick_partitions(%s, %s)", (days.min(), days.max()))
    frame = ticks.copy()
    frame["side"] = frame["side"].astype("Int64")
    buffer = io.StringIO()
    columns = ["symbol_id", "ts", "trade_id", "price", "size", "side", "bid", "ask"]
    frame[columns].to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f%z")
    with conn.cursor().copy(
        f"copy ticks ({', '.join(columns)}) from stdin with (format csv)"
    ) as copy:
        copy.write(buffer.getvalue())
    return len(frame)


# one XNYS session (EDT) for the session-only generator below
SESSION_OPEN = pd.Timestamp("2024-03-11 13:30", tz="UTC")
SESSION_MINUTES = 390


def walk_ticks(
    n: int, seed: int = 7, row_size: float = 0.01, *, venue_columns: bool = True
) -> pd.DataFrame:
    """One session of ``n`` time-sorted prints: a ±1-bin random walk with half zero ticks,
    so the tick rule's continuation is exercised. ts, price, size, and (``venue_columns``)
    side, bid and ask all unknown; without them it is the frame the tick loader gives for a
    venue without side or quote (``storage.tick_reads.TickColumns.profile_frame``)."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, SESSION_MINUTES * 60 * 10**9, n))
    steps = rng.choice(np.array([-1, 0, 0, 1], dtype=np.int64), n)
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(SESSION_OPEN.value + offsets, utc=True),
            "price": (10_000 + np.cumsum(steps)) * row_size,
            "size": rng.integers(1, 500, n).astype(np.float64),
        }
    )
    if venue_columns:
        frame["side"] = frame["bid"] = frame["ask"] = np.nan
    return frame
