"""`marketflow up` and the dashboard's token: generated once when none is configured, handed
to the web child alone (MARKETFLOW_WEB_TOKEN in its environment), shown once in the address
block's link; a configured token is never shown."""

from __future__ import annotations

import sys
from pathlib import Path

from core.service_urls import ServiceUrls
from core.settings import Settings
from marketflow.commands.up import (
    WEB_TOKEN_ENV,
    address_block,
    child_environment,
    dashboard_token,
    plan_children,
    with_web_token,
)

URLS = ServiceUrls(
    "postgresql://mf:pgpass@127.0.0.1:5999/marketflow",
    "postgresql://mf:pgpass@127.0.0.1:5999/dagster",
    "redis://:rpass@127.0.0.1:6999/0",
)


def test_generated_token_goes_to_the_web_child_and_the_link_only(tmp_path: Path) -> None:
    settings = Settings(MARKETFLOW_HOME=str(tmp_path), WEB_PORT=8124, POLYMARKET_ENABLED=True)
    env = child_environment({"PATH": "/bin"}, tmp_path.resolve(), {})
    specs, notes = plan_children(settings, env, only={"web", "polymarket", "engine"}, dagster=False)
    token = dashboard_token(settings)
    assert token is not None and len(token) >= 40
    assert dashboard_token(settings) != token  # a fresh one per `up`
    children = with_web_token(specs, token)
    web = next(spec for spec in children if spec.name == "web")
    assert web.env is not None and web.env[WEB_TOKEN_ENV] == token
    assert web.argv == [sys.executable, "-m", "marketflow.cli", "web"]
    others = [spec for spec in children if spec.name != "web"]
    assert others and all(WEB_TOKEN_ENV not in (spec.env or {}) for spec in others)
    block = address_block(settings, URLS, children, notes, token)
    assert f"http://127.0.0.1:8124/?token={token}" in block
    assert block.count(token) == 1


def test_a_configured_token_is_named_not_shown(tmp_path: Path) -> None:
    env = child_environment({"PATH": "/bin"}, tmp_path.resolve(), {})
    for variable in ("MARKETFLOW_API_TOKEN", WEB_TOKEN_ENV):
        settings = Settings(MARKETFLOW_HOME=str(tmp_path), WEB_PORT=8125, **{variable: "s3cr3t"})
        assert dashboard_token(settings) is None  # the child reads the same variable
        specs, notes = plan_children(settings, env, only={"web"}, dagster=False)
        assert with_web_token(specs, None) == specs
        block = address_block(settings, URLS, specs, notes)
        assert f"http://127.0.0.1:8125/?token=<{variable}>" in block
        assert "s3cr3t" not in block
