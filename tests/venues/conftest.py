"""What the Alpaca tests share: one local Alpaca server per module (reset for each test)
and the captured stream sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_alpaca import FakeAlpaca
from tests.support.loop_thread import serving


@pytest.fixture(scope="module")
def alpaca_server() -> Iterator[FakeAlpaca]:
    with serving(FakeAlpaca()) as (fake,):
        yield fake


@pytest.fixture
def fake(alpaca_server: FakeAlpaca) -> FakeAlpaca:
    """The module's Alpaca server, as a new one: no tape, no injected faults."""
    alpaca_server.reset()
    return alpaca_server


@pytest.fixture(scope="module")
def capture(captures: Path) -> dict[str, Any]:
    """The recorded stock stream session (tests/data/alpaca/stream_session_frames.json)."""
    return json.loads((captures / "alpaca" / "stream_session_frames.json").read_text())
