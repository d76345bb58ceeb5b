"""``marketflow up``: services, migrations, Dagster and every long-running process, supervised.

Starts PostgreSQL and Redis (embedded unless configured), migrates, writes DAGSTER_HOME's
dagster.yaml, then supervises whichever long-running commands exist (ingest, engine, web,
``polymarket stream`` when POLYMARKET_ENABLED) plus the Dagster webserver and daemon. Prints
one block with every address. Ctrl-C or SIGTERM stops the children, then the services.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.service_urls import ServiceUrls
    from core.settings import Settings
    from marketflow.embedded.watch import Restartable
    from marketflow.supervisor import ChildSpec

HELP = "run everything: services, migrations, Dagster, ingest, engine, dashboard (supervised)"
READY_LINE = "marketflow is up. Ctrl-C stops everything."

log = logging.getLogger("marketflow.up")

# command line (after `marketflow`) of each long-running process, in start order
LONG_RUNNING: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ingest", ("ingest",)),
    ("engine", ("engine",)),
    ("web", ("web",)),
)
POLYMARKET = ("polymarket", ("polymarket", "stream"))
DAGSTER_HOST = "127.0.0.1"
LOOPBACK = "127.0.0.1"
INGEST = "ingest"
WEB_TOKEN_ENV = "MARKETFLOW_WEB_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-dagster", action="store_true", help="do not start the Dagster webserver and daemon"
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated processes to supervise (ingest,engine,web,polymarket,dagster)",
    )
    parser.add_argument(
        "--ingest-shards",
        type=int,
        default=1,
        metavar="N",
        help="run N ingest processes (ingest-1..N) over disjoint shares of SYMBOLS (default 1)",
    )
    parser.add_argument(
        "--show-all",
        action="store_true",
        help="show every process's info lines in the terminal too (they are always in "
        "MARKETFLOW_HOME/logs/<process>.log)",
    )
    from core.settings import STOP_TIMEOUT_S  # ingest's shutdown fits into the same budget

    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=STOP_TIMEOUT_S,
        help=f"seconds a child gets after SIGTERM before SIGKILL (default {STOP_TIMEOUT_S:g})",
    )


def command_exists(command: str) -> bool:
    return importlib.util.find_spec(f"marketflow.commands.{command}") is not None


def child_environment(
    base: Mapping[str, str], home: Path, extra: Mapping[str, str]
) -> dict[str, str]:
    """Children inherit ours, with an absolute MARKETFLOW_HOME (they may run elsewhere)."""
    env = dict(base)
    env.update(extra)
    env["MARKETFLOW_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the supervisor as they happen
    return env


def shard_symbols(symbols: Sequence[str], shards: int) -> list[list[str]]:
    """Split symbols into at most ``shards`` disjoint, non-empty sets that cover them all.

    Deterministic whatever the input order or repeats: the distinct symbols, sorted, are
    dealt round-robin, so shard sizes differ by at most one.
    """
    if shards < 1:
        raise ValueError(f"the number of ingest shards must be >= 1, got {shards}")
    distinct = sorted(set(symbols))
    dealt = [distinct[i::shards] for i in range(shards)]
    return [share for share in dealt if share]


def _ingest_argvs(settings: Settings, shards: int) -> list[tuple[str, tuple[str, ...]]]:
    """(name, argv) of the ingest processes: one ``ingest``, or ``ingest-1..N`` with shares."""
    if shards == 1:
        return [(INGEST, (INGEST,))]
    shares = shard_symbols(settings.symbols, shards)
    return [
        (f"{INGEST}-{i}", (INGEST, "--symbols", ",".join(share)))
        for i, share in enumerate(shares, start=1)
    ]


def plan_children(
    settings: Settings,
    env: Mapping[str, str],
    only: set[str] | None,
    dagster: bool,
    ingest_shards: int = 1,
) -> tuple[list[ChildSpec], list[str]]:
    """The children to supervise and notes on what is skipped (and why).

    ingest_shards: N > 1 runs ingest-1..N, each over its own share of SYMBOLS (``--only
    ingest`` keeps them all); fewer when there are fewer symbols than shards.
    """
    from marketflow.dagster_home import DEFINITIONS_FILE, dagster_available, dagster_children
    from marketflow.supervisor import ChildSpec

    specs: list[ChildSpec] = []
    notes: list[str] = []
    wanted = [*LONG_RUNNING]
    if settings.polymarket_enabled:
        wanted.append(POLYMARKET)
    at = wanted.index((INGEST, (INGEST,)))
    wanted[at : at + 1] = _ingest_argvs(settings, ingest_shards)
    for name, argv in wanted:
        if only is not None and name.split("-")[0] not in only:
            continue
        if not command_exists(argv[0]):
            notes.append(f"{name}: skipped (`marketflow {argv[0]}` is not built yet)")
            continue
        specs.append(ChildSpec(name, [sys.executable, "-m", "marketflow.cli", *argv], env=env))
    if dagster and (only is None or "dagster" in only):
        if dagster_available():
            # The Dagster UI has no authentication: it stays on loopback whatever
            # MARKETFLOW_BIND_HOST says (reach it through an SSH tunnel or a proxy).
            specs.extend(dagster_children(env, DAGSTER_HOST, settings.dagster_port))
        else:
            notes.append(f"dagster: skipped ({DEFINITIONS_FILE} does not exist yet)")
    return specs, notes


def dashboard_token(settings: Settings) -> str | None:
    """The token the dashboard's writes need when no token is configured: generated once
    per `up` (a restarted web child keeps it) and handed to the web child alone through its
    environment (MARKETFLOW_WEB_TOKEN); None when the environment already names one."""
    if settings.api_token is not None or settings.web_token is not None:
        return None
    from streaming.web.security import generate_token

    return generate_token()


def with_web_token(specs: Sequence[ChildSpec], token: str | None) -> list[ChildSpec]:
    if token is None:
        return list(specs)
    return [
        replace(spec, env={**(spec.env or os.environ), WEB_TOKEN_ENV: token})
        if spec.name == "web"
        else spec
        for spec in specs
    ]


def address_rows(
    settings: Settings,
    urls: ServiceUrls,
    specs: Sequence[ChildSpec],
    web_token: str | None = None,
) -> list[tuple[str, str]]:
    """Every address `up` serves (passwords redacted), as (label, address). A generated
    dashboard token is shown inside the dashboard's link, and nowhere else."""
    names = {spec.name for spec in specs}
    host = settings.bind_host
    if web_token is not None:
        token = f"?token={web_token}"
    elif settings.api_token is not None:
        token = "?token=<MARKETFLOW_API_TOKEN>"
    else:
        token = f"?token=<{WEB_TOKEN_ENV}>" if settings.web_token is not None else ""
    dagster = (
        f"http://{DAGSTER_HOST}:{settings.dagster_port}"
        if "dagster-web" in names
        else "not running"
    )
    dashboard = f"http://{host}:{settings.web_port}/{token}" if "web" in names else "not running"
    return [("Dagster UI", dagster), ("Dashboard", dashboard), *urls.describe()]


