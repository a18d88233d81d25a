"""The one canonical form of each object, so equal intent always compares equal.

Normalisation happens here and only here: defaults filled in, tags as a sorted set, schedules keyed by
slug, intervals in seconds, job variables coerced to the types their pool type declares (``"512"`` and
``512`` are the same cpu), datetimes as ISO strings. The store keeps these bodies verbatim, so an
apply followed by a plan always shows no changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from reconciler.desired.models import ConcurrencyOptions, Schedule
from reconciler.pooltypes.base import declared_types

Json = Any


def plain(value: Any) -> Json:
    """JSON-shaped copy: dates as ISO strings, tuples as lists, numbers left alone.

    Values come from a YAML loader, so containers are plain dicts and lists: exact type checks keep
    this walk cheap (no ABC machinery) over tens of thousands of deployments.
    """
    kind = type(value)
    if kind is dict:
        return {k if type(k) is str else str(k): plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [plain(v) for v in value]
    if kind is datetime or kind is date:
        return value.isoformat()
    return value


def coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    """Bring a value to the JSON type its schema declares, when that is lossless.

    Placeholders and Secrets are left alone (they are resolved later); anything that does not convert
    cleanly is returned unchanged, and the schema check reports it.
    """
    kind = type(value)
    if kind is dict:
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        fallback = extra if type(extra) is dict else {}
        return {k: coerce(v, props.get(k) or fallback) for k, v in value.items()}
    if kind is list:
        items = schema.get("items")
        return [coerce(v, items) for v in value] if type(items) is dict else value
    if kind is bool or kind not in (str, int, float) or (kind is str and "{{" in value):
        return value
    types = _types(schema)
    if "integer" in types and not isinstance(value, int):
        converted = _to_number(value)
        if converted is not None and float(converted).is_integer():
            return int(converted)
    if "number" in types and "integer" not in types and isinstance(value, str):
        converted = _to_number(value)
        if converted is not None:
            return int(converted) if float(converted).is_integer() else converted
    if "string" in types and not ({"integer", "number"} & types) and isinstance(value, int | float):
        return str(value)
    if "boolean" in types and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


_TYPES: dict[int, tuple[Mapping[str, Any], frozenset[str]]] = {}


def _types(schema: Mapping[str, Any]) -> frozenset[str]:
    """The JSON types a schema allows (cached: pool-type schemas are long-lived constants)."""
    cached = _TYPES.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    found = frozenset(declared_types(schema))
    _TYPES[id(schema)] = (schema, found)
    return found


def _to_number(value: Any) -> float | int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and not isinstance(value, float) else number


def schedules_body(schedules: list[Schedule]) -> tuple[dict[str, dict[str, Json]], list[str]]:
    """Schedules keyed by slug (derived as ``<kind>-<n>`` when absent), and any duplicate slugs."""
    keyed: dict[str, dict[str, Json]] = {}
    duplicates: list[str] = []
    counters: dict[str, int] = {}
    for schedule in schedules:
        counters[schedule.kind] = counters.get(schedule.kind, 0) + 1
        slug = schedule.slug or f"{schedule.kind}-{counters[schedule.kind]}"
        if slug in keyed:
            duplicates.append(slug)
        keyed[slug] = schedule_body(schedule)
    return keyed, duplicates


def schedule_body(schedule: Schedule) -> dict[str, Json]:
    body: dict[str, Json] = {"timezone": schedule.timezone or "UTC"}
    if schedule.cron is not None:
        body["cron"] = schedule.cron
        body["day_or"] = True if schedule.day_or is None else schedule.day_or
    elif schedule.interval is not None:
        seconds = schedule.interval_seconds or 0
        body["interval"] = int(seconds) if float(seconds).is_integer() else seconds
        body["anchor_date"] = plain(schedule.anchor_date)
    else:
        body["rrule"] = schedule.rrule
    body["active"] = schedule.active
    body["parameters"] = plain(schedule.parameters)
    for optional in ("max_active_runs", "catchup", "replaces"):
        value = getattr(schedule, optional)
        if value is not None:
            body[optional] = value
    return body


def concurrency_body(value: int | ConcurrencyOptions | None) -> dict[str, Json] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return {"limit": value, "collision_strategy": "ENQUEUE", "grace_period_seconds": None}
    return {
        "limit": value.limit,
        "collision_strategy": value.collision_strategy,
        "grace_period_seconds": value.grace_period_seconds,
    }


def tags_body(tags: list[str] | str) -> list[str]:
    """Prefect treats tags as a set; a templated string is split on commas."""
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    return sorted(set(tags))


def steps_body(steps: Any) -> list[Json] | None:
    """A lone step mapping becomes a one-item list, as Prefect reads it."""
    if steps is None:
        return None
    if isinstance(steps, Mapping):
        return [plain(steps)]
    return plain(list(steps))
