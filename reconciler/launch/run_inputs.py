"""A run's parameters and job variables checked before the run is recorded, on every store.

Prefect's server refuses a flow run whose parameters break the deployment's
``parameter_openapi_schema`` when ``enforce_parameter_schema`` is on; without the same check here a
``reconcile run --param times=abc`` (or ``bogus=1``) would be launched and fail inside the job with a
``TypeError``. The check runs in the lifecycle's ``create`` so every trigger gets it (the CLI, serve,
pushes, apply's ``run_on``), and nothing is recorded or launched when it fails.

Parameters are checked against the schema (``parameters.problems``: unknown names and missing
required ones too, which the flow's call would refuse). Run job variables are checked against the
pool's variables schema (names and types).

``{{ prefect.variables.NAME }}`` in parameters and job variables is resolved at launch
(:func:`with_variables`), from the variables in the stored state as they are then: changing a
variable changes the next run without touching the deployment. The run record keeps the
placeholders, so a run launched later (a schedule slot, a retry) reads the variable as it is then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import pooltypes
from reconciler.desired import parameters as desired_parameters
from reconciler.desired import variables as desired_variables
from reconciler.errors import LaunchError
from reconciler.objects import Kind, LiveState, Resource


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


def variables_of(live: LiveState) -> dict[str, Any]:
    """The stored variables' values by name (the project's ``variable.*`` objects)."""
    return {
        address.name: stored.resource.body.get("value")
        for address, stored in live.objects.items()
        if address.kind is Kind.VARIABLE
    }


def with_variables(value: Any, variables: Mapping[str, Any], *, what: str) -> Any:
    """``value`` with its ``{{ prefect.variables.NAME }}`` placeholders resolved by Prefect's rule
    (a whole-string placeholder keeps the JSON value's type, one inside text becomes ``str(value)``).

    A variable the stored state does not have (removed since the deployment was applied) is a
    LaunchError naming it and ``what`` reads it, where Prefect would quietly pass ``""`` on."""
    missing = [name for name in desired_variables.names(value) if name not in variables]
    if missing:
        listed = ", ".join(repr(n) for n in missing)
        raise LaunchError(
            f"{what} reads variable {listed}, which is not in the stored state: declare it under "
            "variables: and apply"
        )
    return desired_variables.resolve(value, variables.__getitem__)
