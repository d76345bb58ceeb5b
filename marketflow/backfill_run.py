"""The Dagster run behind ``marketflow backfill``: ``tick_history`` for a partition range, then
``candles_1m`` and the profile assets with their checks, in one in-process run (the run a
backfill of that range from the UI launches; docs/history.md).

The run is recorded in the Dagster instance of ``DAGSTER_HOME`` when it is set (so the UI
shows it, as with ``dg launch``), else in a temporary one (the tables are written all the
same).
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import dagster as dg

from assets.tick_history import HistoryProgress

if TYPE_CHECKING:
    from streaming.history.report import DayReport

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@dataclass
class Outcome:
    exit_code: int
    lines: list[str] = field(default_factory=list)


class TerminalProgress(HistoryProgress):
    """The ``tick_history`` asset's progress as a bar: (symbol, day) pairs done, trades/s."""

    def __init__(self) -> None:
        self.reports: list[DayReport] = []
        self.rows = 0
        self._bar: Any = None
        self._started = time.monotonic()
        self._shown = 0.0

    def start(self, days: list[date], symbols: list[str]) -> None:
        from tqdm import tqdm

        self._started = time.monotonic()
        self._bar = tqdm(
            total=len(days) * len(symbols), unit="symbol-day", desc="backfill", file=sys.stderr
        )

    def advance(self, symbols_done: int, rows: int) -> None:
        self.rows += rows
        if self._bar is None:
            return
        if symbols_done:
            self._bar.update(symbols_done)
        now = time.monotonic()
        if now - self._shown >= 0.5 or symbols_done:
            self._shown = now
            rate = self.rows / max(now - self._started, 1e-9)
            self._bar.set_postfix_str(f"{self.rows:,} trades, {rate:,.0f} trades/s")

    def day_done(self, report: DayReport) -> None:
        self.reports.append(report)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _instance() -> tuple[dg.DagsterInstance, str]:
    try:
        return dg.DagsterInstance.get(), "recorded in the Dagster instance of DAGSTER_HOME"
    except dg.DagsterError:  # DAGSTER_HOME unset (or not a usable instance)
        return (
            dg.DagsterInstance.ephemeral(),
            "DAGSTER_HOME is not set: the run was not recorded in Dagster (the tables are "
            "written; set DAGSTER_HOME to see it in the UI)",
        )


def _selection(profiles: bool) -> list[Any]:
    from assets.market_data import candles_1m
    from assets.profiles import session_profiles
    from assets.tick_history import tick_history
    from orchestration.checks import ASSET_CHECKS

    return (
        [tick_history, candles_1m, session_profiles, *ASSET_CHECKS] if profiles else [tick_history]
    )


def launch(
    first: date,
    last: date,
    symbols: list[str],
    feed: str | None,
    progress: HistoryProgress,
    *,
    profiles: bool = True,
) -> Outcome:
    from assets.resources import AlpacaResource, PostgresResource
    from core.service_urls import ServiceError, resolve_urls
    from core.settings import get_settings

    settings = get_settings()
    if first < settings.history_start:
        return Outcome(
            2,
            [f"--from {first} is before MARKETFLOW_HISTORY_START ({settings.history_start}): "
             "those days have no partition"],
        )  # fmt: skip
    try:
        # DATABASE_URL alone is enough: a backfill needs no Redis
        database_url = settings.database_url or resolve_urls(settings).database_url
    except ServiceError as exc:
        return Outcome(2, [str(exc)])
    config: dict[str, Any] = {"symbols": symbols}
    if feed:
        config["feed"] = feed
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a temporary instance's set-up
    instance, recorded = _instance()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    result = dg.materialize(
        _selection(profiles),
        instance=instance,
        tags={RANGE_START: first.isoformat(), RANGE_END: last.isoformat()},
        run_config={
            "ops": {"tick_history": {"config": config}},
            # the bar and the summary say what happened; Dagster's step log stays quiet
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
        },
        resources={
            "postgres": PostgresResource(database_url=database_url),
            "alpaca": AlpacaResource(),
            "history_progress": progress,
        },
        raise_on_error=False,
    )
    return _outcome(result, recorded)


def _outcome(result: dg.ExecuteInProcessResult, recorded: str) -> Outcome:
    lines = []
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        key = materialization.asset_key.to_user_string()
        meta = materialization.metadata
        if key == "candles_1m" and "minutes_written" in meta:
            lines.append(f"candles_1m: {meta['minutes_written'].value} minutes written")
        elif key == "volume_profile" and "sessions" in meta:
            lines.append(f"profiles: {meta['sessions'].value} sessions computed")
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    if failed:
        lines.append("checks that did not pass: " + ", ".join(sorted(failed)))
    lines.append(f"Dagster run {result.run_id}: {recorded}")
    if result.success:
        return Outcome(1 if failed else 0, lines)
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:  # the user code's own error
            error = error.cause
        lines.append(f"failed in {event.step_key}: {error.message.strip() if error else '?'}")
    lines.append("what was stored stays: run the same command again and it resumes")
    return Outcome(1, lines)
