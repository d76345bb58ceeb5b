"""The benchmark report: targets judged from their words, both files written and readable."""

from __future__ import annotations

import json
import math
from pathlib import Path

import psycopg
import pytest

from bench import Comparison
from bench.report import (
    JSON_NAME,
    MARKDOWN_NAME,
    BenchReport,
    machine_facts,
    markdown,
    target_holds,
    write_report,
)
from core.settings import get_settings
from marketflow.commands.bench import run_benchmarks


def _c(
    value: float, reference: float, target: str, unit: str = "ms", higher: bool = False
) -> Comparison:
    return Comparison("m", unit, value, "ref", reference, higher_is_better=higher, target=target)


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        (_c(100.0, 200.0, ">= 0.50 of COPY", "rows/s", higher=True), True),
        (_c(90.0, 200.0, ">= 0.50 of COPY", "rows/s", higher=True), False),
        (_c(250_000, 400_000, ">= 0.50 of COPY and >= 200k ticks/s", "ticks/s", True), True),
        (_c(150_000, 200_000, ">= 0.50 of COPY and >= 200k ticks/s", "ticks/s", True), False),
        (_c(200.0, 12_000.0, ">= 50x and <= 300 ms"), True),
        (_c(320.0, 20_000.0, ">= 50x and <= 300 ms"), False),
        (_c(40.0, 10.0, "p99 <= 50 ms (tick→browser budget)"), True),
        (_c(60.0, 10.0, "p99 <= 50 ms (tick→browser budget)"), False),
        (_c(60_000, 10_000, ">= 50 k msg/s", "msg/s", True), True),
        (_c(80.0, 10.0, "<= 100 ms per loop (500 symbols)"), True),
        (_c(1.0, 1.0, "small beside a minute on 2 cores", "s"), None),
        (_c(1.0, 1.0, "", "s"), None),
        (_c(1.0, 1.0, ">= 2 widgets"), None),  # a unit that is not the comparison's
        (_c(0.0, 1.0, ">= 0.5 of X", "rows/s", higher=True), False),
    ],
)
def test_target_holds(comparison: Comparison, expected: bool | None) -> None:
    assert target_holds(comparison) is expected


def test_one_failing_clause_fails_even_beside_an_unreadable_one() -> None:
    assert target_holds(_c(400.0, 10.0, "<= 300 ms and quick enough")) is False


def test_report_files(tmp_path: Path) -> None:
    facts = machine_facts()  # no servers: versions unknown, the rest from this machine
    assert isinstance(facts["cores"], int) and facts["cores"] >= 1
    assert str(facts["python"]).count(".") == 2 and facts["postgresql"] == "unknown"
    report = BenchReport(facts, quick=True)
    report.add("profile", [_c(200.0, 12_000.0, ">= 50x and <= 300 ms")])
    report.add("latency", [_c(0.0, 5.0, "the web server adds little", "ms")])  # ratio inf
    report.failed["engine"] = "RuntimeError: boom | pipe"
    json_path, md_path = write_report(report, tmp_path / "out")
    assert json_path.name == JSON_NAME and md_path.name == MARKDOWN_NAME

    data = json.loads(json_path.read_text())  # strict JSON: inf written as a string
    assert data["machine"]["cores"] == facts["cores"] and data["quick"] is True
    first, second = data["results"]
    assert first["benchmark"] == "profile" and first["holds"] is True
    assert math.isclose(first["ratio"], 60.0)
    assert second["ratio"] == "inf" and second["holds"] is None
    assert data["failed"] == {"engine": "RuntimeError: boom | pipe"}

    text = md_path.read_text()
    assert text == markdown(report)
    header = "| measure | value | reference | ratio | target | holds? |"
    table = text.split(header, 1)[1].strip().splitlines()
    assert table[1].startswith(
        "| m | 200 ms | ref 12,000 ms | 60.00x | >= 50x and <= 300 ms | yes |"
    )
    assert table[2].endswith("| the web server adds little | not judged |")
    assert f"| cores | {facts['cores']} |" in text
    assert "RuntimeError: boom \\| pipe" in text  # a pipe cannot break the table


def test_bench_command_writes_the_report(
    pg_admin_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg_admin_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    try:
        assert run_benchmarks(["tick_writer"], quick=True, report_dir=tmp_path) == 0
    finally:
        get_settings.cache_clear()
    data = json.loads((tmp_path / JSON_NAME).read_text())
    with psycopg.connect(pg_admin_url) as conn:
        version = conn.execute("show server_version").fetchone()
    assert version is not None and data["machine"]["postgresql"] == version[0]
    assert data["machine"]["redis"][0].isdigit()
    assert [r["measure"] for r in data["results"]] == [
        "tick_writer fresh rows",
        "tick_writer replay, 1/3 overlap",
    ]
    assert data["results"][1]["holds"] is None  # "(informational)"
    assert "tick_writer fresh rows" in (tmp_path / MARKDOWN_NAME).read_text()
