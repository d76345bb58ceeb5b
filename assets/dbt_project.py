"""The dbt project of the signal marts, and its manifest, prepared once at install time.

`make install` prepares the manifest with dagster-dbt's own preparation
(`dagster-dbt project prepare-and-package --file assets/dbt_project.py`, which runs `dbt
parse` for the `DbtProject` below); make runs it again whenever a model, macro, test or
project file is newer than the manifest (`make dbt-manifest`). Loading the definitions
therefore only reads `target/manifest.json`: no dbt process, no lock. A missing or stale
manifest is an error that names the make target, never a silent parse at import
(docs/signal-marts.md, "The manifest"). We do not call `DbtProject.prepare_if_dev()`:
`dg` sets DAGSTER_IS_DEV_CLI for every subcommand, so it would parse in every step.

This module must stay importable without a manifest: the preparation command loads it.
"""

from __future__ import annotations

from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
# what `dbt parse` reads; the Makefile's DBT_INPUTS lists the same names
MANIFEST_INPUTS = ("models", "macros", "tests", "dbt_project.yml", "profiles.yml")
PREPARE_TARGET = "make dbt-manifest"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class DbtManifestError(RuntimeError):
    """The dbt manifest is missing or older than the project it describes."""


def newest_input(project_dir: Path) -> tuple[float, Path | None]:
    """The most recently modified input of `dbt parse` (mtime, path); (0, None) when none.

    Folders count too: a folder's mtime moves when a file is added or removed in it.
    """
    newest: tuple[float, Path | None] = (0.0, None)
    for name in MANIFEST_INPUTS:
        path = project_dir / name
        if not path.exists():
            continue
        for entry in [path, *(sorted(path.rglob("*")) if path.is_dir() else [])]:
            mtime = entry.stat().st_mtime
            if mtime > newest[0]:
                newest = (mtime, entry)
    return newest


def manifest_problem(project_dir: Path, manifest: Path) -> str | None:
    """Why `manifest` cannot describe the project in `project_dir` (None: it is current)."""
    if not manifest.exists():
        return f"the dbt manifest {manifest} does not exist"
    mtime, path = newest_input(project_dir)
    if path is not None and mtime > manifest.stat().st_mtime:
        return f"the dbt manifest {manifest} is older than {path.relative_to(project_dir)}"
    return None


def require_manifest(project: DbtProject = dbt_project) -> Path:
    """The path of a current manifest; raises DbtManifestError with what to run otherwise."""
    problem = manifest_problem(project.project_dir, project.manifest_path)
    if problem is not None:
        raise DbtManifestError(
            f"{problem}: run `{PREPARE_TARGET}` (part of `make install`) in the repository "
            "root to prepare it; loading the definitions never runs dbt"
        )
    return project.manifest_path
