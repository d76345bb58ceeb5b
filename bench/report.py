"""The benchmark report: ``bench-results.json`` and ``bench-results.md`` beside the console.

One row per comparison: measure, value, reference, ratio, target and whether the target
holds. A target is the benchmark's own words; the clauses this module can read are judged
(joined by "and"), anything else is shown but not judged:

* ``>= 0.50 of COPY``, ``>= 50x`` — the ratio against the reference;
* ``<= 300 ms``, ``>= 200k ticks/s``, ``p99 <= 50 ms (...)`` — the measured value, when the
  clause's unit is the comparison's unit (``k`` and ``M`` multiply; text in brackets and a
  leading label such as ``p99`` are ignored).

Machine facts (cores, CPU model, Python, numpy, PostgreSQL and Redis versions) head both
files: a ratio is only comparable between runs on like machines.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import Comparison

JSON_NAME = "bench-results.json"
MARKDOWN_NAME = "bench-results.md"
_SCALE = {"": 1.0, "k": 1e3, "M": 1e6}
_CLAUSE = re.compile(
    r"^(?:[A-Za-z_]\w*\s+)?(?P<op>>=|<=)\s*(?P<num>\d[\d,]*(?:\.\d+)?)\s*(?P<scale>k|M)?"
    r"\s*(?P<rest>.*)$"
)


@dataclass(frozen=True)
class Row:
    """One comparison as reported."""

    benchmark: str
    measure: str
    unit: str
    value: float
    reference_name: str
    reference: float
    ratio: float
    target: str
    holds: bool | None  # None: no target, or one this module cannot read
    notes: dict[str, float] = field(default_factory=dict)


@dataclass
class BenchReport:
    facts: dict[str, str | int]
    rows: list[Row] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # benchmark → why
    quick: bool = False
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def add(self, benchmark: str, comparisons: Sequence[Comparison]) -> None:
        self.rows.extend(row_of(benchmark, c) for c in comparisons)


def _clause_holds(clause: str, comparison: Comparison) -> bool | None:
    text = re.sub(r"\([^)]*\)", "", clause).strip()
    match = _CLAUSE.match(text)
    if match is None:
        return None
    bound = float(match["num"].replace(",", "")) * _SCALE[match["scale"] or ""]
    rest = match["rest"].strip()
    if rest == "x" or rest.startswith("of ") or rest.startswith("x "):
        measured = comparison.ratio
    elif rest.split(" ")[0] == comparison.unit:
        measured = comparison.value
    else:
        return None
    if not math.isfinite(measured):
        return False
    return measured >= bound if match["op"] == ">=" else measured <= bound


def target_holds(comparison: Comparison) -> bool | None:
    """True/False when every clause of the target could be judged (False if any fails)."""
    clauses = [c.strip() for c in comparison.target.split(" and ") if c.strip()]
    if not clauses:
        return None
    verdicts = [_clause_holds(c, comparison) for c in clauses]
    if any(v is False for v in verdicts):
        return False
    if any(v is None for v in verdicts):
        return None
    return True


def row_of(benchmark: str, comparison: Comparison) -> Row:
    return Row(
        benchmark=benchmark,
        measure=comparison.name,
        unit=comparison.unit,
        value=comparison.value,
        reference_name=comparison.reference_name,
        reference=comparison.reference_value,
        ratio=comparison.ratio,
        target=comparison.target,
        holds=target_holds(comparison),
        notes=dict(comparison.notes),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts(
    database_url: str | None = None, redis_url: str | None = None
) -> dict[str, str | int]:
    """Cores, CPU model and the versions a ratio depends on (servers asked when given)."""
    import numpy

    facts: dict[str, str | int] = {
        "cores": os.cpu_count() or 0,
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "postgresql": "unknown",
        "redis": "unknown",
    }
    if database_url:
        facts["postgresql"] = _postgres_version(database_url)
    if redis_url:
        facts["redis"] = _redis_version(redis_url)
    return facts


def _postgres_version(database_url: str) -> str:
    import psycopg

    from storage.db import libpq_url

    try:
        with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
            row = conn.execute("show server_version").fetchone()
    except psycopg.Error as exc:
        return f"unknown ({exc.__class__.__name__})"
    return str(row[0]) if row else "unknown"


def _redis_version(redis_url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            # the sync client returns the dict; redis-py types it as sync-or-async
            info: dict[str, Any] = client.info("server")  # type: ignore[assignment]
            return str(info.get("redis_version", "unknown"))
        finally:
            client.close()
    except redis.RedisError as exc:
        return f"unknown ({exc.__class__.__name__})"


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


def _verdict(holds: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not judged"}[holds]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: BenchReport) -> str:
    lines = [
        f"# Benchmark results ({report.started}{', quick sizes' if report.quick else ''})",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {_cell(str(v))} |" for k, v in report.facts.items()),
        "",
        "| measure | value | reference | ratio | target | holds? |",
        "|---|---:|---|---:|---|---|",
    ]
    for r in report.rows:
        lines.append(
            f"| {_cell(r.measure)} | {_number(r.value)} {_cell(r.unit)} "
            f"| {_cell(r.reference_name)} {_number(r.reference)} {_cell(r.unit)} "
            f"| {r.ratio:.2f}x | {_cell(r.target) or '-'} | {_verdict(r.holds)} |"
        )
    if report.failed:
        lines += ["", "Failed benchmarks:", ""]
        lines += [f"- {name}: {_cell(why)}" for name, why in report.failed.items()]
    return "\n".join(lines) + "\n"


def _json_safe(value: object) -> object:
    # JSON has no NaN/Infinity: write them as strings rather than invalid JSON
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_report(report: BenchReport, directory: Path) -> tuple[Path, Path]:
    """Write both files into ``directory`` (created); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / JSON_NAME
    md_path = directory / MARKDOWN_NAME
    data = {
        "started": report.started,
        "quick": report.quick,
        "machine": report.facts,
        "results": [asdict(r) for r in report.rows],
        "failed": report.failed,
    }
    json_path.write_text(json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
