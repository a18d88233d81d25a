"""The Launcher seam: submit a rendered job to some infrastructure, follow it, cancel it.

One module per infrastructure (``process``, ``ecs``, ``cloud_run``, ``aci``) implements this
protocol; no SDK exception leaves its module (each translates to ``LaunchError``). ``submit`` must be
idempotent per run id: calling it again for the same run (after a timeout or a crash) finds the
infrastructure it already created instead of creating another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from reconciler.state import RunState

# Environment contract of the runtime (``python -m reconciler.runtime``), documented in the README.
ENV_RUN_ID = "RECONCILE_RUN_ID"
ENV_DEPLOYMENT = "RECONCILE_DEPLOYMENT"
ENV_FLOW = "RECONCILE_FLOW_NAME"
ENV_ENTRYPOINT = "RECONCILE_ENTRYPOINT"
ENV_PARAMETERS = "RECONCILE_PARAMETERS"
ENV_PULL_STEPS = "RECONCILE_PULL_STEPS"
ENV_RESULT_FILE = "RECONCILE_RESULT_FILE"


@dataclass(frozen=True)
class Job:
    """Everything a launcher needs for one run.

    ``configuration`` is the pool type's rendered job configuration (Prefect's rules). Block
    references in it are already resolved to block data by the run lifecycle; secrets are resolved
    only inside the launcher, from ``environ`` (the launching process's environment).
    """

    run_id: str
    deployment: str  # "flow/name"
    flow_name: str
    entrypoint: str
    parameters: Mapping[str, Any]
    configuration: Mapping[str, Any] = field(repr=False)
    pool: str
    pool_type: str
    project_dir: str
    env: Mapping[str, str] = field(repr=False)  # contract env vars plus the job's env, resolved
    command: tuple[str, ...]
    log_path: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # job variable -> "TYPE/NAME" of the block it referenced, so errors can name the block
    blocks: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobStatus:
    """What the infrastructure says about a submitted job."""

    state: RunState
    exit_code: int | None = None
    message: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class LogChunk:
    """New log text since a cursor, and the cursor to ask from next time."""

    text: str
    cursor: int
    location: str = ""  # where the full log lives (a file, a console URL)


class Launcher(Protocol):
    """Infrastructure for one family of pool types.

    Every call gets the run's Job (rebuilt from the stored state by the lifecycle), because following
    a run from another process needs the same region and credentials that submitted it.
    """

    def submit(self, job: Job) -> str:
        """Start the job (or find the one already started for ``job.run_id``); returns its id."""
        ...

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus: ...

    def cancel(self, job: Job, infrastructure_id: str) -> None: ...

    def find(self, job: Job) -> str | None:
        """The infrastructure already created for this run, if any (adopts interrupted launches)."""
        ...

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk: ...

    def close(self) -> None: ...
