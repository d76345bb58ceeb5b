"""The kill switch fails closed: only an explicit "off" lets an order through."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis

from marketflow.embedded.process import free_port
from streaming.engine import killswitch


@pytest.mark.parametrize(
    ("value", "state", "blocks"),
    [
        (b"off", "off", False),
        (b"on", "on", True),
        (None, "missing", True),
        (b"OFF", "unknown", True),
        (b"0", "unknown", True),
        (b"false", "unknown", True),
        ("", "unknown", True),
    ],
)
def test_only_an_explicit_off_allows(value: bytes | str | None, state: str, blocks: bool) -> None:
    reading = killswitch.judge(value, setting=False)
    assert (reading.state, reading.blocks) == (state, blocks)
    assert ("BLOCKED" in reading.describe()) is blocks


def test_the_environment_setting_blocks_whatever_is_stored() -> None:
    reading = killswitch.judge(b"off", setting=True)
    assert reading.blocks and "KILL_SWITCH=true" in reading.reason


def _read(url: str, setting: bool = False) -> killswitch.Reading:
    async def go() -> killswitch.Reading:
        client = aioredis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return await killswitch.read(client, setting)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_missing_unknown_and_unreadable_values_block(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert _read(redis_url).state == "missing"  # a flushed or new Redis
    client.set(killswitch.KEY, "maybe")
    assert _read(redis_url).blocks
    client.set(killswitch.KEY, "off")
    assert not _read(redis_url).blocks
    client.close()
    dead = _read(f"redis://127.0.0.1:{free_port()}/0")
    assert dead.state == "unreadable" and dead.blocks


def test_engine_start_stores_the_configured_value_only_when_none_is(redis_url: str) -> None:
    async def init(setting: bool) -> bool:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await killswitch.initialise(client, setting)
        finally:
            await client.aclose()

    client = redis.Redis.from_url(redis_url)
    assert asyncio.run(init(False))
    assert client.get(killswitch.KEY) == b"off"
    client.set(killswitch.KEY, "on")  # an operator pulled it: a restart must not release it
    assert asyncio.run(init(False))
    assert client.get(killswitch.KEY) == b"on"
    client.delete(killswitch.KEY)
    assert asyncio.run(init(True))
    assert client.get(killswitch.KEY) == b"on"
    client.close()


def test_status_says_what_it_read_and_why(redis_url: str, monkeypatch, capsys, tmp_path) -> None:
    from core.settings import get_settings
    from marketflow.cli import main

    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/none")
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert main(["engine", "--kill-switch", "status"]) == 0
        out = capsys.readouterr().out
        assert "missing" in out and "BLOCKED" in out
        assert main(["engine", "--kill-switch", "off"]) == 0
        assert "orders allowed" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
