"""``marketflow ingest`` as a process: demo into PostgreSQL, status hash, SIGTERM flush."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

pytestmark = pytest.mark.timeout(90)


def env_for(db_url: str, redis_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA", "APCA", "IG_"))}
    env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, MARKETFLOW_HOME=str(home), **extra)
    return env


def test_demo_ingest_until_sigterm(db_url: str, redis_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, redis_url, tmp_path, DEMO_RATE="300", DEMO_SEED="3")
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketflow.cli", "ingest", "--provider", "demo",
         "--symbols", "BTCUSD,ETHUSDT"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    status: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and int(status.get("stored", 0)) < 300:
            time.sleep(0.3)
            status = client.hgetall("status:ingest")
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        client.close()
    assert proc.returncode == 0, err
    assert int(status["stored"]) >= 300 and status["provider"] == "demo" and status["pid"]
    with psycopg.connect(db_url) as conn:
        n = conn.execute("select count(*) from ticks").fetchone()[0]
        per_symbol = dict(
            conn.execute(
                "select s.symbol, count(*) from ticks t join symbols s on s.id = t.symbol_id"
                " group by s.symbol"
            ).fetchall()
        )
        volume = conn.execute("select sum(size) from ticks").fetchone()[0]
        candle_volume = conn.execute("select sum(volume) from candles_1m").fetchone()[0]
    assert set(per_symbol) == {"BTCUSD", "ETHUSDT"}
    # the SIGTERM flush stored everything received and merged every running candle
    assert f"{n:,} stored" in err
    assert candle_volume == pytest.approx(volume)


def test_missing_credential_names_the_variable(db_url: str, redis_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, redis_url, tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "marketflow.cli", "ingest", "--provider", "alpaca_ws",
         "--symbols", "AAPL"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert "ALPACA_API_KEY" in out.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "marketflow.cli", "ingest", "--provider", "nope"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "choose one of" in bad.stderr
