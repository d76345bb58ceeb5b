"""Only Dagster's public API: no private module of the Dagster family anywhere in our files.

`dagster._core…` and friends change without notice between releases. import-linter cannot
say this (its forbidden contracts take only the root of an external package), so this test
reads every tracked Python file's imports, and the configuration files for module paths
(dagster.yaml's `module:` entries are written by marketflow/dagster_home.py).
"""

from __future__ import annotations

import ast
import re
import subprocess

from tests.support.paths import REPO

# the Dagster family: dagster, dagster_dbt, dagster_celery, dagster_postgres, dagster_shared…
FAMILY = re.compile(r"^dagster(_\w+)?$")
# a dotted path into a private module of the family, in any text
PRIVATE_PATH = re.compile(r"\bdagster(?:_[a-z]+)*\.(?=_)")
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".cfg", ".ini", ".json")
SELF = "tests/project/test_public_dagster_api.py"


def tracked(*suffixes: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    )
    return [p for p in out.stdout.split("\0") if p.endswith(suffixes)]


def private_imports(source: str) -> list[str]:
    """Imports of a private module, or of a private name, of the Dagster family."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if not FAMILY.match(parts[0]):
                continue
            if any(part.startswith("_") for part in parts[1:]) or any(
                name.startswith("_") for name in names
            ):
                found.append(f"line {node.lineno}: {module} {names or ''}".strip())
    return found


def test_the_scan_recognises_private_imports() -> None:
    assert private_imports("from dagster._core.execution.retries import RetryMode")
    assert private_imports("import dagster_dbt._internal as x")
    assert private_imports("from dagster import _check as check")
    assert not private_imports("import dagster as dg\nfrom dagster_dbt import DbtProject")
    assert PRIVATE_PATH.search('"module": "dagster._core.run_coordinator"')
    assert not PRIVATE_PATH.search('"module": "dagster", "class": "QueuedRunCoordinator"')


def test_no_private_dagster_module_is_imported() -> None:
    offenders = {}
    for path in tracked(".py"):
        found = private_imports((REPO / path).read_text())
        if found:
            offenders[path] = found
    assert offenders == {}


def test_no_private_dagster_module_is_named_in_code_or_configuration() -> None:
    offenders = {}
    for path in tracked(".py", *CONFIG_SUFFIXES):
        if path == SELF:  # its own examples above
            continue
        lines = (REPO / path).read_text().splitlines()
        hits = [n for n, line in enumerate(lines, 1) if PRIVATE_PATH.search(line)]
        if hits:
            offenders[path] = hits
    assert offenders == {}
