"""Canonical resources back to ``prefect.yaml`` items: the inverse of the loader, for ``reconcile import``.

For every body the loader can produce, ``load(export(body)) == body`` (a property test holds it):
defaults the loader fills in are left out (``paused: false``, ``work_queue_name: default``, an
``ENQUEUE`` limit written as a plain number, an automation trigger's ``posture: Reactive``), schedules
get their slug written out, an automation's references are written as the file names them
(``deployment: etl/daily``), and everything else is written as it is stored. Secrets are written as environment placeholders, never values: a
:class:`~reconciler.objects.Secret` keeps the template it was applied from; a sensitive value whose
template nobody knows (an object made on a Prefect server) gets a suggested placeholder named after
where it sits, e.g. ``{{ $FLOW_AWS_CREDENTIALS_PROD_AWS_SECRET_ACCESS_KEY }}``, and the name is reported
so the user can set it. Nothing here reads a secret's value: none is ever at hand.

Pure functions over resources; ``check`` alone reads the project's flow files (through a SourceTree)
to warn about what will not load back as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import pooltypes
from reconciler.desired import (
    automation_actions,
    automation_triggers,
    automations,
    canonical,
    flows,
    templating,
)
from reconciler.desired import variables as variable_refs
from reconciler.desired.source import SourceTree
from reconciler.objects import Address, Kind, LiveState, Resource, Secret

SECTIONS = {
    Kind.BLOCK: "blocks",
    Kind.VARIABLE: "variables",
    Kind.CONCURRENCY_LIMIT: "concurrency_limits",
    Kind.WORK_POOL: "work_pools",
    Kind.WORK_QUEUE: "work_queues",
    Kind.DEPLOYMENT: "deployments",
    Kind.AUTOMATION: "automations",
}
_DEPLOYMENT_FIELDS = frozenset(
    {
        "flow_name",
        "name",
        "entrypoint",
        "description",
        "version",
        "tags",
        "parameters",
        "enforce_parameter_schema",
        "parameter_openapi_schema",  # derived from the flow's source, never written to the file
        "work_pool",
        "schedules",
        "paused",
        "concurrency_limit",
        "pull_steps",
        "triggers",
        "global_concurrency_limit",
    }
)
_POOL_FIELDS = frozenset(
    {"type", "description", "concurrency_limit", "paused", "job_variables", "base_job_template"}
)
_BLOCK_FIELDS = frozenset({"type", "name", "data"})
_QUEUE_FIELDS = frozenset({"pool", "name", "description", "priority", "concurrency_limit", "paused"})
_VARIABLE_FIELDS = frozenset({"name", "value", "tags"})
_LIMIT_FIELDS = frozenset({"name", "limit", "active", "slot_decay_per_second"})
_AUTOMATION_FIELDS = frozenset(
    {"name", "description", "enabled", "tags", "trigger", *automations.ACTION_LISTS}
)
_SCHEDULE_KINDS = ("cron", "interval", "rrule")
DEFAULT_QUEUE = "default"  # every pool's implicit queue: a deployment's queue when it names none
_NOT_NAME = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True)
class Export:
    """Items per section (``blocks``, ``work_pools``, ``deployments``, ...) and what the user should know."""

    sections: Mapping[str, list[dict[str, Any]]]
    placeholders: tuple[str, ...] = ()  # suggested env names to set (names only, never values)
    warnings: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.sections.values())


@dataclass
class _Notes:
    """What the item builders learn on the way (collected into the frozen Export)."""

    placeholders: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def undeclared(live: LiveState, declared: Iterable[Address]) -> list[Resource]:
    """Objects in the live state that the file does not declare, in apply order."""
    known = set(declared)
    found = [o.resource for a, o in live.objects.items() if a not in known]
    return sorted(found, key=lambda r: (r.kind.rank, r.address.name))


def dependencies(resource: Resource) -> list[Address]:
    """What an object needs declared or stored to load: a deployment's pool, queue and global limit,
    a queue's pool, the blocks and variables its templates read, what an automation acts on."""
    plain = _plain_templates(resource.body)
    needed = [Address.block(t, n) for t, n in templating.block_references(plain)]
    body = resource.body
    if resource.kind in (Kind.WORK_POOL, Kind.DEPLOYMENT):  # {{ prefect.variables.NAME }}, read at launch
        needed.extend(Address.variable(name) for name in variable_refs.names(plain))
    if resource.kind is Kind.DEPLOYMENT:
        pool = body.get("work_pool") or {}
        if pool.get("name"):
            needed.append(Address.pool(pool["name"]))
            queue = pool.get("work_queue_name")
            if queue and queue != DEFAULT_QUEUE:
                needed.append(Address.work_queue(pool["name"], queue))
        if body.get("global_concurrency_limit"):
            needed.append(Address.concurrency_limit(body["global_concurrency_limit"]))
    elif resource.kind is Kind.WORK_QUEUE:
        needed.append(Address.pool(body["pool"]))
    elif resource.kind is Kind.AUTOMATION:
        needed.extend(address for _, address in automations.references(body))
    return list(dict.fromkeys(needed))


