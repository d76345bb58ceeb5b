"""``get_or_wake``: the one way a provider's consumer waits for its queue or a stop."""

import asyncio

from streaming.queue_wait import WOKEN, get_or_wake


def test_a_queued_item_comes_at_once_even_when_a_waker_is_done() -> None:
    async def go() -> object:
        queue: asyncio.Queue[int] = asyncio.Queue()
        queue.put_nowait(7)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return await get_or_wake(queue, done)

    assert asyncio.run(go()) == 7


def test_a_waker_ends_the_wait_and_no_later_item_is_lost() -> None:
    async def go() -> tuple[object, int]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        stop = asyncio.Event()
        stopped = asyncio.ensure_future(stop.wait())
        asyncio.get_running_loop().call_later(0.01, stop.set)
        got = await get_or_wake(queue, stopped)
        queue.put_nowait(3)  # the cancelled get took nothing
        return got, queue.get_nowait()

    assert asyncio.run(go()) == (WOKEN, 3)


def test_an_item_arriving_while_waiting_is_returned() -> None:
    async def go() -> object:
        queue: asyncio.Queue[str] = asyncio.Queue()
        never = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.01, queue.put_nowait, "print")
        try:
            return await get_or_wake(queue, never)
        finally:
            never.cancel()

    assert asyncio.run(go()) == "print"
