"""The Cloud Run launcher (``cloud-run:push`` and ``cloud-run-v2:push``, both via the Admin API v2).

One Cloud Run **job per deployment version**, one **execution per run**:

- ``submit``: the job id is ``<pool>-<flow>-<deployment>-<hash of the job body>``
  (:mod:`cloud_run_body`). ``get_job`` (once per launcher and job), and ``create_job`` when it is
  missing (409 = someone else just created it: reuse). A changed body gives a new id instead of
  ``update_job``: executions of the old version keep their job, and two launchers never race on a
  read-modify-write. An existing job is first searched for an execution of this run (a repeated
  submit returns it). Then ``run_job`` with the run in the overrides (env incl.
  ``RECONCILE_RUN_ID``, timeout). ``run_job`` is not idempotent, so before every retry of an
  ambiguous failure (429/5xx/timeout) the search runs again; a found execution is returned, never
  a second start. The infrastructure id is the execution's name
  (``projects/p/locations/l/jobs/j/executions/e``).
- ``find`` (adopting an interrupted launch) does the same search on the job and, should the body
  have changed since, on every job labelled with the run's pool and deployment.
- ``poll`` reads the execution until ``completionTime``: succeeded -> COMPLETED (exit 0); a task
  that exited non-zero -> FAILED with its exit code (from the task's ``lastAttemptResult``); a task
  that never ran or was stopped without an exit code (image pull, resources, task timeout) ->
  CRASHED with Cloud Run's message; cancelled -> CANCELLED.
- cleanup, when the run has ended and ``keep_job`` is false: delete the run's execution, then the
  job if no execution is left and its ``latestCreatedExecution`` is still this run's, with the
  job's ``etag``. A launcher whose ``run_job`` meets a job deleted under it creates it again.
- ``logs``: Cloud Run writes output to Cloud Logging, which we do not read; the chunk is empty and
  its ``location`` is the execution's ``logUri`` (a console link).

Environment of the launching process: ``RECONCILE_CLOUD_RUN_ENDPOINT`` (an emulator or private
endpoint, ``http://host:port`` for plain HTTP), plus Google's application-default variables when
no credentials block is set.

Documented Cloud Run rules this launcher relies on (Cloud Run Admin API v2 reference,
cloud.google.com/run/docs/reference/rest/v2/):

* ``jobs.run`` returns a long-running Operation whose metadata is the Execution (``run_v2``'s
  ``metadata_type=Execution``): the execution's name comes from it, read once more from the
  operation if the first answer lacks it, and is the infrastructure id the lifecycle saves before
  the first poll.
* Job ids: at most 63 lowercase letters, digits and hyphens, starting with a letter
  (``jobs.create``, ``jobId``); labels: at most 64, keys and values up to 63 lowercase letters,
  digits, ``_`` and ``-``, keys starting with a letter (Resource Manager "Labels" requirements).
* Run overrides carry env, args, task count and timeout only (``RunJobRequest.Overrides``): the
  command lives in the Job. An env value holds up to 32768 bytes, a container up to 1000 variables
  (``EnvVar``; "Configure environment variables" for jobs).
* ``Job.latestCreatedExecution`` and ``Job.etag`` (a fingerprint "used to detect modification
  conflict") guard the cleanup; ``Execution.createTime`` bounds the search before a retry.

Not documented, hence never carrying correctness: that an execution's ``template`` shows RunJob's
override env. It is only a fallback for finding a run's execution; when executions do not show
their run, an ambiguous ``run_job`` failure is not retried (see ``_run``), so the cost of a wrong
assumption is an extra call or a reported launch error, never a second execution.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import run_v2

from reconciler.errors import LaunchError
from reconciler.infra.retry import call_with_retries
from reconciler.launch.base import Job, JobStatus, LogChunk
from reconciler.launch.cloud_run import body as body_mod
from reconciler.launch.cloud_run.gcp import AlreadyExists, FailedPrecondition, Missing, Session, open_session
from reconciler.state import RunState

State = run_v2.Condition.State
Reason = run_v2.Condition.ExecutionReason
_NOT_STARTED = ("ResourcesAvailable", "Started")
CLOCK_SKEW = timedelta(minutes=2)  # how far Cloud Run's createTime may lag our clock


class CloudRunLauncher:
    """Runs jobs on Cloud Run; one client session per credentials block, reused across runs."""

    def __init__(self, *, environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()  # `serve` may share one launcher between threads
        self._jobs_seen: set[str] = set()  # jobs known to exist: no get_job before each run
        self._log_uris: dict[str, str] = {}  # execution name -> logUri, so logs() need not ask
        self._final: dict[str, JobStatus] = {}  # terminal states seen here (survive our cleanup)

    # -- Launcher protocol -------------------------------------------------------------------------

    def submit(self, job: Job) -> str:
        session = self._session(job)
        target = body_mod.plan(job, project=session.project)
        for _ in range(2):
            if not self._ensure_job(session, target):
                found = self._search(session, target.name, job.run_id)
                if found:
                    return found
            try:
                return self._run(session, target, job.run_id)
            except Missing:
                self._jobs_seen.discard(target.name)  # another run's cleanup deleted it: create it again
        raise LaunchError(f"job {target.name} keeps disappearing (is something deleting it?)")

    def find(self, job: Job) -> str | None:
        session = self._session(job)
        target = body_mod.plan(job, project=session.project)
        found = self._search(session, target.name, job.run_id)
        if found:
            return found
        labels = {body_mod.LABEL_POOL: target.body["labels"][body_mod.LABEL_POOL]}
        labels[body_mod.LABEL_DEPLOYMENT] = target.body["labels"][body_mod.LABEL_DEPLOYMENT]
        for other in session.list_jobs(target.parent):
            if other.name != target.name and all(other.labels.get(k) == v for k, v in labels.items()):
                found = self._search(session, other.name, job.run_id)
                if found:
                    return found
        return None

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus:
        job_name, _ = body_mod.parse_execution_name(infrastructure_id)
        if infrastructure_id in self._final:
            return self._final[infrastructure_id]
        session = self._session(job)
        try:
            execution = session.get_execution(infrastructure_id)
        except Missing:
            return JobStatus(
                RunState.CRASHED,
                message=f"execution {infrastructure_id} no longer exists (deleted after it ended, or outside "
                "reconcile): its outcome is unknown",
            )
        if execution.log_uri:
            self._log_uris[infrastructure_id] = execution.log_uri
        if "completion_time" not in execution:
            return _running(execution)
        tasks = (
            []
            if execution.succeeded_count and not execution.failed_count
            else self._tasks(session, execution)
        )
        status = status_of(execution, tasks)
        self._final[infrastructure_id] = status
        if not _keep_job(job):
            self._cleanup(session, infrastructure_id, job_name)
        return status

    def cancel(self, job: Job, infrastructure_id: str) -> None:
        job_name, _ = body_mod.parse_execution_name(infrastructure_id)
        session = self._session(job)
        try:
            session.cancel_execution(infrastructure_id)
        except Missing:
            return  # already gone: nothing left to stop
        except FailedPrecondition:
            pass  # it had ended already
        if not _keep_job(job):
            self._cleanup(session, infrastructure_id, job_name)

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk:
        body_mod.parse_execution_name(infrastructure_id)
        uri = self._log_uris.get(infrastructure_id)
        if uri is None:
            try:
                uri = self._session(job).get_execution(infrastructure_id).log_uri or None
            except Missing:
                uri = None
            uri = uri or body_mod.console_log_url(infrastructure_id)
            self._log_uris[infrastructure_id] = uri
        return LogChunk("", cursor, uri)

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()

    # -- helpers -----------------------------------------------------------------------------------

    def _session(self, job: Job) -> Session:
        """One session per distinct credentials block (keyed by a hash: no secret kept as a key)."""
        block = job.configuration.get("credentials")
        key = hashlib.sha256(json.dumps(block, sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = open_session(block, environ=self.environ, who=_who(job))
            return self._sessions[key]

    def _ensure_job(self, session: Session, target: body_mod.JobPlan) -> bool:
        """True when this call created the job, False when it was there already."""
        if target.name in self._jobs_seen:
            return False
        try:
            session.get_job(target.name)
            created = False
        except Missing:
            try:
                session.create_job(target.parent, target.job_id, target.body)
                created = True
            except AlreadyExists:
                created = False
            except Missing as exc:  # e.g. the image or the location does not exist
                raise LaunchError(str(exc)) from exc
        self._jobs_seen.add(target.name)
        return created

    def _run(self, session: Session, target: body_mod.JobPlan, run_id: str) -> str:
        """``run_job``, retried only after checking that the failed attempt started nothing.

        The execution's name comes from the RunJob operation's metadata, documented to be the
        Execution (read again from the operation if the first answer lacks it); the run's id in the
        execution's env is only a fallback. Before a retry, executions created since the first attempt
        are checked: one naming this run is adopted; one that names no run at all means Cloud Run does
        not show override env in executions, so whether the attempt started one cannot be known: no
        retry, never a second execution.
        """
        found: list[str] = []
        since = datetime.now(UTC) - CLOCK_SKEW

        def attempt() -> str:
            if found:
                return found[0]
            name = session.run_job_once(target.name, target.overrides)
            name = name or self._search(session, target.name, run_id)
            if name is None:
                raise LaunchError(
                    f"run job {target.name}: Cloud Run started no execution this run can be found by"
                )
            return name

        def before_retry(error: LaunchError, _attempt: int) -> None:
            name, unknown = self._search_since(session, target.name, run_id, since)
            if name:
                found.append(name)
            elif unknown:
                raise LaunchError(
                    f"run job {target.name} failed ambiguously ({error}) and execution {unknown[0]} does not show "
                    f"which run started it: not retrying, so that run {run_id} never starts twice (check the job's "
                    "executions)"
                )

        return call_with_retries(attempt, before_retry=before_retry)

    def _search(self, session: Session, job_name: str, run_id: str) -> str | None:
        """The execution of ``job_name`` whose env names ``run_id`` (the newest if several)."""
        return self._search_since(session, job_name, run_id, None)[0]

    def _search_since(
        self, session: Session, job_name: str, run_id: str, since: datetime | None
    ) -> tuple[str | None, list[str]]:
        """``(this run's execution, executions created since ``since`` that name no run)``."""
        try:
            executions = session.list_executions(job_name)
        except Missing:
            return None, []
        unknown: list[str] = []
        for execution in executions:
            named: set[str] = set()
            for container in execution.template.containers:
                named |= body_mod.run_id_of(container.env)
            if run_id in named:
                return str(execution.name), []
            created = _time(execution, "create_time")
            if since is not None and not named and (created is None or created >= since):
                unknown.append(str(execution.name))
        return None, unknown

    def _tasks(self, session: Session, execution: run_v2.Execution) -> list[run_v2.Task]:
        try:
            return session.list_tasks(execution.name)
        except LaunchError:
            return []  # the exit code is a detail; the state stands without it

    def _cleanup(self, session: Session, execution_name: str, job_name: str) -> None:
        """Delete the run's execution, then its job if no other run uses it. Best effort.

        The job goes only if, read *after* the executions were listed, its documented
        ``latestCreatedExecution`` is still this run's execution, and with that read's ``etag``: a run
        started meanwhile keeps its job whether or not running a job changes the etag (which Cloud
        Run does not document); if it happens between our read and the delete, the etag is the last
        guard, and that run's ``run_job`` recreates a job deleted before it ran.
        """
        try:
            with contextlib.suppress(Missing):
                session.delete_execution(execution_name)
            if session.list_executions(job_name):
                return
            current = session.get_job(job_name)
            latest = current.latest_created_execution.name if "latest_created_execution" in current else ""
            if latest and latest != execution_name:
                return  # another run started an execution after ours
            self._jobs_seen.discard(job_name)
            session.delete_job(job_name, etag=current.etag)
        except LaunchError:
            pass  # a job started meanwhile (etag changed), or gone already: leave it


def status_of(execution: run_v2.Execution, tasks: list[run_v2.Task]) -> JobStatus:
    """The run state a *completed* execution stands for (see the module doc)."""
    started, ended = _time(execution, "start_time"), _time(execution, "completion_time")
    conditions = {c.type_: c for c in execution.conditions}
    completed = conditions.get("Completed")
    if execution.cancelled_count or (
        completed is not None and completed.execution_reason == Reason.CANCELLED
    ):
        return JobStatus(
            RunState.CANCELLED, message="cancelled on Cloud Run", started_at=started, ended_at=ended
        )
    if completed is not None and completed.state == State.CONDITION_SUCCEEDED and not execution.failed_count:
        return JobStatus(RunState.COMPLETED, exit_code=0, started_at=started, ended_at=ended)
    for task in tasks:
        if "last_attempt_result" not in task:
            continue
        result = task.last_attempt_result
        code = result.exit_code or (128 + result.term_signal if result.term_signal else 0)
        if code > 128:  # killed (137: SIGKILL, the OOM killer's): the infrastructure, not the flow
            return JobStatus(
                RunState.CRASHED,
                exit_code=code,
                message=f"the flow's container was killed by signal {code - 128} (exit code {code})"
                + (f": {completed.message}" if completed and completed.message else ""),
                started_at=started,
                ended_at=ended,
            )
        if code:
            how = (
                f"killed by signal {result.term_signal}" if result.term_signal else f"exited with code {code}"
            )
            message = f"the flow's container {how}" + (
                f": {completed.message}" if completed and completed.message else ""
            )
            return JobStatus(
                RunState.FAILED, exit_code=code, message=message, started_at=started, ended_at=ended
            )
    if completed is not None and completed.execution_reason == Reason.NON_ZERO_EXIT_CODE:
        return JobStatus(RunState.FAILED, message=completed.message, started_at=started, ended_at=ended)
    return JobStatus(
        RunState.CRASHED, message=_crash_message(execution, tasks), started_at=started, ended_at=ended
    )


def _crash_message(execution: run_v2.Execution, tasks: list[run_v2.Task]) -> str:
    for condition in execution.conditions:
        if (
            condition.type_ in _NOT_STARTED
            and condition.state == State.CONDITION_FAILED
            and condition.message
        ):
            return f"Cloud Run could not start the job: {condition.message}"
    for task in tasks:
        if "last_attempt_result" in task and task.last_attempt_result.status.message:
            return f"Cloud Run stopped the task: {task.last_attempt_result.status.message}"
    for condition in execution.conditions:
        if condition.state == State.CONDITION_FAILED and condition.message:
            return f"Cloud Run: {condition.message}"
    return "the Cloud Run execution failed without a reason"


def _running(execution: run_v2.Execution) -> JobStatus:
    started = _time(execution, "start_time")
    conditions = {c.type_: c for c in execution.conditions}
    completed = conditions.get("Completed")
    if completed is not None and completed.execution_reason == Reason.CANCELLING:
        return JobStatus(RunState.CANCELLING, started_at=started)
    if execution.running_count or started is not None:
        return JobStatus(RunState.RUNNING, started_at=started)
    return JobStatus(RunState.PENDING)


def _time(message: Any, field: str) -> datetime | None:
    """A timestamp field as a plain aware datetime (proto-plus gives a nanosecond subclass)."""
    if field not in message:
        return None
    return datetime.fromtimestamp(getattr(message, field).timestamp(), tz=UTC)


def _keep_job(job: Job) -> bool:
    return bool(job.configuration.get("keep_job", False))


def _who(job: Job) -> str:
    """How error messages name the credentials: the block when the Job knows it, else the pool."""
    block = job.blocks.get("credentials")
    if block:
        return f"block {block} (the credentials of work pool {job.pool})"
    if job.configuration.get("credentials"):
        return f"the gcp-credentials block of work pool {job.pool}"
    return f"the application default credentials (work pool {job.pool} names no gcp-credentials block)"
