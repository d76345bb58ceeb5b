"""The engine's tests share one local Alpaca trading server per test (``fake``) and the
kill switch set to "off" (``switch_off``) where a module asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from streaming.engine import killswitch
from tests.support.fake_alpaca_trading import FakeTrading
from tests.support.loop_thread import LoopThread


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def fake(loop_thread: LoopThread) -> Iterator[FakeTrading]:
    server = loop_thread.run(FakeTrading().start())
    yield server
    loop_thread.run(server.stop())


@pytest.fixture
def switch_off(request: pytest.FixtureRequest) -> None:
    """Orders go out only while the kill switch reads an explicit "off": tests of the other
    gates start from there (the kill-switch tests set it themselves)."""
    if "redis_url" in request.fixturenames:
        killswitch.set_switch(request.getfixturevalue("redis_url"), on=False)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c
