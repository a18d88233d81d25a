"""Turn a stored deployment + pool + run overrides into the Job a launcher submits.

Runs launch what is *applied* (the store), not what the file says now. The job configuration is
rendered by the pool type (Prefect's rules), then block references are replaced by the blocks' data,
``{{ prefect.variables.NAME }}`` by the stored variables' values (in the configuration and the
parameters, as Prefect's worker resolves them after rendering), and secrets are resolved from the
launching process's environment. The resolved Job lives only in memory: its secret-bearing fields
are excluded from ``repr`` and nothing here logs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler import pooltypes
from reconciler.desired import flows, pull_steps
from reconciler.desired.templating import BLOCK_REFERENCE
from reconciler.errors import LaunchError
from reconciler.launch import blockrefs, bootstrap, run_inputs
from reconciler.launch.base import (
    ENV_DEPLOYMENT,
    ENV_ENTRYPOINT,
    ENV_FLOW,
    ENV_PARAMETERS,
    ENV_PULL_STEPS,
    ENV_RUN_ID,
    Job,
)
from reconciler.objects import Address, LiveState, Resource, iter_secrets, resolve_secrets
from reconciler.state import JobRuntime, RunRecord

RUNTIME_MODULE = "reconciler.runtime"
ENV_SECRET_PARAMETERS = "RECONCILE_SECRET_PARAMETERS"


def deployment_of(live: LiveState, deployment: str) -> Resource:
    flow, _, name = deployment.partition("/")
    stored = live.get(Address.deployment(flow, name))
    if stored is None:
        known = sorted(a.name for a in live.objects if a.kind.value == "deployment")
        hint = (
            f" (applied deployments: {', '.join(known[:10])})"
            if known
            else " (nothing applied yet: run reconcile apply)"
        )
        raise LaunchError(f"no applied deployment {deployment!r}{hint}")
    return stored.resource


def pool_of(live: LiveState, deployment: Resource) -> Resource:
    pool_ref = deployment.body.get("work_pool") or {}
    name = pool_ref.get("name")
    if not name:
        raise LaunchError(f"deployment {deployment.address.name} has no work pool to run on")
    stored = live.get(Address.pool(name))
    if stored is None:
        raise LaunchError(f"work pool {name!r} of {deployment.address.name} is not in the stored state")
    return stored.resource


def render_configuration(
    pool: Resource, deployment: Resource, run_variables: Mapping[str, Any]
) -> dict[str, Any]:
    """The job configuration by Prefect's rules, from the pool's own template when it has one."""
    pool_type = _pool_type(pool)
    deployment_variables = (deployment.body.get("work_pool") or {}).get("job_variables") or {}
    template = pool.body.get("base_job_template")
    if template:
        custom = pool_type.with_template(template)  # keeps the type's own rules (deprecated names...)
        return custom.render(
            pool_variables=pool.body.get("job_variables") or {},
            deployment_variables=deployment_variables,
            run_variables=run_variables,
        )
    return pool_type.render(
        pool_variables=pool.body.get("job_variables") or {},
        deployment_variables=deployment_variables,
        run_variables=run_variables,
    )


def build_job(
    *,
    live: LiveState,
    run: RunRecord,
    project_dir: Path,
    environ: Mapping[str, str],
    log_path: str | None,
    store_env: Mapping[str, str] | None = None,
    runtime: JobRuntime = JobRuntime.RECONCILER,
) -> Job:
    """Everything the launcher needs, with blocks inlined and secrets resolved (in memory only).

    ``store_env`` is what the store wants the job to know (a Prefect server's API URL and flow-run
    id); ``runtime`` is what the job runs: our runtime, or (``JobRuntime.PREFECT``, a store on a
    Prefect server) Prefect's own contract, ``prefect flow-run execute``.
    """
    deployment = deployment_of(live, run.deployment)
    pool = pool_of(live, deployment)
    configuration = render_configuration(pool, deployment, run.job_variables)
    blockrefs.refuse_unresolved(
        configuration,
        pool=pool.address.name,
        deployment=run.deployment,
        layers={
            f"run {run.id} job_variables": run.job_variables,
            f"deployment {run.deployment} work_pool.job_variables": (
                (deployment.body.get("work_pool") or {}).get("job_variables") or {}
            ),
            f"work pool {pool.address.name!r} job_variables": pool.body.get("job_variables") or {},
        },
    )
    blocks = _block_names(configuration)
    configuration = _inline_blocks(configuration, live)
    variables = run_inputs.variables_of(live)  # read now: a changed variable changes the next run
    configuration = run_inputs.with_variables(
        configuration, variables, what=f"the job configuration of {run.deployment}"
    )
    configuration = _resolve(configuration, environ, what=f"work pool {pool.address.name}")
    parameters = run_inputs.with_variables(
        dict(run.parameters), variables, what=f"a parameter of {run.deployment}"
    )
    body = deployment.body
    local = _pool_type(pool).launcher == "process"
    steps = body.get("pull_steps")
    if local:  # a local run executes this checkout, not the one `apply` ran in
        steps = pull_steps.for_local_run(
            steps, Path(project_dir), boundary=flows.boundary_of(Path(project_dir))
        )
    try:  # never run code from outside the project, whatever the store says
        flows.check_runnable(
            project_dir,
            str(body["entrypoint"]),
            working_dir=str(configuration["working_dir"]) if configuration.get("working_dir") else None,
            pull_steps=steps,
            local=local,
        )
    except flows.EntrypointError as exc:
        raise LaunchError(f"refusing to run {run.deployment}: {exc}") from None
    job_env = {k: str(v) for k, v in (configuration.get("env") or {}).items() if v is not None}
    contract = {
        ENV_RUN_ID: run.id,
        ENV_DEPLOYMENT: run.deployment,
        ENV_FLOW: body["flow_name"],
        ENV_ENTRYPOINT: body["entrypoint"],
        # secret parameters are resolved here, from the launcher's environment, and never shown
        ENV_PARAMETERS: json.dumps(
            _resolve(parameters, environ, what=f"a parameter of {run.deployment}"), sort_keys=True
        ),
    }
    secret_parameters = sorted(k for k, v in run.parameters.items() if next(iter_secrets(v), None))
    if secret_parameters:  # the runtime prints these as *** in the run's log
        contract[ENV_SECRET_PARAMETERS] = json.dumps(secret_parameters)
    if steps:
        contract[ENV_PULL_STEPS] = json.dumps(steps)
    launcher = _pool_type(pool).launcher
    python = sys.executable if launcher == "process" else "python"
    env = {**contract, **(store_env or {}), **job_env}
    # A local process has this package; a container image need not: the runtime travels with the job.
    command = (python, "-m", RUNTIME_MODULE) if launcher == "process" else bootstrap.inline_command(python)
    if runtime is JobRuntime.PREFECT:
        command = (python, "-m", "prefect", "flow-run", "execute")
    return Job(
        run_id=run.id,
        deployment=run.deployment,
        flow_name=body["flow_name"],
        entrypoint=body["entrypoint"],
        parameters=parameters,
        configuration=configuration,
        pool=pool.address.name,
        pool_type=pool.body["type"],
        project_dir=str(project_dir),
        env=env,
        command=command,
        log_path=log_path,
        labels={"reconcile.run-id": run.id, "reconcile.deployment": run.deployment},
        blocks=blocks,
    )


def launcher_name(live: LiveState, deployment: str) -> str:
    return _pool_type(pool_of(live, deployment_of(live, deployment))).launcher


def _pool_type(pool: Resource) -> pooltypes.PoolType:
    pool_type = pooltypes.get(pool.body["type"])
    if pool_type is None:
        raise LaunchError(f"work pool {pool.address.name} has unknown type {pool.body['type']!r}")
    return pool_type


def _block_names(configuration: Mapping[str, Any]) -> dict[str, str]:
    """Top-level variables that reference a block, as ``{"aws_credentials": "aws-credentials/prod"}``."""
    names = {}
    for key, value in configuration.items():
        match = BLOCK_REFERENCE.fullmatch(value.strip()) if isinstance(value, str) else None
        if match:
            names[key] = f"{match.group(1)}/{match.group(2)}"
    return names


def _inline_blocks(value: Any, live: LiveState) -> Any:
    """Replace whole-string ``{{ prefect.blocks.T.N[.path] }}`` references with the block's data."""
    if isinstance(value, str) and "{{" in value:
        match = BLOCK_REFERENCE.fullmatch(value.strip())
        if match:
            block_type, name, path = match.groups()
            stored = live.get(Address.block(block_type, name))
            if stored is None:
                raise LaunchError(
                    f"block {block_type}/{name} referenced by the pool is not in the stored state"
                )
            data: Any = stored.resource.body.get("data", {})
            for part in filter(None, path.split(".")):
                data = data.get(part) if isinstance(data, Mapping) else None
            return data
        return value
    if isinstance(value, Mapping):
        return {k: _inline_blocks(v, live) for k, v in value.items()}
    if isinstance(value, list):
        return [_inline_blocks(v, live) for v in value]
    return value


def _resolve(configuration: dict[str, Any], environ: Mapping[str, str], *, what: str) -> dict[str, Any]:
    missing = sorted({n for s in iter_secrets(configuration) for n in s.env_names if n not in environ})
    if missing:
        raise LaunchError(
            f"{what} needs environment variable {', '.join(missing)} at launch time (a secret: set it where "
            "reconcile runs)"
        )
    return resolve_secrets(configuration, environ)
