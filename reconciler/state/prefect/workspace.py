"""Work queues, Variables and global concurrency limits <-> canonical bodies. Pure: no I/O.

The bodies are exactly what ``desired/check_workspace.py`` makes, so a read-back compares equal to the
file's when nothing changed. What the server keeps differently is normalised here: a queue's
``is_paused`` is our ``paused`` and its missing description ``""``; a limit's decay is a float; a
Variable's tags are a sorted set. A queue's ``priority`` is managed only when the file sets it
(``managed_priority``): Prefect numbers queues itself and renumbers them when another queue takes a
priority, so an unmanaged priority is read as None and never compared or hashed.

(Standalone automations have their own pure mapping, ``automations.py``.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

Json = Any
PRIORITY = "priority"  # the one optional field of a queue, recorded in the inventory entry's ``names``


def segment(name: str) -> str:
    """A name as one URL path segment: Prefect's names may hold ``?``, ``#`` and spaces."""
    return quote(name, safe="")


# -- work queues -----------------------------------------------------------------------------------


def queue_key(pool: str, name: str) -> str:
    """The table key and address name of a queue: ``POOL/NAME``."""
    return f"{pool}/{name}"


def queue_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """What ``PATCH /work_pools/{pool}/queues/{name}`` may change (priority only when managed)."""
    fields: dict[str, Any] = {
        "description": body.get("description") or "",
        "is_paused": bool(body.get("paused")),
        "concurrency_limit": body.get("concurrency_limit"),
    }
    if body.get("priority") is not None:
        fields["priority"] = body["priority"]
    return fields


def queue_projection(server: Mapping[str, Any]) -> dict[str, Any]:
    """The server's queue in the shape of :func:`queue_fields`, to send only what differs."""
    return {
        "description": server.get("description") or "",
        "is_paused": bool(server.get("is_paused")),
        "concurrency_limit": server.get("concurrency_limit"),
        "priority": server.get("priority"),
    }


def queue_body(server: Mapping[str, Any], *, managed_priority: bool) -> dict[str, Any]:
    """The canonical body of a server queue (``work_pool_name`` names its pool)."""
    return {
        "pool": server.get("work_pool_name"),
        "name": server.get("name"),
        "description": server.get("description") or "",
        "priority": server.get("priority") if managed_priority else None,
        "concurrency_limit": server.get("concurrency_limit"),
        "paused": bool(server.get("is_paused")),
    }


def managed_fields(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The optional fields a queue's body manages (what the inventory entry records)."""
    return (PRIORITY,) if body.get("priority") is not None else ()


# -- Variables -------------------------------------------------------------------------------------


def variable_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """What ``PATCH /variables/name/{name}`` may change."""
    return {"value": body.get("value"), "tags": sorted(set(body.get("tags") or ()))}


def variable_body(server: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": server.get("name"), **variable_fields(server)}


# -- global concurrency limits ---------------------------------------------------------------------


def limit_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """What ``PATCH /v2/concurrency_limits/{name}`` may change (never the slots in use)."""
    return {
        "limit": body.get("limit"),
        "active": bool(body.get("active", True)),
        "slot_decay_per_second": float(body.get("slot_decay_per_second") or 0.0),
    }


def limit_body(server: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": server.get("name"), **limit_fields(server)}


def is_deployment_limit(name: str) -> bool:
    """Whether a global concurrency limit is a deployment's own: ``concurrency_limit: N`` on a
    deployment makes one named ``deployment:<id>``, which belongs to that deployment (the server
    deletes it with it) and is never a workspace object of its own."""
    return name.startswith("deployment:")
