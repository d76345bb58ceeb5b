"""The dashboard's WebSocket, watched like a browser would: connect, read, reconnect.

A frame counts as live data when it names one of the run's symbols. The watcher records
every (re)connection and the time of the last live frame, so the run can require that the
socket came back after the faults and carried data after the last one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

RECONNECT_S = 1.0


@dataclass
class WatchState:
    connects: int = 0
    drops: int = 0
    frames: int = 0
    last_live: float = 0.0  # time.monotonic() of the newest frame naming a run symbol
    errors: list[str] = field(default_factory=list)

    def live_since(self, moment: float) -> bool:
        return self.last_live > moment


def ws_url(port: int, token: str | None) -> str:
    query = f"?token={token}" if token else ""
    return f"ws://127.0.0.1:{port}/ws{query}"


async def watch(
    port: int, token: str | None, symbols: list[str], state: WatchState, stop: asyncio.Event
) -> None:
    """Until ``stop``: stay connected to the dashboard socket, reconnecting after a drop."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    needles = [s.encode() for s in symbols]
    while not stop.is_set():
        opened = False
        try:
            async with connect(
                ws_url(port, token), additional_headers=headers, open_timeout=5, max_size=None
            ) as ws:
                state.connects += 1
                opened = True
                while not stop.is_set():
                    try:
                        message = await asyncio.wait_for(ws.recv(), timeout=1.0)
                    except TimeoutError:
                        continue
                    state.frames += 1
                    raw = message.encode() if isinstance(message, str) else message
                    if any(n in raw for n in needles):
                        state.last_live = time.monotonic()
            return
        except (OSError, WebSocketException, TimeoutError) as exc:
            if opened:
                state.drops += 1
            if len(state.errors) < 20:
                state.errors.append(f"{exc.__class__.__name__}: {exc}"[:200])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=RECONNECT_S)
