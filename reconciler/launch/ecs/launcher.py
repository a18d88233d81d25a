"""The ``ecs`` launcher: each run of an ``ecs:push`` pool is one AWS ECS task, started with boto3.

Submitting a run:

1. look the run up first (``list_tasks(startedBy=reconcile-<run id>)``, the only filter, as AWS
   requires): a repeated submit adopts the task it already started while that task lives; after it
   stopped, the RunTask ``clientToken`` (the run id) makes AWS answer with the same task;
2. ensure the task definition: the ``task_definition_arn`` variable is used as is; otherwise the
   wanted definition is compared with the newest ACTIVE revision of its family (in normal form, see
   ``ecs_taskdef.comparable``) and registered only when it differs; the answer is cached per family;
3. ``run_task`` with ``startedBy`` and ``clientToken`` derived from the run id. A throttled or failed
   RunTask is retried only after looking the run up again, because the failed attempt may have
   started the task (moto ignores ``clientToken``; real ECS honours it): never two tasks for a run.

The infrastructure id is ``{cluster}::{taskArn}``; the ARN carries the region, so another process
can follow the run with the job's credentials. Runs whose job env sets ``PREFECT_API_URL`` use
Prefect's contract (``prefect flow-run execute`` with ``PREFECT__FLOW_RUN_ID``). This module and
``ecs_aws`` are the only ones that see botocore: every AWS error becomes a ``LaunchError`` here.

Documented ECS rules this launcher relies on (Amazon ECS API Reference, docs.aws.amazon.com/AmazonECS/
latest/APIReference/):

* ``RunTask.clientToken``: up to 64 ASCII characters (33-126), idempotent per cluster, with a
  time to live of 24 hours; the same token with changed parameters is a ``ConflictException``
  (ECS_Idempotency.html). The run id is the token, so a retry within a day gets the same task;
  past that, the ``startedBy`` lookup below is what prevents a second task.
* ``RunTask.startedBy``: up to 128 letters, numbers, hyphens, forward slashes and underscores
  (API_RunTask.html); ``RunTask.overrides``: 8192 characters in total, JSON included (checked in
  ``taskdef.check_override_size`` before the call).
* ``ListTasks.startedBy``: "must be the only filter that you use" (API_ListTasks.html); without
  ``desiredStatus`` ECS lists tasks whose desired status is RUNNING, so stopped tasks are listed by
  ``desiredStatus=STOPPED`` alone and matched client-side.
* ``RegisterTaskDefinition.family``: up to 255 letters, numbers, underscores and hyphens
  (API_RegisterTaskDefinition.html); tags: keys up to 128 and values up to 256 characters of
  letters, numbers, spaces and ``+ - = . _ : / @`` (API_Tag.html).
* A deregistered (INACTIVE) revision cannot start new tasks (API_DeregisterTaskDefinition.html):
  hence ``auto_deregister_task_definition`` retires only a revision no other run uses.
* ``Task.stopCode`` ``SpotInterruption``/``TerminationNotice`` and the container reason
  ``OutOfMemoryError`` (API_Task.html, "Amazon ECS stopped task error codes"): the infrastructure
  ended the run, which is CRASHED.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from reconciler.errors import LaunchError
from reconciler.infra.retry import DEFAULT_RETRY, RetryPolicy, call_with_retries
from reconciler.launch.base import Job, JobStatus, LogChunk
from reconciler.launch.ecs import taskdef
from reconciler.launch.ecs.aws import AwsCallError, AwsClients, Credentials, JobAws
from reconciler.state import RunState

_MAX_LOG_PAGES = 50
_MAX_STOPPED_PAGES = 10  # 1000 stopped tasks: ECS keeps them about an hour


class EcsLauncher:
    """Starts, follows, cancels and reads the logs of ECS tasks; shareable between threads."""

    def __init__(self, *, environ: Mapping[str, str], retry_policy: RetryPolicy = DEFAULT_RETRY) -> None:
        self._clients = AwsClients(environ)
        self._policy = retry_policy
        self._lock = threading.Lock()
        self._network_lock = threading.Lock()
        self._family_locks: dict[tuple[str, str | None, str], threading.Lock] = {}
        self._registered: dict[tuple[str, str | None, str], tuple[dict[str, Any], str]] = {}
        self._definitions: dict[str, dict[str, Any]] = {}  # task definition ARN -> description (immutable)
        self._networks: dict[tuple[str, str | None, str | None], list[str]] = {}
        self._log_targets: dict[str, tuple[str, str, str | None] | None] = {}
        self._log_tokens: dict[tuple[str, str, int], str] = {}
        self._deregistered: set[str] = set()
        self._users: dict[str, set[str]] = {}  # task definition ARN -> runs of this launcher using it

    # -- the Launcher protocol ----------------------------------------------------------------------

    def submit(self, job: Job) -> str:
        aws = self._aws(job)
        existing = self._lookup(aws, job, stopped=False)
        if existing is not None:
            return existing
        arn, definition = self._task_definition(aws, job)
        network = None
        if taskdef.network_mode(definition) == "awsvpc":
            network = self._network(aws, job)
        container = taskdef.flow_container(job.configuration, taskdef.container_names(definition))
        request = taskdef.run_task_request(
            job, task_definition=arn, container=container, network_configuration=network
        )
        ecs = aws.client("ecs")
        adopted: list[str] = []

        def attempt() -> str:
            if adopted:
                return adopted[0]
            with aws.errors():
                response = ecs.run_task(**request)
            return _started(response, job)

        def before_retry(error: LaunchError, _attempt: int) -> None:
            # The failed RunTask may have started the task after all: find it before asking again.
            try:
                found = self._lookup(aws, job)
            except LaunchError as exc:
                raise LaunchError(
                    f"RunTask for run {job.run_id} failed ({error}) and the task could not be looked up "
                    f"({exc}); not retrying, so that the run never starts twice"
                ) from exc
            if found is not None:
                adopted.append(found)

        return call_with_retries(attempt, policy=self._policy, before_retry=before_retry)

    def find(self, job: Job) -> str | None:
        return self._lookup(self._aws(job), job)

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus:
        ref = taskdef.TaskRef.parse(infrastructure_id)
        aws = self._aws(job, region=ref.region)
        task = self._describe_task(aws, ref)
        if task is None:
            return JobStatus(
                RunState.CRASHED,
                message=f"ECS task not found: {ref.task_arn} (ECS forgets stopped tasks after about an hour)",
                ended_at=datetime.now(UTC),
            )
        container = self._container_of(aws, job, task)
        status = taskdef.status_of(task, container=container)
        if status.state is RunState.PENDING:
            status = self._check_start_timeout(aws, job, ref, task, status)
        if status.state.terminal:
            self._maybe_deregister(aws, job, task)
        return status

    def cancel(self, job: Job, infrastructure_id: str) -> None:
        ref = taskdef.TaskRef.parse(infrastructure_id)
        self._stop(self._aws(job, region=ref.region), ref, f"{taskdef.CANCEL_REASON} (run {job.run_id})")

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk:
        ref = taskdef.TaskRef.parse(infrastructure_id)
        aws = self._aws(job, region=ref.region)
        target = self._log_target(aws, job, ref)
        if target is None:
            return LogChunk(
                "",
                cursor,
                f"logs are not configured for this ECS task: set configure_cloudwatch_logs: true on work "
                f"pool {job.pool} to read them here",
            )
        group, stream, region = target
        location = f"CloudWatch Logs group {group}, stream {stream} ({region or aws.region})"
        logs_aws = (
            aws
            if not region or region == aws.region
            else JobAws(aws.clients, aws.credentials, region, aws.pool, aws.block)
        )
        text, cursor = self._read_events(logs_aws, group, stream, cursor)
        return LogChunk(text, cursor, location)

    def close(self) -> None:
        self._clients.close()

    # -- submit helpers -------------------------------------------------------------------------------

    def _aws(self, job: Job, *, region: str | None = None) -> JobAws:
        credentials = Credentials.of(job.configuration, pool=job.pool)
        block = job.blocks.get("aws_credentials")
        probe = JobAws(self._clients, credentials, region, job.pool, block)
        if region is None:
            with probe.errors():
                region = self._clients.region(credentials)
        return JobAws(self._clients, credentials, region, job.pool, block)

    def _call(self, aws: JobAws, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One AWS call with our retries (reads and idempotent writes only)."""
        method: Callable[..., dict[str, Any]] = getattr(aws.client(service), operation)

        def once() -> dict[str, Any]:
            with aws.errors():
                return method(**params)

        return call_with_retries(once, policy=self._policy)

    def _lookup(self, aws: JobAws, job: Job, *, stopped: bool = True) -> str | None:
        """The task already started for this run: a live one first, then (``stopped``) a stopped one.

        ListTasks documents that ``startedBy`` "must be the only filter", so it is asked alone (ECS
        then lists tasks whose desired status is RUNNING). Stopped tasks are listed by desired
        status alone and matched on their ``startedBy`` client-side; ECS keeps them for about an hour,
        so the pages stay few (and are capped).
        """
        cluster = taskdef.cluster_of(job.configuration)
        marker = taskdef.started_by(job.run_id)
        response = self._call(aws, "ecs", "list_tasks", cluster=cluster, startedBy=marker)
        arns = sorted(response.get("taskArns") or [])
        if arns:
            return str(taskdef.TaskRef(cluster, arns[0]))
        if not stopped:
            return None
        token: str | None = None
        for _ in range(_MAX_STOPPED_PAGES):
            page = self._call(
                aws,
                "ecs",
                "list_tasks",
                cluster=cluster,
                desiredStatus="STOPPED",
                maxResults=100,
                **({"nextToken": token} if token else {}),
            )
            candidates = list(page.get("taskArns") or [])
            if candidates:
                described = self._call(aws, "ecs", "describe_tasks", cluster=cluster, tasks=candidates)
                mine = sorted(
                    str(t["taskArn"]) for t in described.get("tasks") or [] if t.get("startedBy") == marker
                )
                if mine:
                    return str(taskdef.TaskRef(cluster, mine[0]))
            token = page.get("nextToken")
            if not token:
                break
        return None

    def _task_definition(self, aws: JobAws, job: Job) -> tuple[str, dict[str, Any]]:
        """The ARN to run and its definition: given, cached, the equal latest revision, or new."""
        given = taskdef.given_task_definition(job.configuration)
        if given:
            return given, self._described(aws, given)
        wanted = taskdef.wanted_task_definition(job, region=aws.region)
        normal = taskdef.comparable(wanted)
        family = wanted["family"]
        key = (aws.credentials.key, aws.region, family)
        with self._lock:
            family_lock = self._family_locks.setdefault(key, threading.Lock())
        with family_lock:  # one registration per changed definition, however many runs race
            cached = self._registered.get(key)
            if cached is not None and cached[0] == normal and self._use(cached[1], job):
                return cached[1], wanted
            latest = self._latest(aws, family)
            if latest is not None and taskdef.comparable(latest) == normal:
                arn = str(latest["taskDefinitionArn"])
            else:
                arn = self._register(aws, taskdef.registered_for(wanted, job.run_id), normal)
            self._registered[key] = (normal, arn)
            self._use(arn, job)
            return arn, wanted

    def _use(self, arn: str, job: Job) -> bool:
        """Count ``job`` as a user of ``arn`` (so it is not deregistered under it); False if it was."""
        with self._lock:
            if arn in self._deregistered:
                return False
            self._users.setdefault(arn, set()).add(job.run_id)
            return True

    def _latest(self, aws: JobAws, family: str) -> dict[str, Any] | None:
        try:
            response = self._call(aws, "ecs", "describe_task_definition", taskDefinition=family)
        except AwsCallError as exc:
            if exc.code == "ClientException":
                return None  # no ACTIVE revision in the family yet
            raise
        definition = response.get("taskDefinition") or {}
        return definition if definition.get("status", "ACTIVE") == "ACTIVE" else None

    def _register(self, aws: JobAws, wanted: dict[str, Any], normal: dict[str, Any]) -> str:
        ecs = aws.client("ecs")
        done: list[str] = []

        def once() -> str:
            if done:
                return done[0]
            with aws.errors():
                response = ecs.register_task_definition(**wanted)
            return str(response["taskDefinition"]["taskDefinitionArn"])

        def before_retry(_error: LaunchError, _attempt: int) -> None:
            latest = self._latest(aws, wanted["family"])  # the failed call may have registered it
            if latest is not None and taskdef.comparable(latest) == normal:
                done.append(str(latest["taskDefinitionArn"]))

        return call_with_retries(once, policy=self._policy, before_retry=before_retry)

    def _described(self, aws: JobAws, arn: str) -> dict[str, Any]:
        """A task definition by ARN (revisions never change, so the answer is cached)."""
        if arn not in self._definitions:
            response = self._call(aws, "ecs", "describe_task_definition", taskDefinition=arn)
            self._definitions[arn] = dict(response.get("taskDefinition") or {})
        return self._definitions[arn]

    def _network(self, aws: JobAws, job: Job) -> dict[str, Any]:
        """The pool's network configuration, or every subnet of its VPC (default VPC unless set)."""
        config = job.configuration
        if config.get("network_configuration"):
            return taskdef.awsvpc(config["network_configuration"])
        vpc_id = config.get("vpc_id")
        key = (aws.credentials.key, aws.region, vpc_id)
        with self._network_lock:  # one discovery per VPC, however many runs race
            if key not in self._networks:
                self._networks[key] = self._discover_subnets(aws, job, vpc_id)
        return taskdef.awsvpc(None, subnets=self._networks[key])

    def _discover_subnets(self, aws: JobAws, job: Job, vpc_id: str | None) -> list[str]:
        """Every subnet of ``vpc_id`` (the region's default VPC when unset)."""
        if not vpc_id:
            default = [{"Name": "isDefault", "Values": ["true"]}]
            vpcs = self._call(aws, "ec2", "describe_vpcs", Filters=default)
            found = vpcs.get("Vpcs") or []
            if not found:
                raise LaunchError(
                    f"work pool {job.pool}: region {aws.region} has no default VPC; set vpc_id or "
                    "network_configuration"
                )
            vpc_id = str(found[0]["VpcId"])
        subnets = self._call(aws, "ec2", "describe_subnets", Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        ids = sorted(str(s["SubnetId"]) for s in subnets.get("Subnets") or [])
        if not ids:
            raise LaunchError(f"work pool {job.pool}: VPC {vpc_id} has no subnets for the task")
        return ids

    # -- follow helpers -------------------------------------------------------------------------------

    def _describe_task(self, aws: JobAws, ref: taskdef.TaskRef) -> dict[str, Any] | None:
        response = self._call(aws, "ecs", "describe_tasks", cluster=ref.cluster, tasks=[ref.task_arn])
        tasks = response.get("tasks") or []
        return dict(tasks[0]) if tasks else None

    def _container_of(self, aws: JobAws, job: Job, task: Mapping[str, Any]) -> str:
        names = [str(c.get("name")) for c in task.get("containers") or [] if c.get("name")]
        return taskdef.flow_container(job.configuration, names)

    def _check_start_timeout(
        self, aws: JobAws, job: Job, ref: taskdef.TaskRef, task: Mapping[str, Any], status: JobStatus
    ) -> JobStatus:
        """A task that never left PROVISIONING/PENDING in time is stopped and the run CRASHED."""
        limit = float(job.configuration.get("task_start_timeout_seconds") or 0)
        created = taskdef.created_at(task)
        if limit <= 0 or created is None or (datetime.now(UTC) - created).total_seconds() <= limit:
            return status
        reason = f"the task did not start within {limit:g} s"
        self._stop(aws, ref, f"reconcile: {reason}")
        return JobStatus(
            RunState.CRASHED, message=f"ECS {reason} ({task.get('lastStatus')})", ended_at=datetime.now(UTC)
        )

    def _stop(self, aws: JobAws, ref: taskdef.TaskRef, reason: str) -> None:
        try:
            self._call(aws, "ecs", "stop_task", cluster=ref.cluster, task=ref.task_arn, reason=reason[:255])
        except AwsCallError as exc:
            if exc.code != "InvalidParameterException":  # already gone: nothing to stop
                raise

    def _maybe_deregister(self, aws: JobAws, job: Job, task: Mapping[str, Any]) -> None:
        """``auto_deregister_task_definition``, as Prefect does it: only the revision registered *for
        this run*, and only while no other run uses it.

        "For this run" is the revision's ``reconcile.registered-for-run`` tag (set at registration,
        readable by any process); "no other run" is this launcher's own runs of that revision plus
        every task ECS lists for the family (desired RUNNING, i.e. pending or running) on the cluster.
        A revision found in use stays ACTIVE: runs reusing it never meet "TaskDefinition is inactive".
        """
        arn = str(task.get("taskDefinitionArn") or "")
        config = job.configuration
        with self._lock:
            users = self._users.get(arn, set())
            users.discard(job.run_id)
            if not users:
                self._users.pop(arn, None)
        if (
            not arn
            or not config.get("auto_deregister_task_definition")
            or taskdef.given_task_definition(config)
        ):
            return
        with self._lock:
            if arn in self._deregistered or users:
                return
        try:
            if not self._registered_for(aws, arn, job.run_id) or self._used_by_others(aws, job, task, arn):
                return
            with self._lock:
                if self._users.get(arn) or arn in self._deregistered:
                    return
                self._deregistered.add(arn)
                self._registered = {k: v for k, v in self._registered.items() if v[1] != arn}
            self._call(aws, "ecs", "deregister_task_definition", taskDefinition=arn)
        except LaunchError:
            return  # best effort: the run's outcome matters more than the tidy-up

    def _registered_for(self, aws: JobAws, arn: str, run_id: str) -> bool:
        response = self._call(aws, "ecs", "describe_task_definition", taskDefinition=arn, include=["TAGS"])
        tags = {str(t.get("key")): str(t.get("value")) for t in response.get("tags") or []}
        return tags.get(taskdef.REGISTERED_FOR_TAG) == taskdef.tag_value(run_id)

    def _used_by_others(self, aws: JobAws, job: Job, task: Mapping[str, Any], arn: str) -> bool:
        cluster = taskdef.cluster_of(job.configuration)
        family = arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        listed = self._call(aws, "ecs", "list_tasks", cluster=cluster, family=family)
        others = [a for a in listed.get("taskArns") or [] if a != task.get("taskArn")]
        if not others:
            return False
        described = self._call(aws, "ecs", "describe_tasks", cluster=cluster, tasks=others[:100])
        return len(others) > 100 or any(
            t.get("taskDefinitionArn") == arn for t in described.get("tasks") or []
        )

    def _log_target(self, aws: JobAws, job: Job, ref: taskdef.TaskRef) -> tuple[str, str, str | None] | None:
        if ref.task_arn not in self._log_targets:
            task = self._describe_task(aws, ref)
            if task is None or not task.get("taskDefinitionArn"):
                return None
            definition = self._described(aws, str(task["taskDefinitionArn"]))
            container = self._container_of(aws, job, task)
            self._log_targets[ref.task_arn] = taskdef.log_target(
                definition, container=container, task_id=ref.task_id, region=ref.region
            )
        return self._log_targets[ref.task_arn]

    def _read_events(self, aws: JobAws, group: str, stream: str, cursor: int) -> tuple[str, int]:
        """Events after ``cursor`` (a count of events already returned) and the new count.

        The forward token reached at a cursor is remembered, so following a run reads each event
        once; a cursor this process has not seen is reached by reading from the head.
        """
        token = self._log_tokens.pop((group, stream, cursor), None)
        skip = 0 if token else cursor
        seen = cursor - skip
        lines: list[str] = []
        for _ in range(_MAX_LOG_PAGES):
            params: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                params["nextToken"] = token
            try:
                page = self._call(aws, "logs", "get_log_events", **params)
            except AwsCallError as exc:
                if exc.code == "ResourceNotFoundException":
                    break  # the stream does not exist yet
                raise
            for event in page.get("events") or []:
                seen += 1
                if seen > cursor:
                    lines.append(str(event.get("message", "")).rstrip("\n") + "\n")
            following = page.get("nextForwardToken")
            if not following or following == token:
                break
            token = following
        if token:
            self._log_tokens[(group, stream, max(seen, cursor))] = token
        return "".join(lines), max(seen, cursor)


def _started(response: Mapping[str, Any], job: Job) -> str:
    """The infrastructure id from a RunTask answer; failures (capacity, bad image...) are errors."""
    failures = response.get("failures") or []
    tasks = response.get("tasks") or []
    if failures or not tasks:
        reasons = "; ".join(
            ": ".join(filter(None, (str(f.get("reason", "")), str(f.get("detail", ""))))) for f in failures
        )
        raise LaunchError(f"ECS did not start the task of run {job.run_id}: {reasons or 'no task returned'}")
    return str(taskdef.TaskRef(taskdef.cluster_of(job.configuration), str(tasks[0]["taskArn"])))
