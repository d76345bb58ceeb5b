"""``demo``: a seeded synthetic market that looks like a real one (docs/providers.md).

Not one shared random walk of candles: each symbol has its own
trade-by-trade path near a plausible price:

* a mid price that diffuses (realistic per-second volatility), is nudged by order flow and
  pulled weakly back to its anchor so a long demo stays plausible;
* a bid/ask quote around the mid (spread in ticks, persistent) and trades at the ask (buyer
  initiated) or at the bid (seller initiated), a few inside the spread — so the quote rule
  and the tick rule classify them meaningfully; ``Trade.bid``/``ask`` carry the quote;
* order-flow persistence (buyers follow buyers) and regime switching between quiet, normal
  and burst intensity (a Markov-modulated Poisson process: bursts and quiet spells);
* heavy-tailed sizes (round lots with a Pareto tail plus log-normal odd lots; fractional
  log-normal sizes for crypto);
* a U-shaped intensity over the symbol's exchange session (from the exchange calendar),
  a thin trickle outside it (so a demo started at night is not empty), flat for 24/7 markets.

``settings.demo_rate`` is the mean rate in trades/s per symbol during the session.
Live mode generates the seeded path in one-second slices from its start and releases each
print when the wall clock reaches its timestamp — real time, no backfill, and the same seed
and start give the same prints however the loop is scheduled. Bulk mode (benchmarks)
advances a simulated clock starting now as fast as the consumer pulls and yields columnar
``TradeBatch`` chunks. Both are reproducible from ``DEMO_SEED``.

A replayable run (``DEMO_START``, used by ``marketflow chaos``; docs/chaos.md): every start
generates the path from that fixed instant, so a trade's ``trade_id`` (``<start>-<n>``, n the
symbol's sequence number) is the same in every process, and re-sends everything since then;
storage keeps each (symbol, ts, trade_id) once. The provider appends what the consumer took,
as per-symbol sequence ranges, to a ledger file, and a control file simulates a dropped
connection: nothing is released for its duration, then the backlog follows in sequence
(``demo_run``).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analytics.sessions import session_bounds
from core.events import Trade
from core.timestamps import NS
from streaming.providers.base import Event, Provider, TradeBatch
from streaming.providers.demo_run import RunLog

if TYPE_CHECKING:
    from core.settings import Settings

DAY_NS = 86_400 * NS
OFF_HOURS = 0.05  # intensity multiplier outside the session (extended-hours trickle)
U_PEAK = 2.0  # u_shape at the open and the close (mean 1 over the session)
# regimes: (relative intensity, mean duration in seconds); normalised below so that the
# time-averaged multiplier is exactly 1 and DEMO_RATE is the mean rate
_RAW_REGIMES = ((0.25, 20.0), (1.0, 30.0), (4.0, 5.0))


def _normalised_regimes(raw: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    k = len(raw)
    dur = np.array([d for _, d in raw])
    # embedded jump chain: leave i for j != i in proportion to j's duration
    jump = np.array([[0.0 if i == j else dur[j] for j in range(k)] for i in range(k)])
    jump /= jump.sum(axis=1, keepdims=True)
    vals, vecs = np.linalg.eig(jump.T)
    visits = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    time_share = visits * dur / (visits * dur).sum()
    mean = float(sum(m * w for (m, _), w in zip(raw, time_share, strict=True)))
    return tuple((m / mean, d) for m, d in raw)


REGIMES = _normalised_regimes(_RAW_REGIMES)
LIVE_SLICE_NS = NS  # live mode generates the seeded path one second at a time


@dataclass(frozen=True)
class SymbolProfile:
    symbol: str
    price: float  # anchor
    tick: float
    market: str = "XNYS"
    timezone: str = "America/New_York"
    asset_type: str = "stock"
    vol_annual: float = 0.28
    spread_p: float = 0.7  # geometric parameter of the spread in ticks (mean 1/p)
    row_size: float = 0.01

    @property
    def crypto(self) -> bool:
        return self.market == "24/7"


_ANCHORS: dict[str, SymbolProfile] = {
    p.symbol: p
    for p in (
        SymbolProfile("AAPL", 229.0, 0.01),
        SymbolProfile("MSFT", 418.0, 0.01, vol_annual=0.24),
        SymbolProfile("NVDA", 141.0, 0.01, vol_annual=0.5),
        SymbolProfile("SPY", 592.0, 0.01, vol_annual=0.15, spread_p=0.9),
        SymbolProfile("QQQ", 505.0, 0.01, vol_annual=0.19, spread_p=0.9),
        SymbolProfile("TSLA", 338.0, 0.01, vol_annual=0.6, spread_p=0.5),
        SymbolProfile("AMZN", 201.0, 0.01, vol_annual=0.3),
        SymbolProfile("VOD.L", 71.5, 0.02, "XLON", "Europe/London", vol_annual=0.22),
        SymbolProfile("BP.L", 412.0, 0.05, "XLON", "Europe/London", vol_annual=0.25),
        SymbolProfile("BTCUSD", 95_000.0, 0.1, "24/7", "UTC", "crypto", 0.55, 0.3, 0.5),
        SymbolProfile("ETHUSDT", 3_300.0, 0.01, "24/7", "UTC", "crypto", 0.7, 0.4, 0.05),
        # the venues' usual names for the same pairs (Alpaca's ETH/USD is stored ETHUSD)
        SymbolProfile("ETHUSD", 3_300.0, 0.01, "24/7", "UTC", "crypto", 0.7, 0.4, 0.05),
        SymbolProfile("BTCUSDT", 95_000.0, 0.1, "24/7", "UTC", "crypto", 0.55, 0.3, 0.5),
        SymbolProfile("SOLUSD", 190.0, 0.01, "24/7", "UTC", "crypto", 0.9, 0.4, 0.01),
        SymbolProfile("ETHBTC", 0.035, 0.00001, "24/7", "UTC", "crypto", 0.6, 0.4, 0.00001),
    )
}


def symbol_profile(symbol: str) -> SymbolProfile:
    """The anchor profile of a symbol; unknown symbols get a stable, plausible one."""
    symbol = symbol.upper()
    if symbol in _ANCHORS:
        return _ANCHORS[symbol]
    h = zlib.crc32(symbol.encode())
    price = 20.0 + (h % 48_000) / 100.0
    if symbol.endswith(".L"):
        return SymbolProfile(symbol, price, 0.01, "XLON", "Europe/London")
    if symbol.endswith(("USD", "USDT", "BTC")) and len(symbol) > 5:
        return SymbolProfile(symbol, price, 0.01, "24/7", "UTC", "crypto", 0.7, 0.4)
    return SymbolProfile(symbol, price, 0.01)


def u_shape(frac: np.ndarray) -> np.ndarray:
    """Intraday intensity over the session (frac 0 = open, 1 = close): mean 1, U_PEAK at
    both ends and (3 - U_PEAK) / 2 at midday — the familiar U of equity volume."""
    x = 2.0 * np.clip(frac, 0.0, 1.0) - 1.0
    low = (3.0 - U_PEAK) / 2.0
    return low + (U_PEAK - low) * x * x


@lru_cache(maxsize=4096)
def session_ns(market: str, day_index: int) -> tuple[int, int] | None:
    """(open_ns, close_ns) of the session on UTC day ``day_index`` (days since the epoch),
    None when the market is closed (or the day is outside its calendar); from the shared
    calendar module, so the demo's session is the one analytics computes profiles for."""
    try:
        found = session_bounds(market, str(np.datetime64(day_index, "D")))
    except ValueError:  # outside the calendar's range, or a market it does not know
        return None
    if found is None:
        return None
    return int(found[0].value), int(found[1].value)


