"""The dbt manifest is prepared at install time; loading the definitions does no dbt work."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assets.dbt_project import (
    MANIFEST_INPUTS,
    PREPARE_TARGET,
    DbtManifestError,
    manifest_problem,
    require_manifest,
)
from tests.support.paths import REPO

# Process starts and file locks, as Python's audit hooks name them
WATCHED = (
    "subprocess.Popen",
    "os.posix_spawn",
    "os.fork",
    "os.forkpty",
    "os.exec",
    "os.spawn",
    "os.system",
    "pty.spawn",
    "fcntl.flock",
    "fcntl.lockf",
)
# Imports the libraries first (Dagster's vendored croniter asks `file` for the platform's
# word size once), then records what importing our definitions starts or locks.
IMPORT_PROBE = f"""
import json, sys
import dagster, dagster_dbt
seen = []
sys.addaudithook(lambda event, args: seen.append([event, repr(args)[:300]])
                 if event in {WATCHED!r} else None)
import orchestration.definitions as d
keys = d.defs.resolve_asset_graph().get_all_asset_keys()
print(json.dumps({{"seen": seen, "assets": len(list(keys))}}))
"""


def project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "p"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: p\n")
    (root / "models" / "m.sql").write_text("select 1")
    return root, root / "target" / "manifest.json"


def age(*paths: Path, at: float = 1_000.0) -> None:
    for path in paths:
        os.utime(path, (at, at))


def test_a_missing_manifest_is_an_error_naming_the_make_target(tmp_path: Path) -> None:
    root, manifest = project(tmp_path)
    assert "does not exist" in (manifest_problem(root, manifest) or "")

    class Missing:
        project_dir, manifest_path = root, manifest

    with pytest.raises(DbtManifestError, match=re.escape(f"run `{PREPARE_TARGET}`")):
        require_manifest(Missing)  # type: ignore[arg-type]


def test_a_manifest_older_than_any_input_is_stale(tmp_path: Path) -> None:
    root, manifest = project(tmp_path)
    manifest.parent.mkdir()
    manifest.write_text("{}")
    age(root / "models" / "m.sql", root / "models", root / "dbt_project.yml")
    age(manifest, at=2_000.0)
    assert manifest_problem(root, manifest) is None
    os.utime(root / "models" / "m.sql")  # a model is edited after the manifest
    assert "older than models/m.sql" in (manifest_problem(root, manifest) or "")
    age(root / "models" / "m.sql")
    (root / "models" / "new.sql").write_text("select 2")  # a model is added
    assert "older than models" in (manifest_problem(root, manifest) or "")
    age(*(root / "models").iterdir(), root / "models")
    assert manifest_problem(root, manifest) is None
    # target/ itself (dbt's run artefacts) is not an input
    (root / "target" / "run_results.json").write_text("{}")
    assert manifest_problem(root, manifest) is None


def test_the_makefile_prepares_from_the_same_inputs() -> None:
    makefile = (REPO / "Makefile").read_text()
    inputs = next(line for line in makefile.splitlines() if line.startswith("DBT_INPUTS :="))
    for name in MANIFEST_INPUTS:
        assert f"$(DBT)/{name}" in inputs, name
    # install (and so `make test`, the CI's command) prepares the manifest
    assert re.search(r"^install: .*\$\(DBT_MANIFEST\)", makefile, re.M)
    assert re.search(r"^test: install", makefile, re.M)
    assert "dagster-dbt project prepare-and-package --file assets/dbt_project.py" in makefile


def test_the_prepared_manifest_is_current() -> None:
    assert require_manifest().exists()


@pytest.mark.integration  # a fresh interpreter importing Dagster: seconds
def test_importing_the_definitions_starts_no_process_and_takes_no_lock() -> None:
    """A fresh interpreter, without a database or dbt on PATH, imports the definitions:
    no process is started (no `dbt parse`) and no file lock is taken."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["MARKETFLOW_HOME"] = "/nonexistent-marketflow-home"
    env["PATH"] = "/usr/bin:/bin"  # the virtualenv (where dbt lives) is not on it
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", IMPORT_PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["seen"] == []
    assert report["assets"] >= 10
