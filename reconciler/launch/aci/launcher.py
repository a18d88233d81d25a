"""The ``aci`` launcher: each run is one Azure container group, created and followed through ARM.

* submit: GET the run's group by its deterministic name, PUT it only when absent
  (``begin_create_or_update`` without waiting for provisioning: ``poll`` follows that). Every attempt
  starts with the GET, so a retry after a throttled or ambiguous PUT adopts what the first attempt
  created and never PUTs again over it (a PUT on an existing name would redeploy and re-run it).
* poll: ``container_groups.get``, mapped by :mod:`reconciler.launch.aci.status`; at most one GET per
  ``task_watch_poll_interval`` per run (faster polls get the last answer), as ARM's read quotas
  expect. When the run is over, its log and result are kept in the run directory
  (``.reconcile/runs/<id>/log.txt``, ``result.json``), then the group is deleted unless
  ``keep_container_group``: Azure deletes a group's logs with it, ``reconcile logs`` still works.
* A group that is gone is read back from that result; a group deleted outside reconcile before the
  run ended is CRASHED (we cannot know how it ended), a group *stopped* outside reconcile is CANCELLED.
* cancel: ``stop`` with ``keep_container_group``, else ``begin_delete`` waited for with
  ``task_watch_poll_interval`` as the LRO polling interval.
* logs: ``containers.list_logs`` (ACI returns the whole log each time); the cursor counts characters.
  ``stream_output`` needs no work here: ``run --wait`` streams through ``logs``.

Azure SDK exceptions are translated in :mod:`reconciler.launch.aci.client`; none leaves this package.

Documented Azure rules this launcher relies on:

* container group names: 1-63 lowercase letters, numbers and hyphens, not starting or ending with a
  hyphen, no consecutive hyphens ("Naming rules and restrictions for Azure resources",
  Microsoft.ContainerInstance); the name is derived from the run, so it is found again;
* a PUT on an existing container group updates and restarts it ("Container Groups - Create Or
  Update", REST API 2023-05-01): hence the GET before every PUT;
* tags: at most 50 per resource, names up to 512 characters without ``<>%&\\?/``, values up to 256
  ("Use tags to organize your Azure resources", limitations);
* ``secureValue`` environment variables are not returned by the API or shown in the portal
  ("Set environment variables in container instances", secure values);
* the container's command is the ``command`` array, run without a shell ("Set the command line in
  a container instance"); its length limit is Linux's (see ``reconciler.launch.bootstrap``);
* deleting a container group deletes its logs, so they are saved to the run directory first.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    map_error,
)
from azure.core.rest import HttpRequest
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import ContainerGroup
from azure.mgmt.core.exceptions import ARMErrorFormat

from reconciler.errors import LaunchAuthError, LaunchError
from reconciler.infra.retry import DEFAULT_RETRY, RetryPolicy, call_with_retries
from reconciler.launch import blockrefs
from reconciler.launch.aci import body as aci_spec
from reconciler.launch.aci import status as aci_status
from reconciler.launch.aci.body import CONTAINER_NAME, TAG_RUN_ID, GroupRef, Settings
from reconciler.launch.aci.client import (
    BLOCK_TYPE,
    AzureSession,
    Endpoints,
    Principal,
    azure_errors,
    describe,
)
from reconciler.launch.base import Job, JobStatus, LogChunk
from reconciler.state import RunState

T = TypeVar("T")

RESOURCE_GROUP_API = "2021-04-01"  # Microsoft.Resources, to read a resource group's location
RESULT_FILE = "result.json"
CANCEL_WAIT = 120.0  # seconds to wait for a cancelling delete before leaving it to Azure


class AciLauncher:
    """Runs jobs of ``azure-container-instance:push`` pools; ``environ`` is the launching process's."""

    def __init__(self, *, environ: Mapping[str, str], retry_policy: RetryPolicy = DEFAULT_RETRY) -> None:
        self._environ = dict(environ)
        self._retry = retry_policy
        self._session: AzureSession | None = None
        self._locations: dict[tuple[str, str], str] = {}
        self._statuses: dict[str, tuple[float, JobStatus]] = {}
        self._logs: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    # -- the Launcher protocol -------------------------------------------------------------------

    def submit(self, job: Job) -> str:
        settings = Settings.of(job)
        ref = aci_spec.ref_for(job, settings)
        client, principal = self._client(job, settings.subscription_id)
        submitted_at = datetime.now(UTC)

        def attempt() -> str:
            existing = self._get(client, ref)
            if existing is not None:
                return self._adopt(job, existing, ref)
            location = self._location(client, settings, job)
            spec = aci_spec.build(
                job, settings=settings, location=location, submitted_at=submitted_at, environ=self._environ
            )
            model = ContainerGroup.deserialize(dict(spec.body))
            client.container_groups.begin_create_or_update(ref.resource_group, ref.name, model, polling=False)
            return ref.resource_id

        return self._retrying(f"create container group {ref.name}", principal, attempt)

    def find(self, job: Job) -> str | None:
        settings = Settings.of(job)
        ref = aci_spec.ref_for(job, settings)
        client, principal = self._client(job, settings.subscription_id)

        def lookup() -> str | None:
            group = self._get(client, ref)
            if group is not None and _run_id(group) == job.run_id:
                return ref.resource_id
            try:
                for other in client.container_groups.list_by_resource_group(ref.resource_group):
                    if _run_id(other) == job.run_id and other.name:  # named by an older configuration
                        return GroupRef(ref.subscription_id, ref.resource_group, other.name).resource_id
            except ResourceNotFoundError:  # no such resource group: nothing was created in it
                pass
            return None

        return self._retrying(f"look for the container group of run {job.run_id}", principal, lookup)

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus:
        ref = GroupRef.parse(infrastructure_id)
        settings = Settings.of(job)
        recent = self._statuses.get(infrastructure_id)
        if recent is not None and time.monotonic() - recent[0] < settings.poll_interval:
            return recent[1]
        client, principal = self._client(job, ref.subscription_id)
        group = self._retrying(f"read container group {ref.name}", principal, lambda: self._get(client, ref))
        if group is None:
            status = self._gone(job, ref)
        else:
            status = aci_status.status_of(group, now=datetime.now(UTC), start_timeout=settings.start_timeout)
            if status.state.terminal:
                status = self._wind_down(job, client, principal, ref, settings, status)
        self._statuses[infrastructure_id] = (time.monotonic(), status)
        return status

    def cancel(self, job: Job, infrastructure_id: str) -> None:
        ref = GroupRef.parse(infrastructure_id)
        settings = Settings.of(job)
        client, principal = self._client(job, ref.subscription_id)
        self._save_logs(job, client, principal, ref)
        _write_result(
            job, JobStatus(RunState.CANCELLED, message="cancelled by request", ended_at=datetime.now(UTC))
        )
        if settings.keep_group:
            self._retrying(f"stop container group {ref.name}", principal, lambda: self._stop(client, ref))
            return

        def delete() -> Any:
            try:
                return client.container_groups.begin_delete(
                    ref.resource_group, ref.name, polling_interval=settings.poll_interval
                )
            except ResourceNotFoundError:
                return None

        poller = self._retrying(f"delete container group {ref.name}", principal, delete)
        if poller is not None:
            with azure_errors(f"delete container group {ref.name}", principal):
                poller.result(timeout=CANCEL_WAIT)

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk:
        ref = GroupRef.parse(infrastructure_id)
        settings = Settings.of(job)
        path = _log_file(job)
        cached = self._logs.get(ref.resource_id)
        if cached is not None and time.monotonic() - cached[0] < settings.poll_interval:
            content = cached[1]
        else:
            client, principal = self._client(job, ref.subscription_id)
            content = self._save_logs(job, client, principal, ref)
            if content is None:
                content = _read(path) if path else (cached[1] if cached else "")
                self._logs[ref.resource_id] = (time.monotonic(), content)
        location = str(path) if path is not None and path.exists() else ref.resource_id
        if cursor > len(content):  # Azure keeps a bounded tail: nothing new we can place
            return LogChunk("", cursor, location)
        return LogChunk(content[cursor:], len(content), location)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    # -- steps -----------------------------------------------------------------------------------

    def _client(self, job: Job, subscription_id: str) -> tuple[ContainerInstanceManagementClient, Principal]:
        with self._lock:
            if self._session is None:
                self._session = AzureSession(Endpoints.from_environ(self._environ))
            session = self._session
        credentials = (
            blockrefs.credentials_block(
                job.configuration.get("aci_credentials"),
                who=f"aci_credentials of work pool {job.pool!r}",
                block_type=BLOCK_TYPE,
                fallback="DefaultAzureCredential of this machine",
            )
            or None
        )
        principal = describe(credentials, pool=job.pool, block=_block_name(job))
        return session.client(credentials, subscription_id, principal=principal), principal

    def _retrying(self, what: str, principal: Principal, call: Callable[[], T]) -> T:
        def attempt() -> T:
            with azure_errors(what, principal):
                return call()

        return call_with_retries(attempt, policy=self._retry)

    def _get(self, client: ContainerInstanceManagementClient, ref: GroupRef) -> ContainerGroup | None:
        try:
            return client.container_groups.get(ref.resource_group, ref.name)
        except ResourceNotFoundError:
            return None

    def _stop(self, client: ContainerInstanceManagementClient, ref: GroupRef) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            client.container_groups.stop(ref.resource_group, ref.name)

    def _adopt(self, job: Job, group: ContainerGroup, ref: GroupRef) -> str:
        owner = _run_id(group)
        if owner != job.run_id:
            raise LaunchError(
                f"container group {ref.name} in resource group {ref.resource_group} exists and was not "
                f"created for run {job.run_id} (tag {TAG_RUN_ID}={owner!r}); delete it or rename the group"
            )
        return ref.resource_id

    def _location(self, client: ContainerInstanceManagementClient, settings: Settings, job: Job) -> str:
        """The template's literal location, else the resource group's (what ARM's default means)."""
        literal = aci_spec.location_from_template(job.configuration)
        if literal:
            return literal
        key = (settings.subscription_id, settings.resource_group.lower())
        if key not in self._locations:
            request = HttpRequest(
                "GET",
                f"/subscriptions/{settings.subscription_id}/resourcegroups/{settings.resource_group}",
                params={"api-version": RESOURCE_GROUP_API},
            )
            response = client._send_request(request)  # documented escape hatch of generated clients
            if response.status_code != 200:
                error_map = {401: ClientAuthenticationError, 404: ResourceNotFoundError}
                map_error(status_code=response.status_code, response=response, error_map=error_map)
                raise HttpResponseError(response=response, error_format=ARMErrorFormat)
            location = response.json().get("location")
            if not location:
                raise LaunchError(
                    f"resource group {settings.resource_group} has no location to create groups in"
                )
            self._locations[key] = str(location)
        return self._locations[key]

    def _wind_down(
        self,
        job: Job,
        client: ContainerInstanceManagementClient,
        principal: Principal,
        ref: GroupRef,
        settings: Settings,
        status: JobStatus,
    ) -> JobStatus:
        """Keep the log and the result, then delete the group (or, kept, make sure it cannot start)."""
        self._save_logs(job, client, principal, ref)
        _write_result(job, status)
        try:
            if not settings.keep_group:
                self._retrying(
                    f"delete container group {ref.name}", principal, lambda: self._delete(client, ref)
                )
            elif status.state is RunState.CRASHED:  # given up on: it must not start later
                self._retrying(f"stop container group {ref.name}", principal, lambda: self._stop(client, ref))
        except LaunchError as exc:
            note = f"cleanup failed, container group {ref.name} is left behind: {exc}"
            return JobStatus(
                status.state,
                exit_code=status.exit_code,
                message=f"{status.message}; {note}" if status.message else note,
                started_at=status.started_at,
                ended_at=status.ended_at,
            )
        return status

    def _delete(self, client: ContainerInstanceManagementClient, ref: GroupRef) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            client.container_groups.begin_delete(ref.resource_group, ref.name, polling=False)

    def _save_logs(
        self, job: Job, client: ContainerInstanceManagementClient, principal: Principal, ref: GroupRef
    ) -> str | None:
        """The container's log now (also written to the run's log file); ``None`` if Azure has none."""

        def fetch() -> str | None:
            try:
                return client.containers.list_logs(ref.resource_group, ref.name, CONTAINER_NAME).content or ""
            except ResourceNotFoundError:
                return None

        try:
            content = self._retrying(f"read the log of container group {ref.name}", principal, fetch)
        except LaunchAuthError:
            raise
        except LaunchError:
            return None  # a container still being created has no log yet
        if content is None:
            return None
        self._logs[ref.resource_id] = (time.monotonic(), content)  # the final read wins over a cached one
        path = _log_file(job)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        return content

    def _gone(self, job: Job, ref: GroupRef) -> JobStatus:
        recorded = _read_result(job)
        if recorded is not None:
            return recorded
        return JobStatus(
            RunState.CRASHED,
            message=f"container group {ref.name} no longer exists: deleted before the run was seen to end",
            ended_at=datetime.now(UTC),
        )


