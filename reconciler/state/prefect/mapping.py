"""Server objects <-> canonical bodies, both directions. Pure: no I/O, no environment, no clock.

The canonical bodies are exactly what ``desired`` produces (``desired/load.py`` + ``desired/canonical.py``), so
a body read back from the server compares equal to the file's when nothing changed. Values here are
*raw*: secrets already resolved (writes) or not yet turned back into Secrets (reads), and block
references already translated by the caller (``values.py``). What the server fills in or keeps
differently is normalised here (interval floats, schedule time zones and defaults, the concurrency
limit read back through ``global_concurrency_limit``, which is also where a shared limit shows, our
ownership tag); whatever cannot be
inverted is left to the inventory's overlay.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from reconciler import pooltypes
from reconciler.errors import StateError
from reconciler.state.prefect.inventory import ABSENT

Json = Any
DEFAULT_RRULE_START = "DTSTART:20200101T000000\n"  # what the server prefixes to an rrule without one
_NOT_ON_SERVER = ("replaces", "max_active_runs", "catchup")  # schedule keys the OSS server does not keep

# -- work pools ------------------------------------------------------------------------------------


def pool_template(name: str, body: Mapping[str, Any], variables: Mapping[str, Any]) -> tuple[Json, Json]:
    """The ``base_job_template`` to send (the pool's variables as defaults) and, for a template of the
    file's own, the defaults those variables replaced (needed to read the file's template back)."""
    template = body.get("base_job_template")
    if template is None:
        pool_type = pooltypes.get(body["type"])
        if pool_type is None:
            raise StateError(f"work pool {name!r} has unknown type {body['type']!r}")
        return pool_type.base_job_template(variables), None
    if not template:
        if variables:
            raise StateError(f"work pool {name!r}: job_variables need a base_job_template with variables")
        return {}, {}
    result = copy.deepcopy(dict(template))
    props = result.setdefault("variables", {}).setdefault("properties", {})
    originals: dict[str, Any] = {}
    for variable, value in variables.items():
        prop = props.get(variable)
        if not isinstance(prop, dict):
            raise StateError(
                f"work pool {name!r}: job variable {variable!r} is not declared in its base_job_template"
            )
        originals[variable] = copy.deepcopy(prop["default"]) if "default" in prop else ABSENT
        prop["default"] = copy.deepcopy(value)
    return result, originals


def pool_fields(body: Mapping[str, Any], template: Json) -> dict[str, Any]:
    """What ``PATCH /work_pools/{name}`` may change (type and name cannot change in place)."""
    return {
        "description": body.get("description"),
        "is_paused": bool(body.get("paused")),
        "concurrency_limit": body.get("concurrency_limit"),
        "base_job_template": template,
    }


def pool_create(name: str, body: Mapping[str, Any], template: Json) -> dict[str, Any]:
    return {"name": name, "type": body["type"], **pool_fields(body, template)}


def pool_projection(server: Mapping[str, Any]) -> dict[str, Any]:
    """The server's pool in the shape of :func:`pool_fields`, to send only what differs."""
    return {
        "description": server.get("description"),
        "is_paused": bool(server.get("is_paused")),
        "concurrency_limit": server.get("concurrency_limit"),
        "base_job_template": server.get("base_job_template") or {},
    }


