"""DAGSTER_HOME for ``marketflow up``: ``dagster.yaml`` and the Dagster child commands.

Instance storage lives in the ``dagster`` database of the same PostgreSQL server
(docs/operations.md), never in the market-data database. The password, if the server has
one, is not written to disk: the file reads it from ``MARKETFLOW_DAGSTER_PG_PASSWORD`` in
the children's environment.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from marketflow.supervisor import ChildSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS_FILE = REPO_ROOT / "orchestration" / "definitions.py"
WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"
PASSWORD_ENV = "MARKETFLOW_DAGSTER_PG_PASSWORD"
# SQLAlchemy 2.x + dagster-postgres fail on `NOTIFY run_events, $1` with the default driver
# resolution; naming psycopg2 explicitly avoids it.
SCHEME = "postgresql+psycopg2"


def _password(database_url: str) -> str | None:
    """The password of a URL, from its user part or a ``password=`` query parameter."""
    url = make_url(database_url)
    if url.password:
        return str(url.password)
    for key, value in url.query.items():
        if key.lower() == "password" and isinstance(value, str) and value:
            return value
    return None


def tick_retention(retention_days: int) -> dict[str, Any]:
    """The instance's `retention:` block: how long sensor and schedule ticks are kept.

    Ticks that requested runs live as long as runs do (DAGSTER_RUN_RETENTION_DAYS); the
    tick sensor's skipped evaluations (four a minute) only one day.
    """
    return {
        "schedule": {"purge_after_days": retention_days},
        "sensor": {
            "purge_after_days": {
                "skipped": 1,
                "failure": retention_days,
                "success": retention_days,
            }
        },
    }


def instance_config(
    dagster_database_url: str, max_concurrent_runs: int = 2, retention_days: int = 7
) -> dict[str, Any]:
    """The dagster.yaml contents for a PostgreSQL instance (pure; no secret inside).

    Classes are named by the public `dagster` module, never by its private submodules.
    """
    url = make_url(dagster_database_url)
    postgres_db: dict[str, Any] = {
        "username": url.username or "postgres",
        "hostname": url.host or "127.0.0.1",
        "db_name": url.database or "dagster",
        "port": int(url.port or 5432),
        "scheme": SCHEME,
    }
    if _password(dagster_database_url):
        postgres_db["password"] = {"env": PASSWORD_ENV}
    # libpq also takes the password as a query parameter: never copy that into the file
    params = {k: v for k, v in url.query.items() if isinstance(v, str) and k.lower() != "password"}
    if params:
        postgres_db["params"] = params
    return {
        "storage": {"postgres": {"postgres_db": postgres_db}},
        # Two cores: at most two runs at once, everything else queues; the queue also keeps
        # the every-minute schedule and the tick sensor from piling runs on top of each other.
        "run_coordinator": {
            "module": "dagster",
            "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": max_concurrent_runs, "dequeue_interval_seconds": 2},
        },
        "run_launcher": {"module": "dagster", "class": "DefaultRunLauncher"},
        "telemetry": {"enabled": False},
        # Runs' plain log lines below INFO stay out of the event log (Dagster's own events
        # are stored whatever their level): a run a minute must not write a DEBUG flood.
        "python_logs": {"python_log_level": "INFO"},
        # Sensor and schedule ticks; runs and their events are deleted by run_retention_job
        # (orchestration/run_retention.py), which Dagster's `retention:` does not cover.
        "retention": tick_retention(retention_days),
        "code_servers": {"local_startup_timeout": 180},
    }


def render_yaml(config: Mapping[str, Any]) -> str:
    # JSON is valid YAML; it keeps this module free of a YAML writer dependency.
    return "# written by `marketflow up`; rewritten at every start\n" + json.dumps(config, indent=2)


def write_dagster_home(
    home: Path, dagster_database_url: str, retention_days: int | None = None
) -> dict[str, str]:
    """Write ``home/dagster.yaml``; return the environment the Dagster children need.

    retention_days: how long ticks are kept (default DAGSTER_RUN_RETENTION_DAYS).
    """
    if retention_days is None:
        from core.settings import get_settings

        retention_days = get_settings().dagster_run_retention_days
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    config = instance_config(dagster_database_url, retention_days=retention_days)
    path.write_text(render_yaml(config) + "\n")
    env = {"DAGSTER_HOME": str(home)}
    password = _password(dagster_database_url)
    if password:
        env[PASSWORD_ENV] = str(password)
    return env


def dagster_available() -> bool:
    return DEFINITIONS_FILE.exists() and WORKSPACE_FILE.exists()


def dagster_children(env: Mapping[str, str], host: str, port: int) -> list[ChildSpec]:
    """Webserver and daemon on the workspace; ``env`` is the complete child environment."""
    bindir = Path(sys.executable).parent
    workspace = str(WORKSPACE_FILE)
    return [
        ChildSpec(
            "dagster-web",
            [str(bindir / "dagster-webserver"), "-h", host, "-p", str(port), "-w", workspace],
            env=env,
            cwd=str(REPO_ROOT),
        ),
        ChildSpec(
            "dagster-daemon",
            [str(bindir / "dagster-daemon"), "run", "-w", workspace],
            env=env,
            cwd=str(REPO_ROOT),
        ),
    ]
