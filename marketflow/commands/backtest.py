"""``marketflow backtest``: a strategy over stored history, on the engine's code path.

The run and its trades, equity curve and daily stats are stored (``backtest_*`` tables,
docs/backtests.md) and a summary is printed; ``--no-save`` only prints.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backtest.run import Result

HELP = "backtest a strategy over stored history (the engine's own signals, fills on candles)"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", required=True, metavar="NAME", help="strategies.name")
    parser.add_argument(
        "--symbols", nargs="+", metavar="S", help="symbols to test (default: the strategy's)"
    )
    parser.add_argument(
        "--from", dest="first", type=_day, required=True, metavar="D", help="first UTC day"
    )
    parser.add_argument(
        "--to", dest="last", type=_day, metavar="D", help="last UTC day, inclusive (default: D)"
    )
    parser.add_argument(
        "--capital", type=float, default=100_000.0, help="starting equity (default 100000)"
    )
    parser.add_argument(
        "--risk", type=float, metavar="PCT", help="risk per trade in %% (default: the strategy's)"
    )
    parser.add_argument(
        "--slippage", type=float, default=0.0, metavar="BPS", help="basis points per market fill"
    )
    parser.add_argument(
        "--commission",
        type=float,
        default=0.0,
        metavar="PER_SHARE",
        help="commission per share, each side",
    )
    parser.add_argument(
        "--commission-order", type=float, default=0.0, metavar="USD", help="per order"
    )
    parser.add_argument("--max-positions", type=int, metavar="N", help="default MAX_POSITIONS")
    parser.add_argument(
        "--session-close", action="store_true", help="exit open positions at the session close"
    )
    parser.add_argument("--no-shorts", action="store_true", help="block SELL entries")
    parser.add_argument(
        "--no-ticks",
        action="store_true",
        help="fill and exit on candles only, even where prints are stored",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes for the signal pass (symbols dealt over them; default 1)",
    )
    parser.add_argument("--no-save", action="store_true", help="print only, store nothing")


class _Bar:
    """A text progress bar on stderr (symbol-minutes evaluated)."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="min", unit_scale=True, desc="backtest", leave=False)

    def __call__(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value * 100:.1f} %" if pct else f"{value:,.2f}"
    return str(value)


def summary_lines(result: Result, capital: float) -> list[str]:
    m = result.metrics
    lines = [
        f"strategy {result.strategy.name}: {', '.join(result.symbols)}",
        f"symbol-minutes {result.symbol_minutes:,}, signals {len(result.signals)}, "
        f"trades {m['trades']} (blocked: {_fmt(m['blocked'] or None)})",
        f"P&L {_fmt(m['total_pnl'])} on {capital:,.0f} (avg {_fmt(m['avg_pnl'])}), "
        f"win rate {_fmt(m['win_rate'], True)}, profit factor {_fmt(m['profit_factor'])}",
        f"max drawdown {_fmt(m['max_drawdown'])} ({_fmt(m['max_drawdown_pct'])} %), "
        f"Sharpe {_fmt(m['sharpe'])}, Sortino {_fmt(m['sortino'])}",
        f"exposure {_fmt(m['exposure'], True)}, avg holding {_fmt(m['avg_holding_minutes'])} min,"
        f" exits {_fmt(m['exit_reasons'] or None)}",
    ]
    for symbol, s in result.by_symbol.items():
        lines.append(
            f"  {symbol:<12} trades {s['trades']:>4}  P&L {_fmt(s['total_pnl']):>12}  "
            f"win {_fmt(s['win_rate'], True):>7}  PF {_fmt(s['profit_factor']):>6}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    import logging

    import psycopg

    from backtest.fills import Costs
    from backtest.portfolio import Account
    from backtest.run import BacktestError, Request, run_backtest
    from backtest.store import fail_run, save_result, start_run
    from core.service_urls import ServiceError, redact_text, resolve_urls
    from core.settings import get_settings
    from storage.db import libpq_url

    log = logging.getLogger("marketflow.backtest")
    s = get_settings()
    account = Account.from_settings(
        s,
        capital=args.capital,
        risk_pct=args.risk,
        costs=Costs(args.slippage, args.commission, args.commission_order),
        max_positions=args.max_positions,
        shorting=not args.no_shorts,
        exit_at_session_close=args.session_close,
    )
    request = Request(
        strategy=args.strategy,
        first_day=args.first,
        last_day=args.last or args.first,
        symbols=tuple(args.symbols) if args.symbols else None,
        account=account,
        min_aggression_score=s.min_aggression_score,
        ticks=not args.no_ticks,
    )
    try:
        url = resolve_urls(s).database_url
    except ServiceError as exc:
        log.error("%s", exc)
        return 2
    bar: _Bar | None = None

    def chosen(_symbols: list[str], total: int) -> None:
        nonlocal bar
        bar = _Bar(total)

    def advance(n: int) -> None:
        if bar is not None:
            bar(n)

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        run_id = None if args.no_save else start_run(conn, request)
        try:
            result = run_backtest(conn, request, advance, chosen, workers=max(1, args.workers))
        except BacktestError as exc:
            if run_id is not None:
                fail_run(conn, run_id, str(exc))
            log.error("%s", exc)
            return 1
        except Exception as exc:
            if run_id is not None:
                fail_run(conn, run_id, redact_text(f"{exc.__class__.__name__}: {exc}"))
            raise
        finally:
            if bar is not None:
                bar.close()
        if run_id is not None:
            with conn.transaction():
                save_result(conn, run_id, result)
    for line in summary_lines(result, account.capital):
        print(line)
    if run_id is not None:
        print(f"stored as backtest run {run_id}")
    return 0
