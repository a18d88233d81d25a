"""What a container group says about its run: pure mapping from ACI's view to a JobStatus.

Read in this order (the first that applies wins):

1. the group ``Stopped`` (``az container stop`` or the portal; its container is killed): CANCELLED;
2. the container ``Terminated``: exit code 0 is COMPLETED; above 128 (128 + a signal: 137 is the OOM
   killer's SIGKILL) the infrastructure killed it, CRASHED as Prefect says; anything else FAILED (ACI
   then reports the group ``Failed`` too, but the exit code is the truth);
3. ``provisioningState: Failed``: CRASHED with the Warning events' messages (image pull, quota, ...);
4. the container ``Running``: RUNNING;
5. anything else (``Creating``/``Pending``, container ``Waiting``) is PENDING, until
   ``task_start_timeout_seconds`` after the submit time (a tag on the group): then CRASHED.

Works on the SDK's ``ContainerGroup`` model by attribute, so it needs no SDK import and tests can
feed it any object of that shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.launch.aci.body import TAG_SUBMITTED
from reconciler.launch.base import JobStatus
from reconciler.state import RunState

SIGNAL_EXIT = 128  # a process killed by signal N exits with 128 + N


def status_of(group: Any, *, now: datetime, start_timeout: float) -> JobStatus:
    """The run's status from a ``ContainerGroup`` (see the module docstring for the rules)."""
    name = getattr(group, "name", None) or "container group"
    current = _current_state(group)
    state = (getattr(current, "state", None) or "").lower()
    started = _aware(getattr(current, "start_time", None))
    group_state = (getattr(getattr(group, "instance_view", None), "state", None) or "").lower()
    if group_state == "stopped":  # its container shows Terminated too, killed: that was a cancel
        return JobStatus(RunState.CANCELLED, message=f"{name} was stopped outside reconcile", ended_at=now)
    if state == "terminated":
        code = getattr(current, "exit_code", None)
        ended = _aware(getattr(current, "finish_time", None))
        if code == 0:
            return JobStatus(RunState.COMPLETED, exit_code=0, started_at=started, ended_at=ended)
        detail = getattr(current, "detail_status", None) or ""
        message = f"the container exited with code {code}" + (f" ({detail})" if detail else "")
        if isinstance(code, int) and code > SIGNAL_EXIT:  # killed (137: SIGKILL, the OOM killer's)
            message = f"the container was killed by signal {code - SIGNAL_EXIT} (exit code {code})" + (
                f" ({detail})" if detail else ""
            )
            return JobStatus(
                RunState.CRASHED, exit_code=code, message=message, started_at=started, ended_at=ended
            )
        return JobStatus(RunState.FAILED, exit_code=code, message=message, started_at=started, ended_at=ended)
    if (getattr(group, "provisioning_state", None) or "").lower() == "failed":
        reason = events_message(group) or "provisioning failed"
        return JobStatus(RunState.CRASHED, message=f"{name} failed to start: {reason}", ended_at=now)
    if state == "running":
        return JobStatus(RunState.RUNNING, started_at=started)
    submitted = submitted_at(group)
    if submitted is not None and (now - submitted).total_seconds() > start_timeout:
        reason = (
            events_message(group) or _detail(current) or f"still {getattr(group, 'provisioning_state', None)}"
        )
        return JobStatus(
            RunState.CRASHED,
            message=f"{name} did not start within {start_timeout:g}s: {reason}",
            ended_at=now,
        )
    return JobStatus(RunState.PENDING)


def submitted_at(group: Any) -> datetime | None:
    value = (getattr(group, "tags", None) or {}).get(TAG_SUBMITTED)
    if not value:
        return None
    try:
        return _aware(datetime.fromisoformat(str(value)))
    except ValueError:
        return None


def events_message(group: Any) -> str:
    """The Warning events of the group and its containers, oldest first, each message once."""
    events: list[Any] = list(getattr(getattr(group, "instance_view", None), "events", None) or [])
    for container in getattr(group, "containers", None) or []:
        events.extend(getattr(getattr(container, "instance_view", None), "events", None) or [])
    warnings = [
        e
        for e in events
        if (getattr(e, "type", None) or "").lower() == "warning" and getattr(e, "message", None)
    ]
    warnings.sort(
        key=lambda e: _aware(getattr(e, "last_timestamp", None)) or datetime.min.replace(tzinfo=UTC)
    )
    seen: list[str] = []
    for event in warnings:
        if event.message not in seen:
            seen.append(event.message)
    return "; ".join(seen)


def _current_state(group: Any) -> Any:
    containers = getattr(group, "containers", None) or []
    if not containers:
        return None
    return getattr(getattr(containers[0], "instance_view", None), "current_state", None)


def _detail(current: Any) -> str:
    detail = getattr(current, "detail_status", None) or ""
    state = getattr(current, "state", None) or ""
    return f"container {state} ({detail})" if detail else (f"container {state}" if state else "")


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
