"""Where a job's steps run, chosen by configuration: in this process, or on celery workers.

One executor with two modes, like Dagster's own ``multi_or_in_process_executor``:

``in_process`` (the default)
    Every step in the run's own process. Frequent, small runs (the tick sensor, the
    minute schedule) pay no process start (a multiprocess step costs 2–3 s of imports).
``celery``
    dagster-celery: every step is a task on a broker, executed by whichever
    ``dagster-celery worker`` takes it, on this machine or any other that reaches the
    broker, PostgreSQL and the Dagster instance (docs/scale-out.md).

A run picks the mode from its run config (the Launchpad, ``dagster job launch -c``)::

    execution:
      config:
        celery:
          broker: {env: REDIS_URL}
          backend: {env: REDIS_URL}

Runs without executor config (backfills, the sensor, schedules) take the mode named by
``MARKETFLOW_EXECUTOR`` (``in_process`` unless set) in the code location's environment;
``celery`` then reads broker and result backend from ``REDIS_URL`` when the run starts.
The config names the variable, never its value, so the Redis password stays out of run
records and job snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import dagster as dg
from dagster._core.definitions.executor_definition import (
    IN_PROC_CONFIG,
    _core_in_process_executor_creation,
)
from dagster._core.execution.retries import RetryMode
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor

IN_PROCESS = "in_process"
CELERY = "celery"
EXECUTOR_MODES = (IN_PROCESS, CELERY)
# the variable broker and results are read from (the platform's own Redis URL)
BROKER_ENV = "REDIS_URL"


def default_config(mode: str) -> dict[str, Any]:
    """The executor config a run gets when it brings none (pure; names env vars only)."""
    if mode == IN_PROCESS:
        return {IN_PROCESS: {}}
    if mode == CELERY:
        return {CELERY: {"broker": {"env": BROKER_ENV}, "backend": {"env": BROKER_ENV}}}
    raise ValueError(f"MARKETFLOW_EXECUTOR must be one of {EXECUTOR_MODES}, got {mode!r}")


def _requirements(config: Mapping[str, object]) -> Sequence[dg.ExecutorRequirement]:
    # celery steps run in other processes: the run needs a persistent instance and a job
    # its workers can import again
    return dg.multiple_process_executor_requirements() if CELERY in config else []


def selectable_executor(mode: str = IN_PROCESS) -> dg.ExecutorDefinition:
    """The in-process-or-celery executor whose default is ``mode``."""

    @dg.executor(
        name="in_process_or_celery",
        config_schema=dg.Field(
            dg.Selector(
                {
                    IN_PROCESS: IN_PROC_CONFIG,
                    CELERY: dg.Field(CELERY_CONFIG, description="Steps as celery tasks."),
                }
            ),
            default_value=default_config(mode),
        ),
        requirements=_requirements,
    )
    def in_process_or_celery(init_context: dg.InitExecutorContext) -> dg.Executor:
        # the selector's config, as the schema above shapes it
        config = cast("dict[str, Any]", init_context.executor_config)
        if CELERY in config:
            celery = config[CELERY]
            return CeleryExecutor(
                broker=celery.get("broker"),
                backend=celery.get("backend"),
                include=celery.get("include"),
                config_source=celery.get("config_source"),
                retries=RetryMode.from_config(celery["retries"]),
            )
        return _core_in_process_executor_creation(config[IN_PROCESS])

    return in_process_or_celery


def configured_executor() -> dg.ExecutorDefinition:
    """The executor of marketflow's jobs, its default mode from MARKETFLOW_EXECUTOR."""
    from core.settings import get_settings

    return selectable_executor(get_settings().dagster_executor)
