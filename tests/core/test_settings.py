"""Settings: the variable names of the system marketflow replaces work, and secrets never print."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings

SECRET = "s3cr3t-value-never-printed"


def test_alpaca_keys_accept_both_name_families(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "key-from-apca")
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    settings = Settings(_env_file=None)
    assert settings.alpaca_api_key is not None
    assert settings.alpaca_api_key.get_secret_value() == "key-from-apca"

    monkeypatch.delenv("APCA_API_KEY_ID")
    monkeypatch.setenv("ALPACA_API_KEY", "key-from-alpaca")
    settings = Settings(_env_file=None)
    assert settings.alpaca_api_key.get_secret_value() == "key-from-alpaca"


def test_original_names_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDER", "router")
    monkeypatch.setenv("SYMBOLS", "aapl, vod.l ,^FTSE")
    monkeypatch.setenv("IG_DEMO", "false")
    monkeypatch.setenv("MAX_POSITIONS", "3")
    monkeypatch.setenv("MIN_AGGRESSION_SCORE", "65")
    settings = Settings(_env_file=None)
    assert settings.provider == "router"
    assert settings.symbols == ["AAPL", "VOD.L", "^FTSE"]
    assert settings.ig_demo is False
    assert settings.max_positions == 3
    assert settings.min_aggression_score == 65


def test_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTO_TRADING_ENABLED", "ALPACA_LIVE", "MARKETFLOW_BIND_HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.auto_trading_enabled is False
    assert settings.alpaca_live is False
    assert settings.bind_host == "127.0.0.1"
    assert settings.database_url is None and settings.redis_url is None


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHA_VANTAGE_API_KEY", raising=False)
    env = tmp_path / ".env"
    env.write_text(f"ALPHA_VANTAGE_API_KEY={SECRET}\nPROVIDER=alpha_vantage\n")
    settings = Settings(_env_file=env)
    assert settings.provider == "alpha_vantage"
    assert settings.alpha_vantage_api_key.get_secret_value() == SECRET


def test_secrets_never_in_repr_log_or_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("ALPACA_SECRET_KEY", "IG_PASSWORD", "IG_API_KEY", "POLYMARKET_PRIVATE_KEY"):
        monkeypatch.setenv(name, SECRET)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://trader:{SECRET}@db.internal:5432/market")
    monkeypatch.setenv("REDIS_URL", f"redis://:{SECRET}@cache.internal:6379/0")
    settings = Settings(_env_file=None)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()
    assert SECRET not in caplog.text

    monkeypatch.setenv("MAX_POSITIONS", "not-a-number")
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    assert SECRET not in str(info.value)
