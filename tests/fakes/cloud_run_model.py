"""The resources behind the Cloud Run fake: jobs, executions, tasks, operations, and how they advance.

Plain JSON dicts in the API's camelCase shape. What the launcher sends is checked as Cloud Run
checks it (:mod:`tests.fakes.cloud_run_rules`); ``reason`` and ``executionReason`` of a condition
are a one-of, so outcomes are written as ``state`` plus ``executionReason``. Not thread-safe: the
server holds its lock around every call.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from tests.fakes.cloud_run_rules import JOB_ID, HttpError, apply_overrides, validate_job

TYPE = "type.googleapis.com/google.cloud.run.v2."
FAILED_WITH_ERROR = "The container exited with an error."
TIMED_OUT = "The configured timeout was reached."


@dataclass(frozen=True)
class Outcome:
    """How an execution ends, and after how many ``get`` reads (the first read starts it)."""

    kind: str  # "succeed" | "fail" | "no_start" | "hang"
    exit_code: int = 0
    message: str = ""
    after: int = 1

    @classmethod
    def succeed(cls, *, after: int = 1) -> Outcome:
        return cls("succeed", after=after)

    @classmethod
    def fail(cls, exit_code: int = 1, *, after: int = 1) -> Outcome:
        return cls("fail", exit_code=exit_code, after=after)

    @classmethod
    def no_start(cls, message: str = "Image 'gcr.io/p/missing:1' not found.", *, after: int = 1) -> Outcome:
        return cls("no_start", message=message, after=after)

    @classmethod
    def hang(cls) -> Outcome:
        return cls("hang")


@dataclass
class Execution:
    body: dict[str, Any]
    task: dict[str, Any]
    outcome: Outcome
    timeout: float
    reads: int = 0
    started: float | None = None

    @property
    def done(self) -> bool:
        return "completionTime" in self.body


@dataclass
class Operation:
    name: str
    kind: str  # the @type suffix of metadata/response: "Job" or "Execution"
    result: Callable[[], dict[str, Any] | None]  # None while the work is still going on
    polls_left: int = 0
    _last: dict[str, Any] = field(default_factory=dict)  # metadata while pending

    def render(self) -> dict[str, Any]:
        body = self.result() if self.polls_left <= 0 else None
        op: dict[str, Any] = {"name": self.name, "done": body is not None}
        if body is None:
            op["metadata"] = {"@type": TYPE + self.kind, **(self.result() or self._last)}
        else:
            op["response"] = {"@type": TYPE + self.kind, **body}
        return op


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log_uri(project: str, location: str, job: str, execution: str) -> str:
    """The Cloud Logging console link Cloud Run reports for an execution."""
    query = (
        f'resource.type="cloud_run_job"\nresource.labels.job_name="{job}"\n'
        f'resource.labels.location="{location}"\nlabels."run.googleapis.com/execution_name"="{execution}"'
    )
    viewer = "https://console.cloud.google.com/logs/viewer"
    return f"{viewer}?project={project}&advancedFilter={quote(query, safe='')}"


class RunModel:
    """All resources of the fake, by full resource name."""

    def __init__(self, *, clock: Callable[[], float], default_outcome: Callable[[], Outcome]) -> None:
        self.clock = clock
        self.default_outcome = default_outcome
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, Execution] = {}
        self.operations: dict[str, Operation] = {}
        self.outcomes: dict[str, Outcome] = {}  # per execution name, overrides the default
        # Behaviours Cloud Run does not document, each switchable so a test can take the assumption away:
        self.executions_show_override_env = True  # an execution's template shows RunJob's override env
        self.run_changes_etag = True  # running a job gives it a new etag
        self.run_answer_has_metadata = True  # RunJob's first answer carries the Execution as metadata

    def dispatch(
        self, route: str, p: dict[str, str], query: dict[str, list[str]], body: Any, *, pending_polls: int
    ) -> dict[str, Any]:
        parent = f"projects/{p['project']}/locations/{p['location']}"
        job = f"{parent}/jobs/{p['job']}" if "job" in p else ""
        execution = f"{job}/executions/{p['execution']}" if "execution" in p else ""
        one = {k: v[0] for k, v in query.items()}
        if route == "create_job":
            return self._op(parent, "Job", self.create_job(parent, one.get("jobId", ""), body), pending_polls)
        if route == "get_job":
            return self._job(job)
        if route == "list_jobs":
            found = [j for n, j in sorted(self.jobs.items()) if n.startswith(parent + "/")]
            return _page("jobs", found, one)
        if route == "update_job":
            return self._op(parent, "Job", self.update_job(job, body), pending_polls)
        if route == "delete_job":
            return self._op(parent, "Job", self.delete_job(job, one.get("etag")), pending_polls)
        if route == "run_job":
            return self.run_job(parent, job, body or {})
        if route == "list_executions":
            self._job(job)
            found = [e.body for e in self.executions.values() if e.body["name"].startswith(job + "/")]
            return _page("executions", sorted(found, key=lambda b: b["createTime"], reverse=True), one)
        if route == "get_execution":
            return self._read(execution).body
        if route == "delete_execution":
            gone = self._execution(execution)
            del self.executions[execution]
            return self._op(parent, "Execution", {**gone.body, "deleteTime": now()}, 0)
        if route == "cancel_execution":
            return self._op(parent, "Execution", self.cancel(execution), 0)
        if route == "list_tasks":
            return {"tasks": [self._execution(execution).task]}
        if route == "get_operation":
            op = self.operations.get(f"{parent}/operations/{p['operation']}")
            if op is None:
                raise HttpError(404, "NOT_FOUND", f"Operation {p['operation']} not found.")
            op.polls_left -= 1
            return op.render()
        raise HttpError(404, "NOT_FOUND", f"no route {route}")

    # -- jobs --------------------------------------------------------------------------------------

    def create_job(self, parent: str, job_id: str, body: Any) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            raise HttpError(
                400,
                "INVALID_ARGUMENT",
                f"Invalid job id '{job_id}': must use lowercase letters, digits and hyphens, start with a "
                "letter, not end with a hyphen, and be at most 63 characters.",
            )
        if not isinstance(body, dict):
            raise HttpError(400, "INVALID_ARGUMENT", "A Job body is required.")
        if body.get("name"):
            raise HttpError(400, "INVALID_ARGUMENT", "Job.name must be empty on create; use jobId.")
        name = f"{parent}/jobs/{job_id}"
        if name in self.jobs:
            raise HttpError(409, "ALREADY_EXISTS", f"Resource '{job_id}' already exists.")
        validate_job(body)
        stamp = now()
        job = {
            **copy.deepcopy(body),
            "name": name,
            "uid": str(uuid.uuid4()),
            "generation": "1",
            "createTime": stamp,
            "updateTime": stamp,
            "creator": "launcher@fake.iam.gserviceaccount.com",
            "launchStage": body.get("launchStage", "GA"),
            "observedGeneration": "1",
            "terminalCondition": {
                "type": "Ready",
                "state": "CONDITION_SUCCEEDED",
                "lastTransitionTime": stamp,
            },
            "conditions": [],
            "executionCount": 0,
            "reconciling": False,
            "etag": _etag(),
        }
        self.jobs[name] = job
        return job

    def update_job(self, name: str, body: Any) -> dict[str, Any]:
        job = self._job(name)
        if not isinstance(body, dict):
            raise HttpError(400, "INVALID_ARGUMENT", "A Job body is required.")
        validate_job(body)
        job["template"] = copy.deepcopy(body.get("template", job["template"]))
        job["labels"] = copy.deepcopy(body.get("labels", {}))
        job["generation"] = job["observedGeneration"] = str(int(job["generation"]) + 1)
        job["updateTime"], job["etag"] = now(), _etag()
        return job

    def delete_job(self, name: str, etag: str | None) -> dict[str, Any]:
        job = self._job(name)
        if etag and etag != job["etag"]:
            raise HttpError(409, "ABORTED", "The etag does not match the job's current etag.")
        for exe_name in [n for n in self.executions if n.startswith(name + "/")]:
            del self.executions[exe_name]
        del self.jobs[name]
        return {**job, "deleteTime": now()}

    def _job(self, name: str) -> dict[str, Any]:
        if name not in self.jobs:
            raise HttpError(
                404, "NOT_FOUND", f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'JOB' does not exist."
            )
        return self.jobs[name]

    # -- executions --------------------------------------------------------------------------------

    def run_job(self, parent: str, job_name: str, body: dict[str, Any]) -> dict[str, Any]:
        job = self._job(job_name)
        job_id = job_name.rsplit("/", 1)[-1]
        template = copy.deepcopy(job.get("template", {}))
        task_template = template.get("template", {})
        overrides = body.get("overrides") or {}
        apply_overrides(task_template, overrides)
        exe_id = f"{job_id}-{secrets.token_hex(3)[:5]}"
        name = f"{job_name}/executions/{exe_id}"
        project, location = parent.split("/")[1], parent.split("/")[3]
        stamp = now()
        uri = log_uri(project, location, job_id, exe_id)
        exe_body: dict[str, Any] = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "creator": job["creator"],
            "generation": "1",
            "labels": copy.deepcopy(template.get("labels", {})),
            "createTime": stamp,
            "launchStage": job.get("launchStage", "GA"),
            "job": job_id,
            "parallelism": template.get("parallelism", 1) or 1,
            "taskCount": overrides.get("taskCount") or template.get("taskCount") or 1,
            "template": task_template,
            "reconciling": True,
            "conditions": [
                {"type": "ResourcesAvailable", "state": "CONDITION_PENDING", "lastTransitionTime": stamp},
                {"type": "Started", "state": "CONDITION_PENDING", "lastTransitionTime": stamp},
                {"type": "Completed", "state": "CONDITION_PENDING", "lastTransitionTime": stamp},
            ],
            "observedGeneration": "1",
            "logUri": uri,
            "etag": _etag(),
        }
        task = {
            "name": f"{name}/tasks/{exe_id}-task0",
            "uid": str(uuid.uuid4()),
            "job": job_id,
            "execution": exe_id,
            "index": 0,
            "containers": copy.deepcopy(task_template.get("containers", [])),
            "maxRetries": task_template.get("maxRetries", 0),
            "timeout": task_template.get("timeout", "600s"),
            "createTime": stamp,
            "retried": 0,
            "logUri": uri,
            "etag": _etag(),
        }
        timeout = float(str(task_template.get("timeout", "600s")).rstrip("s"))
        outcome = self.outcomes.get(name, self.default_outcome())
        self.executions[name] = Execution(exe_body, task, outcome, timeout)
        job["executionCount"] = int(job.get("executionCount", 0)) + 1
        job["latestCreatedExecution"] = {"name": name, "createTime": stamp}
        if self.run_changes_etag:
            job["etag"] = _etag()  # running a job changes it: a delete with the old etag is refused
        if not self.executions_show_override_env:
            exe_body["template"] = copy.deepcopy(job.get("template", {}).get("template", {}))
        op = Operation(
            f"{parent}/operations/{uuid.uuid4()}",
            "Execution",
            lambda: self._finished_body(name),
            _last=exe_body,
        )
        self.operations[op.name] = op
        answer = op.render()
        if not self.run_answer_has_metadata:
            answer.pop("metadata", None)
        return answer

    def _finished_body(self, name: str) -> dict[str, Any] | None:
        exe = self.executions.get(name)
        return exe.body if exe is not None and exe.done else None

    def _execution(self, name: str) -> Execution:
        if name not in self.executions:
            raise HttpError(
                404, "NOT_FOUND", f"Resource '{name.rsplit('/', 1)[-1]}' of kind 'EXECUTION' does not exist."
            )
        return self.executions[name]

    def _read(self, name: str) -> Execution:
        """A ``get``: the first read starts the task; the outcome applies after ``outcome.after`` reads."""
        exe = self._execution(name)
        if exe.done:
            return exe
        exe.reads += 1
        if exe.started is None and exe.outcome.kind != "no_start":
            self._start(exe)
        if exe.started is not None and self.clock() - exe.started > exe.timeout:
            self._finish(exe, "timeout")
        elif exe.outcome.kind != "hang" and exe.reads >= exe.outcome.after:
            self._finish(exe, exe.outcome.kind)
        return exe

    def _start(self, exe: Execution) -> None:
        exe.started = self.clock()
        stamp = now()
        exe.body.update(startTime=stamp, runningCount=1)
        exe.task.update(startTime=stamp)
        _condition(exe.body, "ResourcesAvailable", "CONDITION_SUCCEEDED")
        _condition(exe.body, "Started", "CONDITION_SUCCEEDED")

    def _finish(self, exe: Execution, how: str) -> None:
        stamp = now()
        task_id = exe.task["name"].rsplit("/", 1)[-1]
        exe.body.update(completionTime=stamp, runningCount=0, reconciling=False)
        exe.task.update(completionTime=stamp)
        if how == "succeed":
            exe.body["succeededCount"] = 1
            exe.task["lastAttemptResult"] = {"status": {}, "exitCode": 0}
            _condition(
                exe.body, "Completed", "CONDITION_SUCCEEDED", message="Execution completed successfully."
            )
            return
        if how == "cancel":
            exe.body["cancelledCount"] = 1
            _condition(
                exe.body,
                "Completed",
                "CONDITION_FAILED",
                message="The execution was cancelled.",
                reason="CANCELLED",
            )
            return
        exe.body["failedCount"] = 1
        if how == "fail":
            exe.task["lastAttemptResult"] = {
                "status": {"code": 2, "message": FAILED_WITH_ERROR},
                "exitCode": exe.outcome.exit_code,
            }
            message = f"Task {task_id} failed with message: {FAILED_WITH_ERROR}"
            _condition(
                exe.body, "Completed", "CONDITION_FAILED", message=message, reason="NON_ZERO_EXIT_CODE"
            )
        elif how == "timeout":
            exe.task["lastAttemptResult"] = {"status": {"code": 4, "message": TIMED_OUT}}
            message = f"Task {task_id} failed with message: {TIMED_OUT}"
            _condition(exe.body, "Completed", "CONDITION_FAILED", message=message)
        else:  # no_start: the task never ran, so it has no attempt result
            _condition(exe.body, "ResourcesAvailable", "CONDITION_FAILED", message=exe.outcome.message)
            _condition(
                exe.body, "Completed", "CONDITION_FAILED", message=f"Execution failed: {exe.outcome.message}"
            )

    def cancel(self, name: str) -> dict[str, Any]:
        exe = self._execution(name)
        if exe.done:
            raise HttpError(400, "FAILED_PRECONDITION", "The execution has already completed.")
        self._finish(exe, "cancel")
        return exe.body

    # -- operations --------------------------------------------------------------------------------

    def _op(self, parent: str, kind: str, body: dict[str, Any], pending_polls: int) -> dict[str, Any]:
        snapshot = copy.deepcopy(body)
        op = Operation(
            f"{parent}/operations/{uuid.uuid4()}", kind, lambda: snapshot, pending_polls, _last=snapshot
        )
        self.operations[op.name] = op
        return op.render()


def _condition(body: dict[str, Any], kind: str, state: str, *, message: str = "", reason: str = "") -> None:
    """Set one condition; ``reason`` is an ExecutionReason name (``reason`` proper is an enum one-of)."""
    conditions = [c for c in body.get("conditions", []) if c.get("type") != kind]
    condition: dict[str, Any] = {"type": kind, "state": state, "lastTransitionTime": now()}
    if message:
        condition["message"] = message
    if reason:
        condition["executionReason"] = reason
    body["conditions"] = [*conditions, condition]


def _page(key: str, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    size = int(query.get("pageSize") or 0) or 100
    start = int(query.get("pageToken") or 0)
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["nextPageToken"] = str(start + size)
    return page


def _etag() -> str:
    return f'"{secrets.token_hex(8)}"'
