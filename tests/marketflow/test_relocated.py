"""Relocated server folders go with their home (docs/operations.md, relocated folders).

A stand-in for /var/lib/marketflow under the test's own folder: the real one is shared by
every session on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from core.settings import Settings
from marketflow.embedded import service_user
from marketflow.embedded.process import processes_inside
from marketflow.embedded.relocated import (
    orphaned,
    prune_relocated,
    read_record,
    relocated_target,
    remove_relocated,
)
from marketflow.embedded.service_user import HOME_RECORD
from marketflow.services import Services
from tests.support.paths import REPO
from tests.support.relocated import RelocatedCheck

AS_ROOT = os.geteuid() == 0


def _relocated(base: Path, name: str, root: Path, link: Path | None = None) -> Path:
    """A relocated folder as ``server_dir`` leaves it: its record, a file of data."""
    folder = base / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "PG_VERSION").write_text("18\n")
    record = {"root": str(root), "link": str(link or root / "server")}
    (folder / HOME_RECORD).write_text(json.dumps(record))
    return folder


def test_prune_removes_only_folders_whose_home_is_gone_and_unused(tmp_path: Path) -> None:
    base = tmp_path / "var-lib-marketflow"
    homes = tmp_path / "homes"
    # linked from a live home: stays
    kept_root = homes / "a" / "postgres"
    kept_root.mkdir(parents=True)
    kept = _relocated(base, "kept", kept_root)
    (kept_root / "server").symlink_to(kept)
    # its home was removed (make clean of an older version, rm -rf): goes
    gone = _relocated(base, "gone", homes / "b" / "postgres")
    # its home exists but now links elsewhere (the server moved back in): goes
    moved_root = homes / "c" / "redis"
    moved_root.mkdir(parents=True)
    (moved_root / "server").mkdir()
    moved = _relocated(base, "moved", moved_root)
    # home gone, but a server still runs from it: stays (never one in use)
    busy = _relocated(base, "busy", homes / "d" / "postgres")
    # made before records existed: never guessed at
    legacy = base / "legacy"
    (legacy / "data").mkdir(parents=True)
    runner = subprocess.Popen(["sleep", "60"], cwd=busy / "data")
    try:
        assert orphaned(kept) is None and orphaned(busy) is None and orphaned(legacy) is None
        assert "is gone" in (orphaned(gone) or "")
        assert "no longer links" in (orphaned(moved) or "")
        removed = prune_relocated(base)
        assert sorted(base.iterdir()) == [busy, kept, legacy]
        assert len(removed) == 2 and any(str(gone) in line for line in removed)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    assert [line for line in prune_relocated(base) if str(busy) in line]  # now unused: goes
    assert prune_relocated(tmp_path / "never-made") == []


def test_remove_relocated_follows_the_links_of_a_home(tmp_path: Path) -> None:
    base = tmp_path / "base"
    home = tmp_path / "home"
    targets = []
    for depth, name in ((home / "postgres", "p1"), (home / "x" / "y" / "redis", "r1")):
        depth.mkdir(parents=True)
        targets.append(_relocated(base, name, depth))
        (depth / "server").symlink_to(base / name)
    elsewhere = tmp_path / "not-relocated"
    elsewhere.mkdir()
    (home / "other").mkdir()
    (home / "other" / "server").symlink_to(elsewhere)  # a link outside the base: not ours
    assert relocated_target(home / "other" / "server", base) is None
    assert remove_relocated(home, base) == sorted(targets)
    assert not any(t.exists() for t in targets) and elsewhere.exists()
    assert not (home / "postgres" / "server").exists()


def test_make_clean_removes_its_homes_relocated_folders(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "Makefile", checkout / "Makefile")
    base = tmp_path / "relocated"
    home = checkout / ".marketflow"
    for server in ("postgres", "redis"):
        (home / server).mkdir(parents=True)
        target = _relocated(base, f"id-{server}", home / server)
        (home / server / "server").symlink_to(target)
    neighbour = _relocated(base, "another-home", tmp_path / "another" / "postgres")
    outside = tmp_path / "outside"
    outside.mkdir()
    (checkout / ".venv").mkdir()
    result = subprocess.run(
        ["make", "clean", f"RELOCATED_BASE={base}"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(base.iterdir()) == [neighbour]  # another home's folder is not make's
    assert not home.exists() and not (checkout / ".venv").exists() and outside.exists()


def test_session_check_sees_a_new_unused_folder(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "old").mkdir(parents=True)
    check = RelocatedCheck(base)
    check.start()
    assert check.leaked() == []
    (base / "new").mkdir()
    leaked = check.leaked()
    assert leaked == [base / "new"]
    assert "left behind" in check.describe(leaked) and "no home record" in check.describe(leaked)


@pytest.mark.skipif(not AS_ROOT, reason="servers are relocated only for the service account")
def test_a_relocated_home_is_recorded_and_pruned_once_removed(
    service_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real servers of a private home (0700, like /root): their folders move out, record
    the home, survive a prune while it lives or a server runs, and go after."""
    base = service_home / "var-lib-marketflow"
    monkeypatch.setattr(service_user, "RELOCATED_BASE", base)
    private = service_home / "root"
    private.mkdir(mode=0o700)
    home = private / "checkout" / ".marketflow"
    services = Services(Settings(_env_file=None, MARKETFLOW_HOME=str(home)))
    urls = services.start()
    redis_pid = int((home / "redis" / "redis.addr").read_text().split()[0])
    try:
        folders = sorted(base.iterdir())
        assert len(folders) == 2
        roots = {record.root for f in folders if (record := read_record(f)) is not None}
        assert roots == {(home / "postgres").resolve(), (home / "redis").resolve()}
        assert prune_relocated(base) == []  # linked from a live home
        shutil.rmtree(private)  # the home goes while its servers still run
        assert prune_relocated(base) == []  # in use: never removed under a server
        with psycopg.connect(urls.database_url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        services.stop()  # PostgreSQL: its object still knows the relocated folder
        os.kill(redis_pid, signal.SIGTERM)  # Redis: its address file went with the home
    deadline = time.monotonic() + 20
    while any(processes_inside(f) for f in folders) and time.monotonic() < deadline:
        time.sleep(0.1)
    removed = prune_relocated(base)
    assert len(removed) == 2 and not any(base.iterdir()), removed
