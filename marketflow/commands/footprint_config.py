"""``marketflow footprint-config``: a symbol's footprint parameters (docs/semantics.md,
"Per-symbol parameters") without SQL.

No symbol: every symbol with a ``footprint_config`` row, beside the defaults. A symbol: its
effective parameters (stored or default). With values: those are set, the others stay;
``--reset`` returns all (or the named) parameters to their defaults. Every value goes
through ``FootprintConfig`` first: a refused one is named and nothing is written.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

HELP = "show or change a symbol's footprint parameters (imbalance ratio, big prints, nodes)"
EPILOG = """examples:
  marketflow footprint-config                      every symbol with stored parameters
  marketflow footprint-config AAPL                 AAPL's parameters, stored or default
  marketflow footprint-config AAPL --imbalance-ratio 2.5 --nodes 7   set these two
  marketflow footprint-config AAPL --reset nodes   node_count back to its default
  marketflow footprint-config AAPL --reset         all back to the defaults (row removed)

A refused value (e.g. --imbalance-ratio 0) is named and nothing is written (exit 2).
Profile runs read the parameters when they start; the tick sensor's next run applies them
from the minutes it recomputes, so re-run today's partition to redo the whole day
(printed after each change; docs/semantics.md, "Per-symbol parameters")."""

# option name (without --) → footprint_config column, in the table's order
OPTIONS: dict[str, str] = {
    "imbalance-ratio": "imbalance_ratio",
    "min-volume": "imbalance_min_volume",
    "big-print-sd": "big_print_sd",
    "big-print-minutes": "big_print_minutes",
    "nodes": "node_count",
    "node-prominence": "node_prominence",
    "node-separation": "node_separation",
}
OPTION_OF = {column: option for option, column in OPTIONS.items()}
HELPS = {
    "imbalance_ratio": "R: a diagonal imbalance needs R × the opposite volume (> 0)",
    "imbalance_min_volume": "V_min: and at least this volume (>= 0)",
    "big_print_sd": "k: a big print is k standard deviations above the mean size (> 0)",
    "big_print_minutes": "minutes of prints the big-print reference looks back (>= 1)",
    "node_count": "N: at most N LVNs and N HVNs per profile (>= 1)",
    "node_prominence": "a node's prominence, share of the POC volume (0, 1]",
    "node_separation": "a node's distance from a stronger one, share of the rows [0, 1)",
}
USAGE_ERROR = 2
SERVER_ERROR = 1


def _number(text: str) -> float:
    """A number as typed: 7 stays 7 (a message says "got 7", not "got 7.0")."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "symbol", nargs="?", metavar="SYMBOL", help="the symbol (none: list the configured ones)"
    )
    for option, column in OPTIONS.items():
        parser.add_argument(
            f"--{option}", dest=column, type=_number, metavar="X", help=HELPS[column]
        )
    parser.add_argument(
        "--reset",
        nargs="*",
        metavar="PARAM",
        help="back to the defaults: all parameters, or only the named ones "
        f"({', '.join(OPTIONS)}); put SYMBOL before it",
    )


class UsageError(ValueError):
    """Refused input: printed, exit code 2, nothing written."""


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def given_values(args: argparse.Namespace) -> dict[str, float]:
    return {c: getattr(args, c) for c in OPTIONS.values() if getattr(args, c) is not None}


def reset_columns(names: list[str] | None) -> list[str] | None:
    """The columns ``--reset`` names (option or column names); None: all of them."""
    if not names:
        return None
    columns = []
    for name in names:
        column = OPTIONS.get(name.lstrip("-"), name if name in OPTION_OF else None)
        if column is None:
            raise UsageError(
                f"--reset: unknown parameter {name!r}; known: {', '.join(OPTIONS)} "
                "(put SYMBOL before --reset)"
            )
        columns.append(column)
    return columns


def validate(stored: Mapping[str, Any], values: Mapping[str, float]) -> None:
    """Each given value alone, then the row it makes, through FootprintConfig."""
    from analytics.footprint_config import FootprintConfig

    problems = []
    for column, value in values.items():
        if not math.isfinite(value):  # float() takes "nan" and "inf": say what is wrong
            problems.append(f"--{OPTION_OF[column]} ({column}) must be finite, got {value!r}")
            continue
        try:
            FootprintConfig.from_row({column: value})
        except ValueError as error:
            reason = str(error).removeprefix(f"footprint config: {column} ")
            problems.append(f"--{OPTION_OF[column]} ({column}) {reason}")
    if not problems:
        try:
            FootprintConfig.from_row({**stored, **values})
        except ValueError as error:  # a stored value the constraints no longer refuse
            problems.append(f"the stored row is refused: {error}; reset it first")
    if problems:
        raise UsageError("; ".join(problems) + "; nothing changed")


