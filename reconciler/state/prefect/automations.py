"""Standalone automations (``automations:``) <-> Prefect's ``/automations`` JSON. Pure: no I/O.

The canonical body (``desired.automations``) names what an action acts on by address; Prefect's
JSON by id. :func:`to_api` resolves each address through the caller's lookup, for
``POST /automations/`` and ``PUT /automations/{id}`` (one shape for both); :func:`from_api` turns a
server's automation back into the canonical body, naming each id by the address of the object it
belongs to. An id that names none of ours stays visible as ``deployment_id:<uuid>`` (so a change made
in the UI shows as drift and apply restores the file's address), and so does every key the server
returns that the body does not hold (a newer server's field, a Cloud-only action).

What the server normalises is undone here: its trigger ids are dropped, the sets it keeps
(``after``, ``expect``, ``for_each``, tags) are sorted, durations are seconds as floats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.desired.automations import ACTION_LISTS, REFERENCES
from reconciler.errors import StateError
from reconciler.objects import Address, Kind

Json = Any
Resolve = Callable[[Address], str]
NameOf = Callable[[Kind, str], Address | None]

_SETS = ("after", "expect", "for_each")
_DURATIONS = ("within",)
_METRIC_DURATIONS = ("range", "firing_for")


class UnresolvedReference(StateError):
    """An automation names an object the server does not have (yet): nothing was written."""

    def __init__(self, automation: str, target: Address) -> None:
        super().__init__(f"automation {automation!r} names {target}, which does not exist on the server")
        self.target = target


# -- writes ----------------------------------------------------------------------------------------


def to_api(body: Mapping[str, Any], resolve: Resolve, *, marker: str | None = None) -> dict[str, Json]:
    """The JSON for ``POST /automations/`` or ``PUT /automations/{id}``: addresses resolved to ids.

    ``resolve`` gives the id of an address, raising LookupError (or returning "") when there is none;
    that becomes :class:`UnresolvedReference`. ``marker`` is a tag the store adds (and
    :func:`from_api` removes) to mark the automation as a project's."""
    name = str(body["name"])
    tags = list(body.get("tags") or ())
    if marker is not None and marker not in tags:
        tags.append(marker)
    return {
        "name": name,
        "description": body.get("description") or "",
        "enabled": bool(body.get("enabled", True)),
        "tags": tags,
        "trigger": _plain(body["trigger"]),
        **{key: [_action_to_api(name, a, resolve) for a in body.get(key) or ()] for key in ACTION_LISTS},
    }


def _action_to_api(automation: str, action: Mapping[str, Any], resolve: Resolve) -> dict[str, Json]:
    doc = dict(_plain(action))
    for key, (kind, id_key) in REFERENCES.items():
        if key not in doc:
            continue
        text = doc.pop(key)
        doc[id_key] = None if text is None else _resolve_text(automation, kind, id_key, str(text), resolve)
    return doc


def _resolve_text(automation: str, kind: Kind, id_key: str, text: str, resolve: Resolve) -> str:
    if text.startswith(f"{id_key}:"):  # a read-back id that names none of ours: kept as it is
        return text.removeprefix(f"{id_key}:")
    address = Address.parse(text)
    if address.kind is not kind:
        raise StateError(f"automation {automation!r}: {text} is not a {kind.label}")
    try:
        found = resolve(address)
    except LookupError:
        found = ""
    if not found:
        raise UnresolvedReference(automation, address)
    return str(found)


def needs_cloud(body: Mapping[str, Any]) -> str | None:
    """Why a self-hosted Prefect server refuses ``body`` (it has no metric triggers), or None."""
    if _has_metric(body.get("trigger") or {}):
        return (
            f"automation {body.get('name')!r}: metric triggers are evaluated by Prefect Cloud only; "
            "a self-hosted Prefect server refuses them"
        )
    return None


def _has_metric(trigger: Mapping[str, Any]) -> bool:
    if trigger.get("type") == "metric":
        return True
    return any(_has_metric(t) for t in trigger.get("triggers") or () if isinstance(t, Mapping))


# -- reads ---------------------------------------------------------------------------------------------


def from_api(doc: Mapping[str, Any], name_of: NameOf, *, marker: str | None = None) -> dict[str, Json]:
    """The canonical body of a server's automation (``GET /automations/{id}``).

    ``name_of(kind, id)`` gives the address of one of the project's objects, or None."""
    tags = sorted({str(t) for t in doc.get("tags") or () if t != marker})
    return {
        "name": doc.get("name"),
        "description": doc.get("description") or "",
        "enabled": bool(doc.get("enabled", True)),
        "tags": tags,
        "trigger": trigger_from_api(doc.get("trigger") or {}),
        **{key: [_action_from_api(a, name_of) for a in doc.get(key) or ()] for key in ACTION_LISTS},
    }


def trigger_from_api(trigger: Mapping[str, Any]) -> dict[str, Json]:
    result = {k: _plain(v) for k, v in trigger.items() if k != "id"}
    for key in _SETS:
        if isinstance(result.get(key), list):
            result[key] = sorted(set(result[key]))
    for key in _DURATIONS:
        if isinstance(result.get(key), int | float):
            result[key] = float(result[key])
    metric = result.get("metric")
    if isinstance(metric, dict):
        for key in _METRIC_DURATIONS:
            if isinstance(metric.get(key), int | float):
                metric[key] = float(metric[key])
        if isinstance(metric.get("threshold"), int | float):
            metric["threshold"] = float(metric["threshold"])
    if isinstance(result.get("triggers"), list):
        result["triggers"] = [
            trigger_from_api(t) if isinstance(t, Mapping) else t for t in result["triggers"]
        ]
    return result


def _action_from_api(action: Mapping[str, Any], name_of: NameOf) -> dict[str, Json]:
    doc = dict(_plain(action))
    for key, (kind, id_key) in REFERENCES.items():
        if id_key not in doc:
            continue
        value = doc.pop(id_key)
        if value is None:
            doc[key] = None
            continue
        address = name_of(kind, str(value))
        doc[key] = str(address) if address is not None else f"{id_key}:{value}"
    if isinstance(doc.get("schedule_after"), int | float):
        doc["schedule_after"] = float(doc["schedule_after"])
    return doc


def _plain(value: Any) -> Json:
    """A deep copy of JSON-shaped data (tuples as lists), so callers' bodies are never shared."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
