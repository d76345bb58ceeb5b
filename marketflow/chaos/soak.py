"""Resource samples of a long run and the bound they must stay within.

Every sample: the RSS of each supervised child (with its descendants, but Dagster's run
workers apart: they live as long as a run and are shown, not judged), of PostgreSQL (the
postmaster and its backends) and of Redis, the number of connections in
``pg_stat_activity``, Redis ``used_memory``, the size of the market and the Dagster
databases and the number of stored ticks. The first ``WARMUP_SAMPLES`` are dropped (caches
fill, connections open); the rest is split in halves and each series must hold:

* RSS and Redis memory: mean of the second half <= mean of the first half x ``GROWTH_RATIO``
  + ``GROWTH_SLACK_BYTES`` (a leak grows without bound, a warm cache levels off);
* PostgreSQL connections: max of the second half <= max of the first half + ``CONN_SLACK``;
* market database: its growth over the run per tick stored <= ``BYTES_PER_TICK`` (it grows
  with the data by design, and by nothing else);
* Dagster database: its growth rate in the second half <= the first half's x
  ``GROWTH_RATIO`` + ``DAGSTER_SLACK_BYTES_PER_HOUR`` (runs add events at a steady rate;
  retention keeps it from accelerating).

``start_end`` gives every series' first and last kept value for the report.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from marketflow.chaos import procs
from storage.db import libpq_url

WARMUP_SAMPLES = 1
DAGSTER_WARMUP_S = 180.0  # its code server starts, the sensor's first runs fill caches
GROWTH_RATIO = 1.25
GROWTH_SLACK_BYTES = 16 * 1024 * 1024
CONN_SLACK = 2
BYTES_PER_TICK = 1024
DAGSTER_SLACK_BYTES_PER_HOUR = 64 * 1024 * 1024
CHILDREN = ("ingest", "engine", "web", "dagster-web", "dagster-daemon")
MARKET_DB, DAGSTER_DB, TICKS = "db.market_bytes", "db.dagster_bytes", "ticks.stored"
RUNS = ".runs"  # suffix of the RSS of a child's transient run workers


@dataclass
class Sample:
    at: float  # seconds since the platform was up
    values: dict[str, float] = field(default_factory=dict)


def take_sample(
    at: float,
    up_pid: int,
    postmaster: int | None,
    redis_pid: int | None,
    urls: tuple[str, str],
    dagster_db: str = "dagster",
) -> Sample:
    sample = Sample(at)
    for name in CHILDREN:
        pid = procs.supervised_child(up_pid, name)
        if pid is None:
            continue
        runs = procs.run_workers(pid) if name in procs.PROGRAMS else []
        sample.values[f"rss.{name}"] = float(procs.tree_rss(pid, without=runs))
        if runs:  # Dagster's run workers come and go with the runs: shown, not judged
            sample.values[f"rss.{name}{RUNS}"] = float(sum(procs.tree_rss(r) for r in runs))
    if postmaster is not None:
        sample.values["rss.postgres"] = float(procs.tree_rss(postmaster))
    if redis_pid is not None:
        sample.values["rss.redis"] = float(procs.rss_bytes(redis_pid))
    database_url, redis_url = urls
    with contextlib.suppress(psycopg.Error):
        with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
            row = conn.execute(
                "select (select count(*) from pg_stat_activity"
                "        where backend_type = 'client backend'),"
                " pg_database_size(current_database()),"
                " (select pg_database_size(datname) from pg_database where datname = %s),"
                " (select count(*) from ticks)",
                (dagster_db,),
            ).fetchone()
        if row is not None:
            sample.values["pg.connections"] = float(row[0]) - 1  # minus this very connection
            sample.values[MARKET_DB] = float(row[1])
            if row[2] is not None:
                sample.values[DAGSTER_DB] = float(row[2])
            sample.values[TICKS] = float(row[3])
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            info: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
            sample.values["redis.used_memory"] = float(info["used_memory"])
        finally:
            client.close()
    return sample


@dataclass(frozen=True)
class Verdict:
    series: str
    first: float
    second: float
    bound: float

    @property
    def holds(self) -> bool:
        return self.second <= self.bound

    def format(self) -> str:
        if self.series.startswith("pg."):
            shown = f"{self.first:.0f} -> {self.second:.0f} (bound {self.bound:.0f})"
        elif self.series == f"{MARKET_DB}/tick":
            shown = f"{self.second:.0f} bytes per tick stored (bound {self.bound:.0f})"
        elif self.series == f"{DAGSTER_DB}/h":
            mib = 1024 * 1024
            shown = (
                f"{self.first / mib:.1f} -> {self.second / mib:.1f} MiB per hour "
                f"(bound {self.bound / mib:.1f})"
            )
        else:
            mib = 1024 * 1024
            shown = (
                f"{self.first / mib:.1f} -> {self.second / mib:.1f} MiB "
                f"(bound {self.bound / mib:.1f})"
            )
        return f"{self.series}: {shown} {'ok' if self.holds else 'GROWTH'}"


def warmup_samples(sample_seconds: float, dagster: bool) -> int:
    """Samples dropped at the start: one, or Dagster's warm-up when it runs."""
    if not dagster:
        return WARMUP_SAMPLES
    return max(WARMUP_SAMPLES, math.ceil(DAGSTER_WARMUP_S / sample_seconds))


