"""History of any age: MARKETFLOW_HISTORY_START sets the first partition for the Dagster
definitions, the tick sensor and dbt alike; a replay of 2019 ticks is profiled; a replayed
symbol's row size follows its price unless `--row-size` says otherwise."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import psycopg
import pytest

from assets.dbt_marts import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_env
from assets.market_data import candles_1m
from assets.partitions import HISTORY_START_ENV, daily_partitions
from assets.profiles import session_profiles
from assets.resources import PostgresResource
from core.settings import Settings, get_settings
from marketflow import cli
from orchestration.sensors import TickProgress, partitions_for
from storage.symbols import row_size_for_price
from streaming.ingest.config import PipelineConfig
from streaming.ingest.pipeline import IngestPipeline
from streaming.providers.replay import ReplayProvider
from tests.support.paths import REPO

OLD_DAY = "2019-10-11"


def test_history_start_defaults_to_2010_and_reads_an_iso_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(HISTORY_START_ENV, raising=False)
    assert Settings(_env_file=None).history_start == date(2010, 1, 1)
    monkeypatch.setenv(HISTORY_START_ENV, "2005-06-01")
    assert Settings(_env_file=None).history_start == date(2005, 6, 1)
    monkeypatch.setenv(HISTORY_START_ENV, "June 2005")
    with pytest.raises(ValueError, match=r"(?i)history_start"):
        Settings(_env_file=None)


def test_definitions_sensor_and_dbt_share_the_start(db_url: str, tmp_path: Path) -> None:
    """A fresh process with the variable set: the partitions, the sensor's partition filter
    and the environment Dagster gives dbt all start on that day, and dbt's window macro
    renders it."""
    probe = (
        "import json\n"
        "from datetime import datetime, UTC\n"
        "from assets.partitions import daily_partitions\n"
        "from orchestration.sensors import TickProgress, partitions_for\n"
        "from assets.dbt_marts import dbt_env\n"
        "t = lambda s: datetime.fromisoformat(s).replace(tzinfo=UTC)\n"
        "p = TickProgress(2, 9, t('2005-05-31T12:00'), t('2005-06-01T12:00'))\n"
        "print(json.dumps({'first': daily_partitions.get_first_partition_key(),\n"
        "  'sensor': partitions_for(p, t('2024-01-01T00:00')),\n"
        "  'dbt': dbt_env('postgresql://u@h/db')['MARKETFLOW_HISTORY_START']}))\n"
    )
    env = {**os.environ, HISTORY_START_ENV: "2005-06-01"}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"first": "2005-06-01", "sensor": ["2005-06-01"], "dbt": "2005-06-01"}
    # dbt's window: the later of min_date and the history start
    compiled = subprocess.run(
        [
            DBT_EXECUTABLE,
            "compile",
            "--quiet",
            "--inline",
            "select {{ window_start() }} as first_day, {{ window_start(1) }} as lookback",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
        ],
        env={**os.environ, **dbt_env(db_url), HISTORY_START_ENV: "2005-06-01"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compiled.returncode == 0, compiled.stdout[-2000:]
    assert "('2005-06-01'::date - 0)" in compiled.stdout
    assert "('2005-06-01'::date - 1)" in compiled.stdout


def test_the_default_start_covers_2019_in_this_process() -> None:
    assert daily_partitions.get_first_partition_key() <= OLD_DAY
    when = datetime(2019, 10, 11, 12, tzinfo=UTC)
    progress = TickProgress(5, 10, when, when)
    assert partitions_for(progress, datetime(2024, 1, 1, tzinfo=UTC)) == [OLD_DAY]


def xrp_file(path: Path) -> Path:
    """A synthetic hour of XRP/USDT trades on 2019-10-11 near 0.29 (epoch ms, Binance-like)."""
    rng = np.random.default_rng(19)
    n = 600
    start = int(pd.Timestamp(f"{OLD_DAY} 13:00", tz="UTC").timestamp() * 1000)
    frame = pd.DataFrame(
        {
            "id": np.arange(n) + 1,
            "timestamp": start + np.sort(rng.integers(0, 3_600_000, n)),
            "price": np.round(0.29 + np.cumsum(rng.choice([-1, 0, 1], n)) * 0.00001, 5),
            "amount": rng.integers(10, 5000, n).astype(float),
            "side": rng.choice(["buy", "sell"], n),
        }
    )
    frame.to_csv(path, index=False)
    return path


def test_replay_of_2019_ticks_then_a_profile_run_for_that_day(db_url: str, tmp_path: Path) -> None:
    path = xrp_file(tmp_path / "xrpusdt_2019.csv")
    provider = ReplayProvider(path, symbol="XRPUSDT")
    assert provider.row_sizes == {"XRPUSDT": 0.00001}  # 0.29 → one bin is 0.003 % of it
    cfg = PipelineConfig(source="replay", spool_dir=tmp_path / "spool")

    async def replay() -> IngestPipeline:
        pipe = IngestPipeline(db_url, None, cfg)
        await pipe.run(provider)
        return pipe

    assert asyncio.run(asyncio.wait_for(replay(), 60)).counters.stored == 600
    result = dg.materialize(
        [candles_1m, session_profiles],
        resources={"postgres": PostgresResource(database_url=db_url)},
        partition_key=OLD_DAY,
    )
    assert result.success
    with psycopg.connect(db_url) as conn:
        row_size, market = conn.execute(
            "select row_size, market from symbols where symbol = 'XRPUSDT'"
        ).fetchone()
        levels, sessions = conn.execute(
            "select (select count(distinct price_level) from volume_profile v "
            "        join symbols s on s.id = v.symbol_id where s.symbol = 'XRPUSDT'), "
            "       (select count(*) from profile_metrics m join symbols s on s.id = m.symbol_id "
            "        where s.symbol = 'XRPUSDT' and m.horizon = 'session' "
            "          and m.session_date = %s)",
            (OLD_DAY,),
        ).fetchone()
    assert (row_size, market) == (0.00001, "24/7")
    assert levels > 10  # spread over bins, not one 0.01 bin for every print
    assert sessions > 0


@pytest.mark.parametrize(
    ("price", "row_size"),
    [(180.0, 0.01), (2400.0, 0.1), (60_000.0, 1.0), (0.29, 1e-5), (0.0014, 1e-7), (1e-6, 1e-8)],
)
def test_row_size_rule(price: float, row_size: float) -> None:
    assert row_size_for_price(price) == row_size
    assert row_size_for_price(float("nan")) == row_size_for_price(0.0) == 0.01


def test_replay_row_size_option_sets_new_and_existing_symbols(
    db_url: str,
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = xrp_file(tmp_path / "xrp.csv")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("MARKETFLOW_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        assert cli.main(["replay", str(path), "--symbol", "XRPUSDT", "--row-size", "0.0005"]) == 0
        # ETHUSDT is seeded with 0.05: an explicit row size replaces it
        assert cli.main(["replay", str(path), "--symbol", "ETHUSDT", "--row-size", "0.001"]) == 0
        assert cli.main(["replay", str(path), "--symbol", "X", "--row-size", "0"]) == 2
    finally:
        get_settings.cache_clear()
    with psycopg.connect(db_url) as conn:
        sizes = dict(
            conn.execute(
                "select symbol, row_size from symbols where symbol in ('XRPUSDT', 'ETHUSDT')"
            ).fetchall()
        )
    assert sizes == {"XRPUSDT": 0.0005, "ETHUSDT": 0.001}
    assert "ETHUSDT: row size set to 0.001" in capsys.readouterr().out
