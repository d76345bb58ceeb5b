"""``marketflow backtest`` on a replayed capture: the ETH/USDT trades through
``marketflow replay``, profiles from the Dagster assets, then a backtest of a strategy."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from assets.market_data import candles_1m
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from core.settings import get_settings
from marketflow.cli import main

DAY = "2023-02-02"


@pytest.fixture
def replayed(
    db_url: str, redis_url: str, captures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    capture = captures / "trades" / "ethusdt_1000_trades.csv"
    assert main(["replay", str(capture), "--symbol", "ETHUSDT", "--fast"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert dg.materialize(
            [candles_1m, session_profiles],
            partition_key=DAY,
            resources={"postgres": PostgresResource(database_url=db_url)},
            instance=dg.DagsterInstance.ephemeral(),
        ).success
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "insert into strategies (name, definition, cooldown_seconds) values (%s, %s, 0)",
            (
                "eth momentum",
                json.dumps(
                    {"type": "rules", "symbol": "ETHUSDT",
                     "all": [{"metric": "price", "op": ">=", "ref": "poc"}]}
                ),
            ),
        )  # fmt: skip
    yield db_url
    get_settings.cache_clear()


def test_backtest_of_a_replayed_capture_prints_and_stores_a_run(replayed: str, capsys) -> None:
    with psycopg.connect(replayed) as conn:
        minutes = conn.execute("select count(*) from candles_1m").fetchone()[0]
        assert minutes == 4  # 09:20 … 09:23 UTC
        assert (
            conn.execute(
                "select count(*) from profile_metrics where horizon = 'session'"
            ).fetchone()[0]
            == minutes
        )
    code = main(
        ["backtest", "--strategy", "eth momentum", "--from", DAY, "--to", DAY,
         "--capital", "50000", "--slippage", "5", "--commission", "0.01"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "strategy eth momentum: ETHUSDT" in out
    assert "symbol-minutes 64" in out  # 4 candles, then 60 minutes while the window holds one
    with psycopg.connect(replayed) as conn:
        run = conn.execute(
            "select status, source, symbols, signals, trades, parameters, metrics"
            " from backtest_runs"
        ).fetchone()
        equity = conn.execute("select count(*) from backtest_equity").fetchone()[0]
    status, source, symbols, signals, trades, params, metrics = run
    assert (status, source, symbols) == ("succeeded", "cli", ["ETHUSDT"])
    assert signals >= 1 and f"signals {signals}," in out
    # four minutes of history leave no ATR (14 bars): every signal is blocked, none traded
    assert trades == 0 and metrics["blocked"] == {"no_levels": signals}
    assert params["capital"] == 50000 and params["slippage_bps"] == 5
    assert params["commission_per_share"] == 0.01
    assert equity == 1440


def test_unknown_strategy_fails_with_a_reason_and_no_save_stores_nothing(
    replayed: str, capsys
) -> None:
    assert main(["backtest", "--strategy", "nope", "--from", DAY]) == 1
    assert main(["backtest", "--strategy", "eth momentum", "--from", DAY, "--no-save"]) == 0
    assert "strategy eth momentum" in capsys.readouterr().out
    with psycopg.connect(replayed) as conn:
        rows = conn.execute("select strategy_name, status, error from backtest_runs").fetchall()
    assert rows == [("nope", "failed", "no strategy named 'nope'")]


def test_stored_prints_of_the_replayed_capture(replayed: str, captures: Path) -> None:
    import pandas as pd

    from backtest.prints import StoredPrints

    raw = pd.read_csv(captures / "trades" / "ethusdt_1000_trades.csv")
    ts = raw["timestamp"].to_numpy() / 1000.0
    with psycopg.connect(replayed) as conn:
        eth = conn.execute("select id from symbols where symbol = 'ETHUSDT'").fetchone()[0]
        prints = StoredPrints(conn)
        minute = float(ts[0] - ts[0] % 60)
        first = prints.next_print(eth, minute + 59, minute + 120)
        assert prints.minute(eth, minute).tolist() == raw["price"][ts < minute + 60].tolist()
    k = int((ts > minute + 59).argmax())
    assert first == (pytest.approx(ts[k]), raw["price"][k])


def test_summary_lines_of_a_run_with_trades() -> None:
    from datetime import UTC, date, datetime

    import numpy as np

    from backtest.run import Request, run_on_histories
    from bench.synthetic.history import history
    from marketflow.commands.backtest import summary_lines
    from strategies.definitions import parse_strategy

    start = datetime(2026, 3, 2, tzinfo=UTC)
    h = history(1, "AAA", start.timestamp() + 60.0 * np.arange(1440), seed=3)
    strategy = parse_strategy(1, "s", {"type": "price_above_sma", "period": 20}, 300)
    request = Request("s", date(2026, 3, 2), date(2026, 3, 2))
    result = run_on_histories(strategy, [h], {(1, "s"): _enabled()}, request)
    lines = summary_lines(result, 100_000)
    m = result.metrics
    assert m["trades"] > 0
    assert lines[0] == "strategy s: AAA"
    assert f"trades {m['trades']} (blocked: " in lines[1]
    assert f"P&L {m['total_pnl']:,.2f} on 100,000" in lines[2]
    assert lines[-1].split()[:3] == ["AAA", "trades", str(m["trades"])]


def _enabled():
    from strategies.model import SymbolConfig

    return SymbolConfig(enabled=True)
