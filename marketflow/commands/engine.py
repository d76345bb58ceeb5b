"""``marketflow engine``: the 1-second engine loop (market state, alerts, strategies, orders).

``--once`` runs a single tick and exits (handy after loading data); ``--kill-switch on|off``
sets the persistent kill switch, ``--kill-switch status`` says what it reads and why orders
are blocked; orders go out only while it reads ``off``.
"""

from __future__ import annotations

import argparse

HELP = (
    "run the engine loop: market state, alerts (LVN, aggressive flow, footprint; to "
    "ALERT_WEBHOOKS too), strategies → signals, "
    "optional Alpaca bracket orders (AUTO_TRADING_ENABLED)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--once", action="store_true", help="run one tick and exit")
    parser.add_argument(
        "--kill-switch",
        choices=("on", "off", "status"),
        help="set (or show) the persistent kill switch that blocks new orders, then exit",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from core.service_urls import ServiceError, resolve_urls
    from core.settings import get_settings
    from streaming.engine import killswitch
    from streaming.engine.loop import Engine
    from streaming.heartbeat import Heartbeat

    log = logging.getLogger("marketflow.engine")
    settings = get_settings()
    try:
        urls = resolve_urls(settings)
    except ServiceError as exc:
        print(f"error: {exc}")
        return 2

    if args.kill_switch:
        import redis

        if args.kill_switch != "status":
            try:
                killswitch.set_switch(urls.redis_url, args.kill_switch == "on")
            except (redis.RedisError, OSError) as exc:
                # the operator must know the switch did not take, and what still works
                print(
                    f"error: kill switch NOT set: Redis unreachable ({exc.__class__.__name__}). "
                    "Start it with `marketflow services` or check REDIS_URL. A running engine "
                    "already blocks every order while the switch is unreadable; KILL_SWITCH=true "
                    "in the engine's environment blocks them whatever Redis says"
                )
                return 1
        reading = killswitch.read_switch(urls.redis_url, settings.kill_switch)
        print(reading.describe())
        return 1 if reading.state == "unreadable" else 0

    async def main() -> int:
        engine = Engine(settings, urls.database_url, urls.redis_url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        mode = "off"
        if settings.auto_trading_enabled:
            mode = "LIVE" if settings.alpaca_live else "paper"
        log.info("engine starting: auto-trading %s", mode)
        try:
            if args.once:
                report = await engine.tick()
                print(
                    f"tick ok={report.ok} symbols={engine.counters.symbols} "
                    f"state_rows={report.state_rows} signals={len(report.signals)} "
                    f"alerts={len(report.alerts)} orders={len(report.intents)}"
                    + (f" error={report.error}" if report.error else "")
                )
                return 0 if report.ok else 1
            async with Heartbeat(urls.redis_url, "engine", engine.status):
                await engine.run(stop)
        finally:
            await engine.close()
        log.info("engine stopped")
        return 0

    return asyncio.run(main())
