"""The watch that restarts `up`'s embedded servers, on a real Redis (docs/operations.md).

The whole chain under a real `up` (PostgreSQL and Redis SIGKILLed, ticks kept) is
``test_heal.py``; here the watch's own rules: same port and password, capped backoff when
the port is taken meanwhile, nothing restarted after ``stop()``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import redis

from marketflow.embedded.process import pid_alive
from marketflow.embedded.redis import EmbeddedRedis
from marketflow.embedded.watch import ServerWatch


def _pid(server: EmbeddedRedis) -> int:
    pid = server.running_pid()
    assert pid is not None
    return pid


async def _until(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not in time")
        await asyncio.sleep(0.05)


def test_a_killed_server_comes_back_on_its_port_after_the_port_is_free(
    service_home: Path,
) -> None:
    server = EmbeddedRedis(service_home / "redis")
    url = server.start()
    port = server.port
    assert port is not None
    events: list[str] = []
    watch = ServerWatch(
        {"redis": server}, events.append, poll=0.05, backoff_initial=0.2, backoff_cap=0.8
    )

    async def scenario() -> None:
        await watch.start()
        first = _pid(server)
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        os.kill(first, signal.SIGKILL)
        await _until(lambda: watch.states["redis"].state == "down", 5)
        squatter.bind(("127.0.0.1", port))  # someone takes the port meanwhile
        squatter.listen()
        await _until(lambda: watch.states["redis"].total_restarts >= 3, 20)
        squatter.close()
        await _until(lambda: watch.states["redis"].state == "running", 20)
        assert _pid(server) != first
        await watch.stop()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 60))
        text = "\n".join(events)
        assert "exited with signal SIGKILL; restart #1 in 0.2s" in text, text
        assert f"redis could not start on port {port}" in text, text
        assert "restart #3 in 0.8s" in text, text  # doubled, then capped
        assert events[-1].startswith("started redis (pid ") and events[-1].endswith(str(port))
        assert redis.Redis.from_url(url).ping()  # the clients' URL: same port and password
        assert watch.counters()["redis.restarts"] == watch.states["redis"].total_restarts
    finally:
        server.stop()


def test_nothing_is_restarted_after_stop(service_home: Path) -> None:
    server = EmbeddedRedis(service_home / "redis")
    server.start()
    events: list[str] = []
    watch = ServerWatch({"redis": server}, events.append, poll=0.05, backoff_initial=0.05)

    async def scenario() -> None:
        await watch.start()
        await watch.stop()
        os.kill(_pid(server), signal.SIGKILL)
        await asyncio.sleep(0.5)

    try:
        asyncio.run(scenario())
        assert server.running_pid() is None and events == []
    finally:
        server.stop()
    with pytest.raises(ValueError, match="not started"):
        ServerWatch({"redis": EmbeddedRedis(service_home / "other")}, events.append)


def test_a_zombie_is_not_a_live_process() -> None:
    """A stopped postmaster left unreaped (PID 1 of some containers never reaps) is gone."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)  # exited but not reaped: a zombie until the waitpid below
        assert not pid_alive(pid)
        assert pid_alive(os.getpid())
    finally:
        os.waitpid(pid, 0)
