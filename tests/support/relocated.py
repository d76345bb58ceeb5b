"""The suite's check that it leaves no relocated server folder behind (tests/conftest.py).

Other sessions (another engineer's run, a running platform) may share the machine's
``/var/lib/marketflow``: a folder that appeared during this session counts as left behind
unless a process still runs from it (then it belongs to something alive, not to a test
that forgot it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from marketflow.embedded.process import processes_inside
from marketflow.embedded.relocated import base, read_record


def folders(where: Path) -> set[str]:
    try:
        return {p.name for p in where.iterdir() if p.is_dir()}
    except OSError:
        return set()


@dataclass
class RelocatedCheck:
    where: Path | None = None
    before: set[str] = field(default_factory=set)

    def start(self) -> None:
        self.where = self.where or base()
        self.before = folders(self.where)

    def leaked(self) -> list[Path]:
        if self.where is None:
            return []
        new = sorted(folders(self.where) - self.before)
        return [self.where / n for n in new if not processes_inside(self.where / n)]

    def describe(self, leaked: list[Path]) -> str:
        assert self.where is not None
        lines = [
            f"relocated server folders left behind in {self.where}: {len(leaked)} "
            f"(before the session: {len(self.before)})"
        ]
        for folder in leaked:
            record = read_record(folder)
            home = f"home {record.root}" if record is not None else "no home record"
            lines.append(f"  {folder.name}: {home}")
        return "\n".join(lines)
