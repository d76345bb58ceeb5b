"""Strategies (with their performance mart), orders, positions and Polymarket for the pages,
and the two writes the dashboard may make: a strategy's switch/definition and a per-symbol
strategy config, each validated by the engine's own parser before it is stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from psycopg import sql

from core.contracts import Table
from strategies.definitions import parse_config, parse_strategy
from strategies.model import DefinitionError
from streaming.web.queries.base import Database
from streaming.web.queries.market import clamp

STRATEGIES_SQL = f"""
select st.id, st.name, st.definition, st.active, st.cooldown_seconds, st.updated_at,
       g.signals_24h, g.signals_total, g.last_signal_at
from {Table.STRATEGIES} st
left join lateral (
    select count(*) filter (where ts > now() - interval '1 day') as signals_24h,
           count(*) as signals_total, max(ts) as last_signal_at
    from {Table.SIGNALS} where strategy_id = st.id
) g on true
order by st.name
"""

CONFIGS_SQL = f"""
select sc.strategy_name, sy.symbol, sc.enabled, sc.parameters, sc.risk_per_trade_pct,
       sc.max_positions, sc.updated_at
from {Table.STRATEGY_CONFIGS} sc join {Table.SYMBOLS} sy on sy.id = sc.symbol_id
order by sc.strategy_name, sy.symbol
"""

PERFORMANCE_SQL = """
select strategy_id, symbol, signals, hit_rate_60m, mean_return_60m_pct, take_profits, stop_losses
from {mart} where scope = 'all_history' order by strategy_id, symbol
"""

STRATEGY_SQL = f"""
select id, name, definition, active, cooldown_seconds from {Table.STRATEGIES} where id = %(id)s
"""

UPDATE_STRATEGY_SQL = f"""
update {Table.STRATEGIES}
set active = %(active)s, cooldown_seconds = %(cooldown)s, definition = %(definition)s::jsonb,
    updated_at = now()
where id = %(id)s
returning id, name, definition, active, cooldown_seconds, updated_at
"""

UPSERT_CONFIG_SQL = f"""
insert into {Table.STRATEGY_CONFIGS}
    (symbol_id, strategy_name, enabled, parameters, risk_per_trade_pct, max_positions)
select s.id, %(strategy)s, %(enabled)s, %(parameters)s::jsonb, %(risk)s, %(positions)s
from {Table.SYMBOLS} s where s.symbol = %(symbol)s
on conflict (symbol_id, strategy_name) do update
set enabled = excluded.enabled, parameters = excluded.parameters,
    risk_per_trade_pct = excluded.risk_per_trade_pct, max_positions = excluded.max_positions,
    updated_at = now()
returning strategy_name, %(symbol)s as symbol, enabled, parameters, risk_per_trade_pct,
          max_positions, updated_at
"""

ORDERS_SQL = f"""
select o.id, o.created_at, sy.symbol, st.name as strategy, o.side, o.qty, o.order_type,
       o.entry, o.stop, o.target, o.status, o.reason, o.error, o.paper,
       o.filled_qty, o.filled_avg_price, o.filled_at
from {Table.ORDERS} o
left join {Table.SYMBOLS} sy on sy.id = o.symbol_id
left join {Table.STRATEGIES} st on st.id = o.strategy_id
order by o.created_at desc, o.id desc limit %(limit)s
"""

# net filled quantity per symbol (buys minus sells) and the average price paid for the buys
POSITIONS_SQL = f"""
select sy.symbol,
       sum(case when o.side = 'buy' then o.filled_qty else -o.filled_qty end) as net_qty,
       sum(o.filled_qty * o.filled_avg_price) filter (where o.side = 'buy')
           / nullif(sum(o.filled_qty) filter (where o.side = 'buy'), 0) as avg_buy_price,
       max(o.filled_at) as last_fill_at, c.close as last_price
from {Table.ORDERS} o
join {Table.SYMBOLS} sy on sy.id = o.symbol_id
left join lateral (select close from {Table.CANDLES_1M} where symbol_id = sy.id
                   order by ts desc limit 1) c on true
where o.filled_qty > 0
group by sy.symbol, c.close
order by sy.symbol
"""

BINARY_POSITIONS_SQL = f"""
select p.id, p.market_id, m.question, p.yes_qty, p.no_qty, p.entry_cost, p.fees_paid,
       p.mark_value, p.profit_loss, p.status, p.opened_at, p.paper
from {Table.BINARY_POSITIONS} p left join {Table.BINARY_MARKETS} m on m.market_id = p.market_id
where p.status = 'open' order by p.opened_at desc limit 100
"""

MARKETS_SQL = f"""
select m.market_id, m.question, m.category, m.end_date, m.event_id, p.ts, p.yes_bid,
       p.yes_ask, p.yes_mid, p.no_bid, p.no_ask, p.no_mid, p.spread, p.edge,
       p.executable_size, p.arbitrage, p.stale
from {Table.BINARY_MARKETS} m
left join lateral (select * from {Table.BINARY_PRICES} bp where bp.market_id = m.market_id
                   order by bp.ts desc limit 1) p on true
