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

Only Dagster's public API is used: the two modes' config is declared here, and the
executors themselves are built by the public creation functions of
``dagster.in_process_executor`` and ``dagster_celery.celery_executor``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import dagster as dg
from dagster_celery import celery_executor

IN_PROCESS = "in_process"
CELERY = "celery"
EXECUTOR_MODES = (IN_PROCESS, CELERY)
# the variable broker and results are read from (the platform's own Redis URL)
BROKER_ENV = "REDIS_URL"


# Dagster's own retries switch, as both executors spell it
RETRIES = dg.Field(
    dg.Selector({"enabled": {}, "disabled": {}}),
    default_value={"enabled": {}},
    description="Whether failed steps may be retried (enabled unless disabled).",
)
IN_PROCESS_CONFIG = dg.Field(
    {"retries": RETRIES}, description="Every step in the run's own process."
)
CELERY_CONFIG = dg.Field(
    {
        "broker": dg.Field(dg.Noneable(dg.StringSource), is_required=False),
        "backend": dg.Field(dg.Noneable(dg.StringSource), is_required=False),
        "include": dg.Field([str], is_required=False, description="Modules workers import."),
        "config_source": dg.Field(dg.Noneable(dg.Permissive()), is_required=False),
        "retries": RETRIES,
    },
    description="Steps as celery tasks (dagster-celery; docs/scale-out.md).",
)


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


def _delegate(
    context: dg.InitExecutorContext, executor_def: dg.ExecutorDefinition, config: Mapping
) -> dg.Executor:
    """The executor ``executor_def`` builds from ``config`` (its own mode's section)."""
    create = executor_def.executor_creation_fn
    assert create is not None, f"{executor_def.name} has no creation function"
    return create(
        dg.InitExecutorContext(
            job=context.job,
            executor_def=executor_def,
            executor_config=config,
            instance=context.instance,
        )
    )


def selectable_executor(mode: str = IN_PROCESS) -> dg.ExecutorDefinition:
    """The in-process-or-celery executor whose default is ``mode``."""

    @dg.executor(
        name="in_process_or_celery",
        config_schema=dg.Field(
            dg.Selector({IN_PROCESS: IN_PROCESS_CONFIG, CELERY: CELERY_CONFIG}),
            default_value=default_config(mode),
        ),
        requirements=_requirements,
    )
    def in_process_or_celery(init_context: dg.InitExecutorContext) -> dg.Executor:
        # the selector's config, as the schema above shapes it (defaults filled in)
        config = cast("dict[str, Any]", init_context.executor_config)
        if CELERY in config:
            return _delegate(init_context, celery_executor, config[CELERY])
        return _delegate(init_context, dg.in_process_executor, config[IN_PROCESS])

    return in_process_or_celery


def configured_executor() -> dg.ExecutorDefinition:
    """The executor of marketflow's jobs, its default mode from MARKETFLOW_EXECUTOR."""
    from core.settings import get_settings

    return selectable_executor(get_settings().dagster_executor)