def listeners(settings: Settings, specs: Sequence[ChildSpec]) -> list[tuple[str, int]]:
    """(host, port) of the servers `up` starts, which answer once the platform is ready."""
    names = {spec.name for spec in specs}
    out = []
    if "web" in names:
        host = settings.bind_host if settings.bind_host not in ("0.0.0.0", "::") else LOOPBACK
        out.append((host, settings.web_port))
    if "dagster-web" in names:
        out.append((DAGSTER_HOST, settings.dagster_port))
    return out


def address_block(
    settings: Settings,
    urls: ServiceUrls,
    specs: Sequence[ChildSpec],
    notes: Sequence[str],
    web_token: str | None = None,
) -> str:
    """The one block `up` prints: every address (passwords redacted) and every process."""
    rows = [
        *address_rows(settings, urls, specs, web_token),
        ("Home", str(settings.state_dir)),
        ("Logs", str(settings.state_dir / "logs")),
        ("Processes", ", ".join(spec.name for spec in specs) or "none"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["", "=" * 72, *(f"  {k:<{width}}  {v}" for k, v in rows)]
    lines += [f"  {note}" for note in notes]
    lines += ["=" * 72, READY_LINE, ""]
    return "\n".join(lines)


async def _migrate(database_url: str) -> None:
    try:
        from storage.migrate import upgrade
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("storage"):
            log.warning("migrations skipped: storage.migrate is not available yet")
            return
        raise
    await asyncio.to_thread(upgrade, database_url)
    log.info("database migrated")


async def _up(args: argparse.Namespace) -> int:
    from core.service_urls import ServiceError
    from core.settings import get_settings
    from marketflow.dagster_home import write_dagster_home
    from marketflow.embedded.relocated import prune_relocated
    from marketflow.platform import Platform, route_own_logging
    from marketflow.process_logs import LOG_DIR, ProcessLogs, TerminalFilter
    from marketflow.services import Services
    from marketflow.supervisor import install_stop_signals
    from streaming.heartbeat import Heartbeat

    settings = get_settings()
    if args.ingest_shards < 1:
        log.error("--ingest-shards must be at least 1, got %d", args.ingest_shards)
        return 2
    if args.only is None or "web" in args.only:
        from streaming.web.server import WebConfigError, check_token_config

        try:  # fail now rather than restart a dashboard that can never start
            check_token_config(settings.bind_host, "set" if settings.api_token else None)
        except WebConfigError as exc:
            log.error("%s", exc)
            return 2
    home = settings.state_dir.resolve()
    threshold = logging.INFO if args.show_all else logging.WARNING
    logs = ProcessLogs(home / LOG_DIR, TerminalFilter(threshold=threshold))
    route_own_logging(logs, verbose=args.verbose or args.show_all)
    for removed in await asyncio.to_thread(prune_relocated):
        log.warning("removed %s", removed)
    stop = asyncio.Event()
    install_stop_signals(stop)
    services = Services(settings)
    platform: Platform | None = None
    try:
        try:
            urls = await asyncio.to_thread(services.start)
        except ServiceError as exc:
            log.error("%s", exc)
            return 1
        if stop.is_set():
            return 0
        await _migrate(urls.database_url)
        dagster_env = write_dagster_home(home / "dagster", urls.dagster_database_url)
        env = child_environment(os.environ, home, dagster_env)
        only = {n.strip() for n in args.only.split(",")} if args.only else None
        specs, notes = plan_children(
            settings, env, only, dagster=not args.no_dagster, ingest_shards=args.ingest_shards
        )
        web_token = dashboard_token(settings)
        specs = with_web_token(specs, web_token)
        if stop.is_set():
            return 0
        servers: dict[str, Restartable] = {}
        if urls.embedded_postgres:
            servers["postgres"] = services.postgres
        if urls.embedded_redis:
            servers["redis"] = services.redis
        platform = Platform(
            home,
            specs,
            servers,
            logs,
            block=lambda: address_block(settings, urls, specs, notes, web_token),
            addresses=address_rows(settings, urls, specs),  # no generated token in a file
            listeners=listeners(settings, specs),
            stop_timeout=args.stop_timeout,
        )
        await platform.start()
        async with Heartbeat(urls.redis_url, "up", platform.counters):
            await stop.wait()
        return 0
    finally:
        if platform is not None:
            await platform.stop()
        await asyncio.to_thread(services.stop)
        logs.close()
        print("marketflow stopped", flush=True)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_up(args))
