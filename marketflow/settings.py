"""Typed settings: the one place the environment is read.

Every name from DESIGN §5 is here, the original system's names included
(``ALPACA_API_KEY`` and ``APCA_API_KEY_ID`` both work). Secrets are
``SecretStr`` so they never show in a repr, a log line or an error message.
Sections are grouped by the part of the platform that owns them; add a field
to your own section only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

CsvList = Annotated[list[str], NoDecode]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- services (DESIGN §3) -------------------------------------------------
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    home: Path = Field(default=Path(".marketflow"), validation_alias="MARKETFLOW_HOME")
    market_db: str = Field(default="marketflow", validation_alias="MARKETFLOW_DB")
    dagster_db: str = Field(default="dagster", validation_alias="MARKETFLOW_DAGSTER_DB")
    bind_host: str = Field(default="127.0.0.1", validation_alias="MARKETFLOW_BIND_HOST")
    api_token: SecretStr | None = Field(default=None, validation_alias="MARKETFLOW_API_TOKEN")
    dagster_port: int = Field(default=3000, validation_alias="DAGSTER_PORT")
    web_port: int = Field(default=8000, validation_alias="WEB_PORT")

    # --- ingestion (issue 3) --------------------------------------------------
    provider: str = Field(default="demo", validation_alias="PROVIDER")
    symbols: CsvList = Field(default_factory=lambda: ["AAPL"], validation_alias="SYMBOLS")
    alpaca_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALPACA_API_KEY", "APCA_API_KEY_ID")
    )
    alpaca_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALPACA_SECRET_KEY", "APCA_API_SECRET_KEY")
    )
    alpaca_feed: str = Field(default="iex", validation_alias="ALPACA_FEED")
    alpaca_stream_url: str | None = Field(default=None, validation_alias="ALPACA_STREAM_URL")
    alpaca_data_url: str | None = Field(default=None, validation_alias="ALPACA_DATA_URL")
    alpha_vantage_api_key: SecretStr | None = Field(
        default=None, validation_alias="ALPHA_VANTAGE_API_KEY"
    )
    alpha_vantage_url: str = Field(
        default="https://www.alphavantage.co/query", validation_alias="ALPHA_VANTAGE_URL"
    )
    ig_api_key: SecretStr | None = Field(default=None, validation_alias="IG_API_KEY")
    ig_username: str | None = Field(default=None, validation_alias="IG_USERNAME")
    ig_password: SecretStr | None = Field(default=None, validation_alias="IG_PASSWORD")
    ig_demo: bool = Field(default=True, validation_alias="IG_DEMO")
    ig_url: str | None = Field(default=None, validation_alias="IG_URL")
    demo_rate: float = Field(default=20.0, validation_alias="DEMO_RATE")
    demo_seed: int = Field(default=7, validation_alias="DEMO_SEED")

    # --- polymarket (issue 6) -------------------------------------------------
    polymarket_enabled: bool = Field(default=False, validation_alias="POLYMARKET_ENABLED")
    polymarket_ws_url: str = Field(
        default="wss://ws-subscriptions-clob.polymarket.com/ws/market",
        validation_alias="POLYMARKET_WS_URL",
    )
    polymarket_gamma_url: str = Field(
        default="https://gamma-api.polymarket.com", validation_alias="POLYMARKET_GAMMA_URL"
    )
    polymarket_min_edge: float = Field(default=0.005, validation_alias="POLYMARKET_MIN_EDGE")
    polymarket_fee_rate: float = Field(default=0.0, validation_alias="POLYMARKET_FEE_RATE")
    polymarket_stale_seconds: float = Field(
        default=30.0, validation_alias="POLYMARKET_STALE_SECONDS"
    )
    polymarket_private_key: SecretStr | None = Field(
        default=None, validation_alias="POLYMARKET_PRIVATE_KEY"
    )

    # --- engine and trading (issue 5) ----------------------------------------
    auto_trading_enabled: bool = Field(default=False, validation_alias="AUTO_TRADING_ENABLED")
    alpaca_live: bool = Field(default=False, validation_alias="ALPACA_LIVE")
    alpaca_trading_url: str | None = Field(default=None, validation_alias="ALPACA_TRADING_URL")
    kill_switch: bool = Field(default=False, validation_alias="KILL_SWITCH")
    max_positions: int = Field(default=1, validation_alias="MAX_POSITIONS")
    risk_per_trade_pct: float = Field(default=1.0, validation_alias="RISK_PER_TRADE_PCT")
    max_daily_loss_pct: float = Field(default=3.0, validation_alias="MAX_DAILY_LOSS_PCT")
    min_account_balance: float = Field(default=1000.0, validation_alias="MIN_ACCOUNT_BALANCE")
    min_aggression_score: float = Field(default=70.0, validation_alias="MIN_AGGRESSION_SCORE")

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols_csv(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            return [str(item).upper() for item in value]
        return value

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