def intensity(market: str, ts_ns: np.ndarray) -> np.ndarray:
    """Session intensity multiplier at each timestamp (before regimes)."""
    out = np.full(ts_ns.shape, OFF_HOURS)
    if market == "24/7":
        out[:] = 1.0
        return out
    if ts_ns.size == 0:
        return out
    days = ts_ns // DAY_NS
    for day in np.unique(days):
        bounds = session_ns(market, int(day))
        if bounds is None:
            continue
        open_, close = bounds
        mask = (days == day) & (ts_ns >= open_) & (ts_ns < close)
        out[mask] = u_shape((ts_ns[mask] - open_) / (close - open_))
    return out


@dataclass
class Columns:
    ts_ns: np.ndarray
    price: np.ndarray
    size: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    seq0: int  # per-symbol trade counter of the first row


@dataclass
class SymbolPath:
    """The state of one symbol's simulated market; ``generate`` is pure given that state."""

    profile: SymbolProfile
    rate: float
    rng: np.random.Generator
    shaped: bool = True  # U shape, off-hours, regimes; False → flat Poisson (benchmarks)
    log_mid: float = field(init=False)
    spread: int = field(init=False, default=1)
    side: int = field(init=False, default=1)
    regime: int = field(init=False, default=1)
    count: int = field(init=False, default=0)
    regime_left_ns: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        # start near (not exactly at) the anchor so symbols with similar anchors still differ
        self.log_mid = math.log(self.profile.price) + self.rng.normal(0.0, 0.01)
        self.spread = int(self.rng.geometric(self.profile.spread_p))
        self.regime_left_ns = int(self.rng.exponential(REGIMES[self.regime][1]) * NS) + 1

    @property
    def sigma_per_sqrt_s(self) -> float:
        seconds = 365 * 86_400 if self.profile.crypto else 252 * 6.5 * 3600
        return self.profile.vol_annual / math.sqrt(seconds)

    def _next_regime(self) -> None:
        others = [i for i in range(len(REGIMES)) if i != self.regime]
        self.regime = int(self.rng.choice(others, p=self._switch_p(others)))
        self.regime_left_ns = int(self.rng.exponential(REGIMES[self.regime][1]) * NS) + 1

    @staticmethod
    def _switch_p(others: list[int]) -> np.ndarray:
        # enter a regime in proportion to its duration so the stationary mix of time is
        # proportional to durations and the time-averaged multiplier is 1
        w = np.array([REGIMES[i][1] for i in others])
        return w / w.sum()

    def _arrivals(self, t0: int, t1: int) -> np.ndarray:
        """Arrival times in [t0, t1) by thinning a Poisson process at the peak rate."""
        dt_s = (t1 - t0) / NS
        mult = REGIMES[self.regime][0] if self.shaped else 1.0
        peak = self.rate * mult * (U_PEAK if self.shaped else 1.0)
        n = int(self.rng.poisson(peak * dt_s))
        ts = np.sort(self.rng.integers(t0, t1, size=n, dtype=np.int64))
        if self.shaped and n:
            keep = self.rng.random(n) * U_PEAK < intensity(self.profile.market, ts)
            ts = ts[keep]
        return ts

    def generate(self, t0: int, t1: int) -> Columns:
        """Trades with timestamps in [t0, t1) (ns). Regimes are a piecewise-constant
        process with exponential durations that carries over between calls."""
        parts: list[np.ndarray] = []
        start = t0
        while start < t1:
            end = min(t1, start + self.regime_left_ns)
            parts.append(self._arrivals(start, end))
            self.regime_left_ns -= end - start
            if self.regime_left_ns <= 0:
                self._next_regime()
            start = end
        ts = np.concatenate(parts) if parts else np.empty(0, np.int64)
        return self._prints(ts)

    def _prints(self, ts: np.ndarray) -> Columns:
        n = ts.size
        p = self.profile
        seq0 = self.count
        self.count += n
        if n == 0:
            empty = np.empty(0)
            return Columns(ts, empty, empty, empty, empty, seq0)
        rng = self.rng
        # aggressor side with persistence: flips with probability 0.35 per trade
        flips = np.cumsum(rng.random(n) < 0.35)
        side = np.where(flips % 2 == 0, self.side, -self.side).astype(np.int8)
        self.side = int(side[-1])
        size = self._sizes(n)
        # mid: diffusion over elapsed time + impact of the flow + weak pull to the anchor
        prev = np.empty(n, np.int64)
        prev[0] = ts[0]
        prev[1:] = ts[:-1]
        dt_s = np.maximum((ts - prev) / NS, 1e-6)
        anchor = math.log(p.price)
        pull = -(self.log_mid - anchor) * min(1.0, (ts[-1] - ts[0]) / NS / (5 * 86_400)) / n
        impact = side * 0.04 * p.tick / p.price * np.sqrt(size / np.median(size))
        inc = self.sigma_per_sqrt_s * np.sqrt(dt_s) * rng.standard_normal(n) + pull
        log_mid = self.log_mid + np.cumsum(inc) + np.concatenate(([0.0], np.cumsum(impact)[:-1]))
        self.log_mid = float(log_mid[-1] + impact[-1])
        # spread in ticks: persistent (redrawn for ~5 % of prints)
        redraw = rng.random(n) < 0.05
        redraw[0] = False  # the first print continues the previous spread
        draws = rng.geometric(p.spread_p, size=n)
        draws[0] = self.spread
        idx = np.maximum.accumulate(np.where(redraw, np.arange(n), 0))
        spread = draws[idx].astype(np.int64)
        self.spread = int(spread[-1])
        mid_ticks = np.exp(log_mid) / p.tick
        bid_t = np.floor(mid_ticks - spread / 2.0 + 0.5).astype(np.int64)
        ask_t = bid_t + spread
        price_t = np.where(side > 0, ask_t, bid_t)
        # a few prints inside a wide spread (midpoint or hidden liquidity)
        inside = (spread >= 2) & (rng.random(n) < 0.07)
        if inside.any():
            offs = (rng.random(n) * (spread - 1)).astype(np.int64) + 1
            price_t = np.where(inside, bid_t + offs, price_t)
        decimals = max(0, -math.floor(math.log10(p.tick) + 1e-9))
        to_price = lambda t: np.round(t * p.tick, decimals)  # noqa: E731
        return Columns(ts, to_price(price_t), size, to_price(bid_t), to_price(ask_t), seq0)

    def _sizes(self, n: int) -> np.ndarray:
        rng = self.rng
        p = self.profile
        if p.crypto:
            median = 500.0 / p.price  # a typical crypto print is a few hundred dollars
            return np.maximum(np.round(median * rng.lognormal(0.0, 1.6, n), 4), 1e-4)
        round_lot = rng.random(n) < 0.45
        lots = np.minimum(np.floor(rng.pareto(1.4, n) + 1.0), 500.0) * 100.0
        odd = np.maximum(np.round(rng.lognormal(3.2, 1.0, n)), 1.0)
        return np.where(round_lot, lots, odd)


