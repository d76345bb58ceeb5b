"""Benchmarks, run by ``marketflow bench [NAME ...]`` (docs/README.md).

Each benchmark is a module ``bench/<name>.py`` listed in ``BENCHMARKS`` that exposes
``DESCRIPTION: str`` and ``run(ctx: BenchContext) -> list[Comparison]``. A comparison is
always a measurement beside a reference measured in the same run, reported as a ratio;
benchmarks never assert on time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# name → module under bench/; `marketflow bench` with no name runs them all in this order
BENCHMARKS: tuple[str, ...] = (
    "tick_writer",
    "ingest",
    "latency",
    "profile",
    "dagster_minute",
    "minute_scaling",
    "engine",
    "polymarket",
    "backtest",
    "tick_archive",
    "backfill",
)


@dataclass(frozen=True)
class BenchContext:
    database_url: str  # a scratch database the benchmark may fill and drop tables in
    redis_url: str
    quick: bool = False  # smaller sizes, for a smoke run in tests


@dataclass(frozen=True)
class Comparison:
    """One measured quantity beside its reference from the same run."""

    name: str
    unit: str  # e.g. "ticks/s", "ms"
    value: float
    reference_name: str
    reference_value: float
    higher_is_better: bool = True
    target: str = ""  # the target in words, e.g. ">= 50 % of COPY"
    notes: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """value / reference (or reference / value when lower is better): > 1 beats it."""
        if self.higher_is_better:
            return self.value / self.reference_value if self.reference_value else float("inf")
        return self.reference_value / self.value if self.value else float("inf")

    def format(self) -> str:
        extra = "".join(f", {k} {v:,.3g}" for k, v in self.notes.items())
        return (
            f"{self.name:<34} {self.value:>14,.1f} {self.unit:<8} | "
            f"{self.reference_name} {self.reference_value:,.1f} {self.unit} | "
            f"ratio {self.ratio:.2f}x | target {self.target}{extra}"
        )
