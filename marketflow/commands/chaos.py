"""``marketflow chaos``: the platform under faults, then proven (docs/chaos.md).

``marketflow chaos [--minutes N]`` kills ingest, the engine, the dashboard, PostgreSQL and
Redis (alone and together), fills the spool's disk and drops the provider feed while a
private platform runs (`up` restarts what dies), then checks every emitted trade is stored
once, candles and profiles equal a recompute, the dashboard socket is live again and no
process is left. ``--soak`` samples resources instead of faulting and fails on growth.
The last line is the report; the exit code is non-zero on any loss, duplicate, mismatch,
orphan or other failure.
"""

from __future__ import annotations

import argparse

HELP = "run the platform under faults (or a soak) and prove nothing was lost"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--minutes", type=float, default=None, help="run length (default 2; 60 with --soak)"
    )
    parser.add_argument(
        "--soak", action="store_true", help="no faults: sample RSS, connections, Redis memory"
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=60.0, help=argparse.SUPPRESS
    )  # soak sample period; shorter only for the CI form
    parser.add_argument(
        "--symbols", help="comma-separated demo symbols (default BTCUSD,ETHUSDT,AAPL)"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="demo trades/s per symbol")
    parser.add_argument("--seed", type=int, default=7, help="demo seed")
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's temporary home even when it passes"
    )
    parser.add_argument(
        "--dagster",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run Dagster's webserver and daemon under up too (default: with --soak only)",
    )


def run(args: argparse.Namespace) -> int:
    from marketflow.chaos.outcome import DEFAULT_SYMBOLS, Options
    from marketflow.chaos.run import run as run_chaos

    minutes = args.minutes if args.minutes is not None else (60.0 if args.soak else 2.0)
    if minutes <= 0 or args.sample_seconds <= 0 or args.rate <= 0:
        print("--minutes, --sample-seconds and --rate must be positive")
        return 2
    symbols = (
        tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
        if args.symbols
        else DEFAULT_SYMBOLS
    )
    return run_chaos(
        Options(
            minutes=minutes,
            soak=args.soak,
            sample_seconds=args.sample_seconds,
            symbols=symbols,
            rate=args.rate,
            seed=args.seed,
            keep=args.keep,
            dagster=args.soak if args.dagster is None else args.dagster,
        )
    )
