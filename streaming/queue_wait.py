"""Waiting on a queue while something else may end the wait: a provider's consumer waits for
its next event, but must also wake when it is told to stop or when the task feeding the
queue has died. One helper for every such consumer."""

from __future__ import annotations

import asyncio
from typing import Any, Final, TypeVar

T = TypeVar("T")


class Woken:
    """What ``get_or_wake`` returns when a waker ended the wait (``WOKEN``, the one instance)."""

    def __repr__(self) -> str:
        return "WOKEN"


WOKEN: Final = Woken()


async def get_or_wake(queue: asyncio.Queue[T], *wakers: asyncio.Future[Any]) -> T | Woken:
    """The queue's next item, or ``WOKEN`` when one of ``wakers`` finishes first.

    An item already queued is returned at once. Otherwise the pending ``get`` is cancelled
    when a waker wins, which an ``asyncio.Queue`` guarantees loses no item; an item and a
    waker finishing together return the item (the caller sees the waker on its next call).
    """
    if not queue.empty():
        return queue.get_nowait()
    getter = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({getter, *wakers}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        getter.cancel()
        raise
    if getter.done():
        return getter.result()
    getter.cancel()  # takes nothing: the item stays queued until a get completes
    return WOKEN
