"""``marketflow bench backtest`` at quick sizes: it runs, its batched and per-minute
signals agree (the benchmark raises otherwise) and it reports finite ratios."""

from __future__ import annotations

import math

from bench import BENCHMARKS, BenchContext
from bench import backtest as backtest_bench


def test_backtest_bench_quick() -> None:
    assert "backtest" in BENCHMARKS
    results = backtest_bench.run(BenchContext("", "", quick=True))
    assert [r.unit for r in results] == ["sym-min/s", "s"]
    speed = results[0]
    assert speed.notes["symbol-minutes"] == 6 * 5 * 390 + 6 * 5 * 60  # sessions + the hour after
    assert speed.notes["trades"] > 0
    for r in results:
        assert r.value > 0 and math.isfinite(r.ratio) and "ratio" in r.format()


def test_marketflow_bench_backtest_runs_through_the_command(
    pg_admin_url: str, redis_url: str, monkeypatch, capsys
) -> None:
    from core.settings import get_settings
    from marketflow.commands.bench import run_benchmarks

    monkeypatch.setenv("DATABASE_URL", pg_admin_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    try:
        assert run_benchmarks(["backtest"], quick=True) == 0
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert "[1/1] backtest:" in out and "per-minute loop" in out
