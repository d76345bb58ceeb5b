"""Supervisor: restarts with backoff, clean stop with no process left."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from marketflow.supervisor import ChildSpec, Supervisor, backoff_delay, describe_exit, prefix_line
from tests.support.paths import REPO


def processes_with_env(needle: str, home: Path | None = None) -> list[tuple[int, str]]:
    """Live processes whose environment contains ``needle`` (every descendant inherits it),
    or, given ``home``, that run inside it or name it: redis-server and PostgreSQL backends
    overwrite their environment with their process title, but keep their working directory
    (redis --dir, the PostgreSQL data directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if "State:\tZ" in status:
            continue  # a zombie holds nothing; its parent reaps it
        cwd = ""
        if home is not None:
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                cwd = ""
        in_home = home is not None and (cwd.startswith(str(home)) or str(home) in cmdline)
        if in_home or needle.encode() in environ.split(b"\0"):
            found.append((int(entry.name), cmdline))
    return found


def wait_gone(needle: str, timeout: float, home: Path | None = None) -> list[tuple[int, str]]:
    deadline = time.monotonic() + timeout
    left = processes_with_env(needle, home)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = processes_with_env(needle, home)
    return left


def test_backoff_doubles_and_caps() -> None:
    delays = [backoff_delay(n, 0.5, 8.0) for n in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_prefix_and_exit_words() -> None:
    assert prefix_line("ingest", "hello\n", 10) == "[ingest]     hello"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "signal SIGKILL"


def test_child_that_dies_is_restarted_and_logged() -> None:
    out = io.StringIO()
    code = "print('alive', flush=True); import sys; sys.exit(3)"
    sup = Supervisor(
        [ChildSpec("dier", [sys.executable, "-c", code])],
        out=out,
        backoff_initial=0.05,
        backoff_cap=0.2,
        stop_timeout=2,
    )

    async def scenario() -> None:
        await sup.start()
        deadline = time.monotonic() + 20
        while sup.children["dier"].total_restarts < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await sup.stop()

    asyncio.run(scenario())
    text = out.getvalue()
    state = sup.children["dier"]
    assert state.total_restarts >= 3, text
    assert state.exits[:3] == [3, 3, 3]
    assert "[dier]" in text and "alive" in text
    assert "dier exited with exit code 3; restart #1 in 0.1s" in text
    assert "restart #2 in 0.1s" in text
    assert "restart #3 in 0.2s" in text  # doubled, then capped


def test_child_that_cannot_start_backs_off_too() -> None:
    """Found in review: a failed spawn never set ``started_at``, so every attempt looked
    like the end of a long stable run and the backoff reset: a missing executable was
    retried every ``backoff_initial`` seconds forever."""
    out = io.StringIO()
    sup = Supervisor(
        [ChildSpec("ghost", ["/nonexistent/marketflow-child"])],
        out=out,
        backoff_initial=0.05,
        backoff_cap=10.0,
        stop_timeout=2,
    )

    async def scenario() -> None:
        await sup.start()
        await asyncio.sleep(1.2)
        await sup.stop()

    asyncio.run(scenario())
    text = out.getvalue()
    assert "ghost could not start" in text
    assert "restart #3 in 0.2s" in text, text  # doubling, as for a child that dies
    assert sup.children["ghost"].total_restarts <= 6, text


def test_spawn_error_of_any_kind_is_logged_not_lost() -> None:
    """Found in review: only OSError was caught around the spawn; anything else (a NUL in
    the environment raises ValueError) ended the child's loop silently, its exception
    swallowed by ``wait()``: the child was simply never run again, with no message."""
    out = io.StringIO()
    sup = Supervisor(
        [ChildSpec("nul", [sys.executable, "-c", "pass"], env={"BAD": "a\0b"})],
        out=out,
        backoff_initial=0.05,
        backoff_cap=0.1,
        stop_timeout=2,
    )

    async def scenario() -> None:
        await sup.start()
        await asyncio.sleep(0.5)
        assert not sup._tasks[0].done()  # still supervising (retrying), not dead
        await sup.stop()

    asyncio.run(scenario())
    assert "nul could not start" in out.getvalue() and "null byte" in out.getvalue()
    assert sup.children["nul"].total_restarts >= 2


def test_stop_right_after_start_catches_children_still_spawning() -> None:
    marker = f"MF_TEST_MARKER={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    specs = [ChildSpec(f"sleeper{i}", ["sleep", "300"], env=env) for i in range(4)]
    sup = Supervisor(specs, out=io.StringIO(), stop_timeout=5)

    async def scenario() -> None:
        await sup.start()
        await asyncio.sleep(0)  # some spawns are in flight, none registered yet
        await asyncio.wait_for(sup.stop(), 15)

    asyncio.run(scenario())
    assert not wait_gone(marker, timeout=3)


SUPERVISOR_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from marketflow.supervisor import ChildSpec, Supervisor, install_stop_signals

    py = sys.executable
    # a child with a grandchild in its group; a child that ignores SIGTERM (needs SIGKILL);
    # a child that dies repeatedly (restarted while we stop)
    spawner = ("import subprocess,time; subprocess.Popen(['sleep','300']); "
               "print('ready-spawner', flush=True); time.sleep(300)")
    stubborn = ("import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready-stubborn', flush=True); time.sleep(300)")
    crasher = "import time; time.sleep(0.2); raise SystemExit(1)"

    async def main():
        stop = asyncio.Event()
        install_stop_signals(stop)
        sup = Supervisor(
            [ChildSpec("spawner", [py, "-c", spawner]), ChildSpec("stubborn", [py, "-c", stubborn]),
             ChildSpec("crasher", [py, "-c", crasher])],
            backoff_initial=0.1, stop_timeout=1.5,
        )
        await sup.run_until(stop)

    asyncio.run(main())
    """
)


@pytest.mark.integration  # a supervisor process tree of its own
def test_sigterm_stops_every_child_and_grandchild() -> None:
    marker = f"MF_TEST_MARKER={uuid.uuid4().hex}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    # SIGINT ignored, as from a non-interactive shell: children must still stop
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR_SCRIPT],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if any("ready-spawner" in s for s in seen) and any("ready-stubborn" in s for s in seen):
            break
    assert len(processes_with_env(marker)) >= 4, "".join(seen)  # supervisor, 2 kids, sleep
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=20)
    output = "".join(seen) + rest
    assert proc.returncode == 0, output
    assert "stubborn did not stop in 2s: SIGKILL" in output
    assert "all children stopped" in output
    left = wait_gone(marker, timeout=3)
    assert not left, f"processes left behind: {left}\n{output}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_marketflow_up_stops_everything_on_sigterm(service_home: Path) -> None:
    # a home the service account can reach: its servers then run inside it, where this
    # test looks for them (a private one would move their files to /var/lib/marketflow)
    tmp_path = service_home
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        MARKETFLOW_HOME=str(home),
        WEB_PORT=str(_free_port()),
        DAGSTER_PORT=str(_free_port()),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketflow.cli", "up", "--stop-timeout", "5"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "marketflow is up" in line:
                break
        block = "".join(lines)
        assert "marketflow is up" in block, block
        for label in ("Dagster UI", "Dashboard", "PostgreSQL", "Redis"):
            assert label in block
        needle = f"MARKETFLOW_HOME={home}"
        running = processes_with_env(needle, home)
        assert any("postgres" in cmd for _, cmd in running), running
        assert any("redis-server" in cmd for _, cmd in running), running
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=90)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    assert "marketflow stopped" in output
    left = wait_gone(needle, timeout=5, home=home)
    assert not left, f"left behind: {left}\n{output[-3000:]}"