def _block_name(job: Job) -> str | None:
    """The name of the block behind ``aci_credentials``, if the pool names one."""
    name = job.blocks.get("aci_credentials")
    return name.split("/", 1)[-1] if name else None


def _run_id(group: Any) -> str | None:
    return (getattr(group, "tags", None) or {}).get(TAG_RUN_ID)


def _log_file(job: Job) -> Path | None:
    return Path(job.log_path) if job.log_path else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _write_result(job: Job, status: JobStatus) -> None:
    """The run's final status next to its log, for when the group is gone."""
    path = _log_file(job)
    if path is None:
        return
    doc = {
        "state": status.state.value,
        "exit_code": status.exit_code,
        "message": status.message,
        "started_at": status.started_at.isoformat() if status.started_at else None,
        "ended_at": status.ended_at.isoformat() if status.ended_at else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / RESULT_FILE).write_text(json.dumps(doc), encoding="utf-8")


def _read_result(job: Job) -> JobStatus | None:
    path = _log_file(job)
    if path is None:
        return None
    try:
        doc = json.loads((path.parent / RESULT_FILE).read_text(encoding="utf-8"))
        state = RunState(doc["state"])
    except (FileNotFoundError, ValueError, KeyError):
        return None
    return JobStatus(
        state,
        exit_code=doc.get("exit_code"),
        message=str(doc.get("message") or ""),
        started_at=_when(doc.get("started_at")),
        ended_at=_when(doc.get("ended_at")),
    )


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