where m.status = 'active'
order by p.edge desc nulls last, m.market_id limit %(limit)s
"""

OPEN_OPPORTUNITIES_SQL = f"""
select o.id, o.kind, o.market_id, o.event_id, m.question, o.opened_at, o.best_edge, o.size
from {Table.BINARY_OPPORTUNITIES} o left join {Table.BINARY_MARKETS} m on m.market_id = o.market_id
where o.closed_at is null order by o.opened_at desc limit 100
"""

EPISODES_MART_SQL = f"""
select e.kind, e.market_id, e.event_id, m.question, e.opportunities, e.started_at, e.ended_at,
       e.duration_seconds, e.best_edge, e.size_at_best_edge
from {{mart}} e left join {Table.BINARY_MARKETS} m on m.market_id = e.market_id
order by e.started_at desc limit 50
"""

EPISODES_RAW_SQL = f"""
select o.kind, o.market_id, o.event_id, m.question, 1 as opportunities,
       o.opened_at as started_at, o.closed_at as ended_at,
       extract(epoch from o.closed_at - o.opened_at) as duration_seconds,
       o.best_edge, o.size as size_at_best_edge
from {Table.BINARY_OPPORTUNITIES} o
left join {Table.BINARY_MARKETS} m on m.market_id = o.market_id
where o.closed_at is not null
order by o.opened_at desc limit 50
"""


class NotFound(LookupError):
    pass


class TradingQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def strategies(self) -> dict[str, Any]:
        strategies = await self.db.fetch(STRATEGIES_SQL)
        configs = await self.db.fetch(CONFIGS_SQL)
        mart = await self.db.mart("strategy_performance")
        performance = (
            await self.db.fetch(sql.SQL(PERFORMANCE_SQL).format(mart=mart)) if mart else []
        )
        for st in strategies:
            st["configs"] = [c for c in configs if c["strategy_name"] == st["name"]]
            st["performance"] = [p for p in performance if p["strategy_id"] == st["id"]]
        return {
            "performance_source": "strategy_performance" if mart else None,
            "strategies": strategies,
        }

    async def update_strategy(self, strategy_id: int, change: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``{"active"?, "cooldown_seconds"?, "definition"?}``; DefinitionError when
        the result is not a strategy the engine can run."""
        unknown = set(change) - {"active", "cooldown_seconds", "definition"}
        if unknown:
            raise DefinitionError(f"unknown fields: {', '.join(sorted(unknown))}")
        current = await self.db.fetch_one(STRATEGY_SQL, {"id": strategy_id})
        if current is None:
            raise NotFound(f"no strategy {strategy_id}")
        active = change.get("active", current["active"])
        if not isinstance(active, bool):
            raise DefinitionError("active must be true or false")
        cooldown = change.get("cooldown_seconds", current["cooldown_seconds"])
        if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
            raise DefinitionError("cooldown_seconds must be a whole number ≥ 0")
        definition = change.get("definition", current["definition"])
        parse_strategy(strategy_id, current["name"], definition, cooldown)
        row = await self.db.fetch_one(
            UPDATE_STRATEGY_SQL,
            {
                "id": strategy_id,
                "active": active,
                "cooldown": cooldown,
                "definition": json.dumps(definition),
            },
        )
        assert row is not None
        return row

    async def put_config(
        self, strategy_id: int, symbol: str, config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create or replace the ``strategy_configs`` row of (strategy, symbol)."""
        unknown = set(config) - {"enabled", "parameters", "risk_per_trade_pct", "max_positions"}
        if unknown:
            raise DefinitionError(f"unknown fields: {', '.join(sorted(unknown))}")
        enabled = config.get("enabled", True)
        if not isinstance(enabled, bool):
            raise DefinitionError("enabled must be true or false")
        parsed = parse_config(
            enabled,
            config.get("parameters", {}),
            config.get("risk_per_trade_pct"),
            config.get("max_positions"),
        )
        current = await self.db.fetch_one(STRATEGY_SQL, {"id": strategy_id})
        if current is None:
            raise NotFound(f"no strategy {strategy_id}")
        row = await self.db.fetch_one(
            UPSERT_CONFIG_SQL,
            {
                "strategy": current["name"],
                "symbol": symbol,
                "enabled": parsed.enabled,
                "parameters": json.dumps(dict(parsed.parameters)),
                "risk": parsed.risk_per_trade_pct,
                "positions": parsed.max_positions,
            },
        )
        if row is None:
            raise NotFound(f"no symbol {symbol}")
        return row

    async def orders(self, limit: int = 200) -> dict[str, Any]:
        return {
            "orders": await self.db.fetch(ORDERS_SQL, {"limit": clamp(limit, 1, 1000)}),
            "positions": await self.db.fetch(POSITIONS_SQL),
            "binary_positions": await self.db.fetch(BINARY_POSITIONS_SQL),
        }

    async def polymarket(self, limit: int = 100) -> dict[str, Any]:
        mart = await self.db.mart("binary_arbitrage_episodes")
        episodes = sql.SQL(EPISODES_MART_SQL).format(mart=mart) if mart else EPISODES_RAW_SQL
        return {
            "markets": await self.db.fetch(MARKETS_SQL, {"limit": clamp(limit, 1, 500)}),
            "opportunities": await self.db.fetch(OPEN_OPPORTUNITIES_SQL),
            "episodes": await self.db.fetch(episodes),
            "episodes_source": "binary_arbitrage_episodes" if mart else "raw",
        }