def list_table(configs: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per configured symbol under the defaults; "·" is the default."""
    from analytics.footprint_config import DEFAULT_CONFIG

    header = ["symbol", *OPTIONS]
    defaults = ["default", *(_fmt(getattr(DEFAULT_CONFIG, c)) for c in OPTIONS.values())]
    rows = [header, defaults]
    for symbol, row in configs.items():
        cells = [_fmt(row[c]) if row.get(c) is not None else "·" for c in OPTIONS.values()]
        rows.append([symbol, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    count = len(configs)
    lines.append(
        f"{count} symbol{'s' if count != 1 else ''} with stored parameters; "
        "· = the default (every other symbol uses the defaults)"
    )
    return "\n".join(line.rstrip() for line in lines)


def show_table(symbol: str, row: Mapping[str, Any]) -> str:
    """A symbol's effective parameters: value, default, and which one applies."""
    from analytics.footprint_config import DEFAULT_CONFIG

    rows = [["option", "column", "value", "default", "from"]]
    for option, column in OPTIONS.items():
        default = _fmt(getattr(DEFAULT_CONFIG, column))
        stored = row.get(column)
        value, source = (default, "default") if stored is None else (_fmt(stored), "stored")
        rows.append([f"--{option}", column, value, default, source])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{symbol} footprint parameters"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def recompute_note(symbol: str) -> str:
    """Where the next profile run picks the change up (docs/profiles-incremental.md)."""
    today = datetime.now(UTC).date().isoformat()
    return (
        "Profile runs read these when they start. The next minute run (the tick sensor's, "
        f"when new prints of {symbol} arrive) uses them from the minutes it recomputes on "
        "(from a few minutes before the new prints) and for the composite: today's earlier "
        "minutes keep the rows computed with the old values, and nothing is rewritten while "
        "no print arrives.\n"
        "To recompute today's partition with them: in the Dagster UI, Materialize the "
        f"profiles group for partition {today}, or\n"
        f'  .venv/bin/dg launch --assets "key:candles_1m or group:profiles" --partition {today}\n'
        "(earlier days: the same with --partition-range D1...D2). "
        f"`marketflow profile --symbol {symbol}` already computes with them (from the ticks, "
        "nothing stored)."
    )


def _connected(args: argparse.Namespace, conn: Any) -> int:
    from storage.footprint_config import configs_by_symbol, reset_parameters, set_parameters
    from storage.queries import find_symbol, footprint_configs, known_symbols

    values = given_values(args)
    reset = None if args.reset is None else reset_columns(args.reset)
    if args.symbol is None:
        if values or args.reset is not None:
            raise UsageError("name the SYMBOL to change, e.g. footprint-config AAPL --nodes 7")
        print(list_table(configs_by_symbol(conn)))
        return 0
    found = find_symbol(conn, args.symbol)
    if found is None:
        known = known_symbols(conn)
        raise UsageError(f"unknown symbol {args.symbol!r}; known: {', '.join(known) or 'none'}")
    stored = footprint_configs(conn, [found.id]).get(found.id, {})
    if args.reset is not None and values:
        raise UsageError("--reset and new values in one command: run them one after the other")
    if values:
        validate(stored, values)
        set_parameters(conn, found.id, values)
    elif args.reset is not None:
        reset_parameters(conn, found.id, reset)
    else:
        print(show_table(found.symbol, stored))
        return 0
    after = footprint_configs(conn, [found.id]).get(found.id, {})
    changes = [
        f"{column} {_fmt(stored.get(column)) if stored.get(column) is not None else 'default'}"
        f" → {_fmt(after.get(column)) if after.get(column) is not None else 'default'}"
        for column in OPTIONS.values()
        if stored.get(column) != after.get(column)
    ]
    print(show_table(found.symbol, after))
    print(f"changed: {', '.join(changes) or 'nothing (already so)'}")
    print(recompute_note(found.symbol))
    return 0


def run(args: argparse.Namespace) -> int:
    import psycopg

    from core.service_urls import ServiceError, database_urls, redact_text, redact_url
    from core.settings import get_settings
    from storage.db import connect

    prefix = "marketflow footprint-config:"
    try:
        url, _dagster = database_urls(get_settings())
    except ServiceError as exc:
        print(f"{prefix} {redact_text(str(exc))}")
        return SERVER_ERROR
    try:
        with connect(url, autocommit=True, application_name="footprint-config") as conn:
            return _connected(args, conn)
    except UsageError as exc:
        print(f"{prefix} {exc}")
        return USAGE_ERROR
    except psycopg.errors.CheckViolation as exc:  # the table's second guard
        name = exc.diag.constraint_name or "a check constraint"
        print(f"{prefix} refused by {name}; nothing changed")
        return USAGE_ERROR
    except psycopg.OperationalError as exc:
        print(
            f"{prefix} cannot reach PostgreSQL at {redact_url(url)} "
            f"({exc.__class__.__name__}); start it with `marketflow services` or check "
            "DATABASE_URL"
        )
        return SERVER_ERROR