def _head(c: Columns, n: int) -> Columns:
    return Columns(c.ts_ns[:n], c.price[:n], c.size[:n], c.bid[:n], c.ask[:n], c.seq0)


def _tail(c: Columns, n: int) -> Columns:
    return Columns(c.ts_ns[n:], c.price[n:], c.size[n:], c.bid[n:], c.ask[n:], c.seq0 + n)


def _seed_for(seed: int, symbol: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(symbol.encode())])


class DemoProvider(Provider):
    name = "demo"

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        rate: float = 20.0,
        seed: int = 7,
        bulk: bool = False,
        shaped: bool | None = None,
        poll_interval: float = 0.05,
        bulk_chunk: int = 20_000,
        start_ns: int | None = None,
        limit: int | None = None,
        run_dir: Path | None = None,
    ) -> None:
        super().__init__(symbols)
        self.feed = "demo"  # synthetic prints, told apart from any venue's in ticks.feed
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError("DEMO_RATE must be a positive number of trades/s per symbol")
        self.rate = rate
        self.bulk = bulk
        self.poll_interval = poll_interval
        self.bulk_chunk = bulk_chunk
        self.start_ns = start_ns
        self.limit = limit  # stop after this many trades in total (bench, tests)
        shaped = (not bulk) if shaped is None else shaped
        self.paths = {
            s: SymbolPath(symbol_profile(s), rate, _seed_for(seed, s), shaped=shaped)
            for s in self.symbols
        }
        for s in self.symbols:
            prof = self.paths[s].profile
            self.symbol_info[s] = {
                "market": prof.market,
                "timezone": prof.timezone,
                "asset_type": prof.asset_type,
                "row_size": prof.row_size,
            }
        self._id_tag = format((start_ns or time.time_ns()) // NS, "x")
        self.produced = 0
        # a replayable run: the ledger of emitted ranges and the disconnect control file
        self.run_log = RunLog(run_dir, self._id_tag) if run_dir is not None else None

    def stream(self) -> AsyncIterator[Event | TradeBatch]:
        return self._bulk() if self.bulk else self._live()

    def _batch(self, symbol: str, cols: Columns) -> TradeBatch:
        trade_id = np.empty(cols.ts_ns.size, object)
        trade_id[:] = list(
            map(f"{self._id_tag}-{{}}".format, range(cols.seq0, cols.seq0 + cols.ts_ns.size))
        )
        return TradeBatch(
            symbol, cols.ts_ns, cols.price, cols.size, None, cols.bid, cols.ask, trade_id, "DEMO"
        )

    def _done(self) -> bool:
        return self.stopping or (self.limit is not None and self.produced >= self.limit)

    async def _live(self) -> AsyncIterator[Event | TradeBatch]:
        """The seeded path generated in fixed one-second slices from the start time and
        released as the wall clock passes each print: the same seed and start give the same
        prints however the event loop is scheduled, and no print is ever stamped ahead of
        the clock or behind the start (no backfill; a replayable run's start is in the past
        after a restart, so its prints since then are re-sent first)."""
        start = self.start_ns or time.time_ns()
        generated = start
        queues: dict[str, list[Columns]] = {s: [] for s in self.paths}
        while not self._done():
            if await self.sleep(self.poll_interval):
                break
            now = time.time_ns()
            while generated <= now:
                for symbol, path in self.paths.items():
                    queues[symbol].append(path.generate(generated, generated + LIVE_SLICE_NS))
                generated += LIVE_SLICE_NS
            log = self.run_log
            if log is not None and log.disconnected(now):
                self.counters["disconnects"] = log.disconnects
                continue  # the market moves on; the backlog follows the reconnect
            try:
                for symbol, queue in queues.items():
                    while queue:
                        cols = queue[0]
                        due = int(np.searchsorted(cols.ts_ns, now, side="right"))
                        if due:
                            for event in self._release(symbol, cols, due):
                                yield event
                            if log is not None:  # the consumer took them: it asked for more
                                log.took(symbol, cols.seq0, cols.seq0 + due)
                        if due < cols.ts_ns.size:
                            queue[0] = _tail(cols, due)
                            break
                        queue.pop(0)
            finally:
                if log is not None:
                    log.write()
        if self.run_log is not None:
            self.run_log.close()

    def _release(self, symbol: str, cols: Columns, n: int) -> list[Event | TradeBatch]:
        self.produced += n
        head = _head(cols, n)
        if n > 256:  # a burst or a high rate: columns are cheaper
            return [self._batch(symbol, head)]
        return [
            Trade(
                symbol,
                datetime.fromtimestamp(int(head.ts_ns[i]) / NS, tz=UTC),
                float(head.price[i]),
                float(head.size[i]),
                trade_id=f"{self._id_tag}-{head.seq0 + i}",
                exchange="DEMO",
                bid=float(head.bid[i]),
                ask=float(head.ask[i]),
            )
            for i in range(n)
        ]

    async def _bulk(self) -> AsyncIterator[Event | TradeBatch]:
        clock = self.start_ns or time.time_ns()
        span = int(self.bulk_chunk / self.rate * NS)  # ~bulk_chunk trades per symbol
        while not self._done():
            for symbol, path in self.paths.items():
                cols = path.generate(clock, clock + span)
                self.produced += cols.ts_ns.size
                yield self._batch(symbol, cols)
            clock += span


def run_prints(
    symbol: str, *, rate: float, seed: int, start_ns: int, count: int, shaped: bool = False
) -> Columns:
    """The first ``count`` prints of ``symbol`` in a replayable run that started at
    ``start_ns``, generated in the slices live mode uses: what every process emitted."""
    path = SymbolPath(symbol_profile(symbol), rate, _seed_for(seed, symbol.upper()), shaped=shaped)
    parts: list[Columns] = []
    total, t, limit = 0, start_ns, max(time.time_ns(), start_ns)
    while total < count and t <= limit:
        cols = path.generate(t, t + LIVE_SLICE_NS)
        parts.append(cols)
        total += cols.ts_ns.size
        t += LIVE_SLICE_NS

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in parts] or [np.empty(0)])

    cols = Columns(
        joined("ts_ns"), joined("price"), joined("size"), joined("bid"), joined("ask"), 0
    )
    return _head(cols, count)


def build(settings: Settings, symbols: Sequence[str]) -> DemoProvider:
    if settings.demo_start is None:
        return DemoProvider(
            symbols,
            rate=settings.demo_rate,
            seed=settings.demo_seed,
            shaped=not settings.demo_steady,
        )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return DemoProvider(
        symbols,
        rate=settings.demo_rate,
        seed=settings.demo_seed,
        shaped=not settings.demo_steady,
        start_ns=int(settings.demo_start * NS),
        run_dir=settings.state_dir,
    )
