"""The tick archive benchmark smoke-runs (quick sizes) and reports finite ratios."""

from __future__ import annotations

import math

import psycopg

from bench import BenchContext
from bench import tick_archive as tick_archive_bench


def test_tick_archive_bench_quick(db_url: str, redis_url: str) -> None:
    results = tick_archive_bench.run(BenchContext(db_url, redis_url, quick=True))
    assert [r.name for r in results] == [
        "archive a day (export, check, drop)",
        "read an archived day (tick_columns)",
    ]
    for r in results:
        assert r.value > 0 and r.reference_value > 0 and math.isfinite(r.ratio)
    with psycopg.connect(db_url) as conn:
        # the day left PostgreSQL and was recorded
        assert conn.execute("select rows from tick_archive").fetchall() == [(20_000,)]
        assert conn.execute("select to_regclass('ticks_20200106')").fetchone() == (None,)
