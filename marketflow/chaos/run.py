"""One chaos (or soak) run from start to report.

A private MARKETFLOW_HOME under a temporary folder, free ports, ``marketflow up
--no-dagster`` (a soak runs Dagster too) with the demo provider at a steady rate in
replayable mode; faults on the schedule of ``faults.schedule`` (or, for a soak, resource
samples on a clock); profile runs as the tick sensor would request them; a clean stop; then
the servers are started again on the same data and ``verify`` checks what was stored, and
no process of the run may remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from marketflow.chaos import procs
from marketflow.chaos.faults import Target, schedule
from marketflow.chaos.outcome import Options, Outcome, say
from marketflow.chaos.soak import (
    Sample,
    format_value,
    judge,
    pid_from,
    start_end,
    take_sample,
    warmup_samples,
)
from marketflow.chaos.verify import (
    altered_ticks,
    candle_mismatches,
    materialize_profiles,
    profile_mismatches,
    sensor_write_from,
    tick_accounting,
)
from marketflow.chaos.watch import WatchState, watch

if TYPE_CHECKING:
    from core.settings import Settings
    from marketflow.services import Services, ServiceUrls

READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
LIVE_WAIT_S = 30.0  # after the faults: how long the dashboard socket gets to show data
# ingest keeps this few rows in memory before it spools: an outage of a second reaches the
# spool (and the spool-full fault its refusals); the default is a million
MEMORY_ROWS = 20


def prepare_environment(home: Path, opts: Options) -> dict[str, str]:
    """This process's environment for the run (the children inherit it)."""
    from marketflow.embedded.process import free_port

    env = os.environ
    for name in ("DATABASE_URL", "REDIS_URL"):  # embedded servers, private to the run
        env.pop(name, None)
    env.update(
        {
            "MARKETFLOW_HOME": str(home),
            "MARKETFLOW_BIND_HOST": "127.0.0.1",
            "MARKETFLOW_API_TOKEN": secrets.token_urlsafe(24),
            "WEB_PORT": str(free_port()),
            "DAGSTER_PORT": str(free_port()),
            "PROVIDER": "demo",
            "SYMBOLS": ",".join(opts.symbols),
            "DEMO_RATE": str(opts.rate),
            "DEMO_SEED": str(opts.seed),
            "DEMO_STEADY": "true",
            "DEMO_START": f"{time.time():.0f}",
            "INGEST_MEMORY_ROWS": str(MEMORY_ROWS),
            "POLYMARKET_ENABLED": "false",
            "AUTO_TRADING_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return dict(env)


async def wait_ready(proc: asyncio.subprocess.Process, log: Path) -> bool:
    from marketflow.commands.up import READY_LINE

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            return False
        with contextlib.suppress(OSError):
            if READY_LINE in log.read_text(errors="replace"):
                return True
        await asyncio.sleep(0.5)
    return False


def run_days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC day windows [00:00, next 00:00) the run touched (profile partitions)."""
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    out = []
    while day <= end:
        out.append((day, day + timedelta(days=1)))
        day += timedelta(days=1)
    return out


async def stop_up(proc: asyncio.subprocess.Process, outcome: Outcome) -> None:
    if proc.returncode is not None:
        outcome.problems.append(f"`up` ended early with {proc.returncode}")
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=STOP_TIMEOUT_S)
    except TimeoutError:
        outcome.problems.append(f"`up` did not stop within {STOP_TIMEOUT_S:.0f}s: SIGKILL")
        procs.kill_group(proc.pid)
        await proc.wait()


def _stop_with_us() -> None:
    """In the child before exec: SIGTERM it if this harness dies (killed by a test's
    timeout, say), so `up` stops its children and servers instead of running on."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def reap() -> None:
    """Collect our exited children (servers restarted by a fault, stopped by `up`)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


class Run:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.home = Path(tempfile.mkdtemp(prefix="marketflow-chaos-")).resolve()
        self.outcome = Outcome()
        self.watch = WatchState()
        self.samples: list[Sample] = []
        self.cursor = 0  # the newest tick sequence number a profile run has seen

    def _settings(self) -> Settings:
        from core.settings import get_settings

        get_settings.cache_clear()
        return get_settings()

    async def main(self) -> int:
        prepare_environment(self.home, self.opts)
        settings = self._settings()
        say(f"home {self.home}; {self.opts.minutes:g} min; symbols {','.join(self.opts.symbols)}")
        log = self.home / "up.log"
        started = datetime.now(UTC)
        dagster = () if self.opts.dagster else ("--no-dagster",)
        with open(log, "ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "marketflow.cli",
                "up",
                *dagster,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # our Ctrl-C is not its: it is stopped in order
                preexec_fn=_stop_with_us,
            )
        try:
            if not await wait_ready(proc, log):
                self.outcome.problems.append(f"the platform did not come up (see {log})")
            else:
                await self._drive(proc, settings)
        finally:
            await stop_up(proc, self.outcome)
        await self._verify(settings, started)
        self._orphans()
        return self._report(log)

    async def _drive(self, proc: asyncio.subprocess.Process, settings: Settings) -> None:
        from core.service_urls import resolve_urls
        from marketflow.services import Services

        urls = resolve_urls(settings)
        services = Services(settings)
        target = Target(proc.pid, self.home, services, urls.database_url, urls.redis_url)
        token = settings.api_token.get_secret_value() if settings.api_token else None
        stop_watch = asyncio.Event()
        watcher = asyncio.create_task(
            watch(settings.web_port, token, list(self.opts.symbols), self.watch, stop_watch)
        )
        t0 = time.monotonic()
        total = self.opts.minutes * 60.0
        try:
            if self.opts.soak:
                await self._soak(proc.pid, services, urls, t0, total)
            else:
                await self._faults(target, urls.database_url, t0, total)
        finally:
            stop_watch.set()
            await watcher
        if self.watch.connects == 0:
            self.outcome.problems.append(
                f"the dashboard WebSocket never connected: {self.watch.errors[-3:]}"
            )

    async def _faults(self, target: Target, database_url: str, t0: float, total: float) -> None:
        plan = schedule(self.opts.minutes)
        halfway = plan[len(plan) // 2].at if plan else total / 2
        profiled = False
        last_fault_end = t0
        for fault in plan:
            if not profiled and fault.at >= halfway:
                await self._profile_run(database_url, None)
                profiled = True
            await asyncio.sleep(max(0.0, t0 + fault.at - time.monotonic()))
            try:
                what = await asyncio.to_thread(target.action(fault.kind))
            except Exception as exc:  # a fault that cannot be applied fails the run
                self.outcome.problems.append(f"fault {fault.kind}: {exc.__class__.__name__}: {exc}")
                say(f"+{time.monotonic() - t0:5.1f}s fault {fault.kind} FAILED: {exc}")
                continue
            self.outcome.faults += 1
            last_fault_end = time.monotonic()
            say(f"+{last_fault_end - t0:5.1f}s fault {fault.kind}: {what}")
        if not profiled:
            await self._profile_run(database_url, None)
        await asyncio.sleep(max(0.0, t0 + total - time.monotonic()))
        # the socket must carry data after the last fault (a drop must have reconnected)
        deadline = time.monotonic() + LIVE_WAIT_S
        while not self.watch.live_since(last_fault_end) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        say(
            f"dashboard socket: {self.watch.connects} connects, {self.watch.drops} drops, "
            f"{self.watch.frames} frames"
        )
        if not self.watch.live_since(last_fault_end):
            self.outcome.problems.append("no live dashboard data after the last fault")
        if "web" in {f.kind for f in plan} and self.watch.connects < 2:
            self.outcome.problems.append("the dashboard WebSocket did not reconnect")

    async def _profile_run(self, database_url: str, write_from: datetime | None) -> None:
        """A profile run of every day the run touched, as the tick sensor requests it."""
        start = datetime.fromtimestamp(float(os.environ["DEMO_START"]), UTC)
        try:
            for day_start, _ in run_days(start, datetime.now(UTC)):
                seq = await asyncio.to_thread(
                    materialize_profiles, database_url, day_start, write_from
                )
                self.cursor = max(self.cursor, seq)
        except Exception as exc:
            self.outcome.problems.append(f"profile run: {exc.__class__.__name__}: {exc}")

    async def _soak(
        self, up_pid: int, services: Services, urls: ServiceUrls, t0: float, total: float
    ) -> None:
        pidfile = services.postgres.pgdata / "postmaster.pid"
        addr = services.redis.root / "redis.addr"
        n = max(2, int(total // self.opts.sample_seconds))
        for i in range(1, n + 1):
            await asyncio.sleep(max(0.0, t0 + i * self.opts.sample_seconds - time.monotonic()))
            sample = await asyncio.to_thread(
                take_sample,
                time.monotonic() - t0,
                up_pid,
                pid_from(pidfile),
                pid_from(addr),
                (urls.database_url, urls.redis_url),
                services.settings.dagster_db,
            )
            self.samples.append(sample)
            shown = ", ".join(f"{k} {format_value(k, v)}" for k, v in sorted(sample.values.items()))
            say(f"sample {i}/{n} at +{sample.at:.0f}s: {shown}")
        if not self.opts.dagster:  # else Dagster's own sensor runs them
            await self._profile_run(urls.database_url, None)
        warmup = warmup_samples(self.opts.sample_seconds, self.opts.dagster)
        for name, first, last in start_end(self.samples, warmup):
            shown = f"{format_value(name, first)} -> {format_value(name, last)}"
            say(f"soak start -> end {name}: {shown}")
        verdicts = judge(self.samples, warmup)
        for v in verdicts:
            say(f"soak {v.format()}")
        grew = [v.series for v in verdicts if not v.holds]
        if not verdicts:
            self.outcome.problems.append("soak: too few samples to judge")
        if grew:
            self.outcome.problems.append(f"soak: growth beyond the bound in {', '.join(grew)}")
        if not self.watch.live_since(t0):
            self.outcome.problems.append("no live dashboard data during the soak")

    async def _verify(self, settings: Settings, started: datetime) -> None:
        """Start the servers again on the run's data and check what was stored."""
        import psycopg

        from core.service_urls import ServiceError
        from marketflow.services import Services
        from storage.db import libpq_url

        services = Services(settings)
        try:
            urls = await asyncio.to_thread(services.start)
        except ServiceError as exc:
            self.outcome.problems.append(f"verification could not start the servers: {exc}")
            return
        try:
            db = urls.database_url
            # the profile run the sensor would request for the ticks after the last one
            write_from = await asyncio.to_thread(sensor_write_from, db, self.cursor)
            if write_from is not None:
                await self._profile_run(db, write_from)
            with psycopg.connect(libpq_url(db)) as conn:
                self.outcome.ticks = tick_accounting(conn, self.home / "demo-ledger.jsonl")
                self.outcome.candles = candle_mismatches(conn)
                self.outcome.altered = altered_ticks(
                    conn,
                    rate=self.opts.rate,
                    seed=self.opts.seed,
                    start_ns=int(float(os.environ["DEMO_START"])) * 1_000_000_000,
                )
            for day_start, day_end in run_days(started, datetime.now(UTC)):
                found = await asyncio.to_thread(profile_mismatches, db, day_start, day_end)
                for table, count in found.items():
                    self.outcome.profiles[table] = self.outcome.profiles.get(table, 0) + count
        except Exception as exc:
            self.outcome.problems.append(f"verification: {exc.__class__.__name__}: {exc}")
        finally:
            await asyncio.to_thread(services.stop)

    def _server_dirs(self) -> list[Path]:
        """Where the servers' files are: under the home, or (when the service account cannot
        reach the home) a folder elsewhere that ``<home>/<server>/server`` links to."""
        links = [self.home / name / "server" for name in ("postgres", "redis")]
        return [link.resolve() for link in links if link.exists()]

    def _orphans(self) -> None:
        markers = tuple(str(p) for p in self._server_dirs())
        time.sleep(2.0)  # a process that is on its way out gets a moment
        reap()
        left = procs.run_processes(str(self.home), {os.getpid()}, markers)
        self.outcome.orphans = len(left)
        if left:
            described = "; ".join(f"{p}: {' '.join(procs.cmdline(p))[:120]}" for p in left)
            say(f"processes left behind (killed now): {described}")
            procs.kill_all(left)

    def _report(self, log: Path) -> int:
        t = self.outcome.ticks
        if t is not None and (t.unexpected or t.foreign):
            say(f"stored but never emitted: {t.unexpected}; foreign trade ids: {t.foreign}")
        if self.outcome.altered:
            say(f"stored trades differing from the generator's: {self.outcome.altered}")
        if self.outcome.profiles:
            shown = ", ".join(f"{k} {v}" for k, v in self.outcome.profiles.items())
            say(f"profile rows differing from a fresh recompute: {shown}")
        from core.service_urls import redact_text

        for problem in self.outcome.problems:  # exception texts may quote a URL
            say(f"problem: {redact_text(problem)}")
        ok = self.outcome.ok
        if ok and not self.opts.keep:
            for folder in self._server_dirs():
                if self.home not in folder.parents:
                    shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(self.home, ignore_errors=True)
        else:
            say(f"the run's home is kept: {self.home} (log {log.name})")
        print(self.outcome.line(), flush=True)
        return 0 if ok else 1


def run(opts: Options) -> int:
    return asyncio.run(Run(opts).main())
