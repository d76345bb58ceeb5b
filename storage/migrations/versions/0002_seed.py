"""Seed data: default symbols with markets and row sizes, provider routing, strategies.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Idempotent: every insert is ``on conflict do nothing``, so rows a user already edited keep
their values. Routing: US shares → Alpaca, LSE shares
→ IG with their ``IX.D.<X>.DAILY.IP`` epics; crypto comes from replay files (Binance
captures), which is the only crypto source marketflow has.
"""

from __future__ import annotations

import json

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# symbol, name, exchange, asset_type, provider, market (calendar), timezone, row_size
SYMBOLS: tuple[tuple[str, str, str, str, str, str, str, float], ...] = (
    ("AAPL", "Apple Inc.", "NASDAQ", "stock", "alpaca_ws", "XNYS", "America/New_York", 0.01),
    ("MSFT", "Microsoft Corp.", "NASDAQ", "stock", "alpaca_ws", "XNYS", "America/New_York", 0.01),
    ("NVDA", "NVIDIA Corp.", "NASDAQ", "stock", "alpaca_ws", "XNYS", "America/New_York", 0.01),
    ("SPY", "SPDR S&P 500 ETF", "NYSEARCA", "stock", "alpaca_ws", "XNYS", "America/New_York", 0.01),
    ("QQQ", "Invesco QQQ Trust", "NASDAQ", "stock", "alpaca_ws", "XNYS", "America/New_York", 0.01),
    ("TSLA", "Tesla Inc.", "NASDAQ", "stock", "alpaca_ws", "XNYS", "America/New_York", 0.01),
    ("AMZN", "Amazon.com Inc.", "NASDAQ", "stock", "alpaca_ws", "XNYS", "America/New_York", 0.01),
    ("VOD.L", "Vodafone Group", "LSE", "stock", "ig", "XLON", "Europe/London", 0.01),
    ("BP.L", "BP plc", "LSE", "stock", "ig", "XLON", "Europe/London", 0.01),
    ("BTCUSD", "Bitcoin / US Dollar", "CRYPTO", "crypto", "replay", "24/7", "UTC", 0.5),
    ("ETHUSDT", "Ether / Tether", "BINANCE", "crypto", "replay", "24/7", "UTC", 0.05),
)

# symbol → (provider, venue market label of symbol_providers, IG epic)
PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "AAPL": ("alpaca_ws", "NASDAQ", None),
    "MSFT": ("alpaca_ws", "NASDAQ", None),
    "NVDA": ("alpaca_ws", "NASDAQ", None),
    "SPY": ("alpaca_ws", "NYSE", None),
    "QQQ": ("alpaca_ws", "NASDAQ", None),
    "TSLA": ("alpaca_ws", "NASDAQ", None),
    "AMZN": ("alpaca_ws", "NASDAQ", None),
    "VOD.L": ("ig", "LSE", "IX.D.VOD.DAILY.IP"),
    "BP.L": ("ig", "LSE", "IX.D.BP.DAILY.IP"),
    "BTCUSD": ("replay", "CRYPTO", None),
    "ETHUSDT": ("replay", "CRYPTO", None),
}

US_SYMBOLS = ("AAPL", "MSFT", "NVDA", "SPY", "QQQ", "TSLA", "AMZN")

SMA_STRATEGY = "AAPL SMA20 Breakout"
SMA_DEFINITION = {"type": "price_above_sma", "period": 20, "symbol": "AAPL", "signal": "BUY"}

AUCTION_STRATEGY = "auction_market"
# the auction-market strategy and its default parameters (docs/semantics.md)
AUCTION_DEFINITION = {
    "type": "auction_market",
    "min_aggression_score": 70,
    "atr_stop_multiplier": 1.5,
    "atr_target_multiplier": 3.0,
    "allow_balance_trades": False,
    "risk_per_trade_pct": 1.0,
    "max_positions": 3,
    "max_daily_loss_pct": 3.0,
}
AUCTION_PARAMETERS = {
    "min_aggression_score": 70,
    "atr_stop_multiplier": 1.5,
    "atr_target_multiplier": 3.0,
}


def _q(value: object) -> str:
    """A SQL literal for the few plain values seeded here (no user input reaches this)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _run(sql: str) -> None:
    # straight to the psycopg cursor without parameters: the text reaches the server as
    # written (no placeholder parsing of format('%I') or '::'), several statements at once,
    # inside Alembic's transaction
    with op.get_bind().connection.dbapi_connection.cursor() as cur:
        cur.execute(sql)


def upgrade() -> None:
    rows = ",\n".join("(" + ", ".join(_q(v) for v in row) + ")" for row in SYMBOLS)
    _run(
        "insert into symbols (symbol, name, exchange, asset_type, provider, market, timezone,"
        f" row_size) values\n{rows}\non conflict (symbol) do nothing"
    )
    rows = ",\n".join(
        f"({_q(sym)}, {_q(p)}, {_q(m)}, {_q(e)})" for sym, (p, m, e) in PROVIDERS.items()
    )
    _run(
        "insert into symbol_providers (symbol, provider, market, epic) values\n"
        f"{rows}\non conflict (symbol) do nothing"
    )
    for name, definition in (
        (SMA_STRATEGY, SMA_DEFINITION),
        (AUCTION_STRATEGY, AUCTION_DEFINITION),
    ):
        _run(
            "insert into strategies (name, definition) values "
            f"({_q(name)}, {_q(json.dumps(definition))}::jsonb) on conflict (name) do nothing"
        )
    us = ", ".join(_q(s) for s in US_SYMBOLS)
    _run(
        "insert into strategy_configs (symbol_id, strategy_name, enabled, parameters,"
        " risk_per_trade_pct, max_positions)\n"
        f"select id, {_q(AUCTION_STRATEGY)}, true, {_q(json.dumps(AUCTION_PARAMETERS))}::jsonb,"
        f" 1.0, 1 from symbols where symbol in ({us})\n"
        "on conflict (symbol_id, strategy_name) do nothing"
    )


def downgrade() -> None:
    us = ", ".join(_q(s) for s in US_SYMBOLS)
    names = ", ".join(_q(s) for s in (SMA_STRATEGY, AUCTION_STRATEGY))
    seeded = ", ".join(_q(row[0]) for row in SYMBOLS)
    _run(
        f"delete from strategy_configs where strategy_name = {_q(AUCTION_STRATEGY)}"
        f" and symbol_id in (select id from symbols where symbol in ({us}))"
    )
    # a strategy or symbol that data now refers to (signals, ticks, ...) stays: removing
    # seeds must never destroy market data
    _run(
        f"""
        do $$
        declare r record;
        begin
            for r in select id from strategies where name in ({names}) loop
                begin
                    delete from strategies where id = r.id;
                exception when foreign_key_violation then null;
                end;
            end loop;
            delete from symbol_providers where symbol in ({seeded});
            for r in select id from symbols where symbol in ({seeded}) loop
                begin
                    delete from symbols where id = r.id;
                exception when foreign_key_violation then null;
                end;
            end loop;
        end;
        $$;
        """
    )
