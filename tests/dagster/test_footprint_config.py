"""A symbol's footprint parameters in PostgreSQL: refused by name when bad, read by the
profile run per symbol, and a refused value (a constraint dropped by hand) skips only its
symbol, with the reason."""

from __future__ import annotations

import warnings

import dagster as dg
import psycopg
import pytest

from analytics.sessions import session_bounds
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from bench.synthetic.ticks import insert_ticks, make_ticks

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

DAY = "2024-03-04"


def ids(conn: psycopg.Connection) -> tuple[int, int]:
    rows = dict(conn.execute("select symbol, id from symbols").fetchall())
    return int(rows["AAPL"]), int(rows["MSFT"])


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("imbalance_ratio", 0.0, "imbalance_ratio_must_be_positive"),
        ("imbalance_ratio", float("nan"), "footprint_config_values_must_be_finite"),
        ("imbalance_min_volume", -1.0, "imbalance_min_volume_must_not_be_negative"),
        ("big_print_sd", -2.0, "big_print_sd_must_be_positive"),
        ("big_print_sd", float("inf"), "footprint_config_values_must_be_finite"),
        ("big_print_minutes", 0, "big_print_minutes_must_be_at_least_1"),
        ("node_count", 0, "node_count_must_be_at_least_1"),
        ("node_prominence", 1.5, "node_prominence_must_be_in_0_1"),
        ("node_separation", 1.0, "node_separation_must_be_in_0_1"),
    ],
)
def test_bad_parameters_are_refused_with_a_named_rule(
    db_url: str, column: str, value: float, constraint: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl, _msft = ids(conn)
        with pytest.raises(psycopg.errors.CheckViolation, match=constraint):
            conn.execute(
                f"insert into footprint_config (symbol_id, {column}) values (%s, %s)",
                (aapl, value),
            )


def materialize(url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [session_profiles],
        partition_key=DAY,
        resources={"postgres": PostgresResource(database_url=url)},
        instance=dg.DagsterInstance.ephemeral(),
    )


@pytest.fixture
def two_symbols(db_url: str) -> tuple[str, int, int]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        aapl, msft = ids(conn)
        open_, close = session_bounds("XNYS", DAY)
        insert_ticks(conn, make_ticks([aapl, msft], open_, close, 3000, seed=5))
    return db_url, aapl, msft


def counts(url: str, table: str) -> dict[int, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"select symbol_id, count(*) from {table} group by 1").fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def test_each_symbol_runs_with_its_own_parameters(two_symbols) -> None:
    url, aapl, msft = two_symbols
    assert materialize(url).success
    before = counts(url, "footprint_imbalances")
    assert before[aapl] > 0 and before[msft] > 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into footprint_config (symbol_id, imbalance_min_volume, node_count) "
            "values (%s, 1e9, 1)",
            (aapl,),
        )
    assert materialize(url).success
    after = counts(url, "footprint_imbalances")
    assert aapl not in after and after[msft] == before[msft]  # MSFT keeps the defaults
    with psycopg.connect(url) as conn:
        most = conn.execute(
            "select max(greatest(jsonb_array_length(lvns), jsonb_array_length(hvns))) "
            "from profile_metrics where symbol_id = %s",
            (aapl,),
        ).fetchone()[0]
    assert most == 1


def test_a_refused_value_skips_its_symbol_only(two_symbols) -> None:
    url, aapl, msft = two_symbols
    with psycopg.connect(url, autocommit=True) as conn:
        # only by hand: a value the table would refuse
        conn.execute(
            "alter table footprint_config drop constraint imbalance_ratio_must_be_positive"
        )
        conn.execute(
            "insert into footprint_config (symbol_id, imbalance_ratio) values (%s, 0)", (aapl,)
        )
    result = materialize(url)
    assert result.success
    (flow,) = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["order_flow"]
    ]
    skipped = flow.step_materialization_data.materialization.metadata["skipped"].value
    assert list(skipped) == ["AAPL"]
    assert "footprint config: imbalance_ratio must be > 0, got 0.0" in skipped["AAPL"]
    assert aapl not in counts(url, "order_flow") and counts(url, "order_flow")[msft] > 0
