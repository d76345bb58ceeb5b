"""Pages written on several connections, results taken in page order: a failed page stops
the results there, whatever finished after it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from streaming.history.writers import OrderedWriters


class Writer:  # stands in for TickWriter: the pool only hands it to the write function
    pass


def test_results_come_in_submission_order_and_stop_at_a_failure() -> None:
    writers: OrderedWriters[int] = OrderedWriters([Writer(), Writer()])  # type: ignore[list-item]
    finished: list[int] = []
    lock = threading.Lock()

    def write(_: Any, job: int) -> int:
        time.sleep(0.05 if job % 2 == 0 else 0.0)  # odd jobs finish first
        if job == 4:
            raise RuntimeError("page 4 refused")
        with lock:
            finished.append(job)
        return job * 10

    taken: list[tuple[int, int]] = []
    with pytest.raises(RuntimeError, match="page 4"):
        for job in range(8):
            taken.extend(writers.submit(job, write))
        taken.extend(writers.done())
    writers.close()
    assert taken == [(0, 0), (1, 10), (2, 20), (3, 30)]  # in order, up to the failure
    assert 5 in finished  # a later page may be stored; its result was not taken
