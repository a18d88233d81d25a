"""A run's parameters and job variables checked before the run is recorded, on every store.

Prefect's server refuses a flow run whose parameters break the deployment's
``parameter_openapi_schema`` when ``enforce_parameter_schema`` is on; without the same check here a
``reconcile run --param times=abc`` (or ``bogus=1``) would be launched and fail inside the job with a
``TypeError``. The check runs in the lifecycle's ``create`` so every trigger gets it (the CLI, serve,
pushes, apply's ``run_on``), and nothing is recorded or launched when it fails.

Parameters are checked against the schema (``parameters.problems``: unknown names and missing
required ones too, which the flow's call would refuse). Run job variables are checked against the
pool's variables schema (names and types).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import pooltypes
from reconciler.desired import parameters as desired_parameters
from reconciler.errors import LaunchError
from reconciler.objects import Resource


def check(
    deployment: Resource, pool: Resource, *, parameters: Mapping[str, Any], job_variables: Mapping[str, Any]
) -> None:
    """Raise LaunchError (one line, naming the parameter or variable) for inputs the run cannot take."""
    name = deployment.address.name
    body = deployment.body
    schema = body.get("parameter_openapi_schema")
    if (
        body.get("enforce_parameter_schema", True)
        and isinstance(schema, Mapping)
        and schema.get("properties") is not None
    ):
        problems = desired_parameters.problems(schema, parameters, require=True)
        if problems:
            raise LaunchError(f"run of {name}: {problems[0].message}")
    if job_variables:
        problem = job_variable_problem(pool, job_variables)
        if problem is not None:
            raise LaunchError(f"run of {name}: {problem}")


def job_variable_problem(pool: Resource, job_variables: Mapping[str, Any]) -> str | None:
    """The first problem of a run's job variables against its pool's variables, or None."""
    template = pool.body.get("base_job_template")
    if template:
        variables = template.get("variables") or {}
        known = variables.get("properties") or {}
        for key in job_variables:
            if key not in known:
                return f"unknown job variable {key!r} for work pool {pool.address.name!r}"
        return None
    pool_type = pooltypes.get(str(pool.body.get("type")))
    if pool_type is None:
        return None
    for problem in pool_type.validate_job_variables(job_variables):
        if not problem.warning:
            return f"job variables: {problem.message}"
    return None
