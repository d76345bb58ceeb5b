"""dbt wiring: the signal marts in `dbt_project/` as Dagster assets on the shared partitions.

The manifest is prepared at install time (assets/dbt_project.py); here it is only read, so
importing this module starts no dbt process. Each dbt build runs in a target folder of its
own (dagster-dbt's choice, so concurrent runs do not share artifacts); the folder is removed
when the build ends, or a month of five-minute builds would leave thousands behind.
"""

import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from sqlalchemy.engine import make_url

from assets.dbt_project import DBT_PROJECT_DIR, dbt_project, require_manifest
from assets.partitions import daily_partitions, dbt_history_env, dbt_vars_for_window
from assets.resources import PostgresResource

DBT_SOURCE_NAME = "marketflow"
# dbt's executable beside the interpreter: the virtualenv need not be on PATH
DBT_EXECUTABLE = str(Path(sys.executable).with_name("dbt"))


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
    manifest=require_manifest(dbt_project),
    project=dbt_project,
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
    try:
        yield from invocation.stream()
    finally:
        remove_run_target(invocation.target_path, DBT_PROJECT_DIR)


def remove_run_target(target_path: Path, project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """Delete one build's own target folder (never the project's `target/` itself, which
    holds the prepared manifest); returns whether something was removed."""
    target = Path(target_path)
    target = (target if target.is_absolute() else project_dir / target).resolve()
    shared = (project_dir / "target").resolve()
    if target == shared or shared not in target.parents or not target.is_dir():
        return False
    shutil.rmtree(target, ignore_errors=True)
    return True


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=DBT_EXECUTABLE,
    )
