"""`up`'s output: every line in its process's rotating file, the terminal kept readable
(docs/operations.md, logs)."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
import textwrap
from pathlib import Path

from marketflow.process_logs import (
    EVENTS_LOG,
    ProcessLogs,
    RotatingLog,
    TerminalFilter,
    expected_note,
    level_of,
    strip_ansi,
    warning_key,
)
from marketflow.supervisor import ChildSpec, Supervisor
from tests.support.paths import CAPTURES

CAPTURE = CAPTURES / "logs" / "make_run_terminal.txt"


def captured_lines() -> list[tuple[str, str]]:
    """(process, line) of every child line in the capture (the supervisor's own aside)."""
    out = []
    for raw in CAPTURE.read_text().splitlines():
        m = re.match(r"^\[([\w-]+)\]", raw)
        if m and m.group(1) != "supervisor":
            out.append((m.group(1), raw[17:]))  # the prefix was padded to 16 + a space
    return out


def test_levels_of_every_format_the_platform_prints() -> None:
    assert level_of("2026-12-07 15:36:36,550 WARNING streaming.engine.loop: late") == 30
    assert level_of("2026-12-07 15:36:34,298 INFO  marketflow.ingest: ingest: demo") == 20
    dagster = "\x1b[32m2026-12-07 15:36:40 +0000\x1b[0m - dagster - \x1b[34mDEBUG\x1b[0m - x"
    assert level_of(strip_ansi(dagster)) == 10
    assert level_of("2026-12-07 15:36:40 +0000 - dagster - DEBUG - profile_job - RUN_START") == 10
    assert level_of("INFO:     127.0.0.1:5000 - GET / 200") == 20
    assert level_of("ERROR:root:boom") == 40
    line = "/x/dagster/_core/decorator_utils.py:232: BetaWarning: Parameter `a` is in beta"
    assert level_of(line) == 30
    assert warning_key(line) == ("BetaWarning", "Parameter `a` is in beta")
    assert level_of("Traceback (most recent call last):") == 40
    assert level_of("dashboard on http://127.0.0.1:8103/") is None


def test_the_captured_make_run_terminal_shrinks_to_what_matters(tmp_path: Path) -> None:
    """The real first four minutes of `make run`: 604 child lines, of which the terminal now
    keeps the warnings and errors that are news; every line stays in the files."""
    lines = captured_lines()
    logs = ProcessLogs(tmp_path / "logs")
    shown = [(name, line) for name, line in lines if logs.line(name, line)]
    logs.close()
    assert len(lines) == 604
    text = "\n".join(line for _, line in shown)
    assert len(shown) <= 10, text
    assert "engine loop 1739 ms late" in text  # a warning of ours
    assert "No heartbeat received in 20 seconds" in text  # Dagster's own warning
    assert "RUN_FAILURE" in text  # an error
    assert "DEBUG" not in text and "STEP_START" not in text
    assert "BetaWarning" not in text and "PreviewWarning" not in text
    assert logs.terminal.hidden_expected >= 20  # each Beta/Preview record, every time
    written = {p.name: p.read_text().splitlines() for p in (tmp_path / "logs").iterdir()}
    assert sum(len(v) for v in written.values()) == len(lines)
    assert set(written) == {f"{n}.log" for n in ("ingest", "engine", "web", "dagster-web",
                                                  "dagster-daemon")}  # fmt: skip
    assert not any("\x1b[" in line for v in written.values() for line in v)  # no colour codes
    assert sum("STEP_START" in line for line in written["dagster-daemon.log"]) > 10
    assert "BetaWarning" in expected_note() and "PreviewWarning" in expected_note()


def test_a_crash_traceback_is_shown_whole_and_the_noise_after_it_is_not() -> None:
    f = TerminalFilter()
    lines = [
        ("2026-01-01 00:00:00,000 INFO  x: starting", False),
        ("Traceback (most recent call last):", True),
        ('  File "/x.py", line 1, in <module>', True),
        ("    raise ValueError('boom')", True),
        ("ValueError: boom", True),
        ("2026-01-01 00:00:01,000 INFO  x: restarted", False),
        ("plain print without a level", False),
        ("2026-01-01 00:00:02,000 ERROR x: failed", True),
        ("Traceback (most recent call last):", True),  # log.exception's traceback
        ('  File "/y.py", line 2, in f', True),
        ("2026-01-01 00:00:03,000 INFO  y: another process of the child, meanwhile", False),
        ("    f()", True),  # the traceback goes on
        ("KeyError: 'k'", True),
        ("2026-01-01 00:00:04,000 INFO  x: after", False),
    ]
    assert [f.show("ingest", line) for line, _ in lines] == [want for _, want in lines]


def test_repeats_are_shown_once_per_window_and_warnings_once() -> None:
    now = [0.0]
    f = TerminalFilter(clock=lambda: now[0], repeat_window_s=60.0)
    err = "2026-01-01 00:00:{:02d},000 WARNING x: PostgreSQL unavailable; buffering {} rows"
    assert f.show("ingest", err.format(1, 10))
    now[0] = 30.0
    assert not f.show("ingest", err.format(31, 250))  # same message, other numbers
    assert f.show("engine", err.format(31, 250))  # another process: its own news
    now[0] = 61.0
    assert f.show("ingest", err.format(2, 999))
    warning = "/x/lib.py:3: FutureWarning: this will change"
    assert f.show("web", warning)
    assert f.show("web", "  source_line()")  # its source line goes with it
    assert not f.show("web", warning)  # a warning says the same every time
    assert not f.show("web", "  source_line()")
    assert not f.show("dagster-web", warning)
    assert f.hidden_repeats == 3
    expected = "/x/dagster/y.py:9: BetaWarning: Parameter `b` of `asset` is currently in beta"
    assert not f.show("dagster-daemon", expected) and f.hidden_expected == 1
    everything = TerminalFilter(threshold=logging.INFO)
    assert everything.show("ingest", "2026-01-01 00:00:00,000 INFO  x: stored 10")


def test_rotation_keeps_each_file_bounded(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "ingest.log", max_bytes=1000, backups=2)
    for i in range(200):
        log.write(f"line {i:04d} " + "x" * 38)  # 50 bytes with the newline
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ingest.log", "ingest.log.1", "ingest.log.2"]
    assert all((tmp_path / n).stat().st_size <= 1000 for n in names)
    assert (tmp_path / "ingest.log").read_text().splitlines()[-1].startswith("line 0199")
    assert (tmp_path / "ingest.log.1").read_text().splitlines()[-1].startswith("line 0179")
    reopened = RotatingLog(tmp_path / "ingest.log", max_bytes=1000, backups=2)
    reopened.write("after a restart of up")  # appends, counting what is already there
    reopened.close()
    assert (tmp_path / "ingest.log").stat().st_size <= 1000
    broken = RotatingLog(tmp_path / "missing" / "x.log")
    broken.write("lost, counted, never raised")
    assert broken.failures == 1


CHILD = textwrap.dedent(
    """
    import sys, time
    print("2026-01-01 00:00:00,000 INFO  child: ready", flush=True)
    print("2026-01-01 00:00:00,001 DEBUG child: detail", flush=True)
    print("2026-01-01 00:00:00,002 WARNING child: careful", flush=True)
    sys.exit(3)
    """
)


def test_supervisor_routes_children_to_files_and_events_to_both(tmp_path: Path) -> None:
    out = io.StringIO()
    logs = ProcessLogs(tmp_path / "logs")
    sup = Supervisor(
        [ChildSpec("worker", [sys.executable, "-c", CHILD])],
        out=out,
        backoff_initial=0.05,
        backoff_cap=0.1,
        stop_timeout=2,
        logs=logs,
    )

    async def scenario() -> None:
        await sup.start()
        while sup.children["worker"].total_restarts < 2:
            await asyncio.sleep(0.05)
        await sup.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    logs.close()
    terminal = out.getvalue()
    assert "careful" in terminal and "started worker" in terminal
    assert "ready" not in terminal and "detail" not in terminal
    assert terminal.count("careful") == 1  # the restarted child's repeat stays in the file
    kept = (tmp_path / "logs" / "worker.log").read_text()
    assert kept.count("ready") >= 2 and kept.count("careful") >= 2
    events = (tmp_path / "logs" / f"{EVENTS_LOG}.log").read_text()
    assert "started worker" in events and "exited with exit code 3" in events


STOPPING = textwrap.dedent(
    """
    import signal, sys, time
    def stop(*_):
        print("2026-01-01 00:00:09,000 ERROR run: interrupted by the stop", flush=True)
        sys.exit(1)
    signal.signal(signal.SIGTERM, stop)
    print("2026-01-01 00:00:00,000 ERROR run: a real error while running", flush=True)
    time.sleep(60)
    """
)


def test_dagster_noise_at_a_stop_goes_to_its_file_only(tmp_path: Path) -> None:
    """Interrupted Dagster runs and code servers print tracebacks at every stop: expected,
    so kept in the file; an error while running still reaches the terminal."""
    out = io.StringIO()
    logs = ProcessLogs(tmp_path / "logs")
    sup = Supervisor(
        [ChildSpec("dagster-daemon", [sys.executable, "-c", STOPPING])],
        out=out,
        stop_timeout=10,
        logs=logs,
        quiet_when_stopping=frozenset({"dagster-daemon"}),
    )

    async def scenario() -> None:
        await sup.start()
        while "a real error" not in out.getvalue():
            await asyncio.sleep(0.05)
        await sup.stop()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    logs.close()
    terminal = out.getvalue()
    assert "a real error while running" in terminal
    assert "interrupted by the stop" not in terminal
    assert "output of dagster-daemon while stopping: in " in terminal
    assert "interrupted by the stop" in (tmp_path / "logs" / "dagster-daemon.log").read_text()
