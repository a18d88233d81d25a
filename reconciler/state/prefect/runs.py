"""Runs as Prefect flow runs: our lifecycle on top of the server's orchestration.

A :class:`~reconciler.state.RunRecord` is a flow run of one of our deployments; its id is the flow run
id. The server owns the state: our PENDING claim is a *proposal* (``set_state``, ``force: false``) and
only an ACCEPT counts (the server's guard against launching one run twice, the same one a worker
uses); RUNNING and COMPLETED come from Prefect's engine inside the job and are only ever read;
CRASHED (submission failed, the infrastructure ended before the engine reported) and CANCELLED are
proposed with a message, and lose to a final state the engine already reported.

Our own fields (why the run was launched, the exit code, the log path, the launch times, why a
queued run waits, and the optimistic version) live in the flow run's *labels* under
``prefect-reconciler.*``: they travel with
the run, show in the UI next to Prefect's own labels, and need no second store. The labels also name
the parameters that hold secrets, so a record read back shows them as Secrets, never as values.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from reconciler.errors import StaleVersion, StateError
from reconciler.objects import Address, Kind, Secret, decode_body, encode_body, fingerprint, parse_iso
from reconciler.state.base import Admission, Limit, RunRecord, RunState
from reconciler.state.prefect.admission import ConcurrencySlots
from reconciler.state.prefect.client import PAGE, PrefectClient
from reconciler.state.prefect.objects import ServerObjects
from reconciler.state.prefect.workspace import segment

LABEL = "prefect-reconciler."
SYNTHETIC_KEY = "prefect-reconciler-run:"  # the idempotency key of a run created without one
_STATES = {state.value: state for state in RunState}
_OLD_WAITING_PREFIX = "waiting: "  # how a held run was marked before RunRecord.waiting
_PROPOSED = frozenset(
    {RunState.PENDING, RunState.CRASHED, RunState.FAILED, RunState.CANCELLING, RunState.CANCELLED}
)


def is_flow_run_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def create_payload(run: RunRecord, *, project: str) -> dict[str, Any]:
    """``POST /deployments/{id}/create_flow_run`` for a new run.

    Top-level parameters that are Secrets are left out: the server fills them from the deployment,
    which holds the real value; the labels remember which they were.
    """
    secret_names = {k: v.template for k, v in run.parameters.items() if isinstance(v, Secret)}
    parameters = {k: v for k, v in run.parameters.items() if k not in secret_names}
    labels: dict[str, Any] = {
        LABEL + "project": project,
        LABEL + "deployment": run.deployment,
        LABEL + "reason": run.reason,
        LABEL + "version": 1,
    }
    optional = {
        "pool-type": run.pool_type,
        "log-path": run.log_path,
        "scheduled-for": run.scheduled_for.isoformat() if run.scheduled_for else None,
        "secret-parameters": orjson.dumps(secret_names).decode() if secret_names else None,
    }
    labels.update({LABEL + k: v for k, v in optional.items() if v is not None})
    payload: dict[str, Any] = {
        "parameters": encode_body(parameters),
        "idempotency_key": run.idempotency_key or f"{SYNTHETIC_KEY}{run.id}",
        "labels": labels,
        "job_variables": encode_body(dict(run.job_variables)),
    }
    if run.scheduled_for is not None:
        payload["state"] = {
            "type": "SCHEDULED",
            "state_details": {"scheduled_time": run.scheduled_for.isoformat()},
        }
    return payload


def record(
    flow_run: Mapping[str, Any],
    *,
    key: bytes | None,
    deployment_name: Callable[[str | None], str | None],
    parameter_secrets: Callable[[str], Mapping[str, str]],
) -> RunRecord:
    """A flow run as a RunRecord (secret parameters as Secrets: ``key`` fingerprints them)."""
    labels = flow_run.get("labels") or {}
    state = flow_run.get("state") or {}
    deployment = labels.get(LABEL + "deployment") or deployment_name(flow_run.get("deployment_id")) or ""
    idempotency = flow_run.get("idempotency_key")
    if isinstance(idempotency, str) and idempotency.startswith(SYNTHETIC_KEY):
        idempotency = None
    secret_templates: dict[str, str] = dict(parameter_secrets(deployment)) if deployment else {}
    if labels.get(LABEL + "secret-parameters"):
        secret_templates.update(orjson.loads(labels[LABEL + "secret-parameters"]))
    parameters = dict(decode_body(flow_run.get("parameters") or {}))
    for name, template in secret_templates.items():
        if name in parameters and key is not None:
            value = parameters[name]
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            parameters[name] = Secret(template, fingerprint(key, text))
    exit_code = labels.get(LABEL + "exit-code")
    message = str(labels.get(LABEL + "message") or state.get("message") or "")
    waiting = labels.get(LABEL + "waiting") or None
    if waiting is None and message.startswith(_OLD_WAITING_PREFIX):  # written before the field existed
        waiting, message = message.removeprefix(_OLD_WAITING_PREFIX), ""
    return RunRecord(
        id=str(flow_run["id"]),
        deployment=deployment,
        pool=flow_run.get("work_pool_name"),
        pool_type=labels.get(LABEL + "pool-type"),
        state=_STATES.get(str(flow_run.get("state_type")), RunState.RUNNING),
        parameters=parameters,
        job_variables=decode_body(flow_run.get("job_variables") or {}),
        reason=str(labels.get(LABEL + "reason", "schedule" if flow_run.get("auto_scheduled") else "")),
        idempotency_key=idempotency,
        infrastructure_id=flow_run.get("infrastructure_pid"),
        exit_code=int(exit_code) if exit_code is not None else None,
        message=message,
        log_path=labels.get(LABEL + "log-path"),
        created_at=parse_iso(flow_run.get("created")),
        scheduled_for=parse_iso(labels.get(LABEL + "scheduled-for"))
        or (parse_iso(flow_run.get("expected_start_time")) if flow_run.get("auto_scheduled") else None),
        started_at=parse_iso(labels.get(LABEL + "started-at"))
        or parse_iso(flow_run.get("start_time"))
        # claimed, the labels not written yet (a second request): the claim is the PENDING state's
        # time; read as the run's creation, another replica's recovery took a claim being
        # submitted right now for one older than its grace, and crashed a run that was starting
        or (parse_iso(state.get("timestamp")) if flow_run.get("state_type") == "PENDING" else None),
        ended_at=parse_iso(labels.get(LABEL + "ended-at")) or parse_iso(flow_run.get("end_time")),
        version=int(labels.get(LABEL + "version", 1)),
        waiting=waiting,
        claimed_by=labels.get(LABEL + "claimed-by") or None,
    )


def label_changes(run: RunRecord, current: RunRecord) -> dict[str, Any]:
    """Our fields that differ between the record to save and the stored one, as labels."""
    pairs = {
        "reason": (run.reason, current.reason),
        "exit-code": (run.exit_code, current.exit_code),
        "message": (run.message, current.message),
        "log-path": (run.log_path, current.log_path),
        "started-at": (_iso(run.started_at), _iso(current.started_at)),
        "ended-at": (_iso(run.ended_at), _iso(current.ended_at)),
        "pool-type": (run.pool_type, current.pool_type),
        "waiting": (run.waiting or "", current.waiting or ""),  # "" clears it
        "claimed-by": (run.claimed_by, current.claimed_by),
    }
    return {LABEL + k: new for k, (new, old) in pairs.items() if new != old and new is not None}


def claimed(flow_run: Mapping[str, Any]) -> bool:
    """Whether the run left SCHEDULED through our own accepted claim (not a worker's, not a crash)."""
    return bool((flow_run.get("labels") or {}).get(LABEL + "claimed"))


def propose(client: PrefectClient, run: RunRecord, current: RunRecord, *, ours: bool) -> tuple[RunState, str]:
    """Propose our state change; returns the run's state afterwards and that state's message.

    The PENDING claim succeeds only on the server's ACCEPT; a refused claim, or a run some other
    submitter already took out of SCHEDULED (``ours`` is False), raises StaleVersion: do not launch.
    RUNNING and COMPLETED are the engine's to report; a process that ended while the server still
    waits for the engine's word crashed, in Prefect's terms.
    """
    wanted = run.state
    if wanted is RunState.PENDING and current.state is not RunState.SCHEDULED and not ours:
        raise StaleVersion(f"run {run.id}", run.version, current.version + 1)
    if current.state.terminal or wanted is current.state:
        return current.state, current.message
    message = run.message
    if wanted in (RunState.COMPLETED, RunState.FAILED):
        if wanted is RunState.COMPLETED:
            message = message or "the flow run's process ended without the engine reporting a final state"
        else:
            code = "" if run.exit_code is None else f" {run.exit_code}"
            message = message or f"Flow run infrastructure exited with non-zero status code{code}"
        wanted = RunState.CRASHED
    if wanted not in _PROPOSED:
        return current.state, current.message
    if wanted is RunState.CANCELLING and current.state is RunState.SCHEDULED:
        wanted = RunState.CANCELLED  # the server refuses SCHEDULED -> CANCELLING
    state: dict[str, Any] = {"type": wanted.value}
    if message:
        state["message"] = message
    response = client.post(f"/flow_runs/{run.id}/set_state", {"state": state, "force": False})
    status = response.json().get("status")
    if status == "ACCEPT":
        return wanted, message
    if wanted is RunState.PENDING:
        raise StaleVersion(f"run {run.id}", run.version, current.version + 1)
    latest = response.json().get("state") or {}
    return _STATES.get(str(latest.get("type")), current.state), str(latest.get("message") or "")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class FlowRuns:
    """The project's runs on the server: the flow runs of its deployments (which carry its tag)."""

    def __init__(
        self,
        client: PrefectClient,
        objects: ServerObjects,
        *,
        project: str,
        key: Callable[[], bytes | None],
        parameter_secrets: Callable[[str], Mapping[str, str]],
    ) -> None:
        self._client, self._objects, self._project = client, objects, project
        self._key, self._parameter_secrets = key, parameter_secrets
        self._slots = ConcurrencySlots(client, project=project)
        self._leases: dict[str, str] = {}  # run id -> its concurrency lease not yet freed (labels read)

    def claim(self, run: RunRecord, limits: Sequence[Limit], *, claimed: RunRecord) -> Admission:
        """Take the run's concurrency slots, then propose PENDING (``ClaimsRuns.claim_run``).

        Slots first: a claim the server refuses (another replica's, a full deployment limit) gives
        them back at once; a process killed in between leaves a lease nobody renews, which the
        server frees when it expires.
        """
        lease, full = self._slots.acquire(run.id, limits)
        if full is not None:
            return Admission(run, claimed=False, full=full)
        extra = {LABEL + "lease": lease} if lease else {}
        try:
            stored = self.update(claimed, labels=extra)
        except StaleVersion:
            if lease:
                self._slots.release(lease)
            return Admission(self.get(run.id) or run, claimed=False)
        except BaseException:
            if lease:
                self._slots.release(lease)
            raise
        if lease:
            self._leases[run.id] = lease
        return Admission(stored, claimed=True)

    def settle(self, runs: Sequence[RunRecord]) -> None:
        """Free the slots of runs that ended, renew those of runs in flight (whoever launched them)."""
        latest = {run.id: run for run in runs}
        ongoing: list[str] = []
        for run_id, run in latest.items():
            lease = self._leases.get(run_id)
            if lease is None:
                continue
            if not run.state.terminal:
                ongoing.append(lease)
            elif self._slots.release(lease):
                self._client.patch(f"/flow_runs/{run_id}/labels", {LABEL + "lease-freed": True})
                self._leases.pop(run_id, None)
        self._slots.renew(ongoing)

    def create(self, run: RunRecord) -> RunRecord:
        deployment = self._deployment(run.deployment)
        if deployment is None:
            raise StateError(f"deployment {run.deployment} is not on the Prefect server (apply it first)")
        payload = create_payload(run, project=self._project)
        # With an idempotency key the server answers a repeat with the run the first request made,
        # so a request that lost its answer may be sent again
        response = self._client.post(
            f"/deployments/{deployment['id']}/create_flow_run", payload, idempotent=bool(run.idempotency_key)
        )
        if response.status_code == 200 and not run.idempotency_key:
            raise StateError(f"run {run.id} already exists")
        created = self._record(response.json())
        if run.log_path and run.id in run.log_path and created.id != run.id:
            # The server names the run; a log path made from the id we proposed follows the real one.
            log_path = run.log_path.replace(run.id, created.id)
            self._client.patch(f"/flow_runs/{created.id}/labels", {LABEL + "log-path": log_path})
            created = created.evolve(log_path=log_path)
        return created

    def update(self, run: RunRecord, *, labels: Mapping[str, Any] | None = None) -> RunRecord:
        """Save ``run`` (our state proposal, our fields as labels, plus ``labels`` with any change)."""
        extra = dict(labels or {})
        document = self._flow_run(run.id)
        if document is None:
            raise StateError(f"run {run.id} does not exist")
        current = self._record(document)
        if current.version != run.version:
            raise StaleVersion(f"run {run.id}", run.version, current.version)
        state, message = propose(self._client, run, current, ours=claimed(document))
        changed = state is not current.state
        if run.infrastructure_id and run.infrastructure_id != current.infrastructure_id:
            self._client.patch(f"/flow_runs/{run.id}", {"infrastructure_pid": run.infrastructure_id})
            changed = True
        labels = {**label_changes(run, current), **extra}
        if state is RunState.PENDING and current.state is RunState.SCHEDULED:
            labels[LABEL + "claimed"] = True
        if not labels and not changed:
            return current
        labels[LABEL + "version"] = current.version + 1
        self._client.patch(f"/flow_runs/{run.id}/labels", labels)
        version = current.version + 1
        return run.evolve(
            state=state, message=run.message or message, version=version, created_at=current.created_at
        )

    def get(self, run_id: str) -> RunRecord | None:
        document = self._flow_run(run_id)
        return self._record(document) if document is not None else None

    def list(self, *, deployment: str | None, limit: int) -> list[RunRecord]:
        """Runs that are due or done, newest first (the scheduler's future runs are not listed)."""
        criteria: dict[str, Any] = {
            "flow_runs": {
                "tags": {"all_": [self._objects.marker]},
                "expected_start_time": {"before_": datetime.now().astimezone().isoformat()},
            },
            "sort": "EXPECTED_START_TIME_DESC",
        }
        if deployment is not None:
            found = self._deployment(deployment)
            if found is None:
                return []
            criteria["deployments"] = {"id": {"any_": [found["id"]]}}
        runs = [self._record(d) for d in self._client.paged("/flow_runs/filter", criteria, limit=limit)]
        runs.sort(key=lambda r: (r.created_at or datetime.min.astimezone(), r.id), reverse=True)
        return runs[:limit]

    def due(self, pool: str, *, before: datetime, limit: int) -> list[RunRecord]:
        """SCHEDULED runs of ``pool`` due before ``before``, oldest first: what a worker polls for.

        Only runs of this project's deployments (a shared pool may hold others'); polling through
        the worker endpoint also marks the pool READY in the UI, as a live worker would.
        """
        body = {"scheduled_before": before.isoformat(), "limit": min(limit, PAGE)}
        response = self._client.post(
            f"/work_pools/{segment(pool)}/get_scheduled_flow_runs", body, allow=(404,)
        )
        if response.status_code == 404:
            return []
        runs = [item["flow_run"] for item in response.json()]
        mine = [self._record(r) for r in runs if self._objects.marker in (r.get("tags") or ())]
        return sorted(mine, key=lambda r: (r.scheduled_for or r.created_at or before, r.id))

    def _deployment(self, name: str) -> Any:
        address = Address(Kind.DEPLOYMENT, name)
        return self._objects.seen(address) or self._objects.current(address)

    def _flow_run(self, run_id: str) -> Any:
        """The flow run if it is one of ours (a run of a deployment carrying our tag)."""
        if not is_flow_run_id(run_id):
            return None
        response = self._client.get(f"/flow_runs/{run_id}", allow=(404,))
        if response.status_code == 404:
            return None
        document = response.json()
        return document if self._objects.marker in (document.get("tags") or ()) else None

    def _record(self, document: Any) -> RunRecord:
        names, secrets = self._deployment_name, self._parameter_secrets
        found = record(document, key=self._key(), deployment_name=names, parameter_secrets=secrets)
        labels = document.get("labels") or {}
        if labels.get(LABEL + "lease") and not labels.get(LABEL + "lease-freed"):
            self._leases[found.id] = str(labels[LABEL + "lease"])
        else:
            self._leases.pop(found.id, None)
        return found

    def _deployment_name(self, deployment_id: str | None) -> str | None:
        """``flow/name`` of a deployment id (runs the server scheduled carry no label of ours)."""
        if not deployment_id:
            return None
        for name, deployment in self._objects.deployments.items():
            if str(deployment.get("id")) == str(deployment_id):
                return name
        response = self._client.get(f"/deployments/{deployment_id}", allow=(404,))
        if response.status_code == 404:
            return None
        deployment = response.json()
        flow = self._objects.flow_names.get(str(deployment["flow_id"]))
        if flow is None:
            flow = self._client.get(f"/flows/{deployment['flow_id']}").json()["name"]
            self._objects.flow_names[str(deployment["flow_id"])] = flow
        name = f"{flow}/{deployment['name']}"
        self._objects.deployments[name] = deployment
        return name
