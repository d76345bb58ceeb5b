"""``marketflow backup`` / ``marketflow restore`` against a real PostgreSQL and a real Dagster
instance: a round trip gives back every table as it was, and bad input is refused with
nothing changed (docs/backup.md)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from sqlalchemy.engine import make_url

from assets.market_data import candles_1m
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from core.service_urls import with_database
from core.settings import get_settings
from marketflow import pg_tools
from marketflow.backup import read_manifest
from marketflow.cli import main
from marketflow.dagster_home import write_dagster_home
from storage.tick_archiver import stored_days
from tests.conftest import create_database, drop_database
from tests.storage.test_tick_archive import DAY, load
from tests.support.backtest_seed import seed_backtest

# every table the round trip must give back (the brief's list and what they hang on)
TABLES = (
    "symbols",
    "ticks",
    "candles_1m",
    "volume_profile",
    "profile_metrics",
    "order_flow",
    "naked_pocs",
    "strategies",
    "signals",
    "orders",
    "backtest_runs",
    "backtest_trades",
    "backtest_equity",
    "backtest_daily",
    "tick_archive",
    "alembic_version",
)


def snapshot(url: str) -> dict[str, object]:
    """Every row of every table (binary: doubles exact), sorted, plus the tick partitions."""
    out: dict[str, object] = {}
    with psycopg.connect(url) as conn, conn.cursor(binary=True) as cur:
        for table in TABLES:
            cur.execute(f"select * from {table}")
            out[table] = sorted(cur.fetchall(), key=repr)
        out["partitions"] = stored_days(conn)
    return out


def dagster_runs(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select run_id, status from runs order by run_id").fetchall()


@pytest.fixture
def platform(
    db_url: str, pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A market database with ticks, candles, profiles, signals, orders and a backtest, and
    a Dagster database with a run in it; the environment points marketflow at both."""
    dagster_db = create_database(pg_admin_url)
    dagster_url = with_database(pg_admin_url, dagster_db)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MARKETFLOW_DAGSTER_DB", dagster_db)
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TICK_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    load(db_url, (DAY,), n=200)
    seed_backtest(db_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert dg.materialize(
            [candles_1m, session_profiles],
            partition_key=DAY.isoformat(),
            resources={"postgres": PostgresResource(database_url=db_url)},
            instance=dg.DagsterInstance.ephemeral(),
        ).success
    with psycopg.connect(db_url, autocommit=True) as conn:
        sid = conn.execute("select id from symbols where symbol = 'AAPL'").fetchone()[0]
        strategy = conn.execute("select id from strategies limit 1").fetchone()[0]
        conn.execute(
            "insert into signals (ts, strategy_id, symbol_id, type, price, details) "
            "values ('2024-03-05 15:00+00', %s, %s, 'BUY', 50.5, '{\"why\": \"test\"}')",
            (strategy, sid),
        )
        conn.execute(
            "insert into orders (client_order_id, symbol_id, strategy_id, side, qty, entry, "
            "stop, target, status, raw) values ('mf-1', %s, %s, 'buy', 10, 50.5, 49.9, 51.7, "
            "'filled', '{\"id\": 1}')",
            (sid, strategy),
        )
    home = tmp_path / "dagster"
    for key, value in write_dagster_home(home, dagster_url).items():
        monkeypatch.setenv(key, value)

    @dg.asset
    def one() -> int:
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert dg.materialize([one], instance=instance).success
    yield {"market": db_url, "dagster": dagster_url, "home": str(tmp_path / "home")}
    get_settings.cache_clear()
    drop_database(pg_admin_url, dagster_db)


def backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["backup", "--to", str(tmp_path / "backups")]) == 0
    out = capsys.readouterr().out
    (path,) = (tmp_path / "backups").glob("marketflow-backup-*.tar")
    assert str(path) in out
    return path


def wipe(urls: dict[str, str]) -> None:
    for role in ("market", "dagster"):
        with psycopg.connect(urls[role], autocommit=True) as conn:
            conn.execute("drop schema public cascade")
            conn.execute("create schema public")


