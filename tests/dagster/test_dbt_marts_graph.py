"""The signal marts in the Dagster asset graph: lineage from `ticks` through the profile
assets, the engine's and the Polymarket monitor's tables to each mart; dbt tests as asset
checks; the marts on the signals schedule's job with single-run backfills; and `dg` working
from the repository root."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import pytest

from orchestration.definitions import defs
from orchestration.jobs import signals_job
from tests.support.paths import REPO

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

MARTS = (
    "fct_signals",
    "strategy_performance",
    "market_state_sessions",
    "watchlist_latest",
    "binary_arbitrage_episodes",
    "session_candles",
)
# each mart's upstream tables (transitively), as Dagster asset keys
UPSTREAM = {
    "fct_signals": {
        "stg_signals",
        "signals",
        "stg_strategies",
        "strategies",
        "stg_market_state",
        "market_state",
        "stg_profile_metrics",
        "profile_metrics",
        "stg_order_flow",
        "order_flow",
        "stg_candles_1m",
        "candles_1m",
        "ticks",
    },
    "strategy_performance": {"fct_signals", "signals", "candles_1m", "ticks"},
    "market_state_sessions": {"stg_market_state", "market_state", "candles_1m", "ticks"},
    "watchlist_latest": {"signals", "market_state", "order_flow", "profile_metrics", "ticks"},
    "binary_arbitrage_episodes": {
        "stg_binary_opportunities",
        "binary_opportunities",
        "stg_binary_prices",
        "binary_prices",
    },
    "session_candles": {"stg_candles_1m", "stg_profile_metrics", "profile_metrics", "ticks"},
}


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def _ancestors(graph, key: str) -> set[str]:
    seen: set[str] = set()
    todo = [dg.AssetKey(key)]
    while todo:
        for parent in graph.get(todo.pop()).parent_keys:
            name = parent.to_user_string()
            if name not in seen:
                seen.add(name)
                todo.append(parent)
    return seen


@pytest.mark.parametrize("mart", MARTS)
def test_mart_lineage_reaches_its_raw_tables(graph, mart: str) -> None:
    assert UPSTREAM[mart] <= _ancestors(graph, mart)


def test_direct_edges_of_the_staging_layer(graph) -> None:
    parents = {
        key: {p.to_user_string() for p in graph.get(dg.AssetKey(key)).parent_keys}
        for key in ("stg_signals", "stg_market_state", "stg_candles_1m", "candles_1m")
    }
    assert parents == {
        "stg_signals": {"signals"},
        "stg_market_state": {"market_state"},
        "stg_candles_1m": {"candles_1m"},
        "candles_1m": {"ticks", "tick_history"},  # streamed, or loaded from the venue
    }
    # the engine's and monitor's tables are declared sources with a description
    for key in ("signals", "market_state", "binary_opportunities", "binary_prices"):
        node = graph.get(dg.AssetKey(key))
        assert not node.is_materializable and node.description


def test_marts_are_partitioned_checked_and_backfilled_in_one_run(graph) -> None:
    for mart in MARTS:
        node = graph.get(dg.AssetKey(mart))
        assert node.partitions_def is not None
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.group_name == "signals"
        # every mart's dbt data tests are asset checks
        assert node.check_keys, mart
    job_assets = {
        k.to_user_string()
        for k in signals_job.selection.resolve(graph)  # type: ignore[union-attr]
    }
    assert set(MARTS) <= job_assets


@pytest.mark.integration  # `dg check defs` in a subprocess: a code server's load
def test_dg_check_defs_from_the_repository_root() -> None:
    dg_cli = str(Path(sys.executable).with_name("dg"))
    out = subprocess.run(
        [dg_cli, "check", "defs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "All definitions loaded successfully" in out.stdout + out.stderr
