"""The README's TEST_DATABASE_URL / TEST_REDIS_URL point the suite at external servers: a
nested pytest run given this session's servers as "external" ones must use them (it would
start embedded servers of its own on other ports if it did not read the variables)."""

import os
import subprocess
import sys

from tests.support.paths import REPO


def test_documented_variables_point_the_suite_at_external_servers(
    pg_admin_url: str, redis_server_url: str
) -> None:
    env = {**os.environ, "TEST_DATABASE_URL": pg_admin_url, "TEST_REDIS_URL": redis_server_url}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/project/external_probe.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout
