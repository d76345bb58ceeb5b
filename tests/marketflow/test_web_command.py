"""``marketflow web`` as a process: with no token configured it generates one, prints it once
inside the dashboard's link and nowhere else (no log line, even at DEBUG), and every write
needs it from loopback while reads stay open; a token from the environment is named in the
line, never shown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.timeout(90)
LINK = re.compile(r"dashboard on (http://127\.0\.0\.1:(\d+)/)\?token=(\S+)")


def start_web(db_url: str, redis_url: str, home: Path, **extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETFLOW_")}
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        MARKETFLOW_HOME=str(home),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    argv = [sys.executable, "-m", "marketflow.cli", "-v", "web", "--port", "0"]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else "no output"
    return line


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    return out, err


def test_generated_token_is_printed_once_and_guards_every_write(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select id from strategies where name = 'auction_market'").fetchone()
    assert row is not None
    sid = row[0]
    proc = start_web(db_url, redis_url, tmp_path)
    try:
        line = first_line(proc)
        found = LINK.search(line)
        assert found, line
        base, token = found.group(1).rstrip("/"), found.group(3)
        assert len(token) >= 40  # 256 random bits
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/api/strategies").status_code == 200  # reads stay open
            change = {"cooldown_seconds": 77}
            refused = http.patch(f"/api/strategies/{sid}", json=change)
            assert refused.status_code == 401 and "token" in refused.json()["error"]
            wrong = {"Authorization": "Bearer not-the-token"}
            assert (
                http.patch(f"/api/strategies/{sid}", json=change, headers=wrong).status_code == 401
            )
            signed = {"Authorization": f"Bearer {token}"}
            accepted = http.patch(f"/api/strategies/{sid}", json=change, headers=signed)
            assert accepted.status_code == 200 and accepted.json()["cooldown_seconds"] == 77
            by_link = http.patch(f"/api/strategies/{sid}?token={token}", json={"active": True})
            assert by_link.status_code == 200
    finally:
        out, err = stop(proc)
    assert "dashboard listening" in err  # the log ran (at DEBUG, -v)
    assert (line + out + err).count(token) == 1  # in the link, once, and in no log line


def test_a_token_from_the_environment_is_named_not_shown(
    db_url: str, redis_url: str, tmp_path: Path
) -> None:
    secret = "env-write-token-8c1d"
    proc = start_web(db_url, redis_url, tmp_path, MARKETFLOW_WEB_TOKEN=secret)
    try:
        line = first_line(proc)
        port = re.search(r"127\.0\.0\.1:(\d+)/", line)
        assert port and line.strip().endswith("/?token=<MARKETFLOW_WEB_TOKEN>"), line
        base = f"http://127.0.0.1:{port.group(1)}"
        signed = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{base}/api/symbols", timeout=10).status_code == 200
        assert httpx.patch(f"{base}/api/strategies/1", json={}, timeout=10).status_code == 401
        ok = httpx.patch(f"{base}/api/strategies/1", json={}, headers=signed, timeout=10)
        assert ok.status_code == 200
    finally:
        out, err = stop(proc)
    assert secret not in line + out + err
