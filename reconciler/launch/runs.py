"""The run lifecycle: record -> claim -> submit -> follow, safe against crashes and retries.

Every write of a run is here, and every change of state goes through ``lifecycle.move`` (the table of
allowed moves).

1. ``create`` writes the run as SCHEDULED *before* anything is launched (an idempotency key makes a
   retried create return the same run), so a crash right after is visible in ``reconcile runs``.
2. ``launch`` claims the run by moving it to PENDING with an optimistic version check: of two
   launchers racing for one run exactly one wins. Only the winner submits.
3. The infrastructure id is saved before the first poll; ``refresh``/``wait`` follow the run to a
   terminal state. ``recover`` adopts runs whose launcher died between claim and save (the launcher
   finds the infrastructure tagged with the run id) or marks them CRASHED: never a second launch.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.errors import LaunchError, StaleVersion
from reconciler.infra.lease import holder_is_gone
from reconciler.launch import lifecycle, run_inputs
from reconciler.launch.base import Job, Launcher, LogChunk
from reconciler.launch.jobs import build_job, deployment_of, launcher_name, pool_of
from reconciler.objects import LiveState
from reconciler.state import ClaimsRuns, JobRuntime, Limit, RunRecord, RunState, Store

LauncherFactory = Callable[[str], Launcher]

# A SCHEDULED run nobody claimed for this long was left behind by a crashed launcher.
ABANDONED_AFTER = timedelta(minutes=5)
# A PENDING run whose claim is this old and that never got an infrastructure id was interrupted.
CLAIM_GRACE = timedelta(minutes=2)


@dataclass(frozen=True)
class Launch:
    """What :func:`submit` did: the run as it stands, and whether this call won its claim (and so
    handed it to a launcher: of several processes racing for one run, only one sees ``claimed``);
    ``full``: the concurrency limit that had no room (the run was left queued)."""

    run: RunRecord
    claimed: bool
    full: Limit | None = None


@dataclass
class RunContext:
    """What the lifecycle needs; launchers are created on first use and closed with the context."""

    store: Store
    live: LiveState
    project_dir: Path
    runs_dir: Path
    environ: Mapping[str, str]
    launcher_factory: LauncherFactory
    _launchers: dict[str, Launcher] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def launcher(self, name: str) -> Launcher:
        """One launcher per name, shared by every thread using this context."""
        with self._guard:
            if name not in self._launchers:
                self._launchers[name] = self.launcher_factory(name)
            return self._launchers[name]

    def launcher_for(self, run: RunRecord) -> Launcher:
        return self.launcher(launcher_name(self.live, run.deployment))

    def job_for(self, run: RunRecord) -> Job:
        """The run's Job as the stored state renders it now (secrets from this process's env)."""
        return build_job(
            live=self.live,
            run=run,
            project_dir=self.project_dir,
            environ=self.environ,
            log_path=run.log_path,
            store_env=self.store.job_environment(run),
            runtime=self.store.job_runtime,
        )

    def close(self) -> None:
        for launcher in self._launchers.values():
            launcher.close()


def create(
    ctx: RunContext,
    deployment: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    job_variables: Mapping[str, Any] | None = None,
    reason: str = "manual",
    idempotency_key: str | None = None,
    scheduled_for: datetime | None = None,
) -> RunRecord:
    """Record a run of an applied deployment (nothing is launched yet)."""
    dep = deployment_of(ctx.live, deployment)
    pool = pool_of(ctx.live, dep)
    run_id = str(uuid.uuid4())
    merged = {**(dep.body.get("parameters") or {}), **(parameters or {})}
    if ctx.store.job_runtime is JobRuntime.PREFECT:
        # Prefect's engine runs the flow with the parameters the server's flow run holds, fixed now;
        # our own runtime reads them at launch (jobs.build_job), so a queued run sees a later value
        variables = run_inputs.variables_of(ctx.live)
        merged = run_inputs.with_variables(merged, variables, what=f"a parameter of {deployment}")
    run_inputs.check(dep, pool, parameters=merged, job_variables=job_variables or {})  # before any record
    record = RunRecord(
        id=run_id,
        deployment=deployment,
        pool=pool.address.name,
        pool_type=pool.body["type"],
        state=RunState.SCHEDULED,
        parameters=merged,
        job_variables=dict(job_variables or {}),
        reason=reason,
        idempotency_key=idempotency_key,
        log_path=str(ctx.runs_dir / run_id / "log.txt"),
        created_at=datetime.now(UTC),
        scheduled_for=scheduled_for,
    )
    return ctx.store.create_run(record)


def launch(ctx: RunContext, run: RunRecord) -> RunRecord:
    """Claim and submit a SCHEDULED run; any other state is returned untouched."""
    return submit(ctx, run).run


def submit(ctx: RunContext, run: RunRecord, limits: Sequence[Limit] = ()) -> Launch:
    """:func:`launch`, saying whether this call won the claim (only the winner submits).

    The claim admits the run only if every one of ``limits`` has room (``lifecycle.claim``: atomic
    on stores that can, so several ``serve`` replicas keep the limits exact). Its time is the run's
    start, and it names this process, so recovery can tell a launch in progress from one whose
    process is gone.
    """
    if run.state is not RunState.SCHEDULED:
        return Launch(run, claimed=False)
    admission = lifecycle.claim(ctx.store, run, limits, started_at=datetime.now(UTC), claimed_by=claimer())
    if not admission.claimed:
        return Launch(admission.run, claimed=False, full=admission.full)
    run = admission.run
    try:
        infrastructure_id = ctx.launcher_for(run).submit(ctx.job_for(run))
    except LaunchError as exc:
        crashed = lifecycle.move(
            ctx.store,
            run,
            state=RunState.CRASHED,
            message=f"failed to submit the run to its infrastructure: {exc}",
            ended_at=datetime.now(UTC),
        )
        return Launch(crashed, claimed=True)
    return Launch(lifecycle.move(ctx.store, run, infrastructure_id=infrastructure_id), claimed=True)


def settle(ctx: RunContext, stored: Sequence[RunRecord]) -> None:
    """Let the store free the admission slots of runs that ended and keep those of runs in flight
    (a Prefect server's concurrency leases); whichever process reads a run's end settles it."""
    if isinstance(ctx.store, ClaimsRuns):
        ctx.store.settle_runs(stored)


def hold(ctx: RunContext, run: RunRecord, why: str) -> RunRecord:
    """Keep a due SCHEDULED run queued, saying why (a restart keeps its place; recovery leaves it).

    A run claimed or changed meanwhile is returned as given: whoever moved it decided.
    """
    if run.state is not RunState.SCHEDULED or run.waiting == why:
        return run
    try:
        return lifecycle.move(ctx.store, run, waiting=why)
    except StaleVersion:
        return run


def cancel_queued(ctx: RunContext, run: RunRecord, why: str, *, now: datetime) -> RunRecord | None:
    """Cancel a run that was never launched (a CANCEL_NEW concurrency limit); None if it was
    claimed meanwhile (by another launcher: that one decided)."""
    try:
        return lifecycle.move(
            ctx.store, run, state=RunState.CANCELLED, message=f"cancelled: {why}", ended_at=now
        )
    except StaleVersion:
        return None


def refresh(ctx: RunContext, run: RunRecord) -> RunRecord:
    """Ask the infrastructure how the run is doing and save any change.

    The store is asked first: on a Prefect server the flow's own engine reports RUNNING/COMPLETED
    there, and that beats what the infrastructure alone can tell.
    """
    run = ctx.store.get_run(run.id) or run
    if run.state.terminal or not run.infrastructure_id:
        return run
    status = ctx.launcher_for(run).poll(ctx.job_for(run), run.infrastructure_id)
    if status.state.terminal:
        latest = ctx.store.get_run(run.id) or run
        if latest.state.terminal:  # the engine reported while the infrastructure wound down
            return latest
        run = latest
    changes: dict[str, Any] = {}
    if status.state is not run.state and lifecycle.allowed(run.state, status.state):
        changes["state"] = status.state
    if status.exit_code is not None and status.exit_code != run.exit_code:
        changes["exit_code"] = status.exit_code
    if status.message and status.message != run.message:
        changes["message"] = status.message
    if status.started_at and run.started_at is None:
        changes["started_at"] = status.started_at
    if status.state.terminal and run.ended_at is None:
        changes["ended_at"] = status.ended_at or datetime.now(UTC)
    if not changes:
        return run
    try:
        return lifecycle.move(ctx.store, run, **changes)
    except StaleVersion:  # another follower (a serve replica) saved what it saw first: read it back
        return ctx.store.get_run(run.id) or run


def wait(
    ctx: RunContext,
    run: RunRecord,
    *,
    timeout: float | None = None,
    interval: float = 0.5,
    on_log: Callable[[LogChunk], None] | None = None,
) -> RunRecord:
    """Follow a run to a terminal state, streaming its log; returns it as it stands at the deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cursor = 0
    while True:
        run = refresh(ctx, run)
        if on_log is not None and run.infrastructure_id:
            chunk = ctx.launcher_for(run).logs(ctx.job_for(run), run.infrastructure_id, cursor=cursor)
            cursor = chunk.cursor
            if chunk.text or (chunk.location and cursor == 0):
                on_log(chunk)
        if run.state.terminal or not run.infrastructure_id:
            return run
        if deadline is not None and time.monotonic() >= deadline:
            return run
        time.sleep(interval)


def cancel(ctx: RunContext, run: RunRecord) -> RunRecord:
    """Stop a run's infrastructure; a run not launched yet is cancelled directly."""
    if run.state.terminal:
        return run
    if not run.infrastructure_id:
        return lifecycle.move(
            ctx.store, run, state=RunState.CANCELLED, ended_at=datetime.now(UTC), message="cancelled"
        )
    ctx.launcher_for(run).cancel(ctx.job_for(run), run.infrastructure_id)
    return lifecycle.move(
        ctx.store, run, state=RunState.CANCELLED, ended_at=datetime.now(UTC), message="cancelled by request"
    )


def recover(
    ctx: RunContext,
    *,
    now: datetime | None = None,
    grace: timedelta = CLAIM_GRACE,
    candidates: Iterable[RunRecord] | None = None,
) -> list[RunRecord]:
    """Adopt or close runs whose launch was interrupted; returns the runs it changed.

    A PENDING run without infrastructure is only touched once its claim is older than ``grace``: a
    younger one may belong to a launcher (``run``, ``serve``) that is submitting it right now.
    ``candidates`` limits it to those runs (serve's choice); by default every stored run is looked at.
    """
    now = now or datetime.now(UTC)
    changed: list[RunRecord] = []
    for run in ctx.store.list_runs(limit=10_000) if candidates is None else candidates:
        if run.state is RunState.PENDING and not run.infrastructure_id and _claim_expired(run, now, grace):
            found = ctx.launcher_for(run).find(ctx.job_for(run))
            if found:
                changed.append(
                    lifecycle.move(
                        ctx.store, run, infrastructure_id=found, message="adopted after an interrupted launch"
                    )
                )
            else:
                changed.append(
                    _crash(ctx, run, "the launcher stopped before the run reached its infrastructure")
                )
        elif run.state is RunState.SCHEDULED and _abandoned(run, now) and run.waiting is None:
            changed.append(_crash(ctx, run, "recorded but never launched (the launcher stopped)"))
    return changed


def _claim_expired(run: RunRecord, now: datetime, grace: timedelta) -> bool:
    claimed = run.started_at or run.created_at
    return claimed is None or now - claimed >= grace or claimer_gone(run)


def claimer() -> str:
    """Who claims a run: this process, as ``HOST/PID`` (asked at each claim: a fork is another process)."""
    return f"{socket.gethostname()}/{os.getpid()}"


def claimer_gone(run: RunRecord) -> bool:
    """Whether the process that claimed ``run`` ran on this host and no longer exists (killed
    mid-launch): its claim is interrupted for sure, whatever its age."""
    host, _, pid = (run.claimed_by or "").rpartition("/")
    return bool(host) and pid.isdigit() and holder_is_gone(host=host, pid=int(pid))


def _abandoned(run: RunRecord, now: datetime) -> bool:
    due = run.scheduled_for or run.created_at
    return due is not None and now - due > ABANDONED_AFTER


def _crash(ctx: RunContext, run: RunRecord, message: str) -> RunRecord:
    return lifecycle.move(ctx.store, run, state=RunState.CRASHED, message=message, ended_at=datetime.now(UTC))
