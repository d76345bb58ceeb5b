"""Typed settings: the one place the environment is read.

Every variable of docs/operations.md is here, with the names the system marketflow
replaces used (``ALPACA_API_KEY`` and ``APCA_API_KEY_ID`` both work). Secrets are
``SecretStr`` so they never show in a repr, a log line or an error message.
Sections are grouped by the part of the platform that owns them; add a field
to your own section only.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.webhooks import WebhookTarget, parse_webhooks

CsvList = Annotated[list[str], NoDecode]

# seconds a process gets between SIGTERM and SIGKILL: `marketflow up`'s default stop timeout,
# and the budget ingest's shutdown fits its last database attempt and spool spill into
STOP_TIMEOUT_S = 10.0


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    # an invalid value is not echoed in the error: settings hold secrets (webhook URLs, keys)
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    # --- services (docs/operations.md) ---------------------------------------
    # URLs may carry passwords: kept out of repr and dumps (print via core.service_urls.redact_url)
    database_url: str | None = Field(
        default=None, validation_alias="DATABASE_URL", repr=False, exclude=True
    )
    redis_url: str | None = Field(
        default=None, validation_alias="REDIS_URL", repr=False, exclude=True
    )
    home: Path = Field(default=Path(".marketflow"), validation_alias="MARKETFLOW_HOME")
    market_db: str = Field(default="marketflow", validation_alias="MARKETFLOW_DB")
    dagster_db: str = Field(default="dagster", validation_alias="MARKETFLOW_DAGSTER_DB")
    bind_host: str = Field(default="127.0.0.1", validation_alias="MARKETFLOW_BIND_HOST")
    api_token: SecretStr | None = Field(default=None, validation_alias="MARKETFLOW_API_TOKEN")
    # the token the dashboard's writes need when MARKETFLOW_API_TOKEN is unset; `up`
    # generates one and hands it to its web child here (docs/operations.md, security model)
    web_token: SecretStr | None = Field(default=None, validation_alias="MARKETFLOW_WEB_TOKEN")
    dagster_port: int = Field(default=3000, validation_alias="DAGSTER_PORT")
    web_port: int = Field(default=8000, validation_alias="WEB_PORT")
    # the dashboard: most WebSocket clients at once (more are closed with code 1013), and
    # extra Host names it answers to beside the loopback names and the bind host
    web_max_clients: int = Field(default=64, ge=1, validation_alias="WEB_MAX_CLIENTS")
    web_allowed_hosts: CsvList = Field(default_factory=list, validation_alias="WEB_ALLOWED_HOSTS")
    # first day of the daily partitions (Dagster definitions, tick sensor and dbt marts):
    # early enough for common historical captures; older ticks are stored but not profiled
    history_start: date = Field(
        default=date(2010, 1, 1), validation_alias="MARKETFLOW_HISTORY_START"
    )
    # where Dagster jobs run their steps when a run brings no executor config: "in_process"
    # or "celery" (workers on any machine, broker and results on REDIS_URL; docs/scale-out.md)
    dagster_executor: str = Field(default="in_process", validation_alias="MARKETFLOW_EXECUTOR")
    # Dagster runs (with their events and compute logs) older than this many days are deleted
    # by a daily job, except the run holding a partition's latest materialization
    # (orchestration/run_retention.py, docs/operations.md)
    dagster_run_retention_days: int = Field(
        default=7, validation_alias="DAGSTER_RUN_RETENTION_DAYS"
    )

    # --- ingestion (docs/providers.md, docs/ingest.md) ------------------------
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
    # the crypto stream (pairs written BTC/USD); default wss://…/v1beta3/crypto/us
    alpaca_crypto_stream_url: str | None = Field(
        default=None, validation_alias="ALPACA_CRYPTO_STREAM_URL"
    )
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
    # a replayable demo run (docs/chaos.md): every start re-sends the seeded path from this
    # instant (epoch seconds) and logs what it emitted under MARKETFLOW_HOME
    demo_start: float | None = Field(default=None, validation_alias="DEMO_START")
    demo_steady: bool = Field(default=False, validation_alias="DEMO_STEADY")  # flat rate
    # ingest pipeline: COPY every N ms or M rows, whichever comes first
    ingest_flush_ms: int = Field(default=200, validation_alias="INGEST_FLUSH_MS")
    ingest_flush_rows: int = Field(default=50_000, validation_alias="INGEST_FLUSH_ROWS")
    # rows kept in memory while PostgreSQL is unreachable; beyond that they spill to disk
    ingest_memory_rows: int = Field(default=1_000_000, validation_alias="INGEST_MEMORY_ROWS")
    # live prints older/newer than this (s) are rejected; bars get the age window x 3
    ingest_max_age_s: float = Field(default=2 * 86_400.0, validation_alias="INGEST_MAX_AGE_S")
    ingest_max_ahead_s: float = Field(default=300.0, validation_alias="INGEST_MAX_AHEAD_S")
    # plausibility band (docs/ingest.md): a print more than this fraction away from its
    # symbol's recent price is held, and rejected unless INGEST_PRICE_BAND_CONFIRM prints in
    # a row confirm the new level; 0 turns the band off
    ingest_price_band: float = Field(default=0.5, ge=0, validation_alias="INGEST_PRICE_BAND")
    ingest_price_band_confirm: int = Field(
        default=5, ge=1, validation_alias="INGEST_PRICE_BAND_CONFIRM"
    )
    # a minute's candle is finalised this long after the minute ends (late prints still merge)
    candle_grace_s: float = Field(default=2.0, validation_alias="CANDLE_GRACE_S")
    # per-symbol throttle of ticks:candles and conflation interval of ticks:trades; short
    # enough for the 50 ms tick→browser budget, long enough to cap a burst at 50 msg/s/symbol
    publish_interval_ms: int = Field(default=20, validation_alias="PUBLISH_INTERVAL_MS")
    # provider clients: reconnect, watchdog and polling budgets
    provider_backoff_max_seconds: float = Field(
        default=60.0, validation_alias="PROVIDER_BACKOFF_MAX_SECONDS"
    )
    # no trade or quote for this long while XNYS is open ⇒ the socket is presumed dead
    alpaca_silence_seconds: float = Field(default=120.0, validation_alias="ALPACA_SILENCE_SECONDS")
    # Alpaca 406: another session holds the account's only stream slot; it is reaped slowly
    alpaca_slot_wait_seconds: float = Field(
        default=30.0, validation_alias="ALPACA_SLOT_WAIT_SECONDS"
    )
    # overlap of the REST gap fill before the last seen print (late-reported prints)
    alpaca_backfill_overlap_seconds: float = Field(
        default=2.0, validation_alias="ALPACA_BACKFILL_OVERLAP_SECONDS"
    )
    # free tier: 25 requests a day and 5 a minute; None ⇒ spread the daily budget evenly
    alpha_vantage_daily_limit: int = Field(default=25, validation_alias="ALPHA_VANTAGE_DAILY_LIMIT")
    alpha_vantage_minute_limit: int = Field(
        default=5, validation_alias="ALPHA_VANTAGE_MINUTE_LIMIT"
    )
    alpha_vantage_poll_seconds: float | None = Field(
        default=None, validation_alias="ALPHA_VANTAGE_POLL_SECONDS"
    )
    alpha_vantage_throttle_seconds: float = Field(
        default=900.0, validation_alias="ALPHA_VANTAGE_THROTTLE_SECONDS"
    )
    ig_poll_seconds: float = Field(default=5.0, validation_alias="IG_POLL_SECONDS")
    ig_max_failures: int = Field(default=3, validation_alias="IG_MAX_FAILURES")
    ig_cooldown_seconds: float = Field(default=300.0, validation_alias="IG_COOLDOWN_SECONDS")
    # IG's non-trading allowance per account (about 30 a minute): many symbols stretch a cycle
    ig_requests_per_minute: int = Field(default=30, validation_alias="IG_REQUESTS_PER_MINUTE")

    # --- polymarket (docs/semantics.md, docs/providers.md) --------------------
    polymarket_enabled: bool = Field(default=False, validation_alias="POLYMARKET_ENABLED")
    polymarket_ws_url: str = Field(
        default="wss://ws-subscriptions-clob.polymarket.com/ws/market",
        validation_alias="POLYMARKET_WS_URL",
    )
    polymarket_gamma_url: str = Field(
        default="https://gamma-api.polymarket.com", validation_alias="POLYMARKET_GAMMA_URL"
    )
    # THE arbitrage threshold: edge per share after taker fees, in dollars; flag iff edge > it
    polymarket_min_edge: float = Field(default=0.005, validation_alias="POLYMARKET_MIN_EDGE")
    # taker fee per leg = rate × p × (1 − p); rate for categories not in the map below
    polymarket_fee_rate: float = Field(default=0.0, validation_alias="POLYMARKET_FEE_RATE")
    # rate by category (JSON object, case-insensitive); political/sports markets are fee-free
    polymarket_fee_rates: dict[str, float] = Field(
        default_factory=lambda: {"crypto": 0.0624}, validation_alias="POLYMARKET_FEE_RATES"
    )
    polymarket_stale_seconds: float = Field(
        default=30.0, validation_alias="POLYMARKET_STALE_SECONDS"
    )
    # at most one binary_prices row per market per interval (written only on change)
    polymarket_conflation_seconds: float = Field(
        default=1.0, validation_alias="POLYMARKET_CONFLATION_SECONDS"
    )
    # the CLOB market channel accepts at most 500 assets per connection: shard beyond
    polymarket_max_assets_per_connection: int = Field(
        default=500, ge=1, le=500, validation_alias="POLYMARKET_MAX_ASSETS_PER_CONNECTION"
    )
    # text "PING" heartbeat the CLOB socket expects about every 10 s
    polymarket_ping_seconds: float = Field(default=10.0, validation_alias="POLYMARKET_PING_SECONDS")
    polymarket_backoff_max_seconds: float = Field(
        default=30.0, validation_alias="POLYMARKET_BACKOFF_MAX_SECONDS"
    )
    # paper mode (also `polymarket stream --paper`): one equal-share pair per episode
    polymarket_paper: bool = Field(default=False, validation_alias="POLYMARKET_PAPER")
    # paper mode: dollars spent per opportunity episode (one equal-share pair booking)
    polymarket_paper_max_cost: float = Field(
        default=100.0, validation_alias="POLYMARKET_PAPER_MAX_COST"
    )
    polymarket_private_key: SecretStr | None = Field(
        default=None, validation_alias="POLYMARKET_PRIVATE_KEY"
    )

    # --- tick archive and backups (docs/retention.md, docs/backup.md) ---------
    # days of ticks PostgreSQL keeps: older days go to Parquet under TICK_ARCHIVE_DIR and
    # their partitions are dropped; unset keeps every tick in PostgreSQL
    tick_retention_days: int | None = Field(default=None, validation_alias="TICK_RETENTION_DAYS")
    # default: $MARKETFLOW_HOME/archive/ticks
    tick_archive_dir: Path | None = Field(default=None, validation_alias="TICK_ARCHIVE_DIR")

    # --- engine and trading (docs/trading-safety.md) --------------------------
    auto_trading_enabled: bool = Field(default=False, validation_alias="AUTO_TRADING_ENABLED")
    alpaca_live: bool = Field(default=False, validation_alias="ALPACA_LIVE")
    alpaca_trading_url: str | None = Field(default=None, validation_alias="ALPACA_TRADING_URL")
    kill_switch: bool = Field(default=False, validation_alias="KILL_SWITCH")
    max_positions: int = Field(default=1, validation_alias="MAX_POSITIONS")
    risk_per_trade_pct: float = Field(
        default=1.0, gt=0, le=5, validation_alias="RISK_PER_TRADE_PCT"
    )
    max_daily_loss_pct: float = Field(default=3.0, validation_alias="MAX_DAILY_LOSS_PCT")
    # hard caps per order whatever the sizing says (docs/trading-safety.md)
    max_order_notional: float = Field(default=10_000.0, gt=0, validation_alias="MAX_ORDER_NOTIONAL")
    max_order_qty: int = Field(default=500, ge=1, validation_alias="MAX_ORDER_QTY")
    # an order is never sized from a price older than this (measured from its candle's minute)
    order_max_price_age_seconds: float = Field(
        default=120.0, gt=0, validation_alias="ORDER_MAX_PRICE_AGE_SECONDS"
    )
    min_account_balance: float = Field(default=1000.0, validation_alias="MIN_ACCOUNT_BALANCE")
    min_aggression_score: float = Field(default=70.0, validation_alias="MIN_AGGRESSION_SCORE")
    # a market_state row is rewritten at least this often even when nothing changed
    engine_state_refresh_seconds: float = Field(
        default=60.0, validation_alias="ENGINE_STATE_REFRESH_SECONDS"
    )
    engine_lvn_alert_pct: float = Field(default=0.5, validation_alias="ENGINE_LVN_ALERT_PCT")
    engine_aggression_alert_score: float = Field(
        default=50.0, validation_alias="ENGINE_AGGRESSION_ALERT_SCORE"
    )
    # Alpaca's trading API allows 200 requests/min; stay below it
    engine_broker_requests_per_minute: float = Field(
        default=180.0, validation_alias="ENGINE_BROKER_REQUESTS_PER_MINUTE"
    )
    engine_broker_timeout_seconds: float = Field(
        default=5.0, validation_alias="ENGINE_BROKER_TIMEOUT_SECONDS"
    )
    # footprint alerts (docs/alerts.md); 0 turns the first two off
    engine_stacked_imbalance_alert_rows: int = Field(
        default=3, ge=0, validation_alias="ENGINE_STACKED_IMBALANCE_ALERT_ROWS"
    )
    engine_vwap_alert_sd: float = Field(default=2.0, ge=0, validation_alias="ENGINE_VWAP_ALERT_SD")
    engine_big_print_alerts: bool = Field(default=True, validation_alias="ENGINE_BIG_PRINT_ALERTS")
    # alert webhooks (docs/alerts.md): comma list of format=url, format json|slack|discord
    alert_webhooks: Annotated[list[WebhookTarget], NoDecode] = Field(
        default_factory=list, validation_alias="ALERT_WEBHOOKS"
    )
    alert_webhook_queue: int = Field(default=1000, ge=1, validation_alias="ALERT_WEBHOOK_QUEUE")
    alert_webhook_per_minute: float = Field(
        default=30.0, gt=0, validation_alias="ALERT_WEBHOOK_PER_MINUTE"
    )
    alert_webhook_burst: int = Field(default=5, ge=1, validation_alias="ALERT_WEBHOOK_BURST")
    alert_webhook_retries: int = Field(default=4, ge=0, validation_alias="ALERT_WEBHOOK_RETRIES")
    alert_webhook_backoff_seconds: float = Field(
        default=1.0, gt=0, validation_alias="ALERT_WEBHOOK_BACKOFF_SECONDS"
    )
    alert_webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, validation_alias="ALERT_WEBHOOK_TIMEOUT_SECONDS"
    )

    @field_validator("symbols", mode="before")
    @classmethod
    def _symbols_csv(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            return [str(item).upper() for item in value]
        return value

    @field_validator("dagster_run_retention_days")
    @classmethod
    def _retention_days(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                f"DAGSTER_RUN_RETENTION_DAYS must be a whole number of days >= 1 (got {value}): "
                "runs older than it are deleted every day, so 0 or less would delete them all"
            )
        return value

    @field_validator("alert_webhooks", mode="before")
    @classmethod
    def _webhooks(cls, value: object) -> object:
        return parse_webhooks(value)

    @field_validator("web_allowed_hosts", mode="before")
    @classmethod
    def _hosts_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("tick_retention_days", "tick_archive_dir", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tick_retention_days")
    @classmethod
    def _retention_keeps_a_day(cls, value: int | None) -> int | None:
        # 0 would archive today's partition while ingest writes it: refused, not clamped
        if value is not None and value < 1:
            raise ValueError(
                f"TICK_RETENTION_DAYS={value} refused: it must be a whole number of days >= 1 "
                "(unset it to keep every tick in PostgreSQL)"
            )
        return value

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()

    @property
    def archive_dir(self) -> Path:
        """Where archived tick days live (TICK_ARCHIVE_DIR, else under MARKETFLOW_HOME)."""
        return (self.tick_archive_dir or self.home / "archive" / "ticks").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
