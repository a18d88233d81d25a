"""Runs as Prefect flow runs: our lifecycle on top of the server's orchestration.

A :class:`~reconciler.state.RunRecord` is a flow run of one of our deployments; its id is the flow run
id. The server owns the state: our PENDING claim is a *proposal* (``set_state``, ``force: false``) and
only an ACCEPT counts (the server's guard against launching one run twice, the same one a worker
uses); RUNNING and COMPLETED come from Prefect's engine inside the job and are only ever read;
CRASHED (submission failed, the infrastructure ended before the engine reported) and CANCELLED are
proposed with a message, and lose to a final state the engine already reported.

Our own fields (why the run was launched, the exit code, the log path, the launch times, and the
optimistic version) live in the flow run's *labels* under ``prefect-reconciler.*``: they travel with
the run, show in the UI next to Prefect's own labels, and need no second store. The labels also name
the parameters that hold secrets, so a record read back shows them as Secrets, never as values.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from reconciler.errors import StaleVersion, StateError
from reconciler.objects import Secret, decode_body, encode_body
from reconciler.spec.templating import fingerprint
from reconciler.state.base import RunRecord, RunState
from reconciler.state.prefect_client import PrefectClient

LABEL = "prefect-reconciler."
SYNTHETIC_KEY = "prefect-reconciler-run:"  # the idempotency key of a run created without one
_STATES = {state.value: state for state in RunState}
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
        message=str(labels.get(LABEL + "message") or state.get("message") or ""),
        log_path=labels.get(LABEL + "log-path"),
        created_at=_when(flow_run.get("created")),
        scheduled_for=_when(labels.get(LABEL + "scheduled-for"))
        or (_when(flow_run.get("expected_start_time")) if flow_run.get("auto_scheduled") else None),
        started_at=_when(labels.get(LABEL + "started-at")) or _when(flow_run.get("start_time")),
        ended_at=_when(labels.get(LABEL + "ended-at")) or _when(flow_run.get("end_time")),
        version=int(labels.get(LABEL + "version", 1)),
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


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def require_run(response_status: int, run_id: str) -> None:
    if response_status == 404:
        raise StateError(f"run {run_id} does not exist")