def pool_body(
    server: Mapping[str, Any], *, names: Iterable[str] | None, originals: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The canonical body of a server pool.

    ``names`` are the job variables the file set when we last wrote it (from the inventory); for a
    pool we never wrote they are the variables whose default differs from the type's. The template
    with those defaults put back is the type's own (``base_job_template: None``) or the file's.
    """
    template = server.get("base_job_template") or {}
    pool_type = pooltypes.get(server.get("type", ""))
    type_props = pool_type.properties if pool_type else {}
    variables: dict[str, Any] = {}
    restored: Json = template
    if template:
        restored = copy.deepcopy(template)
        props = (restored.get("variables") or {}).get("properties") or {}
        if names is None:
            names = [
                n
                for n, p in props.items()
                if isinstance(p, Mapping)
                and "default" in p
                and ("default" not in type_props.get(n, {}) or p["default"] != type_props[n]["default"])
            ]
        for variable in names:
            prop = props.get(variable)
            if not isinstance(prop, dict) or "default" not in prop:
                continue
            variables[variable] = prop.pop("default")
            if originals is not None:
                original = originals.get(variable, ABSENT)
            else:
                original = type_props.get(variable, {}).get("default", ABSENT)
            if original != ABSENT:
                prop["default"] = copy.deepcopy(original)
    custom: Json = restored
    if originals is None and pool_type is not None and restored == pool_type.base_job_template():
        custom = None
    return {
        "type": server.get("type"),
        "description": server.get("description"),
        "concurrency_limit": server.get("concurrency_limit"),
        "paused": bool(server.get("is_paused")),
        "job_variables": variables,
        "base_job_template": custom,
    }


# -- blocks ----------------------------------------------------------------------------------------


def block_body(document: Mapping[str, Any]) -> dict[str, Any]:
    block_type = document.get("block_type") or {}
    return {"type": block_type.get("slug"), "name": document.get("name"), "data": document.get("data") or {}}


# -- deployments -----------------------------------------------------------------------------------


def deployment_fields(body: Mapping[str, Any], *, marker: str, limit_id: str | None = None) -> dict[str, Any]:
    """Every managed field ``PATCH /deployments/{id}`` takes (never ``schedules``: those go by slug).

    ``limit_id`` is the id of the global concurrency limit the body names (``global_concurrency_limit``);
    the caller resolves it. See :func:`limit_steps` for the order such fields must be sent in."""
    pool = body.get("work_pool") or None
    limit = body.get("concurrency_limit")
    return {
        "version": body.get("version"),
        "description": body.get("description"),
        "paused": bool(body.get("paused")),
        "concurrency_limit": limit["limit"] if limit else None,
        "concurrency_options": (
            {
                "collision_strategy": limit["collision_strategy"],
                "grace_period_seconds": limit["grace_period_seconds"],
            }
            if limit
            else None
        ),
        "parameters": dict(body.get("parameters") or {}),
        "tags": sorted({*body.get("tags", ()), marker}),
        "work_pool_name": pool["name"] if pool else None,
        "work_queue_name": pool.get("work_queue_name") if pool else None,
        "job_variables": dict(pool.get("job_variables") or {}) if pool else {},
        "pull_steps": body.get("pull_steps"),
        "entrypoint": body.get("entrypoint"),
        "enforce_parameter_schema": body.get("enforce_parameter_schema", True),
        "parameter_openapi_schema": body.get("parameter_openapi_schema") or {},
        "global_concurrency_limit_id": limit_id,
    }


def deployment_create(
    body: Mapping[str, Any], *, flow_id: str, marker: str, limit_id: str | None = None
) -> dict[str, Any]:
    """``POST /deployments/``: the managed fields plus identity and schedules (a new deployment).

    With a global concurrency limit, ``concurrency_limit`` is not sent at all: the server reads a
    ``concurrency_limit: null`` next to it as "drop the deployment's limit" and deletes the limit it
    now points at, the shared one. Without one, ``global_concurrency_limit_id`` is not sent: this
    POST also takes over an existing deployment, whose own limit must stay linked to be updated."""
    schedules = [schedule_payload(slug, s) for slug, s in (body.get("schedules") or {}).items()]
    fields = deployment_fields(body, marker=marker, limit_id=limit_id)
    if limit_id is not None:
        fields.pop("concurrency_limit")
    else:  # sent as null, it would unlink the limit an adopted deployment already has (orphaning it)
        fields.pop("global_concurrency_limit_id")
    return {"flow_id": flow_id, "name": body["name"], **fields, "schedules": schedules}


def limit_steps(patch: Mapping[str, Any], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A deployment PATCH split into the requests the server applies safely, in order.

    Prefect keeps a deployment's own limit (``concurrency_limit: N``) and a shared global concurrency
    limit in one column, and a request carrying ``concurrency_limit`` deletes whatever limit that
    column names when the value is null (and sets its limit to N otherwise) *after* the request's
    ``global_concurrency_limit_id`` is stored. So ``concurrency_limit`` never travels with a shared
    limit: the shared one is detached first when the deployment moves to a limit of its own, and
    the own one is dropped first when it moves to a shared one."""
    patch = dict(patch)
    steps: list[dict[str, Any]] = []
    own = {k: patch.pop(k) for k in ("concurrency_limit", "concurrency_options") if k in patch}
    shared_now = deployment_projection(current)["global_concurrency_limit_id"]
    if "concurrency_limit" in own and shared_now is not None:
        steps.append({"global_concurrency_limit_id": None})
        patch.pop("global_concurrency_limit_id", None)
    if own and patch.get("global_concurrency_limit_id") is not None:
        steps.append(own)
        own = {}
    rest = {**own, **patch}
    if rest:
        steps.append(rest)
    return steps


def deployment_projection(server: Mapping[str, Any]) -> dict[str, Any]:
    """The server's deployment in the shape of :func:`deployment_fields`, to PATCH only what differs."""
    gcl = server.get("global_concurrency_limit")
    shared = shared_limit(server)
    own = gcl if gcl and shared is None else None
    options = server.get("concurrency_options") or {}
    pool_name = server.get("work_pool_name")
    return {
        "version": server.get("version"),
        "description": server.get("description"),
        "paused": bool(server.get("paused")),
        "concurrency_limit": own.get("limit") if own else None,
        "concurrency_options": (
            {
                "collision_strategy": options.get("collision_strategy", "ENQUEUE"),
                "grace_period_seconds": options.get("grace_period_seconds"),
            }
            if own
            else None
        ),
        "parameters": server.get("parameters") or {},
        "tags": sorted(set(server.get("tags") or ())),
        "work_pool_name": pool_name,
        "work_queue_name": server.get("work_queue_name") if pool_name else None,
        "job_variables": server.get("job_variables") or {},
        "pull_steps": server.get("pull_steps"),
        "entrypoint": server.get("entrypoint"),
        "enforce_parameter_schema": server.get("enforce_parameter_schema", True),
        "parameter_openapi_schema": server.get("parameter_openapi_schema") or {},
        "global_concurrency_limit_id": str(shared["id"]) if shared is not None else None,
    }


def shared_limit(server: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The shared global concurrency limit a server deployment points at (``global_concurrency_limit``
    is also where the server shows the deployment's own limit, named ``deployment:<its id>``)."""
    gcl = server.get("global_concurrency_limit")
    if not gcl or not gcl.get("name") or gcl["name"] == f"deployment:{server.get('id')}":
        return None
    return gcl


def changed_fields(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``wanted`` that differs from ``current``: the smallest PATCH body."""
    return {key: value for key, value in wanted.items() if current.get(key, ABSENT) != value}


def deployment_body(
    server: Mapping[str, Any], *, flow_name: str, marker: str, triggers: list[Json]
) -> dict[str, Any]:
    """The canonical body of a server deployment (raw values, block ids already named by the caller)."""
    projection = deployment_projection(server)
    limit = projection["concurrency_limit"]
    concurrency = None
    if limit is not None:
        options = projection["concurrency_options"] or {}
        concurrency = {
            "limit": limit,
            "collision_strategy": options.get("collision_strategy", "ENQUEUE"),
            "grace_period_seconds": options.get("grace_period_seconds"),
        }
    pool = None
    if projection["work_pool_name"]:
        pool = {
            "name": projection["work_pool_name"],
            "work_queue_name": projection["work_queue_name"] or "default",
            "job_variables": dict(projection["job_variables"]),
        }
    body: dict[str, Any] = {
        "flow_name": flow_name,
        "name": server.get("name"),
        "entrypoint": projection["entrypoint"],
        "description": projection["description"],
        "version": projection["version"],
        "tags": sorted(t for t in projection["tags"] if t != marker),
        "parameters": dict(projection["parameters"]),
        "enforce_parameter_schema": bool(projection["enforce_parameter_schema"]),
        "parameter_openapi_schema": projection["parameter_openapi_schema"],
        "work_pool": pool,
        "schedules": schedules_body(server.get("schedules") or ()),
        "paused": projection["paused"],
        "concurrency_limit": concurrency,
        "pull_steps": projection["pull_steps"],
        "triggers": triggers,
    }
    shared = shared_limit(server)
    if shared is not None:  # the file's key exists only when set
        body["global_concurrency_limit"] = shared["name"]
    return body


# -- schedules -------------------------------------------------------------------------------------


def schedule_payload(slug: str, schedule: Mapping[str, Any]) -> dict[str, Any]:
    """A ``DeploymentScheduleCreate`` for one canonical schedule (fields the OSS server lacks dropped)."""
    inner: dict[str, Any] = {"timezone": schedule.get("timezone")}
    if "cron" in schedule:
        inner["cron"] = schedule["cron"]
        inner["day_or"] = schedule.get("day_or", True)
    elif "interval" in schedule:
        inner["interval"] = schedule["interval"]
        if schedule.get("anchor_date") is not None:
            inner["anchor_date"] = schedule["anchor_date"]
    else:
        inner["rrule"] = schedule["rrule"]
    return {
        "schedule": inner,
        "active": schedule.get("active", True),
        "parameters": dict(schedule.get("parameters") or {}),
        "slug": slug,
    }


def schedules_body(server_schedules: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Server schedules keyed by slug, as ``canonical.schedules_body`` keys them (``<kind>-<n>``)."""
    keyed: dict[str, dict[str, Any]] = {}
    counters: dict[str, int] = {}
    for item in sorted(server_schedules, key=lambda s: (str(s.get("created", "")), str(s.get("id", "")))):
        body = schedule_body(item)
        kind = "cron" if "cron" in body else "interval" if "interval" in body else "rrule"
        counters[kind] = counters.get(kind, 0) + 1
        keyed[item.get("slug") or f"{kind}-{counters[kind]}"] = body
    return keyed


def schedule_body(item: Mapping[str, Any]) -> dict[str, Any]:
    """One server schedule in canonical form (see ``canonical.schedule_body``)."""
    inner = item.get("schedule") or {}
    body: dict[str, Any] = {"timezone": inner.get("timezone") or "UTC"}
    if "cron" in inner:
        body["cron"] = inner["cron"]
        body["day_or"] = inner.get("day_or", True)
    elif "interval" in inner:
        seconds = inner["interval"]
        body["interval"] = int(seconds) if float(seconds).is_integer() else seconds
        body["anchor_date"] = _iso(inner.get("anchor_date"))
    else:
        rrule = str(inner.get("rrule", ""))
        body["rrule"] = rrule.removeprefix(DEFAULT_RRULE_START)
    body["active"] = item.get("active", True)
    body["parameters"] = dict(item.get("parameters") or {})
    return body


def schedule_matches(wanted: Mapping[str, Any], server_item: Mapping[str, Any]) -> bool:
    """Whether a server schedule already is the file's (what the server cannot hold is not compared)."""
    have = schedule_body(server_item)
    want = {k: v for k, v in wanted.items() if k not in _NOT_ON_SERVER}
    if "interval" in want and want.get("anchor_date") is None:
        want.pop("anchor_date", None)
        have.pop("anchor_date", None)
    return want == have


def _iso(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        return value