def export(
    resources: Iterable[Resource], *, inherited_pull: Any = None, pool_types: Mapping[str, str] | None = None
) -> Export:
    """The items for ``resources``, grouped by section, in the order given.

    ``inherited_pull`` is the file's top-level ``pull:`` (raw), which a deployment without its own
    ``pull`` inherits: a deployment whose steps differ from it gets them written out. ``pool_types``
    (pool name -> type) tells which of a deployment's job variables its pool type marks secret.
    """
    notes = _Notes()
    sections: dict[str, list[dict[str, Any]]] = {}
    inherited = canonical.steps_body(inherited_pull)
    for resource in resources:
        if resource.kind is Kind.DEPLOYMENT:
            item = _deployment_item(resource, notes, inherited_pull=inherited, pool_types=pool_types or {})
        else:
            item = _ITEMS[resource.kind](resource, notes)
        sections.setdefault(SECTIONS[resource.kind], []).append(item)
    ordered = {key: sections[key] for key in SECTIONS.values() if key in sections}  # the file's order
    return Export(ordered, tuple(notes.placeholders), tuple(notes.warnings))


def _block_item(resource: Resource, notes: _Notes) -> dict[str, Any]:
    body = resource.body
    _unknown_fields(resource, _BLOCK_FIELDS, notes)
    block_type = pooltypes.block_type(str(body["type"]))
    secret_fields = block_type.secret_fields if block_type else frozenset()
    data = {}
    for name, value in (body.get("data") or {}).items():
        where = (body["type"], body["name"], name)
        data[name] = _secret(value, where, notes) if name in secret_fields else _values(value, where, notes)
    return {"type": body["type"], "name": body["name"], "data": data}


def _pool_item(resource: Resource, notes: _Notes) -> dict[str, Any]:
    body = resource.body
    _unknown_fields(resource, _POOL_FIELDS, notes)
    item: dict[str, Any] = {"name": resource.address.name, "type": body["type"]}
    if body.get("description") is not None:
        item["description"] = body["description"]
    if body.get("concurrency_limit") is not None:
        item["concurrency_limit"] = body["concurrency_limit"]
    if body.get("paused"):
        item["paused"] = True
    variables = _job_variables(body.get("job_variables"), str(body["type"]), (resource.address.name,), notes)
    if variables:
        item["job_variables"] = variables
    if body.get("base_job_template") is not None:
        where = (resource.address.name, "base_job_template")
        item["base_job_template"] = _values(body["base_job_template"], where, notes)
    return item


