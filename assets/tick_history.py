"""`tick_history`: the venue's trades of a day into `ticks`, upstream of `candles_1m` and the
profiles, so a Dagster backfill of a date range fetches, stores and profiles those days as
one run (docs/history.md).

Thin over `streaming.history`: the run config names the symbols (default `SYMBOLS`) and the
equity feed (default `ALPACA_FEED`); each day is fetched in order, resuming where an earlier
run stopped, and reports its numbers. A one-day run's materialization carries that day's
numbers; a range run records each day's as an observation of its partition and totals
them on the materialization. The two checks run inside the materialization.
"""

from datetime import date
from typing import Any

import dagster as dg
from pydantic import Field

from assets.market_data import TICK_HISTORY
from assets.partitions import daily_partitions, window_days
from assets.resources import AlpacaResource, PostgresResource
from core.contracts import EQUITY_FEEDS
from streaming.history.report import DayReport

SYMBOLS_SERVED = "symbols_served"
ONE_EQUITY_FEED = "one_equity_feed_per_symbol"


class TickHistoryConfig(dg.Config):
    symbols: list[str] = Field(
        default_factory=list,
        description="Symbols as Alpaca names them (BTC/USD or BTCUSD); empty = SYMBOLS.",
    )
    feed: str | None = Field(
        default=None, description="Equity feed, iex or sip; unset = ALPACA_FEED."
    )


class HistoryProgress:
    """What a run tells about its progress beyond the Dagster log: nothing by default; the
    CLI binds one that draws a progress bar (a resource, so the asset's code path stays
    one)."""

    def start(self, days: list[date], symbols: list[str]) -> None:
        """The run will fetch ``days`` × ``symbols``."""

    def advance(self, symbols_done: int, rows: int) -> None:
        """``symbols_done`` (symbol, day) pairs finished and ``rows`` stored since the last
        call."""

    def day_done(self, report: DayReport) -> None:
        """A day is stored."""

    def finish(self) -> None:
        """The run ended (successfully or not)."""


# a symbol's ticks of two equity feeds in the window (docs/history.md)
ONE_FEED_SQL = """
select s.symbol, array_agg(distinct t.feed order by t.feed)
from ticks as t
join symbols as s on s.id = t.symbol_id
where t.ts >= %(start)s and t.ts < %(end)s and t.feed = any(%(feeds)s)
group by s.symbol
having count(distinct t.feed) > 1
order by s.symbol
"""


def totals(reports: list[DayReport]) -> dict[str, Any]:
    """A range run's materialization metadata: the sums, and one line per day."""
    keys = ("trades_received", "trades_stored", "duplicates", "rejected", "pages", "requests")
    out: dict[str, Any] = {k: sum(r.metadata()[k] for r in reports) for k in keys}
    out["rate_limit_waits"] = sum(r.rest.rate_limit_waits for r in reports)
    out["days"] = dg.MetadataValue.json(
        {r.day.isoformat(): {k: r.metadata()[k] for k in keys} for r in reports}
    )
    refused: dict[str, str] = {}
    for report in reports:
        refused.update(report.refused)
    out["refused"] = dg.MetadataValue.json(refused)
    return out


def _metadata(report: DayReport) -> dict[str, Any]:
    return {
        k: dg.MetadataValue.json(v) if isinstance(v, dict) else v
        for k, v in report.metadata().items()
    }


@dg.asset(
    key=TICK_HISTORY,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="market_data",
    kinds={"alpaca", "postgres"},
    check_specs=[
        dg.AssetCheckSpec(
            SYMBOLS_SERVED,
            asset=TICK_HISTORY,
            description="Every requested symbol was fetched: none refused (another equity "
            "feed fixed for it, or a name Alpaca rejects).",
        ),
        dg.AssetCheckSpec(
            ONE_EQUITY_FEED,
            asset=TICK_HISTORY,
            description="No symbol has ticks of two equity feeds (iex and sip) in the window.",
        ),
    ],
    description=(
        "Alpaca's trades of each UTC day into `ticks` (source backfill; the feed recorded), "
        "resumable and idempotent: a re-run stores nothing twice. Run config: symbols "
        "(default SYMBOLS), feed (default ALPACA_FEED). See docs/history.md."
    ),
)
def tick_history(
    context: dg.AssetExecutionContext,
    config: TickHistoryConfig,
    postgres: PostgresResource,
    alpaca: AlpacaResource,
    history_progress: dg.ResourceParam[HistoryProgress],
) -> dg.MaterializeResult:
    from core.settings import get_settings
    from streaming.history.session import HistorySession

    window = context.partition_time_window
    days = window_days(window.start, window.end)
    names = config.symbols or get_settings().symbols
    feed = (config.feed or alpaca.equity_feed()).strip().lower()
    if feed not in EQUITY_FEEDS:
        raise dg.Failure(f"feed {feed!r} is not an Alpaca equity feed: {', '.join(EQUITY_FEEDS)}")
    progress = history_progress
    client = alpaca.client()
    reports: list[DayReport] = []
    try:
        with HistorySession(
            postgres.url(), client, names=names, feed=feed, on_progress=progress.advance
        ) as session:
            progress.start(days, [s.symbol for s in session.resolved.symbols])
            for day in days:
                report = session.day(day)
                reports.append(report)
                progress.day_done(report)
                context.log.info(
                    "history %s: %d trades stored (%d received, %d duplicates, %d rejected%s)",
                    day,
                    report.stored,
                    report.received,
                    report.duplicates,
                    report.rejects.total,
                    f"; refused {sorted(report.refused)}" if report.refused else "",
                )
                if len(days) > 1:
                    context.log_event(
                        dg.AssetObservation(
                            TICK_HISTORY, partition=day.isoformat(), metadata=_metadata(report)
                        )
                    )
    finally:
        progress.finish()
        client.close()
    with postgres.connect(read_only=True) as conn:
        mixed = conn.execute(
            ONE_FEED_SQL, {"start": window.start, "end": window.end, "feeds": list(EQUITY_FEEDS)}
        ).fetchall()
    refused = {s: why for r in reports for s, why in r.refused.items()}
    checks = [
        dg.AssetCheckResult(
            check_name=SYMBOLS_SERVED,
            passed=not refused,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"refused": dg.MetadataValue.json(refused)},
        ),
        dg.AssetCheckResult(
            check_name=ONE_EQUITY_FEED,
            passed=not mixed,
            metadata={"mixed": dg.MetadataValue.json({s: list(f) for s, f in mixed})},
        ),
    ]
    metadata = _metadata(reports[0]) if len(reports) == 1 else totals(reports)
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
