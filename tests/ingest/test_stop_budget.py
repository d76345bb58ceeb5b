"""`marketflow ingest` as a process, stopped the way `up` stops it (SIGTERM, then SIGKILL
after STOP_TIMEOUT_S) while PostgreSQL hangs: every print it took is stored or spooled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from core.settings import STOP_TIMEOUT_S
from streaming.ingest.spool import DurableBuffer
from tests.support.freeze_proxy import FreezeProxy

pytestmark = pytest.mark.timeout(120)


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_sigterm_with_postgres_hanging_loses_nothing(db_url: str, redis_url: str, tmp_path: Path):
    parts = urlsplit(db_url)
    proxy = FreezeProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA", "APCA", "IG_"))}
    env.update(
        DATABASE_URL=through(db_url, proxy.port),
        REDIS_URL=redis_url,
        MARKETFLOW_HOME=str(tmp_path),
        DEMO_RATE="200",
        DEMO_SEED="5",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketflow.cli", "ingest", "--provider", "demo",
         "--symbols", "BTCUSD,ETHUSDT"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        status: dict[str, str] = {}
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and int(status.get("stored", 0)) < 200:
            time.sleep(0.3)
            status = client.hgetall("status:ingest")
            assert proc.poll() is None
        proxy.freeze()  # PostgreSQL stops answering mid-stream
        frozen_at = status.get("received")
        while status.get("received") == frozen_at:  # a heartbeat written after the freeze
            time.sleep(0.3)
            status = client.hgetall("status:ingest")
        received_after_freeze = int(status["received"])
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:  # as `up` does: SIGKILL once the stop budget is spent
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        client.close()
        proxy.close()
    err = proc.stderr.read() if proc.stderr else ""
    assert "kept in the spool" in err, err[-3000:]
    with psycopg.connect(db_url) as conn:
        stored = {
            (int(a), str(b)) for a, b in conn.execute("select symbol_id, trade_id from ticks")
        }
    spool = DurableBuffer(tmp_path / "spool" / "demo.spool", memory_rows=0)
    spooled: set[tuple[int, str]] = set()
    while (chunk := spool.next_chunk(10_000)) is not None:
        spooled |= set(zip(chunk.symbol_id.tolist(), chunk.trade_id.tolist(), strict=True))
        spool.commit()
    assert spooled, err[-3000:]
    kept = stored | spooled
    assert len(kept) >= received_after_freeze
    # demo ids are <run>-<n>, n counting up per symbol: a lost print is a hole
    for sid in {sid for sid, _ in kept}:
        numbers = {int(t.rsplit("-", 1)[1]) for s_, t in kept if s_ == sid}
        assert numbers == set(range(min(numbers), max(numbers) + 1)), f"symbol {sid}: a hole"
    assert stopped_in < STOP_TIMEOUT_S + 1.0
