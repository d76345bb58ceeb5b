"""`marketflow up` pieces: dagster.yaml on a real PostgreSQL, the plan, the address block."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy.engine import make_url

from core.service_urls import ServiceUrls
from core.settings import Settings
from marketflow.commands.up import address_block, child_environment, listeners, plan_children
from marketflow.dagster_home import PASSWORD_ENV, SCHEME, instance_config, write_dagster_home


def test_instance_config_keeps_secret_out_of_the_file() -> None:
    cfg = instance_config("postgresql://mf:hunter2@db.internal:6543/dagster?sslmode=require")
    db = cfg["storage"]["postgres"]["postgres_db"]
    assert db["password"] == {"env": PASSWORD_ENV}
    assert (db["hostname"], db["port"], db["scheme"]) == ("db.internal", 6543, SCHEME)
    assert db["params"] == {"sslmode": "require"}
    assert "hunter2" not in repr(cfg)
    assert cfg["telemetry"] == {"enabled": False}
    assert cfg["run_coordinator"]["config"]["max_concurrent_runs"] == 2


def test_password_given_as_query_parameter_stays_out_of_dagster_yaml(tmp_path: Path) -> None:
    """Found in review: query parameters were copied into dagster.yaml verbatim, so a
    ``?password=`` (a valid libpq spelling) landed in the file in clear text."""
    url = "postgresql://mf@db.internal:6543/dagster?password=hunter2&sslmode=require"
    cfg = instance_config(url)
    assert "hunter2" not in json.dumps(cfg)
    pg = cfg["storage"]["postgres"]["postgres_db"]
    assert pg["password"] == {"env": PASSWORD_ENV} and pg["params"] == {"sslmode": "require"}
    env = write_dagster_home(tmp_path / "dagster", url)
    assert env[PASSWORD_ENV] == "hunter2"
    assert "hunter2" not in (tmp_path / "dagster" / "dagster.yaml").read_text()


def test_dagster_home_runs_a_materialization_on_postgres(
    empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The written dagster.yaml gives a working instance on PostgreSQL: runs, event log and
    materializations stored in the dagster database."""
    password = make_url(empty_db_url).password  # the embedded server requires it
    assert password
    home = tmp_path / "dagster"
    env = write_dagster_home(home, empty_db_url)
    assert env == {"DAGSTER_HOME": str(home.resolve()), PASSWORD_ENV: password}
    assert password not in (home / "dagster.yaml").read_text()
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    @dg.asset
    def one() -> int:
        return 1

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert dg.materialize([one], instance=instance).success
        assert instance.get_latest_materialization_event(dg.AssetKey("one")) is not None


def test_plan_and_address_block(tmp_path: Path) -> None:
    settings = Settings(
        MARKETFLOW_HOME=str(tmp_path),
        WEB_PORT=8123,
        DAGSTER_PORT=3123,
        MARKETFLOW_API_TOKEN="tok-secret",
        POLYMARKET_ENABLED=True,
    )
    env = child_environment({"PATH": "/bin"}, tmp_path.resolve(), {"DAGSTER_HOME": "/d"})
    assert env["MARKETFLOW_HOME"] == str(tmp_path.resolve()) and env["PYTHONUNBUFFERED"] == "1"
    specs, notes = plan_children(settings, env, only={"web", "polymarket"}, dagster=False)
    assert [s.name for s in specs] == ["web", "polymarket"][: len(specs)]
    assert specs[0].argv == [sys.executable, "-m", "marketflow.cli", "web"]
    assert all(s.env == env for s in specs)
    urls = ServiceUrls(
        "postgresql://mf:pgpass@127.0.0.1:5999/marketflow",
        "postgresql://mf:pgpass@127.0.0.1:5999/dagster",
        "redis://:rpass@127.0.0.1:6999/0",
    )
    block = address_block(settings, urls, specs, notes)
    assert "http://127.0.0.1:8123/?token=<MARKETFLOW_API_TOKEN>" in block
    assert f"Logs             {tmp_path / 'logs'}" in block  # every process's full output
    assert listeners(settings, specs) == [("127.0.0.1", 8123)]  # the block is reprinted once
    exposed = Settings(MARKETFLOW_HOME=str(tmp_path), WEB_PORT=8123, MARKETFLOW_BIND_HOST="0.0.0.0")
    assert listeners(exposed, specs) == [("127.0.0.1", 8123)]  # asked on loopback
    assert "Dagster UI" in block and "not running" in block
    assert "127.0.0.1:5999/marketflow" in block and "127.0.0.1:6999" in block
    for secret in ("pgpass", "rpass", "tok-secret"):
        assert secret not in block
    assert block.rstrip().endswith("marketflow is up. Ctrl-C stops everything.")


def test_ingest_shards_become_children_over_disjoint_symbol_sets(tmp_path: Path) -> None:
    from marketflow.supervisor import Supervisor

    settings = Settings(MARKETFLOW_HOME=str(tmp_path), SYMBOLS="MSFT,AAPL,TSLA,NVDA,AMZN")
    env = child_environment({"PATH": "/bin"}, tmp_path.resolve(), {})
    specs, _ = plan_children(
        settings, env, only={"ingest", "engine"}, dagster=False, ingest_shards=3
    )
    ingest = [s for s in specs if s.name.startswith("ingest")]
    assert [s.name for s in ingest] == ["ingest-1", "ingest-2", "ingest-3"]
    assert specs[-1].name == "engine"
    shares = []
    for spec in ingest:
        assert spec.argv[:5] == [sys.executable, "-m", "marketflow.cli", "ingest", "--symbols"]
        shares.append(spec.argv[5].split(","))
    assert shares == [["AAPL", "NVDA"], ["AMZN", "TSLA"], ["MSFT"]]
    assert Supervisor(specs).children.keys() == {"ingest-1", "ingest-2", "ingest-3", "engine"}
    # one shard: the single `ingest` process of before, over SYMBOLS
    single, _ = plan_children(settings, env, only={"ingest"}, dagster=False)
    assert [(s.name, s.argv[3:]) for s in single] == [("ingest", ["ingest"])]
    # more shards than symbols: one process per symbol, no empty shard
    many, _ = plan_children(settings, env, only={"ingest"}, dagster=False, ingest_shards=9)
    assert [s.name for s in many] == [f"ingest-{i}" for i in range(1, 6)]
