"""dbt wiring: the signal marts in `dbt_project/` as Dagster assets on the shared partitions.

The manifest is built once, ahead of time, by a cached factory: `dbt parse` runs only when
`target/manifest.json` is missing or older than a model, macro or project file (a file lock
keeps the webserver's and the daemon's code servers from parsing at the same time). We do
not call `DbtProject.prepare_if_dev()`: `dg` sets DAGSTER_IS_DEV_CLI for every subcommand,
which would re-parse in every step.
"""

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from sqlalchemy.engine import make_url

from assets.partitions import daily_partitions, dbt_history_env, dbt_vars_for_window
from assets.resources import PostgresResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT_SOURCE_NAME = "marketflow"
# dbt's executable beside the interpreter: the virtualenv need not be on PATH
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))
_INPUTS = ("models", "macros", "tests", "dbt_project.yml", "profiles.yml")


def _newest_input_mtime(project_dir: Path) -> float:
    newest = 0.0
    for name in _INPUTS:
        path = project_dir / name
        files = [path] if path.is_file() else path.rglob("*") if path.exists() else []
        for file in files:
            newest = max(newest, file.stat().st_mtime)
    return newest


def manifest_is_stale(project_dir: Path) -> bool:
    manifest = project_dir / "target" / "manifest.json"
    return not manifest.exists() or manifest.stat().st_mtime < _newest_input_mtime(project_dir)


def build_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """`dbt parse` into target/ when the manifest is missing or stale; returns its path."""
    target = project_dir / "target"
    target.mkdir(exist_ok=True)
    with open(target / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest_is_stale(project_dir):
            # parse needs no connection; the profile's env_var defaults fill the gaps
            subprocess.run(
                [
                    DBT_EXECUTABLE,
                    "parse",
                    "--quiet",
                    "--project-dir",
                    str(project_dir),
                    "--profiles-dir",
                    str(project_dir),
                    "--target-path",
                    str(target),
                ],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            )
    return target / "manifest.json"


@cache
def dbt_project() -> DbtProject:
    """The dbt project with a current manifest (parsed at most once per process)."""
    build_manifest(DBT_PROJECT_DIR)
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


# Tables the marts read that no Dagster asset writes: the engine, the Polymarket monitor and
# the symbol seed write them. Declared so the lineage shows where they come from.
RAW_SOURCES = (
    dg.AssetSpec(
        "symbols",
        group_name="reference",
        description="Instruments (market calendar, row size); seeded, replay adds new ones.",
    ),
    dg.AssetSpec(
        "strategies",
        group_name="reference",
        description="Strategy definitions the engine evaluates.",
    ),
    dg.AssetSpec(
        "signals",
        group_name="engine",
        description="Signals the engine fires (one row per rising edge of a strategy).",
    ),
    dg.AssetSpec(
        "market_state",
        group_name="engine",
        description="Market state per symbol, written by the engine on every change.",
    ),
    dg.AssetSpec(
        "binary_opportunities",
        group_name="polymarket",
        description="Arbitrage opportunities the Polymarket monitor opened and closed.",
    ),
    dg.AssetSpec(
        "binary_prices",
        group_name="polymarket",
        description="Polymarket top of book per market over time.",
    ),
)


class MarketflowDbtTranslator(DagsterDbtTranslator):
    """dbt sources are the tables the Python assets write: same asset keys, one lineage."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props.get("resource_type") == "source":
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "signals"


def dbt_env(database_url: str, schema: str = "analytics") -> dict[str, str]:
    """The environment of a dbt process: the profile's variables (dbt_project/profiles.yml)
    for a database URL, the history start the partitions use, and no usage tracking."""
    url = make_url(database_url)
    env = {
        **dbt_history_env(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MARKETFLOW_DBT_HOST": url.host or "127.0.0.1",
        "MARKETFLOW_DBT_PORT": str(url.port or 5432),
        "MARKETFLOW_DBT_USER": url.username or "postgres",
        "MARKETFLOW_DBT_DBNAME": url.database or "marketflow",
        "MARKETFLOW_DBT_SCHEMA": schema,
    }
    if url.password is not None:
        env["MARKETFLOW_DBT_PASSWORD"] = str(url.password)
    return env


@contextmanager
def dbt_connection_env(database_url: str) -> Iterator[None]:
    """Point dbt's profile at the market database while the dbt process is started.

    DbtCliResource hands the process environment to dbt; setting it for the duration of the
    start keeps the password off the command line and out of any file.
    """
    values = dbt_env(database_url)
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def dbt_build_args(start: datetime, end: datetime) -> list[str]:
    return ["build", "--vars", json.dumps(dbt_vars_for_window(start, end))]


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=MarketflowDbtTranslator(),
    name="signal_marts",
)
def signal_marts(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, postgres: PostgresResource
) -> Iterator[Any]:
    window = context.partition_time_window
    with dbt_connection_env(postgres.url()):
        invocation = dbt.cli(dbt_build_args(window.start, window.end), context=context)
    yield from invocation.stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=DBT_EXECUTABLE,
    )