def _deployment_item(
    resource: Resource,
    notes: _Notes,
    *,
    inherited_pull: Any = None,
    pool_types: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    body = resource.body
    _unknown_fields(resource, _DEPLOYMENT_FIELDS, notes)
    where = tuple(resource.address.name.split("/"))
    item: dict[str, Any] = {"name": body["name"], "entrypoint": body["entrypoint"]}
    if body.get("description") is not None:
        item["description"] = body["description"]
    if body.get("version") is not None:
        item["version"] = body["version"]
    if body.get("tags"):
        item["tags"] = list(body["tags"])
    if body.get("parameters"):
        item["parameters"] = _values(body["parameters"], where, notes)
    if body.get("enforce_parameter_schema") is False:
        item["enforce_parameter_schema"] = False
    if body.get("schedules"):
        item["schedules"] = [schedule_item(slug, s) for slug, s in body["schedules"].items()]
    if body.get("paused"):
        item["paused"] = True
    if body.get("concurrency_limit") is not None:
        item["concurrency_limit"] = _concurrency(body["concurrency_limit"])
    pool = body.get("work_pool")
    if pool:
        ref: dict[str, Any] = {"name": pool["name"]}
        if pool.get("work_queue_name") not in (None, DEFAULT_QUEUE):
            ref["work_queue_name"] = pool["work_queue_name"]
        pool_type = (pool_types or {}).get(str(pool["name"]))
        variables = _job_variables(pool.get("job_variables"), pool_type, where, notes)
        if variables:
            ref["job_variables"] = variables
        item["work_pool"] = ref
    if body.get("pull_steps") != inherited_pull:
        item["pull"] = body.get("pull_steps")
    if body.get("triggers"):
        item["triggers"] = list(body["triggers"])
    if body.get("global_concurrency_limit") is not None:
        item["global_concurrency_limit"] = body["global_concurrency_limit"]
    return item


def _queue_item(resource: Resource, notes: _Notes) -> dict[str, Any]:
    """A ``work_queues`` item; ``priority`` is written when the body holds one (then it is managed)."""
    body = resource.body
    _unknown_fields(resource, _QUEUE_FIELDS, notes)
    item: dict[str, Any] = {"pool": body["pool"], "name": body["name"]}
    if body.get("description"):
        item["description"] = body["description"]
    for key in ("priority", "concurrency_limit"):
        if body.get(key) is not None:
            item[key] = body[key]
    if body.get("paused"):
        item["paused"] = True
    return item


def _variable_item(resource: Resource, notes: _Notes) -> dict[str, Any]:
    """A ``variables`` item: the value as it is (any JSON), tags when there are any."""
    body = resource.body
    _unknown_fields(resource, _VARIABLE_FIELDS, notes)
    item: dict[str, Any] = {"name": body["name"], "value": body.get("value")}
    if body.get("tags"):
        item["tags"] = list(body["tags"])
    return item


def _limit_item(resource: Resource, notes: _Notes) -> dict[str, Any]:
    """A ``concurrency_limits`` item; Prefect's defaults (active, no slot decay) are left out."""
    body = resource.body
    _unknown_fields(resource, _LIMIT_FIELDS, notes)
    item: dict[str, Any] = {"name": body["name"], "limit": body["limit"]}
    if body.get("active") is False:
        item["active"] = False
    if body.get("slot_decay_per_second"):
        item["slot_decay_per_second"] = body["slot_decay_per_second"]
    return item


def _automation_item(resource: Resource, notes: _Notes) -> dict[str, Any]:
    """An ``automations`` item: the canonical body with each default the loader fills in left out,
    and each reference written as the file writes it (``deployment: etl/daily``, not the address)."""
    body = resource.body
    _unknown_fields(resource, _AUTOMATION_FIELDS, notes)
    item: dict[str, Any] = {"name": body["name"]}
    if body.get("description"):
        item["description"] = body["description"]
    if body.get("enabled") is False:
        item["enabled"] = False
    if body.get("tags"):
        item["tags"] = list(body["tags"])
    item["trigger"] = trigger_item(body["trigger"])
    for key in automations.ACTION_LISTS:
        if body.get(key) or key == "actions":
            item[key] = [action_item(action) for action in body.get(key) or ()]
    return item


_TRIGGER_DEFAULTS: dict[str, Any] = {
    "match": {},
    "match_related": {},
    "after": [],
    "expect": [],
    "for_each": [],
    "posture": "Reactive",
    "threshold": 1,
    "within": None,
}
_METRIC_DEFAULTS: dict[str, Any] = {
    "range": automation_triggers.METRIC_MINIMUM_WINDOW,
    "firing_for": automation_triggers.METRIC_MINIMUM_WINDOW,
}
_ACTION_DEFAULTS: dict[str, Any] = {
    "source": "selected",
    "parameters": None,
    "job_variables": None,
    "schedule_after": 0.0,
    "subject": automation_actions.NOTIFICATION_SUBJECT,
    "payload": "",
    "name": None,
    "message": None,
    "force": False,
}


def trigger_item(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """A trigger of a canonical body as the file writes it: its type, and what differs from the
    defaults (a Proactive trigger's implicit 10 s window, a Reactive one's 0 s, are defaults too)."""
    item: dict[str, Any] = {"type": trigger["type"]}
    for key, value in trigger.items():
        if key == "type" or (key in _TRIGGER_DEFAULTS and value == _TRIGGER_DEFAULTS[key]):
            continue
        if key == "posture" and trigger["type"] == "metric":
            continue  # a metric trigger's posture is always Metric
        if key == "within" and trigger["type"] == "event" and value == _default_window(trigger):
            continue
        if key == "triggers":
            value = [trigger_item(t) for t in value]
        elif key == "metric":
            value = {k: v for k, v in value.items() if _METRIC_DEFAULTS.get(k, object()) != v}
        item[key] = value
    return item


def _default_window(trigger: Mapping[str, Any]) -> float:
    proactive = trigger.get("posture") == "Proactive"
    return automation_triggers.PROACTIVE_MINIMUM_WITHIN if proactive else 0.0


def action_item(action: Mapping[str, Any]) -> dict[str, Any]:
    """An action of a canonical body as the file writes it: references by the name part of their
    address (``deployment: etl/daily``), defaults left out."""
    item: dict[str, Any] = {"type": action["type"]}
    for key, value in action.items():
        if key == "type" or (key in _ACTION_DEFAULTS and value == _ACTION_DEFAULTS[key]):
            continue
        kind = automations.REFERENCES[key][0] if key in automations.REFERENCES else None
        if kind is not None and value is None:
            continue  # source: inferred acts on the event's own object: nothing is named
        if kind is not None and isinstance(value, str) and value.startswith(f"{kind.value}."):
            value = Address.parse(value).name
        item[key] = value
    return item


def raw_ids(body: Mapping[str, Any]) -> list[str]:
    """The ``*_id:<uuid>`` texts an automation body holds where an address belongs: ids of objects
    that are none of the project's (or of an import's), which a file cannot name."""
    found = []
    for key in automations.ACTION_LISTS:
        for action in body.get(key) or ():
            for ref, (kind, _) in automations.REFERENCES.items():
                text = action.get(ref)
                if isinstance(text, str) and not text.startswith(f"{kind.value}."):
                    found.append(text)
    return found


_ITEMS = {
    Kind.BLOCK: _block_item,
    Kind.WORK_POOL: _pool_item,
    Kind.WORK_QUEUE: _queue_item,
    Kind.VARIABLE: _variable_item,
    Kind.CONCURRENCY_LIMIT: _limit_item,
    Kind.AUTOMATION: _automation_item,
}


def schedule_item(slug: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """One ``schedules`` item, slug written out (so the same key comes back)."""
    item: dict[str, Any] = {}
    for kind in _SCHEDULE_KINDS:
        if body.get(kind) is not None:
            item[kind] = body[kind]
            break
    if body.get("anchor_date") is not None:
        item["anchor_date"] = body["anchor_date"]
    item["timezone"] = body.get("timezone") or "UTC"
    if "cron" in item and body.get("day_or") is False:
        item["day_or"] = False
    item["slug"] = slug
    if body.get("active", True) is not True:
        item["active"] = body["active"]
    if body.get("parameters"):
        item["parameters"] = dict(body["parameters"])
    for optional in ("max_active_runs", "catchup", "replaces"):
        if body.get(optional) is not None:
            item[optional] = body[optional]
    return item


def check(resources: Iterable[Resource], tree: SourceTree) -> list[str]:
    """Warnings about deployments that will not load back as they are stored, read from the flow files."""
    warnings: list[str] = []
    for resource in resources:
        if resource.kind is not Kind.DEPLOYMENT:
            continue
        body, address = resource.body, resource.address
        try:
            info = flows.inspect_entrypoint(tree, str(body["entrypoint"]))
        except flows.EntrypointError as exc:
            warnings.append(
                f"{address}: written anyway, but it will not load until its entrypoint exists ({exc})"
            )
            continue
        if info.name != body.get("flow_name"):
            warnings.append(
                f"{address}: {body['entrypoint']} now defines flow {info.name!r}, so the file will declare "
                f"deployment.{info.name}/{body['name']} instead"
            )
        if body.get("description") is None and info.docstring:
            warnings.append(
                f"{address}: stored without a description; loaded back it takes the flow's docstring"
            )
    return warnings


# -- values ------------------------------------------------------------------------------------------


def _values(value: Any, where: tuple[Any, ...], notes: _Notes) -> Any:
    """A JSON-shaped copy with every Secret written as its placeholder."""
    if isinstance(value, Secret):
        return _secret(value, where, notes, must_look_sensitive=True)
    if isinstance(value, Mapping):
        return {k: _values(v, (*where, k), notes) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_values(v, (*where, i), notes) for i, v in enumerate(value)]
    return value


def _secret(value: Any, where: tuple[Any, ...], notes: _Notes, *, must_look_sensitive: bool = False) -> Any:
    """A sensitive value as a placeholder: its own template, else a suggested ``{{ $NAME }}``."""
    if value is None:
        return None
    if isinstance(value, Secret) and value.env_names:
        return value.template
    name = env_name(*where)
    if must_look_sensitive and not templating.is_sensitive_env(name):
        name += "_SECRET"  # outside a secret field, only a sensitive-looking name loads as a secret
    if name not in notes.placeholders:
        notes.placeholders.append(name)
    return "{{ $" + name + " }}"


def env_name(*parts: Any) -> str:
    """``("aws-credentials", "prod", "aws_secret_access_key")`` -> ``FLOW_AWS_CREDENTIALS_PROD_AWS_SECRET_ACCESS_KEY``
    (a name a placeholder may read: never one of ``templating.RESERVED_ENV``)."""
    name = _NOT_NAME.sub("_", "_".join(str(p) for p in parts).upper()).strip("_") or "SECRET"
    name = f"_{name}" if name[0].isdigit() else name
    return f"FLOW_{name}" if templating.is_reserved_env(name) else name  # AWS_* is ours: unreadable


def _job_variables(
    variables: Any, pool_type: str | None, where: tuple[Any, ...], notes: _Notes
) -> dict[str, Any]:
    known = pooltypes.get(pool_type) if pool_type else None
    secret = known.secret_variables if known else frozenset()
    return {
        k: (_secret(v, (*where, k), notes) if k in secret else _values(v, (*where, k), notes))
        for k, v in (variables or {}).items()
    }


def _concurrency(limit: Mapping[str, Any]) -> Any:
    if limit.get("collision_strategy", "ENQUEUE") == "ENQUEUE" and limit.get("grace_period_seconds") is None:
        return limit["limit"]
    item = {"limit": limit["limit"], "collision_strategy": limit.get("collision_strategy", "ENQUEUE")}
    if limit.get("grace_period_seconds") is not None:
        item["grace_period_seconds"] = limit["grace_period_seconds"]
    return item


def _unknown_fields(resource: Resource, known: frozenset[str], notes: _Notes) -> None:
    extra = sorted(set(resource.body) - known)
    if extra:
        notes.warnings.append(
            f"{resource.address}: {', '.join(extra)} cannot be written to prefect.yaml and is left out"
        )


def _plain_templates(value: Any) -> Any:
    """Secrets as their templates, for finding block references without touching values."""
    if isinstance(value, Secret):
        return value.template
    if isinstance(value, Mapping):
        return {k: _plain_templates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_templates(v) for v in value]
    return value
