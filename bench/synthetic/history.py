"""Synthetic history for tests and the benchmark: candles, per-minute profile levels and
order flow with the shapes the stored tables have, generated with arrays per symbol.

Prices follow a random walk with regimes (drifts that last an hour or so), so states,
aggression and SMA crossings all change through a day; profile levels trail the price
(the session's running mean ± a spread), order-flow pressure follows the last returns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from backtest.footprint import FootprintHistory
from backtest.history import Levels, SymbolHistory

F = npt.NDArray[np.float64]


def session_minutes(days: int, start: float, per_day: int = 390, open_s: float = 52_200.0) -> F:
    """Minute starts of ``days`` consecutive sessions of ``per_day`` minutes from ``start``
    (UTC midnight, epoch s), each opening ``open_s`` seconds after midnight (14:30 UTC)."""
    day = start + 86_400.0 * np.arange(days)
    return (day[:, None] + open_s + 60.0 * np.arange(per_day)[None, :]).ravel()


def history(
    symbol_id: int,
    symbol: str,
    ts: F,
    seed: int = 0,
    market: str = "24/7",
    asset_type: str = "crypto",
    price: float = 100.0,
) -> SymbolHistory:
    rng = np.random.default_rng(seed)
    n = len(ts)
    regime = np.repeat(rng.normal(0, 0.0004, n // 60 + 1), 60)[:n]
    ret = regime + rng.normal(0, 0.0012, n)
    close = price * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[price], close[:-1]]) * (1 + rng.normal(0, 0.0002, n))
    wick = np.abs(rng.normal(0, 0.0008, n)) * close
    high = np.maximum(open_, close) + wick
    low = np.minimum(open_, close) - wick * rng.uniform(0.5, 1.5, n)
    volume = rng.gamma(2.0, 500.0, n)
    # session levels: the running mean of the day's closes ± a spread that widens with it
    day = np.floor(ts / 86_400.0)
    starts = np.flatnonzero(np.concatenate([[True], day[1:] != day[:-1]]))
    counts = np.diff(np.concatenate([starts, [n]]))
    cs = np.cumsum(close)
    before = np.repeat(np.concatenate([[0.0], cs[starts[1:] - 1]]), counts)
    k = np.arange(n) - np.repeat(starts, counts) + 1
    poc = np.asarray((cs - before) / k, dtype=np.float64)
    spread = close * (0.002 + 0.004 * np.minimum(k / 240.0, 1.0))
    session = Levels(ts.copy(), poc, poc + spread, poc - spread)
    slow = np.asarray(np.convolve(close, np.ones(240) / 240, mode="full")[:n], dtype=np.float64)
    slow[:240] = close[:240]
    composite = Levels(ts.copy(), slow, slow * 1.01, slow * 0.99)
    push = np.tanh(ret / 0.002)
    buy = np.clip(50 + 18 * push + rng.normal(0, 6, n), 0, 100)
    sell = 100 - buy
    cvd = np.cumsum((buy - sell) / 100 * volume)
    return SymbolHistory(
        symbol_id=symbol_id,
        symbol=symbol,
        market=market,
        asset_type=asset_type,
        ts=ts,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        vwap=(high + low + close) / 3,
        session=session,
        composite=composite,
        flow_bucket=ts.copy(),
        buy_pressure=buy,
        sell_pressure=sell,
        cvd=cvd,
    )


def footprint(ts: F, close: F, poc: F, seed: int = 0) -> FootprintHistory:
    """Footprint rows beside a history: a session VWAP row per minute (the running mean
    close, sd 0.2 % of it), a stack on a quarter of the bars per side (1–5 rows) and a big
    print on about one bar in eight, on a random side (unclassified now and then)."""
    rng = np.random.default_rng(seed + 1000)
    n = len(ts)
    stack_bucket, stack_len = [], []
    for _ in range(2):
        has = rng.random(n) < 0.25
        stack_bucket.append(ts[has].copy())
        stack_len.append(rng.integers(1, 6, int(has.sum())).astype(np.float64))
    bar = rng.random(n) < 0.12
    when = ts[bar] + rng.integers(0, 60, int(bar.sum()))
    side = rng.integers(0, 3, int(bar.sum()))
    price, size = close[bar], rng.uniform(500, 2000, int(bar.sum()))
    return FootprintHistory(
        vwap_bucket=ts.copy(),
        vwap=poc.copy(),
        vwap_sd=poc * 0.002,
        stack_bucket=(stack_bucket[0], stack_bucket[1]),
        stack_len=(stack_len[0], stack_len[1]),
        print_ts=tuple(when[side == k] for k in range(3)),
        print_price=tuple(price[side == k] for k in range(3)),
        print_size=tuple(size[side == k] for k in range(3)),
    )


def truncated(h: SymbolHistory, last: float) -> SymbolHistory:
    """``h`` as it stood at ``last``: every row stamped after it dropped."""

    def cut(levels: Levels) -> Levels:
        k = int(np.searchsorted(levels.bucket, last, side="right"))
        return Levels(levels.bucket[:k], levels.poc[:k], levels.vah[:k], levels.val[:k])

    def upto(values: F, by: F) -> F:
        return values[: int(np.searchsorted(by, last, side="right"))]

    fh = h.footprint
    fp = FootprintHistory(
        upto(fh.vwap_bucket, fh.vwap_bucket),
        upto(fh.vwap, fh.vwap_bucket),
        upto(fh.vwap_sd, fh.vwap_bucket),
        (
            upto(fh.stack_bucket[0], fh.stack_bucket[0]),
            upto(fh.stack_bucket[1], fh.stack_bucket[1]),
        ),
        (upto(fh.stack_len[0], fh.stack_bucket[0]), upto(fh.stack_len[1], fh.stack_bucket[1])),
        tuple(upto(fh.print_ts[k], fh.print_ts[k]) for k in range(3)),  # type: ignore[arg-type]
        tuple(upto(fh.print_price[k], fh.print_ts[k]) for k in range(3)),  # type: ignore[arg-type]
        tuple(upto(fh.print_size[k], fh.print_ts[k]) for k in range(3)),  # type: ignore[arg-type]
    )
    c = int(np.searchsorted(h.ts, last, side="right"))
    f = int(np.searchsorted(h.flow_bucket, last, side="right"))
    return SymbolHistory(
        h.symbol_id,
        h.symbol,
        h.market,
        h.asset_type,
        h.ts[:c],
        h.open[:c],
        h.high[:c],
        h.low[:c],
        h.close[:c],
        h.volume[:c],
        h.vwap[:c],
        cut(h.session),
        cut(h.composite),
        h.flow_bucket[:f],
        h.buy_pressure[:f],
        h.sell_pressure[:f],
        h.cvd[:f],
        fp,
    )