def judge(samples: Sequence[Sample], warmup: int = WARMUP_SAMPLES) -> list[Verdict]:
    """One verdict per series with at least one value in each half (after the warm-up)."""
    kept = list(samples[warmup:])
    half = len(kept) // 2
    if half == 0:
        return []
    first, second = kept[:half], kept[len(kept) - half :]
    names = sorted(
        k
        for k in {k for s in kept for k in s.values} - {MARKET_DB, DAGSTER_DB, TICKS}
        if not k.endswith(RUNS)
    )
    verdicts = _database_verdicts(kept)
    for name in names:
        a = [s.values[name] for s in first if name in s.values]
        b = [s.values[name] for s in second if name in s.values]
        if not a or not b:
            continue
        if name.startswith("pg."):
            verdicts.append(Verdict(name, max(a), max(b), max(a) + CONN_SLACK))
        else:
            mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
            bound = mean_a * GROWTH_RATIO + GROWTH_SLACK_BYTES
            verdicts.append(Verdict(name, mean_a, mean_b, bound))
    return verdicts


def _rate(samples: Sequence[Sample], name: str) -> float | None:
    """Growth of ``name`` per hour between the first and last sample that have it."""
    have = [s for s in samples if name in s.values]
    if len(have) < 2 or have[-1].at <= have[0].at:
        return None
    return (have[-1].values[name] - have[0].values[name]) * 3600.0 / (have[-1].at - have[0].at)


def _database_verdicts(kept: Sequence[Sample]) -> list[Verdict]:
    out = []
    have = [s for s in kept if MARKET_DB in s.values and TICKS in s.values]
    if len(have) >= 2:
        ticks = have[-1].values[TICKS] - have[0].values[TICKS]
        grown = have[-1].values[MARKET_DB] - have[0].values[MARKET_DB]
        per_tick = grown / ticks if ticks > 0 else grown
        out.append(Verdict(f"{MARKET_DB}/tick", 0.0, per_tick, BYTES_PER_TICK))
    half = len(kept) // 2
    first, second = _rate(kept[: half + 1], DAGSTER_DB), _rate(kept[half:], DAGSTER_DB)
    if first is not None and second is not None:
        bound = max(first, 0.0) * GROWTH_RATIO + DAGSTER_SLACK_BYTES_PER_HOUR
        out.append(Verdict(f"{DAGSTER_DB}/h", first, second, bound))
    return out


def start_end(
    samples: Sequence[Sample], warmup: int = WARMUP_SAMPLES
) -> list[tuple[str, float, float]]:
    """(series, first kept value, last value) of every series, for the report."""
    kept = list(samples[warmup:]) or list(samples)
    names = sorted({k for s in kept for k in s.values})
    out = []
    for name in names:
        values = [s.values[name] for s in kept if name in s.values]
        out.append((name, values[0], values[-1]))
    return out


def format_value(name: str, value: float) -> str:
    if name.startswith(("rss.", "redis.", "db.")):
        return f"{value / 1048576:.1f} MiB"
    return f"{value:.0f}"


def pid_from(path: Path) -> int | None:
    """The first number of a pid file (postmaster.pid, redis.addr); None when unreadable."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
