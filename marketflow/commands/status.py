"""``marketflow status``: each process's health, ingest counters and lag.

Health comes from the ``status:<process>`` hashes processes refresh in Redis
(``streaming.heartbeat``); the last stored tick (and so the ingest lag) from PostgreSQL when
it is reachable. What ``marketflow up`` supervises (children and embedded servers, their
restarts) comes from its ``up-status.json`` (``marketflow.up_status``), which needs no
server: it still answers while Redis is the one being restarted. Exit code 0 when at least
one process reports, 1 when nothing runs.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from marketflow.up_status import UpStatus
HELP = "show each process's health, ingest counters and lag"

EXPECTED = ("ingest", "engine", "web")  # what `marketflow up` normally supervises
STALE_AFTER_SECONDS = 15.0  # three missed 5 s beats
CONTRACT_FIELDS = ("pid", "host", "started_at", "heartbeat_at")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


@dataclass
class ProcessStatus:
    name: str
    state: str  # ok | stale
    pid: int | None
    host: str
    uptime_s: float | None
    beat_age_s: float | None
    counters: dict[str, str]


@dataclass
class Report:
    now: datetime
    redis: str
    database: str
    redis_error: str | None = None
    database_error: str | None = None
    processes: list[ProcessStatus] = field(default_factory=list)
    last_tick: dict[str, Any] | None = None
    rejects: list[dict[str, Any]] = field(default_factory=list)
    up: UpStatus | None = None  # what `marketflow up` supervises, from its status file


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def process_status(name: str, fields: dict[str, str], now: datetime) -> ProcessStatus:
    """One process's health from its hash (pure)."""
    started = _parse_time(fields.get("started_at"))
    beat = _parse_time(fields.get("heartbeat_at"))
    age = (now - beat).total_seconds() if beat else None
    pid = fields.get("pid", "")
    return ProcessStatus(
        name=name,
        state="ok" if age is not None and age <= STALE_AFTER_SECONDS else "stale",
        pid=int(pid) if pid.isdigit() else None,
        host=fields.get("host", ""),
        uptime_s=(now - started).total_seconds() if started else None,
        beat_age_s=age,
        counters={k: v for k, v in sorted(fields.items()) if k not in CONTRACT_FIELDS},
    )


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def format_counter(value: str) -> str:
    """Counters arrive as strings; long floats are shortened for reading."""
    try:
        number = float(value)
    except ValueError:
        return value
    if number.is_integer() or "." not in value:
        return value
    return f"{number:.4g}"


def render(report: Report) -> str:
    """The human-readable report (pure)."""
    out = [f"marketflow status at {report.now:%Y-%m-%d %H:%M:%S} UTC"]
    out.append(
        f"  Redis       {report.redis}"
        + (f"  ({report.redis_error})" if report.redis_error else "")
    )
    out.append(
        f"  PostgreSQL  {report.database}"
        + (f"  ({report.database_error})" if report.database_error else "")
    )
    out.append("")
    if report.up is not None:
        from marketflow.up_status import render as render_up

        out += [*render_up(report.up, report.now.timestamp()), ""]
    if report.redis_error and report.up is not None:
        out.append("Process heartbeats are unknown while Redis is not reachable (see above).")
    elif report.redis_error:
        out.append(
            "Process health is unknown: Redis is not reachable. Start everything with "
            "`marketflow up` (or check REDIS_URL)."
        )
    elif not report.processes:
        out.append(
            "Nothing is running: no process reports to Redis. Start everything with "
            "`marketflow up`."
        )
    else:
        width = max(len("PROCESS"), *(len(p.name) for p in report.processes)) + 2
        out.append(f"{'PROCESS':<{width}}{'STATE':<7}{'PID':>8}  {'UP':>7}  {'LAST BEAT':>10}")
        for p in report.processes:
            out.append(
                f"{p.name:<{width}}{p.state:<7}{p.pid or '?':>8}  {human_duration(p.uptime_s):>7}"
                f"  {human_duration(p.beat_age_s) + ' ago':>10}"
            )
            counters = " ".join(f"{k}={format_counter(v)}" for k, v in p.counters.items())
            out += textwrap.wrap(counters, 96, initial_indent="    ", subsequent_indent="    ")
        missing = [n for n in EXPECTED if n not in {p.name for p in report.processes}]
        if missing:
            out.append(f"not reporting: {', '.join(missing)}")
    out.append("")
    out.append("Ingest")
    if report.database_error:
        out.append("  last tick: unknown (database not reachable)")
    elif report.last_tick is None:
        out.append("  last tick: none stored yet")
    else:
        t = report.last_tick
        out.append(
            f"  last tick: {t['symbol']} at {t['ts']:%Y-%m-%d %H:%M:%S} UTC (seq {t['seq']}), "
            f"lag {human_duration(t['lag_s'])}"
        )
    for r in report.rejects:
        out.append(f"  rejected: {r['source']}/{r['reason']} × {r['count']}")
    return "\n".join(out)


def collect(redis_url: str, database_url: str, now: datetime | None = None) -> Report:
    """Read the status hashes and the last tick; errors become part of the report."""
    import psycopg
    import redis

    from core.contracts import STATUS_KEY_PREFIX
    from core.service_urls import redact_url
    from storage.db import libpq_url
    from storage.queries import newest_tick, recent_rejects

    now = now or datetime.now(UTC)
    report = Report(now=now, redis=redact_url(redis_url), database=redact_url(database_url))
    client = redis.Redis.from_url(
        redis_url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True
    )
    try:
        keys = sorted(client.scan_iter(match=f"{STATUS_KEY_PREFIX}*", count=100))
        for key in keys:
            fields = cast("dict[str, str]", client.hgetall(key))  # the sync client
            if fields:
                name = key.removeprefix(STATUS_KEY_PREFIX)
                report.processes.append(process_status(name, fields, now))
    except (redis.RedisError, OSError) as exc:
        report.redis_error = f"not reachable: {type(exc).__name__}"
    finally:
        client.close()
    try:
        with psycopg.connect(libpq_url(database_url), connect_timeout=3) as conn:
            row = newest_tick(conn)
            if row is not None:
                row["lag_s"] = (now - row["ts"]).total_seconds()
                report.last_tick = dict(row)
            report.rejects = recent_rejects(conn)
    except psycopg.Error as exc:
        report.database_error = f"not reachable or not migrated: {type(exc).__name__}"
    return report


def run(args: argparse.Namespace) -> int:
    from core.service_urls import ServiceError, resolve_urls
    from core.settings import get_settings

    try:
        urls = resolve_urls(get_settings())
    except ServiceError as exc:
        print(f"Nothing is running: {exc}")
        return 1
    from marketflow import up_status

    settings = get_settings()
    report = collect(urls.redis_url, urls.database_url)
    report.up = up_status.read(settings.state_dir)
    if args.json:
        print(json.dumps(asdict(report), default=str, indent=2))
    else:
        print(render(report))
    return 0 if report.processes or report.up is not None else 1
