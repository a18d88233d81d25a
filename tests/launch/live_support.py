"""A stored state with one pool and one deployment, so tests build Jobs through the real lifecycle code
(``reconciler.launch.jobs.build_job``: rendering, block inlining, ``$ref`` handling, the command)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.launch.base import Job
from reconciler.launch.jobs import build_job
from reconciler.objects import Address, LiveState, Resource, StoredObject
from reconciler.state import RunRecord, RunState

FLOW = "hello"
DEPLOYMENT = "greet"


def live_state(
    pool_type: str,
    *,
    pool_variables: Mapping[str, Any],
    deployment_variables: Mapping[str, Any] | None = None,
    base_job_template: Mapping[str, Any] | None = None,
    blocks: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    entrypoint: str = "flows/hello.py:hello",
    pool: str = "pool",
) -> LiveState:
    """A LiveState as a store returns it after ``apply`` (block bodies hold resolved-later data)."""
    resources = [
        Resource(
            Address.pool(pool),
            {
                "type": pool_type,
                "job_variables": dict(pool_variables),
                "base_job_template": dict(base_job_template) if base_job_template else None,
            },
        ),
        Resource(
            Address.deployment(FLOW, DEPLOYMENT),
            {
                "flow_name": FLOW,
                "entrypoint": entrypoint,
                "work_pool": {"name": pool, "job_variables": dict(deployment_variables or {})},
                "pull_steps": None,
            },
        ),
    ]
    for (block_type, name), data in (blocks or {}).items():
        resources.append(Resource(Address.block(block_type, name), {"data": dict(data)}))
    objects = {r.address: StoredObject(r, version=1) for r in resources}
    return LiveState(url="memory://", serial=1, objects=objects)


def job_of(
    live: LiveState,
    project_dir: Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> Job:
    run = RunRecord(
        id=run_id or str(uuid.uuid4()),
        deployment=f"{FLOW}/{DEPLOYMENT}",
        pool=None,
        pool_type=None,
        state=RunState.SCHEDULED,
        parameters=dict(parameters or {}),
    )
    return build_job(live=live, run=run, project_dir=project_dir, environ=dict(environ or {}), log_path=None)
