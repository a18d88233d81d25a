"""A Job as the run lifecycle builds it (the pool type's rendering, block data inlined), for launcher
tests that drive a launcher directly instead of through ``reconciler.launch.jobs``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from reconciler import pooltypes
from reconciler.launch import bootstrap
from reconciler.launch.base import Job


def rendered_job(
    pool_type: str,
    *,
    pool: str,
    pool_variables: Mapping[str, Any],
    deployment_variables: Mapping[str, Any],
    parameters: Mapping[str, Any],
    project_dir: str,
    run_id: str | None = None,
    env: Mapping[str, str] | None = None,
    log_path: str | None = None,
) -> Job:
    run_id = run_id or str(uuid.uuid4())
    configuration = pooltypes.get(pool_type).render(
        pool_variables=pool_variables, deployment_variables=deployment_variables, run_variables={}
    )
    job_env = {k: str(v) for k, v in (configuration.get("env") or {}).items()}
    contract = {"RECONCILE_RUN_ID": run_id, "RECONCILE_PARAMETERS": json.dumps(dict(parameters))}
    return Job(
        run_id=run_id,
        deployment="hello/greet",
        flow_name="hello",
        entrypoint="flows/hello.py:hello",
        parameters=dict(parameters),
        configuration=configuration,
        pool=pool,
        pool_type=pool_type,
        project_dir=project_dir,
        env={**contract, **job_env, **(env or {})},
        command=bootstrap.inline_command(),
        log_path=log_path,
        labels={"reconcile.run-id": run_id, "reconcile.deployment": "hello/greet"},
    )
