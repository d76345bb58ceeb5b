"""The style bar of STYLE.md is part of the suite: ruff (lint and format) and sqlfluff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# whole-tree tools in subprocesses: tens of seconds, so outside the fast `not integration` run
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["sqlfluff", "lint", "dbt_project/models"],
    ],
    ids=["ruff-check", "ruff-format", "sqlfluff"],
)
def test_clean(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
