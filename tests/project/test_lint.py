"""The code bar is part of the suite: ruff (lint and format), sqlfluff, mypy over every
package, and the layer contracts of docs/architecture.md (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

# whole-tree tools in subprocesses: tens of seconds, so outside the fast `not integration` run
pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["sqlfluff", "lint", "dbt_project/models"],
        ["mypy"],  # the packages and strictness of [tool.mypy] in pyproject.toml
        ["lint-imports"],  # [tool.importlinter]: nothing imports a higher layer
    ],
    ids=["ruff-check", "ruff-format", "sqlfluff", "mypy", "import-linter"],
)
def test_clean(command: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,  # mypy without a cache: about a minute on two busy cores
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
