"""Resource samples of a long run and the bound they must stay within.

Every sample: the RSS of each supervised child (with its descendants), of PostgreSQL (the
postmaster and its backends) and of Redis, the number of connections in
``pg_stat_activity`` and Redis ``used_memory``. The first ``WARMUP_SAMPLES`` are dropped
(caches fill, connections open); the rest is split in halves and each series must hold:

* RSS and Redis memory: mean of the second half <= mean of the first half x ``GROWTH_RATIO``
  + ``GROWTH_SLACK_BYTES`` (a leak grows without bound, a warm cache levels off);
* PostgreSQL connections: max of the second half <= max of the first half + ``CONN_SLACK``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from marketflow.chaos import procs
from storage.db import libpq_url

WARMUP_SAMPLES = 1
GROWTH_RATIO = 1.25
GROWTH_SLACK_BYTES = 16 * 1024 * 1024
CONN_SLACK = 2
CHILDREN = ("ingest", "engine", "web")


@dataclass
class Sample:
    at: float  # seconds since the platform was up
    values: dict[str, float] = field(default_factory=dict)


def take_sample(
    at: float, up_pid: int, postmaster: int | None, redis_pid: int | None, urls: tuple[str, str]
) -> Sample:
    sample = Sample(at)
    for name in CHILDREN:
        pid = procs.supervised_child(up_pid, name)
        if pid is not None:
            sample.values[f"rss.{name}"] = float(procs.tree_rss(pid))
    if postmaster is not None:
        sample.values["rss.postgres"] = float(procs.tree_rss(postmaster))
    if redis_pid is not None:
        sample.values["rss.redis"] = float(procs.rss_bytes(redis_pid))
    database_url, redis_url = urls
    with contextlib.suppress(psycopg.Error):
        with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
            row = conn.execute(
                "select count(*) from pg_stat_activity where backend_type = 'client backend'"
            ).fetchone()
        if row is not None:  # minus this very connection
            sample.values["pg.connections"] = float(row[0]) - 1
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
        else:
            mib = 1024 * 1024
            shown = (
                f"{self.first / mib:.1f} -> {self.second / mib:.1f} MiB "
                f"(bound {self.bound / mib:.1f})"
            )
        return f"{self.series}: {shown} {'ok' if self.holds else 'GROWTH'}"


def judge(samples: Sequence[Sample]) -> list[Verdict]:
    """One verdict per series with at least one value in each half (after the warm-up)."""
    kept = list(samples[WARMUP_SAMPLES:])
    half = len(kept) // 2
    if half == 0:
        return []
    first, second = kept[:half], kept[len(kept) - half :]
    names = sorted({k for s in kept for k in s.values})
    verdicts = []
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


def pid_from(path: Path) -> int | None:
    """The first number of a pid file (postmaster.pid, redis.addr); None when unreadable."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
