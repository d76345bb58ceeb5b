"""What a chaos run is asked to do (``Options``) and what it found (``Outcome``, whose
``line`` is the report every run ends with; docs/chaos.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from marketflow.chaos.verify import TickCount

DEFAULT_SYMBOLS = ("BTCUSD", "ETHUSDT", "AAPL")  # two 24/7 markets: a session at any hour


@dataclass
class Options:
    minutes: float = 2.0
    soak: bool = False
    sample_seconds: float = 60.0
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    rate: float = 10.0
    seed: int = 7
    keep: bool = False
    dagster: bool = False  # run Dagster's webserver and daemon under `up` too


@dataclass
class Outcome:
    faults: int = 0
    ticks: TickCount | None = None
    candles: int = 0
    altered: int = 0  # stored trades that differ from the seeded path's print
    profiles: dict[str, int] = field(default_factory=dict)
    orphans: int = 0
    problems: list[str] = field(default_factory=list)  # anything else that failed the run

    def line(self) -> str:
        t = self.ticks or TickCount(0, 0, 0, 0, 0, 0)
        return (
            f"chaos: faults {self.faults}, ticks emitted {t.emitted}, stored {t.stored}, "
            f"lost {t.lost}, duplicated {t.duplicated}, candle mismatches {self.candles}, "
            f"orphans {self.orphans}"
        )

    @property
    def ok(self) -> bool:
        t = self.ticks
        return (
            t is not None
            and t.emitted > 0
            and t.lost == 0
            and t.duplicated == 0
            and t.unexpected == 0
            and t.foreign == 0
            and self.candles == 0
            and self.altered == 0
            and self.orphans == 0
            and not any(self.profiles.values())
            and not self.problems
        )


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)
