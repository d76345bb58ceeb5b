"""``marketflow profile``: print a symbol's volume profile as a terminal histogram.

The profile is computed from the stored ticks with the same analytics the Dagster assets
use (``analytics.pipeline``), or read back from the stored ``volume_profile`` rows
(``--source stored``) to look at what the assets wrote. Bins are printed high to low with
the POC, the value area and the LVN/HVN nodes marked; times are in the market's timezone.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analytics.profile import ProfileMetrics

HELP = "print a symbol's volume profile: histogram with POC, value area, LVN/HVN"

HORIZONS = ("session", "1m", "composite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", required=True, help="symbol, e.g. AAPL or ETHUSDT")
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        help="session date YYYY-MM-DD (default: the day of the symbol's last tick)",
    )
    parser.add_argument(
        "--horizon",
        choices=HORIZONS,
        default="session",
        help="session: the session so far (default); 1m: one minute; composite: last N sessions",
    )
    parser.add_argument(
        "--minute",
        type=lambda text: time.fromisoformat(text),
        help="HH:MM in the market's timezone: the minute for 1m (default: the last traded "
        "minute), or where a session profile stops",
    )
    parser.add_argument(
        "--sessions", type=int, default=5, help="sessions in a composite (default 5)"
    )
    parser.add_argument(
        "--method", choices=("single", "dual"), default="single", help="value-area method"
    )
    parser.add_argument(
        "--source",
        choices=("ticks", "stored"),
        default="ticks",
        help="compute from ticks (default) or read the stored volume_profile rows",
    )
    parser.add_argument("--rows", type=int, default=40, help="at most this many printed rows")
    parser.add_argument("--width", type=int, default=40, help="bar width in characters")


# --- the view and its rendering (pure) ---------------------------------------------------


@dataclass(frozen=True)
class ProfileView:
    """One profile ready to print: dense bins low → high and their metrics."""

    symbol: str
    market: str
    timezone: str
    horizon: str
    title: str  # e.g. "2024-03-11 09:30–16:00 EDT, up to 10:15"
    row_size: float
    first_bin: int
    volume: list[float]  # per bin from first_bin upward, empty bins included
    buy: list[float]
    trades: int
    metrics: ProfileMetrics


def _in_nodes(price_lo: float, price_hi: float, nodes: list[dict[str, float]]) -> bool:
    return any(n["low"] <= price_hi and n["high"] >= price_lo for n in nodes)


def render(view: ProfileView, *, rows: int = 40, width: int = 40) -> str:
    """The histogram: one line per bin (or per group of bins when there are too many)."""
    from analytics.bins import bin_price, row_decimals

    m = view.metrics
    decimals = row_decimals(view.row_size)
    n_bins = len(view.volume)
    group = max(1, math.ceil(n_bins / max(rows, 1)))
    lines = [
        f"{view.symbol} · {view.horizon} profile · {view.market} ({view.timezone}) · {view.title}",
        f"row {view.row_size:g}"
        + (f" (1 line = {group} rows)" if group > 1 else "")
        + f" · volume {m.total_volume:,.6g} · trades {view.trades:,}"
        + f" · POC {m.poc:.{decimals}f} · VA {m.val:.{decimals}f}–{m.vah:.{decimals}f}"
        + f" ({m.value_area_method})",
    ]
    sums = []
    for start in range(0, n_bins, group):
        stop = min(start + group, n_bins)
        sums.append((start, stop, sum(view.volume[start:stop]), sum(view.buy[start:stop])))
    top = max((s[2] for s in sums), default=0.0) or 1.0

    def price_text(price: float, extra: int = 0) -> str:
        text = f"{price:.{decimals + extra}f}"
        # a node's centre may fall between two bins: one more digit, only when needed
        return text[:-1] if extra and text.endswith("0") else text

    label_width = max(len(price_text(p)) for p in (m.val, m.vah, m.poc))
    if group > 1:
        label_width = 2 * label_width + 1
    for start, stop, volume, buy in reversed(sums):
        low = float(bin_price(view.first_bin + start, view.row_size))
        high = float(bin_price(view.first_bin + stop - 1, view.row_size))
        in_va = high >= m.val and low <= m.vah
        bar = ("█" if in_va else "░") * round(width * volume / top)
        marks = []
        if low <= m.poc <= high:
            marks.append("◆ POC")
        if low <= m.vah <= high:
            marks.append("VAH")
        if low <= m.val <= high:
            marks.append("VAL")
        if _in_nodes(low, high, m.hvns):
            marks.append("HVN")
        if _in_nodes(low, high, m.lvns):
            marks.append("LVN")
        share = f"{100 * buy / volume:3.0f}%" if volume > 0 else "   -"
        label = price_text(high) if group == 1 else f"{price_text(low)}–{price_text(high)}"
        lines.append(
            f"{label:>{label_width}} │{bar:<{width}} {volume:>12,.6g} "
            f"buy {share}  {' '.join(marks)}".rstrip()
        )
    for name, nodes in (("HVN", m.hvns), ("LVN", m.lvns)):
        if nodes:
            shown = ", ".join(
                f"{price_text(n['price'], 1)} ({price_text(n['low'])}–{price_text(n['high'])})"
                for n in nodes[:8]
            )
            more = f" … +{len(nodes) - 8}" if len(nodes) > 8 else ""
            lines.append(f"{name}s: {shown}{more}")
    lines.append("█ value area  ░ outside  · buy % = buy-aggressor share of the bin's volume")
    return "\n".join(lines)


# --- reading and computing (I/O) ----------------------------------------------------------


@dataclass(frozen=True)
class _Symbol:
    id: int
    symbol: str
    market: str
    timezone: str
    row_size: float
    footprint: dict  # its footprint_config row (docs/semantics.md); empty: the defaults

    def config(self):
        from analytics.footprint_config import FootprintConfig

        try:
            return FootprintConfig.from_row(self.footprint)
        except ValueError as error:
            raise ProfileError(f"{self.symbol}: {error}") from None


class ProfileError(RuntimeError):
    """A user-facing problem (unknown symbol, no session, no data): printed, exit 1."""


def _load_symbol(conn, symbol: str) -> _Symbol:
    from storage.queries import find_symbol, footprint_configs, known_symbols

    found = find_symbol(conn, symbol)
    if found is None:
        known = known_symbols(conn)
        raise ProfileError(f"unknown symbol {symbol!r}; known: {', '.join(known) or 'none'}")
    config = footprint_configs(conn, [found.id]).get(found.id, {})
    return _Symbol(found.id, found.symbol, found.market, found.timezone, found.row_size, config)


def _last_tick_day(conn, sym: _Symbol, tz: str) -> date:
    """The session day of the symbol's last print: its date in the market's timezone
    (an after-hours print at 19:30 New York is already the next UTC day), or the last
    session before it when that date has none."""
    from zoneinfo import ZoneInfo

    from analytics.sessions import session_bounds
    from storage.queries import last_tick_time

    last = last_tick_time(conn, sym.id)
    if last is None:
        raise ProfileError(
            f"no ticks stored for {sym.symbol}; ingest or replay some first "
            "(`marketflow ingest` / `marketflow replay FILE`)"
        )
    # timestamptz comes back in the connection's TimeZone, whatever it is: convert
    day = last.astimezone(ZoneInfo(tz)).date()
    for back in range(10):  # past a weekend plus holidays
        candidate = day - timedelta(days=back)
        if session_bounds(sym.market, candidate) is not None:
            return candidate
    return day


def _session_rows(conn, sym: _Symbol, day: date, source: str, method: str):
    """volume_profile-shaped rows of one session (computed from ticks, or stored)."""

    from analytics.pipeline import compute_session
    from analytics.sessions import session_bounds
    from storage.queries import candles_window, stored_profile
    from storage.tick_reads import tick_columns

    bounds = session_bounds(sym.market, day)
    if bounds is None:
        return None, None
    open_, close = bounds
    if source == "stored":
        return stored_profile(conn, sym.id, open_.to_pydatetime(), close.to_pydatetime()), bounds
    ticks = tick_columns(conn, open_.to_pydatetime(), close.to_pydatetime(), sym.id).frame()
    candles = candles_window(conn, sym.id, open_.to_pydatetime(), close.to_pydatetime())
    frames = compute_session(
        ticks, sym.row_size, open_, close, method=method, candles=candles, config=sym.config()
    )
    return frames.volume_profile, bounds


def _dense(rows, row_size: float):
    """(first_bin, volume list, buy list) of rows summed by bin, empty bins included."""
    import numpy as np

    from analytics.bins import bin_index

    bins = bin_index(rows["price_level"].to_numpy(np.float64), row_size)
    first = int(bins.min())
    volume = np.bincount(bins - first, weights=rows["total_volume"].to_numpy(np.float64))
    buy = np.bincount(bins - first, weights=rows["buy_volume"].to_numpy(np.float64))
    return first, volume.tolist(), buy.tolist()


def build_view(conn, args: argparse.Namespace) -> ProfileView:
    import pandas as pd

    from analytics.composite import composite_metrics
    from analytics.profile import ProfileMetrics
    from analytics.sessions import market_timezone, session_bounds

    sym = _load_symbol(conn, args.symbol)
    tz = market_timezone(sym.market) if sym.market else sym.timezone
    day = args.date or _last_tick_day(conn, sym, tz)
    bounds = session_bounds(sym.market, day)
    if bounds is None:
        raise ProfileError(
            f"{sym.market} has no session on {day} (weekend or holiday); try another --date"
        )

    def local(ts: pd.Timestamp) -> str:
        return ts.tz_convert(tz).strftime("%H:%M")

    zone = bounds[0].tz_convert(tz).strftime("%Z")
    close = bounds[1].tz_convert(tz)
    # a session ending at the next midnight (24/7: the UTC day) reads as 24:00
    close_text = "24:00" if close.date() > day and close.time() == time(0) else local(close)
    title = f"{day} {local(bounds[0])}–{close_text} {zone}"

    if args.horizon == "composite":
        parts: list[pd.DataFrame] = []
        days: list[date] = []
        probe = day
        for _ in range(max(args.sessions, 1) * 4 + 7):  # skip weekends and holidays
            if len(days) == args.sessions:
                break
            rows, _ = _session_rows(conn, sym, probe, args.source, args.method)
            if rows is not None and not rows.empty:
                parts.append(rows.assign(session_date=probe))
                days.append(probe)
            probe = probe - pd.Timedelta(days=1)
        if not parts:
            raise ProfileError(f"no profile data for {sym.symbol} in the sessions up to {day}")
        rows = pd.concat(parts, ignore_index=True)
        composite = composite_metrics(
            rows, sym.row_size, method=args.method, sessions=args.sessions, config=sym.config()
        )
        if composite.empty:
            raise ProfileError(f"no traded volume for {sym.symbol} in the sessions up to {day}")
        row = composite.iloc[0]
        metrics = ProfileMetrics(
            poc=row.poc,
            vah=row.vah,
            val=row.val,
            total_volume=row.total_volume,
            lvns=row.lvns,
            hvns=row.hvns,
            value_area_method=row.value_area_method,
        )
        title = f"{len(days)} sessions {min(days)} … {max(days)} ({zone})"
        return _view(sym, tz, "composite", title, rows, args.method, metrics)

    rows, _ = _session_rows(conn, sym, day, args.source, args.method)
    if rows is None or rows.empty:
        raise ProfileError(f"no profile data for {sym.symbol} in the {day} session")
    if args.minute is not None:
        chosen = pd.Timestamp(datetime.combine(day, args.minute), tz=tz).tz_convert("UTC")
    else:
        chosen = rows["bucket"].max()
    if args.horizon == "1m":
        rows = rows[rows["bucket"] == chosen]
        title += f", minute {local(chosen)}"
    else:
        rows = rows[rows["bucket"] <= chosen]
        title += f", up to {local(chosen + pd.Timedelta(minutes=1))}"
    if rows.empty:
        raise ProfileError(f"no trades for {sym.symbol} at {local(chosen)} {zone} on {day}")
    return _view(sym, tz, args.horizon, title, rows, args.method)


def _view(sym: _Symbol, tz: str, horizon: str, title: str, rows, method: str, metrics=None):
    """The view of volume_profile-shaped ``rows``; metrics computed from them unless given."""
    from analytics.nodes import node_rule
    from analytics.profile import metrics_of

    first, volume, buy = _dense(rows, sym.row_size)
    if metrics is None:
        metrics = metrics_of(volume, first, sym.row_size, method, node_rule(sym.config()))
    if metrics is None:
        raise ProfileError(f"no traded volume for {sym.symbol} in {title}")
    trades = int(rows["trade_count"].sum())
    return ProfileView(
        sym.symbol,
        sym.market,
        tz,
        horizon,
        title,
        sym.row_size,
        first,
        volume,
        buy,
        trades,
        metrics,
    )


def run(args: argparse.Namespace) -> int:
    import psycopg

    from core.service_urls import ServiceError, redact_url, resolve_urls
    from core.settings import get_settings
    from storage.db import connect

    try:
        urls = resolve_urls(get_settings())
    except ServiceError as exc:
        print(f"cannot read profiles: {exc}")
        return 1
    try:
        with connect(urls.database_url, autocommit=True, application_name="profile") as conn:
            view = build_view(conn, args)
    except ProfileError as exc:
        print(exc)
        return 1
    except psycopg.OperationalError as exc:
        print(
            f"cannot reach PostgreSQL at {redact_url(urls.database_url)} "
            f"({exc.__class__.__name__}); start it with `marketflow services` or check "
            "DATABASE_URL"
        )
        return 1
    except ValueError as exc:  # e.g. a date outside the exchange calendar's range
        print(f"cannot build the profile: {exc}")
        return 1
    print(render(view, rows=args.rows, width=args.width))
    return 0
