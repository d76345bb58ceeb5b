"""The tick writer benchmark smoke-runs (quick sizes) and reports finite ratios."""

from __future__ import annotations

import math
from collections.abc import Iterator

import psycopg
import pytest

from bench import BenchContext
from bench import tick_writer as tick_writer_bench
from core.settings import get_settings
from marketflow.commands.bench import run_benchmarks


def test_tick_writer_bench_quick(db_url: str, redis_url: str) -> None:
    results = tick_writer_bench.run(BenchContext(db_url, redis_url, quick=True))
    assert [r.name for r in results] == [
        "tick_writer fresh rows",
        "tick_writer replay, 1/3 overlap",
    ]
    for r in results:
        assert r.value > 0 and r.reference_value > 0
        assert math.isfinite(r.ratio) and r.ratio > 0
        assert "ratio" in r.format()
    with psycopg.connect(db_url) as conn:
        # the writer really stored the rows (the benchmark checks counts itself, too)
        assert conn.execute("select count(*) from ticks").fetchone()[0] == 5_000
        assert conn.execute("select to_regclass('bench_ticks_raw')").fetchone() == (None,)


@pytest.fixture
def configured(pg_admin_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", pg_admin_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    yield pg_admin_url
    get_settings.cache_clear()


def _bench_databases(admin_url: str) -> list[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "select datname from pg_database where datname like 'mf_bench_%'"
        ).fetchall()
    return [r[0] for r in rows]


def test_bench_command_uses_a_scratch_database(
    configured: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _bench_databases(configured)
    assert run_benchmarks(["tick_writer"], quick=True) == 0
    out = capsys.readouterr().out
    assert "[1/1] tick_writer:" in out and "ratio" in out and "done in" in out
    assert _bench_databases(configured) == before  # dropped afterwards

    assert run_benchmarks(["no_such_bench"], quick=True) == 2
    assert "unknown benchmark" in capsys.readouterr().out
