"""Writers for the workspace kinds: the smallest set of API calls that makes a server object match.

* work queues live under ``/work_pools/{pool}/queues``: POST, or PATCH of the fields that differ (a
  priority only when the file sets one). The pool's ``default`` queue always exists and can never be
  deleted: "creating" it configures the existing one, and deleting it only stops managing it;
* Variables: POST ``/variables/``, PATCH and DELETE by name;
* global concurrency limits: POST ``/v2/concurrency_limits/``, PATCH and DELETE by name (the slots in
  use are never written);
* automations: POST ``/automations/``, or PUT ``/automations/{id}`` of the whole automation when its
  read-back differs; each address in the body resolved to the id of what it names at write time.

Every writer returns the server's object after the write and its raw canonical body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.errors import StateError
from reconciler.objects import Address, Kind
from reconciler.state.prefect import automations as automation_mapping
from reconciler.state.prefect import mapping, workspace
from reconciler.state.prefect.inventory import Entry
from reconciler.state.prefect.objects import ServerObjects

Json = Any
KINDS = frozenset({Kind.WORK_QUEUE, Kind.VARIABLE, Kind.CONCURRENCY_LIMIT, Kind.AUTOMATION})
DEFAULT_QUEUE = "default"


def write(
    objects: ServerObjects, address: Address, raw: Mapping[str, Any], *, secrets: Sequence[str]
) -> tuple[Json, Json]:
    """Create or update the object at ``address``; returns (server object, raw body read back)."""
    if address.kind is Kind.WORK_QUEUE:
        return _write_queue(objects, address, raw, secrets=secrets)
    if address.kind is Kind.VARIABLE:
        server = _write_simple(
            objects,
            address,
            workspace.variable_fields(raw),
            workspace.variable_fields,
            create="/variables/",
            path=f"/variables/name/{address.name}",
            secrets=secrets,
        )
        return server, workspace.variable_body(server)
    if address.kind is Kind.CONCURRENCY_LIMIT:
        server = _write_simple(
            objects,
            address,
            workspace.limit_fields(raw),
            workspace.limit_fields,
            create="/v2/concurrency_limits/",
            path=f"/v2/concurrency_limits/{workspace.segment(address.name)}",
            secrets=secrets,
        )
        return server, workspace.limit_body(server)
    return _write_automation(objects, address, raw)


def _write_queue(
    objects: ServerObjects, address: Address, raw: Mapping[str, Any], *, secrets: Sequence[str]
) -> tuple[Json, Json]:
    pool, name = address.name.split("/", 1)
    base = f"/work_pools/{workspace.segment(pool)}/queues"
    fields = workspace.queue_fields(raw)
    current = objects.before_write(address)
    if current is None and name == DEFAULT_QUEUE:
        current = objects.current(address)  # every pool has it: configure it, never create it
        if current is None:
            raise StateError(
                f"work pool {pool!r} does not exist on the Prefect server (or has no default queue)"
            )
    if current is None:
        response = objects.client.create(base, {"name": name, **fields}, secrets=secrets)
        if response.status_code != 409:
            server = response.json()
        else:  # made meanwhile, outside: configure it as it is now
            current = objects.current(address)
            if current is None:
                raise StateError(f"{address} exists on the server but cannot be read")
    if current is not None:
        patch = mapping.changed_fields(fields, workspace.queue_projection(current))
        server = current
        if patch:
            objects.client.patch(f"{base}/{workspace.segment(name)}", patch, secrets=secrets)
            server = objects.client.get(f"{base}/{workspace.segment(name)}").json()
    server.setdefault("work_pool_name", pool)
    objects.queues[address.name] = server
    managed = workspace.PRIORITY in workspace.managed_fields(raw)
    return server, workspace.queue_body(server, managed_priority=managed)


def _write_simple(
    objects: ServerObjects,
    address: Address,
    fields: dict[str, Any],
    projection: Any,
    *,
    create: str,
    path: str,
    secrets: Sequence[str],
) -> Json:
    """A Variable or a global concurrency limit: created, or PATCHed by name with what differs."""
    client = objects.client
    current = objects.before_write(address)
    if current is None:
        response = client.create(create, {"name": address.name, **fields}, secrets=secrets)
        if response.status_code != 409:
            server = response.json()
            objects.remember(address, server)
            return server
        current = objects.current(address)  # made meanwhile, outside: bring it to the file's
        if current is None:
            raise StateError(f"{address} exists on the server but cannot be read")
    server = current
    patch = mapping.changed_fields(fields, projection(current))
    if patch:
        client.patch(path, patch, secrets=secrets)
        server = client.get(path).json()
    objects.remember(address, server)
    return server


def _write_automation(objects: ServerObjects, address: Address, raw: Mapping[str, Any]) -> tuple[Json, Json]:
    """POST a new automation, or PUT the whole of one whose read-back is not the file's body."""
    client = objects.client
    current = objects.before_write(address)
    payload = automation_mapping.to_api(raw, objects.resolve)
    try:
        if current is None:
            server = client.post("/automations/", payload).json()
        else:
            server = current
            if automation_mapping.from_api(current, objects.name_of) != dict(raw):
                client.request("PUT", f"/automations/{current['id']}", json=payload)
                server = client.get(f"/automations/{current['id']}").json()
    except StateError as exc:
        reason = automation_mapping.needs_cloud(raw)
        if reason is not None:  # a self-hosted server refuses what only Cloud evaluates
            raise StateError(f"{reason}: nothing was written") from exc
        raise
    objects.remember(address, server)
    return server, automation_mapping.from_api(server, objects.name_of)


def delete(objects: ServerObjects, address: Address, entry: Entry | None) -> None:
    """Remove a managed object from the server (already gone is fine). The pool's default queue is
    never deleted (the server cannot): the project only stops managing it."""
    client = objects.client
    if address.kind is Kind.WORK_QUEUE:
        pool, name = address.name.split("/", 1)
        if name != DEFAULT_QUEUE:
            client.delete(
                f"/work_pools/{workspace.segment(pool)}/queues/{workspace.segment(name)}", allow=(404,)
            )
    elif address.kind is Kind.VARIABLE:
        client.delete(f"/variables/name/{address.name}", allow=(404,))
    elif address.kind is Kind.CONCURRENCY_LIMIT:
        client.delete(f"/v2/concurrency_limits/{workspace.segment(address.name)}", allow=(404,))
    else:
        seen = objects.seen(address)
        automation_id = str(seen["id"]) if seen else entry.id if entry else None
        if automation_id:
            client.delete(f"/automations/{automation_id}", allow=(404,))
    objects.remember(address, None)
