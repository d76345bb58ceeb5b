"""The API keeps the contract its OpenAPI document states: schemathesis, with every check,
against the real server on a seeded morning (tests/support/web_seed.py).

It runs as a user would run it by hand (docs/dashboard.md, "Checking the contract"): the
``st`` command of the virtualenv with ``tests/web/schemathesis.toml``, the token of the
server in the environment, a bounded number of examples per operation and a fixed seed, so
a failure here is reproducible with the command it prints. Writes are part of the contract:
they edit the seeded ``auction_market`` strategy and its configs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.backtest_seed import seed_backtest
from tests.support.web_seed import seed
from tests.support.web_served import serve

pytestmark = pytest.mark.timeout(240)
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = "20261207"
# what the writes change: the latest edit of a strategy and of a per-symbol config
WRITTEN = (
    "select (select max(updated_at) from strategies),"
    " (select max(updated_at) from strategy_configs), (select count(*) from strategy_configs)"
)


def run_schemathesis(base: str, token: str, report: Path) -> str:
    env = {**os.environ, "MARKETFLOW_CONTRACT_TOKEN": token, "NO_COLOR": "1"}
    argv = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(CONFIG), "--no-color",
        "run", "--checks", "all", "--seed", SEED, "--workers", "1",
        "--report", "junit", "--report-dir", str(report),
        f"{base}/openapi.json",
    ]  # fmt: skip
    # its own folder: schemathesis keeps a case store (.schemathesis/) where it runs
    done = subprocess.run(argv, env=env, cwd=report, capture_output=True, text=True, timeout=200)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-12000:]
    return output


@pytest.mark.parametrize("configured", [False, True], ids=["generated-token", "api-token"])
def test_every_operation_keeps_its_contract(
    redis_url: str, db_url: str, tmp_path: Path, configured: bool
) -> None:
    seed(db_url)
    seed_backtest(db_url)  # run 1: the run endpoint answers with a whole run
    with psycopg.connect(db_url) as conn:
        before = conn.execute(WRITTEN).fetchone()
    # a generated token guards writes only; MARKETFLOW_API_TOKEN guards reads too
    options = {"token": "contract-api-token"} if configured else {}
    with serve(redis_url, db_url, **options) as web:
        output = run_schemathesis(web.base, web.server.token, tmp_path)
    summary = output[output.rfind("SUMMARY") :]
    assert "Tested: 18" in summary, summary  # every operation of the document ran
    cases = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert cases and cases[1] == cases[2] and int(cases[1]) > 500, summary
    assert "Warnings:" not in summary, summary  # e.g. an operation that only ever said 404
    with psycopg.connect(db_url) as conn:
        after = conn.execute(WRITTEN).fetchone()
    assert after != before  # valid changes were accepted and stored, not only refused
