"""The one entry point, ``marketflow``: each subcommand lives in ``marketflow/commands/``.

A command module exposes ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; it keeps heavy imports inside ``run`` so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from types import ModuleType

from pydantic import ValidationError

# subcommand → module under marketflow.commands (docs/architecture.md)
COMMANDS: dict[str, str] = {
    "up": "up",
    "services": "services",
    "migrate": "migrate",
    "ingest": "ingest",
    "replay": "replay",
    "backfill": "backfill",
    "engine": "engine",
    "web": "web",
    "polymarket": "polymarket",
    "profile": "profile",
    "status": "status",
    "bench": "bench",
    "backtest": "backtest",
    "chaos": "chaos",
    "archive": "archive",
    "footprint-config": "footprint_config",
    "backup": "backup",
    "restore": "restore",
}


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"marketflow.commands.{COMMANDS[name]}")
    except ModuleNotFoundError as exc:
        if exc.name == f"marketflow.commands.{COMMANDS[name]}":
            return None  # not built yet
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketflow",
        description="Market data and order flow: ingest, analytics (Dagster), engine, dashboard.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        epilog = getattr(module, "EPILOG", None)  # examples, printed as written
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter
            if epilog
            else argparse.HelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


# Libraries whose DEBUG (or INFO) lines carry credentials: websockets dumps frames (Alpaca's
# auth message), httpcore response headers (IG's session tokens), httpx request URLs
# (Alpha Vantage's apikey query parameter). They stay quiet even with -v.
QUIET_LOGGERS = {"websockets": logging.INFO, "httpcore": logging.INFO, "httpx": logging.WARNING}


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except ValidationError as exc:  # a setting refused at load: say which and why
        reasons = "; ".join(str(e.get("msg", e)) for e in exc.errors())
        print(f"marketflow: invalid configuration: {reasons}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
