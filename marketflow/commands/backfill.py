"""``marketflow backfill``: a date range of the venue's trades, then the candles and profiles of
those days, through Dagster: the run of the ``tick_history`` asset and its downstream
assets that a backfill from the UI would launch, drawn as a progress bar (docs/history.md).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streaming.history.report import DayReport

HELP = "fetch a date range of trades from the venue (Alpaca), then candles and profiles"
PROVIDERS = ("alpaca",)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider", choices=PROVIDERS, default="alpaca", help="the venue (default alpaca)"
    )
    parser.add_argument(
        "--symbols",
        metavar="S1,S2",
        help="comma-separated, as the venue names them (AAPL, BTC/USD); default SYMBOLS",
    )
    parser.add_argument(
        "--from", dest="first", type=_day, required=True, metavar="D1", help="first UTC day"
    )
    parser.add_argument(
        "--to", dest="last", type=_day, metavar="D2", help="last UTC day, inclusive (default D1)"
    )
    parser.add_argument("--feed", choices=("iex", "sip"), help="equity feed (default ALPACA_FEED)")
    parser.add_argument(
        "--no-profiles",
        action="store_true",
        help="store the trades only; candles and profiles are left for later runs",
    )


def summary_lines(reports: list[DayReport], elapsed_s: float) -> list[str]:
    if not reports:
        return ["backfill: no day was fetched"]
    stored = sum(r.stored for r in reports)
    lines = [
        f"{'day':<12}{'stored':>12}{'received':>12}{'duplicates':>12}{'rejected':>10}"
        f"{'requests':>10}{'429 waits':>10}"
    ]
    for r in reports:
        lines.append(
            f"{r.day.isoformat():<12}{r.stored:>12,}{r.received:>12,}{r.duplicates:>12,}"
            f"{r.rejects.total:>10,}{r.rest.requests:>10,}{r.rest.rate_limit_waits:>10,}"
        )
    rate = stored / elapsed_s if elapsed_s > 0 else 0.0
    lines.append(
        f"{len(reports)} days, {stored:,} trades stored in {elapsed_s:.1f} s ({rate:,.0f}/s)"
    )
    rejects: dict[str, int] = {}
    refused: dict[str, str] = {}
    flagged: dict[str, int] = {}
    for r in reports:
        for reason, count in r.rejects.counts.items():
            rejects[reason] = rejects.get(reason, 0) + count
        for update, count in r.flagged.items():
            flagged[update] = flagged.get(update, 0) + count
        refused.update(r.refused)
    if rejects:
        lines.append("rejected: " + ", ".join(f"{k} {v:,}" for k, v in sorted(rejects.items())))
    if flagged:
        lines.append(
            "skipped as the venue flagged them: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(flagged.items()))
        )
    for symbol, why in sorted(refused.items()):
        lines.append(f"refused {symbol}: {why}")
    return lines


def run(args: argparse.Namespace) -> int:
    import logging

    log = logging.getLogger("marketflow.backfill")
    last = args.last or args.first
    today = datetime.now(UTC).date()
    if last < args.first:
        log.error("--to %s is before --from %s", last, args.first)
        return 2
    if last > today:
        log.error("--to %s is in the future (today is %s UTC)", last, today)
        return 2
    from marketflow.backfill_run import TerminalProgress, launch

    symbols = [s for s in (args.symbols or "").split(",") if s.strip()]
    progress = TerminalProgress()
    t0 = time.monotonic()
    outcome = launch(args.first, last, symbols, args.feed, progress, profiles=not args.no_profiles)
    for line in summary_lines(progress.reports, time.monotonic() - t0):
        print(line)
    for line in outcome.lines:
        print(line)
    return outcome.exit_code
