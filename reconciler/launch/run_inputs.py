"""A run's parameters and job variables checked before the run is recorded, on every store.

Prefect's server refuses a flow run whose parameters break the deployment's
``parameter_openapi_schema`` when ``enforce_parameter_schema`` is on; without the same check here a
``reconcile run --param times=abc`` (or ``bogus=1``) would be launched and fail inside the job with a
``TypeError``. The check runs in the lifecycle's ``create`` so every trigger gets it (the CLI, serve,
pushes, apply's ``run_on``), and nothing is recorded or launched when it fails.

Parameters are checked against the schema, with two additions the server's check lacks but the
flow's call needs: a name the flow does not take is refused (unless its last parameter may be
``**kwargs``), and so is a required one left out.
Values that are resolved later (Secrets, Prefect's ``__prefect_kind`` values) are not type-checked.
Run job variables are checked against the pool's variables schema (names and types).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import jsonschema_rs

from reconciler import pooltypes
from reconciler.errors import LaunchError
from reconciler.objects import Resource, iter_secrets
from reconciler.pooltypes.base import schema_message


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
        problem = parameter_problem(schema, parameters)
        if problem is not None:
            raise LaunchError(f"run of {name}: {problem}")
    if job_variables:
        problem = job_variable_problem(pool, job_variables)
        if problem is not None:
            raise LaunchError(f"run of {name}: {problem}")


def parameter_problem(schema: Mapping[str, Any], parameters: Mapping[str, Any]) -> str | None:
    """The first problem of ``parameters`` (the deployment's merged with the run's), or None."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    open_ended = _may_take_any_keyword(properties)
    for key in parameters:
        if key not in properties and not open_ended:
            hint = difflib.get_close_matches(key, list(properties), n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            takes = ", ".join(sorted(properties)) or "no parameters"
            return f"unknown parameter {key!r}{tip}; the flow takes: {takes}"
    for key in schema.get("required") or ():
        if key not in parameters:
            return f"missing required parameter {key!r}"
    checked = {k: v for k, v in parameters.items() if _checkable(v)}
    validator = jsonschema_rs.Draft202012Validator(_plain(schema))
    for error in validator.iter_errors(checked):
        message = schema_message(error, schema)
        return f"parameter {message}" if error.instance_path else f"parameters: {message}"
    return None


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
            return f"job variable {problem.message}"
    return None


def _may_take_any_keyword(properties: Mapping[str, Any]) -> bool:
    """Whether the last parameter may be ``**kwargs`` (Prefect gathers unknown names into it).

    The schema shows ``**kwargs`` as an object parameter defaulting to ``{}`` in the last position,
    exactly as it shows such a keyword parameter: both are given the benefit of the doubt.
    """
    if not properties:
        return False
    last = max(properties.values(), key=lambda p: p.get("position", -1) if isinstance(p, Mapping) else -1)
    return isinstance(last, Mapping) and last.get("type") == "object" and last.get("default") == {}


def _checkable(value: Any) -> bool:
    """Values resolved when the run starts are not type-checked here."""
    if next(iter_secrets(value), None) is not None:
        return False
    return not (isinstance(value, Mapping) and "__prefect_kind" in value)


def _plain(schema: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(schema))