def test_backup_wipe_restore_gives_back_every_table(
    platform: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, runs = snapshot(platform["market"]), dagster_runs(platform["dagster"])
    assert all(before[t] for t in TABLES if t != "tick_archive") and len(runs) == 1
    path = backup(tmp_path, capsys)
    assert path.stat().st_mode & 0o777 == 0o600
    with tarfile.open(path) as tar:
        assert sorted(tar.getnames()) == ["dagster.dump", "manifest.json", "market.dump"]
    manifest = read_manifest(path)
    assert manifest.pg_dump_version.startswith("18") and len(manifest.dumps) == 2
    assert not list((tmp_path / "backups").glob(".*"))  # no temporary file left

    wipe(platform)
    assert main(["restore", str(path)]) == 0, capsys.readouterr().out
    assert snapshot(platform["market"]) == before
    assert dagster_runs(platform["dagster"]) == runs
    with psycopg.connect(platform["market"]) as conn:
        leftovers = conn.execute(
            "select datname from pg_database where datname like %s or datname like %s",
            ("%_restoring", "%_replaced_%"),
        ).fetchall()
    assert leftovers == []
    # the restored Dagster database serves its instance: the run and its materialization
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
            assert instance.get_run_by_id(runs[0][0]) is not None
            assert instance.get_latest_materialization_event(dg.AssetKey("one")) is not None


def test_restore_over_data_needs_force_and_keeps_a_safety_backup(
    platform: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(platform["market"])
    path = backup(tmp_path, capsys)
    with psycopg.connect(platform["market"], autocommit=True) as conn:
        conn.execute("delete from orders")
        conn.execute("update candles_1m set close = close + 1")
    changed = snapshot(platform["market"])

    assert main(["restore", str(path)]) == 2
    assert "pass --force" in capsys.readouterr().out
    assert snapshot(platform["market"]) == changed  # nothing changed

    with psycopg.connect(platform["market"], application_name="someone-else"):
        assert main(["restore", str(path), "--force"]) == 2
        assert "someone-else" in capsys.readouterr().out
    assert snapshot(platform["market"]) == changed

    safety = tmp_path / "safety"
    assert main(["restore", str(path), "--force", "--safety-dir", str(safety)]) == 0
    assert "safety backup" in capsys.readouterr().out
    assert snapshot(platform["market"]) == before
    (kept,) = safety.glob("marketflow-backup-*.tar")
    assert read_manifest(kept).dumps[0].role == "market"


def _not_dumps(tmp_path: Path) -> list[Path]:
    text = tmp_path / "notes.txt"
    text.write_text("not a backup\n")
    no_manifest = tmp_path / "other.tar"
    with tarfile.open(no_manifest, "w") as tar:
        tar.add(text, arcname="notes.txt")
    fake = tmp_path / "fake.tar"  # a manifest, but the "dump" is text
    manifest = {
        "format": "marketflow.backup/1",
        "created_at": "2026-01-01T00:00:00+00:00",
        "server_version": "18",
        "pg_dump_version": "18",
        "dumps": [
            {
                "role": "market",
                "database": "marketflow",
                "file": "market.dump",
                "bytes": 13,
                "sha256": "2b8f9b4e8d4e3f1c5d2d2e1b0f1f0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8",
            }
        ],
        "tick_archive": {},
    }
    with tarfile.open(fake, "w") as tar:
        for name, data in (("manifest.json", json.dumps(manifest)), ("market.dump", "not a dump")):
            info = tarfile.TarInfo(name)
            info.size = len(data.encode())
            tar.addfile(info, io.BytesIO(data.encode()))
    return [text, no_manifest, fake, tmp_path / "missing.tar"]


def test_a_file_that_is_not_a_backup_is_refused_and_nothing_changes(
    platform: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(platform["market"])
    for bad in _not_dumps(tmp_path):
        assert main(["restore", str(bad), "--force"]) == 2, bad
        out = capsys.readouterr().out
        assert "not a marketflow backup" in out or "is not a file" in out or "damaged" in out
    assert snapshot(platform["market"]) == before
    assert not (tmp_path / "home" / "backups").exists()  # not even a safety backup


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot create files in: mode 0555, and immutable as root (root
    writes through permission bits)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        done = chattr and subprocess.run([chattr, "+i", str(folder)], check=False).returncode == 0
        if not done:
            pytest.skip("running as root without chattr: no folder root cannot write to")
        immutable = True
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def test_backup_to_a_folder_that_is_not_writable_is_refused(
    platform: dict[str, str], read_only_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backup", "--to", str(read_only_dir)]) == 2
    assert f"cannot write to {read_only_dir}" in capsys.readouterr().out
    assert list(read_only_dir.iterdir()) == []
    not_a_dir = read_only_dir.parent / "file"
    not_a_dir.write_text("x")
    assert main(["backup", "--to", str(not_a_dir)]) == 2
    assert "is not a directory" in capsys.readouterr().out


def test_no_password_in_output_or_arguments(
    platform: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = make_url(platform["market"]).password
    assert password
    argvs: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(argv, *args, **kwargs):  # a spy: the real programs still run
        argvs.append([str(a) for a in argv])
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(pg_tools.subprocess, "run", recording_run)
    backup(tmp_path, capsys)
    path = next((tmp_path / "backups").glob("*.tar"))
    wipe(platform)
    assert main(["restore", str(path)]) == 0
    out = capsys.readouterr()
    assert password not in out.out + out.err
    assert {Path(a[0]).name for a in argvs} >= {"pg_dump", "pg_restore"}
    assert not any(password in arg for argv in argvs for arg in argv)
