"""Container groups as the ACI fake keeps them: a scripted (or really executed) container lifecycle.

A group's state advances one step each time someone looks at it (a GET of the group, or a poll of
its creation's operation status), so a test decides exactly how many polls see it Waiting, Running
and then Terminated (:class:`Outcome`). With :class:`LocalExecutor` the fake
instead *runs* the container's command as a local process (the "image" is this Python with the
repository importable), so the environment and command a launcher sends are proven runnable.

What the fake returns mirrors ACI: ``secureValue`` environment values and registry passwords are
never echoed back, ``instanceView`` appears on single-group GETs only, and a container that exited
non-zero leaves the group's ``instanceView.state`` at ``Failed`` while ``provisioningState`` stays
``Succeeded``.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PREFECT_ENTRYPOINT = "/opt/prefect/entrypoint.sh"  # Prefect's image script: it only execs its arguments


@dataclass(frozen=True)
class Outcome:
    """How a scripted container behaves, counted in looks at its group (GETs, operation polls)."""

    waiting_polls: int = 1  # looks that see the group provisioning and the container Waiting
    running_polls: int = 1  # then looks that see it Running
    exit_code: int = 0  # then Terminated with this code
    logs: str = "hello from aci\n"  # first line visible while Running, all of it once Terminated
    start_failure: str | None = None  # after the waiting polls: provisioning Failed with this event


@dataclass(frozen=True)
class LocalExecutor:
    """Run each created group's first container as a local process in ``workdir``."""

    workdir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Group:
    """One container group: the spec as PUT, plus its lifecycle."""

    def __init__(
        self,
        *,
        resource_id: str,
        name: str,
        body: Mapping[str, Any],
        outcome: Outcome,
        executor: LocalExecutor | None,
    ) -> None:
        self.resource_id = resource_id
        self.name = name
        self.body = copy.deepcopy(dict(body))
        self.outcome = outcome
        self.ticks = 0
        self.updates = 0
        self.stopped = False
        self.created_at = _now()
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._output: list[str] = []
        self._exec_error: str | None = None
        if executor is not None:
            self._start(executor)

    # -- what the spec says ----------------------------------------------------------------------

    @property
    def container(self) -> Mapping[str, Any]:
        return self.body["properties"]["containers"][0]

    @property
    def location(self) -> str:
        return str(self.body.get("location", ""))

    def environment(self) -> dict[str, str]:
        """The container's environment as the container sees it (secure values included)."""
        env: dict[str, str] = {}
        for item in self.container["properties"].get("environmentVariables") or []:
            value = item.get("secureValue", item.get("value"))
            env[item["name"]] = "" if value is None else str(value)
        return env

    def secure_names(self) -> set[str]:
        items = self.container["properties"].get("environmentVariables") or []
        return {i["name"] for i in items if "secureValue" in i}

    # -- lifecycle -------------------------------------------------------------------------------

    def update(self, body: Mapping[str, Any]) -> None:
        """A PUT on an existing name: ACI redeploys the group, restarting its containers."""
        with self._lock:
            self.body = copy.deepcopy(dict(body))
            self.updates += 1
            self.ticks = 0
            self.stopped = False
            self.started_at = self.finished_at = None

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            self.finished_at = self.finished_at or _now()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def kill(self) -> None:
        """Deleting a group stops whatever runs in it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def advance(self) -> None:
        with self._lock:
            self.ticks += 1

    def phase(self) -> tuple[str, int | None]:
        """``(phase, exit code)``: phase is waiting, failed, running, terminated or stopped."""
        with self._lock:
            if self.stopped:
                return "stopped", 137
            if self._process is not None or self._exec_error is not None:
                return self._process_phase()
            out = self.outcome
            if self.ticks <= out.waiting_polls:
                return "waiting", None
            if out.start_failure is not None:
                return "failed", None
            self.started_at = self.started_at or _now()
            if self.ticks <= out.waiting_polls + out.running_polls:
                return "running", None
            self.finished_at = self.finished_at or _now()
            return "terminated", out.exit_code

    def _process_phase(self) -> tuple[str, int | None]:
        if self._exec_error is not None:
            return "failed", None
        assert self._process is not None
        code = self._process.poll()
        if code is None:
            return "running", None
        self.finished_at = self.finished_at or _now()
        return "terminated", code

    def logs(self) -> str:
        if self._process is not None or self._exec_error is not None:
            with self._lock:
                return "".join(self._output)
        phase, _ = self.phase()
        if phase in ("waiting", "failed"):
            return ""
        if phase == "running":
            return self.outcome.logs.partition("\n")[0] + ("\n" if "\n" in self.outcome.logs else "")
        return self.outcome.logs

    # -- local execution -------------------------------------------------------------------------

    def _start(self, executor: LocalExecutor) -> None:
        command = list(self.container["properties"].get("command") or [])
        if command[:1] == [PREFECT_ENTRYPOINT]:
            command = command[1:]
        if command[:1] == ["python"]:
            command[0] = sys.executable
        env = {"PATH": os.environ.get("PATH", ""), **executor.extra_env, **self.environment()}
        try:
            self._process = subprocess.Popen(
                command,
                cwd=executor.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            self._exec_error = f'failed to start container "{self.container["name"]}": {exc.strerror}'
            return
        self.started_at = _now()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in iter(self._process.stdout.readline, b""):
            with self._lock:
                self._output.append(raw.decode("utf-8", "replace"))

    # -- what ARM returns ------------------------------------------------------------------------

    def view(self, *, instance_view: bool = True) -> dict[str, Any]:
        """The group as ARM returns it: no secure values, no registry passwords."""
        doc = copy.deepcopy(self.body)
        doc.update(
            id=self.resource_id,
            name=self.name,
            type="Microsoft.ContainerInstance/containerGroups",
        )
        props = doc.setdefault("properties", {})
        for container in props.get("containers", []):
            cprops = container.setdefault("properties", {})
            cprops["environmentVariables"] = [
                {k: v for k, v in item.items() if k != "secureValue"}
                for item in cprops.get("environmentVariables") or []
            ]
        props["imageRegistryCredentials"] = [
            {k: v for k, v in cred.items() if k != "password"}
            for cred in props.get("imageRegistryCredentials") or []
        ]
        phase, code = self.phase()
        props["provisioningState"] = {"waiting": "Creating", "failed": "Failed"}.get(phase, "Succeeded")
        if instance_view:
            self._instance_view(props, phase, code)
        return doc

    def _instance_view(self, props: dict[str, Any], phase: str, code: int | None) -> None:
        first = props["containers"][0]["properties"]
        image = first.get("image", "")
        events: list[dict[str, Any]] = [
            _event("Normal", "Pulling", f'pulling image "{image}"', self.created_at)
        ]
        if phase == "waiting":
            current: dict[str, Any] = {"state": "Waiting", "detailStatus": "ContainerCreating"}
            group_state = "Pending"
        elif phase == "failed":
            message = self._exec_error or self.outcome.start_failure or "failed"
            events.append(_event("Warning", "Failed", message, _now()))
            current = {"state": "Waiting", "detailStatus": "ErrImagePull"}
            group_state = "Pending"
        else:
            events.append(_event("Normal", "Started", "Started container", self.started_at or _now()))
            if phase == "running":
                current = {"state": "Running", "startTime": self.started_at, "detailStatus": ""}
                group_state = "Running"
            else:
                current = {
                    "state": "Terminated",
                    "startTime": self.started_at or self.finished_at,
                    "finishTime": self.finished_at,
                    "exitCode": code,
                    "detailStatus": "Stopped"
                    if phase == "stopped"
                    else ("Completed" if code == 0 else "Error"),
                }
                group_state = "Stopped" if phase == "stopped" else ("Succeeded" if code == 0 else "Failed")
        first["instanceView"] = {"restartCount": 0, "currentState": current, "events": events}
        props["instanceView"] = {"state": group_state, "events": []}


def _event(kind: str, name: str, message: str, when: str) -> dict[str, Any]:
    return {
        "count": 1,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "name": name,
        "message": message,
        "type": kind,
    }


_GROUP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){0,61}[a-z0-9]?$")


def invalid_group(name: str, doc: Any) -> tuple[str, str] | None:
    """ARM's validation of a container group PUT (the parts a launcher can get wrong): code, message."""
    if len(name) > 63 or not _GROUP_NAME.match(name) or name.endswith("-"):
        return "InvalidContainerGroupName", (
            f"The container group name '{name}' is invalid. The container group name must contain no more "
            "than 63 characters and must match the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name')."
        )
    if not isinstance(doc, dict) or not doc.get("location"):
        return "LocationRequired", "The location property is required for this definition."
    props = doc.get("properties") or {}
    if props.get("osType") not in ("Linux", "Windows"):
        return "InvalidOsType", "The 'osType' of the container group must be 'Linux' or 'Windows'."
    containers = props.get("containers") or []
    if not containers:
        return "MissingContainers", "The container group must contain at least one container."
    for container in containers:
        cprops = container.get("properties") or {}
        if not container.get("name") or not cprops.get("image"):
            return "InvalidContainerDefinition", "Each container needs a name and an image."
        requests = (cprops.get("resources") or {}).get("requests") or {}
        if "cpu" not in requests or "memoryInGB" not in requests:
            message = f"Container '{container.get('name')}' needs resources.requests cpu and memoryInGB."
            return "MissingResourceRequests", message
        for item in cprops.get("environmentVariables") or []:
            if not item.get("name") or ("value" in item) == ("secureValue" in item):
                message = "Each environment variable needs a name and one of value or secureValue."
                return "InvalidEnvironmentVariable", message
    return None
