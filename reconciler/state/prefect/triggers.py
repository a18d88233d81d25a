"""Deployment ``triggers`` <-> the automations a deployment owns, as ``prefect deploy`` makes them.

Each trigger becomes one automation named ``<deployment>__automation_<i>`` unless it has a name,
whose action runs the deployment; the trigger is filled with the defaults Prefect's client models
give it (the server requires them). Ours carry our tag, so automations made in the UI for the same
deployment are never mistaken for the file's. Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

Json = Any

_AUTOMATION_KEYS = ("name", "description", "enabled")
_ACTION_KEYS = ("parameters", "job_variables", "schedule_after")


def automation_payloads(
    triggers: Iterable[Mapping[str, Any]], *, deployment_name: str, deployment_id: str, marker: str
) -> list[dict[str, Any]]:
    """Automations for a deployment's ``triggers``, as ``prefect deploy`` makes them, tagged as ours."""
    payloads = []
    for index, spec in enumerate(triggers, start=1):
        trigger = dict(spec)
        name = trigger.pop("name", None) or f"{deployment_name}__automation_{index}"
        description = trigger.pop("description", "") or ""
        enabled = trigger.pop("enabled", True)
        action = {key: trigger.pop(key, None) for key in _ACTION_KEYS}
        trigger = _with_defaults(trigger)
        payloads.append(
            {
                "name": name,
                "description": description,
                "enabled": enabled,
                "tags": [marker],
                "trigger": trigger,
                "actions": [
                    {
                        "type": "run-deployment",
                        "source": "selected",
                        "deployment_id": deployment_id,
                        "parameters": action["parameters"],
                        "job_variables": action["job_variables"],
                        "schedule_after": action["schedule_after"] or 0,
                    }
                ],
                "owner_resource": f"prefect.deployment.{deployment_id}",
            }
        )
    return payloads


def owned_automations(
    automations: Iterable[Mapping[str, Any]], *, deployment_id: str, marker: str
) -> list[Json]:
    """The automations we made for one deployment, oldest first."""
    mine = [
        a
        for a in automations
        if marker in (a.get("tags") or ())
        and any(str(action.get("deployment_id")) == deployment_id for action in a.get("actions") or ())
    ]
    return sorted(mine, key=lambda a: (str(a.get("created", "")), str(a.get("id", ""))))


def triggers_body(automations: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A deployment's automations back in the shape of ``triggers:`` items."""
    result = []
    for automation in automations:
        trigger = {k: v for k, v in (automation.get("trigger") or {}).items() if k != "id"}
        action = next(iter(automation.get("actions") or ()), {}) or {}
        for key in _AUTOMATION_KEYS:
            trigger[key] = automation.get(key)
        for key in _ACTION_KEYS:
            trigger[key] = action.get(key)
        result.append(trigger)
    return result


_TRIGGER_DEFAULTS: dict[
    str, dict[str, Any]
] = {  # what Prefect's client models fill in (the server requires them)
    "event": {
        "match": {},
        "match_related": {},
        "after": [],
        "expect": [],
        "for_each": [],
        "posture": "Reactive",
        "threshold": 1,
        "within": 0.0,
    },
    "metric": {"match": {}, "match_related": {}, "posture": "Metric"},
    "compound": {"within": None},
    "sequence": {"within": None},
}


def _with_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A trigger as Prefect's client models serialise it: type inferred, defaults filled, nested too."""
    trigger = dict(spec)
    kind = trigger.setdefault("type", _trigger_type(trigger))
    for key, value in _TRIGGER_DEFAULTS.get(str(kind), {}).items():
        trigger.setdefault(key, copy.deepcopy(value))
    if isinstance(trigger.get("triggers"), list):
        trigger["triggers"] = [
            _with_defaults(t) if isinstance(t, Mapping) else t for t in trigger["triggers"]
        ]
    return trigger


def _trigger_type(spec: Mapping[str, Any]) -> str:
    """Prefect's discriminator for deployment triggers without an explicit ``type``."""
    if spec.get("posture") == "Metric":
        return "metric"
    if "triggers" in spec:
        return "compound" if "require" in spec else "sequence"
    return "event"
