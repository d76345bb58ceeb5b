"""``marketflow bench``: run the benchmarks of ``bench/`` in a scratch database (docs/README.md).

Works on a fresh machine: the services are started (embedded unless configured) if they are
not running, a scratch database is created on that server, migrated, handed to each
benchmark and dropped afterwards; services this command started are stopped again.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

HELP = "run benchmarks (each a ratio against a reference measured in the same run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench import BENCHMARKS

    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("."),
        help="where bench-results.json and bench-results.md go (default: current directory)",
    )


def load_benchmark(name: str) -> ModuleType | None:
    """The module ``bench.<name>``, or None when that benchmark is not built yet."""
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None
        raise


@contextlib.contextmanager
def scratch_database(database_url: str) -> Iterator[str]:
    """A new, migrated database on the server of ``database_url``; dropped on exit."""
    import psycopg
    from psycopg import sql

    from core.service_urls import with_database
    from storage.db import libpq_url
    from storage.migrate import upgrade

    name = f"mf_bench_{uuid.uuid4().hex[:10]}"
    admin = libpq_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin, name)
    try:
        alembic_log = logging.getLogger("alembic")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)  # one scratch migration per benchmark: no noise
        try:
            upgrade(url)
        finally:
            alembic_log.setLevel(level)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def _servers() -> Iterator[tuple[str, str]]:
    """(database_url, redis_url) of running services, starting them when needed."""
    import psycopg

    from core.service_urls import ServiceError, resolve_urls
    from core.settings import get_settings
    from marketflow.services import Services
    from storage.db import libpq_url

    settings = get_settings()
    running = None
    with contextlib.suppress(ServiceError, psycopg.OperationalError):
        urls = resolve_urls(settings)
        with psycopg.connect(libpq_url(urls.database_url), connect_timeout=3):
            running = urls
    if running is not None:
        yield running.database_url, running.redis_url
        return
    print("starting services for the benchmarks ...", flush=True)
    services = Services(settings)
    urls = services.start()
    try:
        yield urls.database_url, urls.redis_url
    finally:
        services.stop()


def run_benchmarks(names: list[str], *, quick: bool = False, report_dir: Path | None = None) -> int:
    """Run the named benchmarks (all by default); with ``report_dir``, write the report
    files there (bench/report.py)."""
    from bench import BENCHMARKS, BenchContext
    from bench.report import BenchReport, machine_facts, write_report
    from core.service_urls import redact_text

    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    selected = names or list(BENCHMARKS)
    failures = 0
    with _servers() as (database_url, redis_url):
        report = BenchReport(machine_facts(database_url, redis_url), quick=quick)
        for i, name in enumerate(selected, 1):
            module = load_benchmark(name)
            prefix = f"[{i}/{len(selected)}] {name}"
            if module is None:
                print(f"{prefix}: not built yet, skipped", flush=True)
                continue
            print(f"{prefix}: {module.DESCRIPTION}{' (quick)' if quick else ''} ...", flush=True)
            started = time.perf_counter()
            try:
                with scratch_database(database_url) as url:
                    results = module.run(BenchContext(url, redis_url, quick=quick))
            except Exception as exc:  # one broken benchmark must not hide the others
                failures += 1
                print(f"{prefix}: FAILED: {exc.__class__.__name__}: {exc}", flush=True)
                report.failed[name] = redact_text(f"{exc.__class__.__name__}: {exc}")
                continue
            report.add(name, results)
            for comparison in results:
                print("  " + comparison.format(), flush=True)
                if not math.isfinite(comparison.ratio):
                    failures += 1
            print(f"{prefix}: done in {time.perf_counter() - started:.1f} s", flush=True)
        if report_dir is not None:
            paths = write_report(report, report_dir)
            print(f"report: {paths[0]} and {paths[1]}", flush=True)
    return 1 if failures else 0


def run(args: argparse.Namespace) -> int:
    return run_benchmarks(args.names, quick=args.quick, report_dir=args.report_dir)
