"""Shared by the ACI launcher tests: the settings that point the SDK at the fake, and Job building.

Every setting is a documented product feature: ``RECONCILE_AZURE_ARM_ENDPOINT`` (a sovereign or
private ARM endpoint), ``AZURE_AUTHORITY_HOST`` (azure-identity's authority setting),
``REQUESTS_CA_BUNDLE`` (requests' CA bundle); an authority that is not one of Azure's clouds turns
instance discovery off by itself (azure-identity's ``disable_instance_discovery``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler.infra.retry import RetryPolicy
from reconciler.launch.aci.launcher import AciLauncher
from reconciler.launch.base import Job, JobStatus
from tests.fakes.aci import AciFake
from tests.launch.jobs_support import rendered_job

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)
CLIENT_SECRET = "aci-s3cr3t-CANARY-4be1d"
DB_PASSWORD = "db-pw-CANARY-77a0c"
KEEP_RUNNING = 10**9


def environ(fake: AciFake) -> dict[str, str]:
    """The launching process's settings that point the SDK at the fake (all documented features)."""
    return {
        "RECONCILE_AZURE_ARM_ENDPOINT": fake.url,
        "AZURE_AUTHORITY_HOST": fake.url,
        "REQUESTS_CA_BUNDLE": str(fake.cert_path),
    }


def credentials(fake: AciFake, **changes: Any) -> dict[str, Any]:
    return {
        "client_id": fake.client_id,
        "tenant_id": fake.tenant_id,
        "client_secret": CLIENT_SECRET,
        **changes,
    }


def make_job(
    fake: AciFake,
    tmp_path: Path,
    *,
    run_id: str | None = None,
    pool: Mapping[str, Any] | None = None,
    deployment: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    creds: Mapping[str, Any] | None = None,
) -> Job:
    """A Job as the lifecycle builds it for the fake's subscription and credentials."""
    run_id = run_id or str(uuid.uuid4())
    pool_variables = {
        "resource_group_name": "rg-flows",
        "subscription_id": fake.subscription_id,
        "image": "ghcr.io/acme/flows:1",
        "aci_credentials": dict(creds) if creds is not None else credentials(fake),
        "task_watch_poll_interval": 0,
        **(pool or {}),
    }
    return rendered_job(
        "azure-container-instance:push",
        pool="aci-fake",
        pool_variables=pool_variables,
        deployment_variables={"cpu": 0.5, "memory": 1.5, **(deployment or {})},
        parameters={"name": "aci"},
        project_dir=str(tmp_path),
        run_id=run_id,
        env=env,
        log_path=str(tmp_path / "runs" / run_id / "log.txt"),
    )


def poll_until_terminal(
    launcher: AciLauncher, job: Job, infrastructure_id: str, limit: int = 20
) -> JobStatus:
    for _ in range(limit):
        status = launcher.poll(job, infrastructure_id)
        if status.state.terminal:
            return status
    raise AssertionError(f"still {status.state} after {limit} polls")
