"""A local server of Alpaca's stock trades endpoint over one synthetic day, in a process of
its own (``python -m bench.synthetic.alpaca_server --trades N``), so the benchmark's client
does not share an interpreter with it.

It needs the benchmark's credentials on every request, binds loopback, prints its port on
the first line of its output and serves until its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from bench.synthetic.alpaca_pages import SESSION, make_day, page_bodies

KEY, SECRET = "bench-key", "bench-secret"  # the local server's own credentials


def app_for(pages: list[bytes]) -> web.Application:
    headers = {"X-RateLimit-Limit": "10000", "X-RateLimit-Remaining": "9999"}

    async def trades(request: web.Request) -> web.Response:
        given = (request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY"))
        if given != (KEY, SECRET):
            return web.json_response({"message": "request is not authorized"}, status=401)
        body = pages[int(request.query.get("page_token") or 0)]
        return web.Response(body=body, content_type="application/json", headers=headers)

    app = web.Application()
    app.router.add_get("/v2/stocks/trades", trades)
    return app


async def serve(symbol: str, trades: int, page: int) -> None:
    runner = web.AppRunner(app_for(page_bodies(make_day(symbol, trades, *SESSION), page)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--trades", type=int, required=True)
    parser.add_argument("--page", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(serve(args.symbol, args.trades, args.page))


if __name__ == "__main__":
    main()
