"""``marketflow migrate``: bring the market database schema up to date (or down)."""

from __future__ import annotations

import argparse

HELP = "upgrade the market database to the latest schema (or --downgrade REV)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--revision",
        default="head",
        metavar="REV",
        help="upgrade to this Alembic revision (default: head)",
    )
    group.add_argument(
        "--downgrade",
        metavar="REV",
        help="downgrade to this revision instead ('base' removes every table)",
    )


def run(args: argparse.Namespace) -> int:
    from core.service_urls import ServiceError, redact_text, redact_url, resolve_urls
    from core.settings import get_settings
    from storage.migrate import current_revision, downgrade, upgrade

    try:
        url = resolve_urls(get_settings()).database_url
    except ServiceError as exc:
        print(f"marketflow migrate: {exc}")
        return 2
    try:
        before = current_revision(url)
        if args.downgrade:
            downgrade(url, args.downgrade)
        else:
            upgrade(url, args.revision)
        after = current_revision(url)
    except Exception as exc:  # the server's message is useful; the URL is redacted
        reason = redact_text(f"{exc.__class__.__name__}: {exc}")
        print(f"marketflow migrate: failed on {redact_url(url)}: {reason}")
        return 1
    print(f"{redact_url(url)}: {before or 'base'} -> {after or 'base'}")
    return 0
