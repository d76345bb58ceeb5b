"""Compiled per-print kernels: numba, imported on first use, machine code cached on disk.

A kernel is a plain Python function (it runs uncompiled too, which the tests use as its
reference) compiled by :func:`compiled` the first time it is needed. Compiling costs
about half a second per kernel, so the result is cached on disk and every later process
(a Dagster run, a celery worker, the CLI) loads it in milliseconds.

Where the cache lives, first that works:

1. ``NUMBA_CACHE_DIR`` when the operator set it (numba reads it itself);
2. ``<MARKETFLOW_HOME>/numba-cache``, the platform's own writable state directory, so an
   installation whose code is read-only (a system site-packages, a container image)
   still caches;
3. numba's own choices: ``__pycache__`` beside the module, then the user's cache directory;
4. nowhere: the kernel is compiled in memory once per process, with one warning.

Kernels over independent ranges of the input (the minutes of a session, the halves of
a column to check) run on every core of the process at once: :func:`split` cuts the work,
:func:`run_all` runs the compiled calls on a thread pool (they release the GIL).

Loading is not free either: importing numba and loading two cached kernels costs a fresh
process about 0.3 s (a Dagster run is a fresh process), which the kernels repay only over
tens of millions of prints. So each kernel has a numpy twin giving the same floats, and
:func:`use_compiled` picks: compiled once numba is loaded in this process, or for an input
of ``COMPILED_MIN_ITEMS`` items of work or more (which loads it); numpy otherwise. A
minute's run over a few thousand new prints never loads numba; a backfill over large
sessions loads it once and compiles everything after.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

CACHE_SUBDIR = "numba-cache"
# items of work (prints, or grid cells a walk may read) from which a compiled kernel is
# loaded: a session this large is rarely a process's only one (a backfill, a replay)
COMPILED_MIN_ITEMS = 1 << 20

# items of work per thread below which a compiled kernel runs on the calling thread only
SPLIT_MIN_ITEMS = 1 << 18

_loaded = False
_T = TypeVar("_T")


def use_compiled(items: int) -> bool:
    """Whether ``items`` of work go to a compiled kernel (see the module docstring)."""
    return _loaded or items >= COMPILED_MIN_ITEMS


def platform_cache_dir() -> Path | None:
    """``<MARKETFLOW_HOME>/numba-cache`` if it exists or can be created and is writable."""
    from core.settings import get_settings

    try:
        path = get_settings().state_dir / CACHE_SUBDIR
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError):
        return None
    return path if os.access(path, os.W_OK | os.X_OK) else None


@cache
def _numba() -> Any:
    global _loaded
    import numba

    _loaded = True
    # numba.config sets its attributes from the environment at import: not in its types
    if not numba.config.CACHE_DIR:  # type: ignore[attr-defined]  # NUMBA_CACHE_DIR wins
        path = platform_cache_dir()
        if path is not None:
            numba.config.CACHE_DIR = str(path)  # type: ignore[attr-defined]
    return numba


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` compiled with numba (nopython, GIL released), cached on disk if possible."""
    numba = _numba()
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError as error:  # numba found no writable cache location at all
        log.warning("numba cache unavailable, compiling %s in memory: %s", function.__name__, error)
        return numba.njit(cache=False, nogil=True)(function)


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def split(lo: int, hi: int) -> list[tuple[int, int]]:
    """[lo, hi) cut into one contiguous range per core, none under ``SPLIT_MIN_ITEMS``."""
    parts = max(1, min(cores(), (hi - lo) // SPLIT_MIN_ITEMS))
    cuts = [lo + (hi - lo) * k // parts for k in range(parts + 1)]
    return list(pairwise(cuts))


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=cores(), thread_name_prefix="kernel")


def run_all(calls: Sequence[Callable[[], _T]]) -> list[_T]:
    """Results of ``calls`` in order; run on a thread pool when there are several.

    For compiled kernels, which release the GIL (``nogil``), and numpy work, which releases
    it in its loops: the calls then run on separate cores at once. A single call, or calls
    made from inside a call, run on the calling thread.
    """
    if len(calls) == 1 or getattr(_in_pool, "active", False):
        # one call, or called from a pool thread (waiting on the pool there could deadlock)
        return [call() for call in calls]
    return list(_pool().map(_run_in_pool, calls))


def start(call: Callable[[], _T]) -> Future[_T]:
    """``call`` started on the thread pool (on this thread, done, when called from it)."""
    if getattr(_in_pool, "active", False):
        done: Future[_T] = Future()
        done.set_result(call())
        return done
    return _pool().submit(_run_in_pool, call)


_in_pool = threading.local()


def _run_in_pool(call: Callable[[], _T]) -> _T:
    _in_pool.active = True
    return call()
