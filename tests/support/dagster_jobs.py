"""Jobs of the definitions as functions, so `dagster.reconstructable` can point at them.

A celery worker (or any other process) rebuilds a job from the module and function name
this records; the job comes from the one Definitions, with its resources bound.
"""

import dagster as dg


def minute_job() -> dg.JobDefinition:
    from orchestration.definitions import defs

    return defs.resolve_job_def("minute_job")
