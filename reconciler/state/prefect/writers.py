"""One writer per kind: the smallest set of API calls that makes a server object match a body.

Each writer compares what it would send with the object as the server holds it *now* and sends
only the difference (nothing at all when they agree): every deployment write makes the server drop
that deployment's future scheduled runs, so a write that changes nothing is not harmless. Bodies
arrive *raw* (secrets resolved); ``secrets`` are those values, passed on so that an error message
the server echoes them in is redacted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler import pooltypes
from reconciler.errors import StateError
from reconciler.objects import Address, Kind
from reconciler.state.prefect import mapping, values, workspace
from reconciler.state.prefect import triggers as prefect_triggers
from reconciler.state.prefect.inventory import Entry
from reconciler.state.prefect.objects import ServerObjects

log = logging.getLogger(__name__)
Json = Any


def write_pool(
    objects: ServerObjects, name: str, raw: Mapping[str, Any], *, secrets: Sequence[str]
) -> tuple[Json, Json, tuple[str, ...], Json]:
    """Create, update or replace a pool; returns (server pool, raw body read back, names, originals)."""
    client = objects.client
    pool_type = pooltypes.get(raw["type"])
    block_variables = pool_type.block_variables if pool_type else {}
    variables = values.references_to_ids(
        raw.get("job_variables") or {}, frozenset(block_variables), objects.block_id
    )
    template, originals = mapping.pool_template(name, raw, variables)
    current = objects.before_write(Address.pool(name))
    if current is not None and current.get("type") != raw["type"]:
        server = _replace_pool(objects, name, raw, template, current, secrets=secrets)
    elif current is None:
        response = client.create("/work_pools/", mapping.pool_create(name, raw, template), secrets=secrets)
        if response.status_code == 409:  # created meanwhile, or a pool nobody manages yet: adopt it
            current = objects.current(Address.pool(name))
            if current is None or current.get("type") != raw["type"]:
                have = current.get("type") if current else "?"
                raise StateError(f"work pool {name!r} already exists on the server with type {have!r}")
            server = _patch_pool(objects, name, raw, template, current, secrets=secrets)
        else:
            server = response.json()
    else:
        server = _patch_pool(objects, name, raw, template, current, secrets=secrets)
    objects.pools[name] = server
    body = mapping.pool_body(server, names=tuple(variables), originals=originals)
    body["job_variables"] = values.ids_to_references(body["job_variables"], objects.block_names)
    return server, body, tuple(variables), originals


def _patch_pool(
    objects: ServerObjects,
    name: str,
    raw: Mapping[str, Any],
    template: Json,
    current: Json,
    *,
    secrets: Sequence[str],
) -> Json:
    patch = mapping.changed_fields(mapping.pool_fields(raw, template), mapping.pool_projection(current))
    if not patch:
        return current
    objects.client.patch(f"/work_pools/{workspace.segment(name)}", patch, secrets=secrets)
    return objects.client.get(f"/work_pools/{workspace.segment(name)}").json()


def _replace_pool(
    objects: ServerObjects,
    name: str,
    raw: Mapping[str, Any],
    template: Json,
    current: Json,
    *,
    secrets: Sequence[str],
) -> Json:
    """A type change: delete and create, then point the pool's deployments at the new pool again.

    Deleting a pool leaves its deployments with no pool (``work_pool_name: null``); they are the
    same deployments, so they get their pool back (best effort: a deployment the new type refuses
    stays detached and shows in the next plan).
    """
    client = objects.client
    criteria = {"work_pools": {"name": {"any_": [name]}}}
    attached = [(d["id"], d.get("work_queue_name")) for d in client.paged("/deployments/filter", criteria)]
    client.delete(f"/work_pools/{workspace.segment(name)}", allow=(404,))
    server = client.post("/work_pools/", mapping.pool_create(name, raw, template), secrets=secrets).json()
    for deployment_id, queue in attached:
        try:
            client.patch(f"/deployments/{deployment_id}", {"work_pool_name": name, "work_queue_name": queue})
        except StateError as exc:
            log.warning(
                "deployment %s was not re-attached to the replaced pool %s: %s", deployment_id, name, exc
            )
    return server


def write_deployment(
    objects: ServerObjects,
    address: Address,
    raw: Mapping[str, Any],
    *,
    secrets: Sequence[str],
    live_triggers: Json | None,
    had_triggers: bool,
) -> tuple[Json, Json]:
    """Create or update a deployment; returns (server deployment, raw body read back)."""
    client = objects.client
    raw = dict(raw)
    if raw.get("work_pool"):
        pool_type = objects.pool_type_of(raw["work_pool"]["name"])
        block_variables = frozenset(pool_type.block_variables) if pool_type else frozenset()
        pool = dict(raw["work_pool"])
        pool["job_variables"] = values.references_to_ids(
            pool.get("job_variables") or {}, block_variables, objects.block_id
        )
        raw["work_pool"] = pool
    current = objects.before_write(address)
    triggers = list(raw.get("triggers") or [])
    shared = raw.get("global_concurrency_limit")
    limit_id = objects.limit_id(shared) if shared else None
    if current is None:
        flow_id = objects.flow_id(raw["flow_name"])
        payload = mapping.deployment_create(raw, flow_id=flow_id, marker=objects.marker, limit_id=limit_id)
        # an upsert by flow and name: sent twice, the same deployment (safe to retry a lost answer)
        response = client.post("/deployments/", payload, secrets=secrets, idempotent=True)
        server = response.json()
        adopted = response.status_code == 200  # an existing deployment nobody managed: now ours
        if triggers or adopted:
            _replace_automations(objects, raw, str(server["id"]), clear=adopted)
    else:
        deployment_id = str(current["id"])
        wrote = False
        patch = mapping.changed_fields(
            mapping.deployment_fields(raw, marker=objects.marker, limit_id=limit_id),
            mapping.deployment_projection(current),
        )
        for step in mapping.limit_steps(patch, current):
            client.patch(f"/deployments/{deployment_id}", step, secrets=secrets)
            wrote = True
        wrote |= _reconcile_schedules(
            objects, deployment_id, raw.get("schedules") or {}, current, secrets=secrets
        )
        if (triggers or had_triggers) and (live_triggers is None or live_triggers != triggers):
            _replace_automations(objects, raw, deployment_id, clear=True)
        server = client.get(f"/deployments/{deployment_id}").json() if wrote else current
    objects.deployments[address.name] = server
    read_triggers: list[Json] = []
    if triggers:
        objects.automations = list(client.paged("/automations/filter", {}))
        owned = prefect_triggers.owned_automations(
            objects.automations, deployment_id=str(server["id"]), marker=objects.marker
        )
        read_triggers = prefect_triggers.triggers_body(owned)
    body = mapping.deployment_body(
        server, flow_name=raw["flow_name"], marker=objects.marker, triggers=read_triggers
    )
    if body["work_pool"]:
        body["work_pool"]["job_variables"] = values.ids_to_references(
            body["work_pool"]["job_variables"], objects.block_names
        )
    return server, body


def _reconcile_schedules(
    objects: ServerObjects,
    deployment_id: str,
    wanted: Mapping[str, Mapping[str, Any]],
    current: Json,
    *,
    secrets: Sequence[str],
) -> bool:
    """Make the deployment's schedules the file's, slug by slug, keeping ids; returns whether it wrote."""
    client = objects.client
    base = f"/deployments/{deployment_id}/schedules"
    existing = {s["slug"]: s for s in current.get("schedules") or () if s.get("slug")}
    unslugged = [s for s in current.get("schedules") or () if not s.get("slug")]
    wrote = False
    renamed: set[str] = set()
    for slug, schedule in wanted.items():
        old = schedule.get("replaces")
        if slug not in existing and old in existing and old not in wanted:
            client.patch(
                f"{base}/{existing[old]['id']}", mapping.schedule_payload(slug, schedule), secrets=secrets
            )
            renamed.add(old)
            wrote = True
    for slug, schedule in wanted.items():
        if slug in existing and not mapping.schedule_matches(schedule, existing[slug]):
            client.patch(
                f"{base}/{existing[slug]['id']}", mapping.schedule_payload(slug, schedule), secrets=secrets
            )
            wrote = True
    new = [
        mapping.schedule_payload(slug, s)
        for slug, s in wanted.items()
        if slug not in existing and s.get("replaces") not in renamed
    ]
    if new:
        client.post(base, new, secrets=secrets)
        wrote = True
    for item in [s for slug, s in existing.items() if slug not in wanted and slug not in renamed] + unslugged:
        client.delete(f"{base}/{item['id']}", allow=(404,))
        wrote = True
    return wrote


def _replace_automations(
    objects: ServerObjects, raw: Mapping[str, Any], deployment_id: str, *, clear: bool
) -> None:
    """A deployment's triggers become its owned automations, replaced as a whole (as prefect deploy does)."""
    client = objects.client
    if clear:
        client.delete(f"/automations/owned-by/prefect.deployment.{deployment_id}", allow=(404,))
    payloads = prefect_triggers.automation_payloads(
        raw.get("triggers") or [],
        deployment_name=raw["name"],
        deployment_id=deployment_id,
        marker=objects.marker,
    )
    for payload in payloads:
        client.post("/automations/", payload)


def write_block(
    objects: ServerObjects, address: Address, raw: Mapping[str, Any], *, secrets: Sequence[str]
) -> tuple[Json, Json]:
    """Create or update a block document (its data replaced whole, never merged)."""
    client = objects.client
    block_type, name = address.name.split("/", 1)
    type_id, schema_id = objects.block_type(block_type)
    data = _json_fields(block_type, dict(raw.get("data") or {}))
    current = objects.before_write(address)
    if current is None:
        payload = {"name": name, "block_type_id": type_id, "block_schema_id": schema_id, "data": data}
        response = client.create("/block_documents/", payload, secrets=secrets)
        if response.status_code != 409:
            current = client.get(
                f"/block_documents/{response.json()['id']}", params={"include_secrets": "true"}
            ).json()
            data = current.get("data") or {}
        else:
            current = objects.current(address)
            if current is None:
                raise StateError(f"block {address.name} exists on the server but cannot be read")
    if (current.get("data") or {}) != data:
        patch = {"data": data, "merge_existing_data": False}
        client.patch(f"/block_documents/{current['id']}", patch, secrets=secrets)
        current = client.get(f"/block_documents/{current['id']}", params={"include_secrets": "true"}).json()
    objects.blocks[address.name] = current
    objects.block_names[str(current["id"])] = (block_type, name)
    return current, mapping.block_body(current)


def _json_fields(block_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """Object-typed fields given as JSON text (a secret from the environment is always text) are
    sent as the object: the server validates a pool's block reference against the block's schema,
    and Prefect's own block classes load an object there (a service account key, for one)."""
    known = pooltypes.block_type(block_type)
    if known is None:
        return data
    for name, value in data.items():
        schema = known.properties.get(name) or {}
        options = [schema, *schema.get("anyOf", [])]
        if isinstance(value, str) and any(o.get("type") == "object" for o in options):
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                data[name] = parsed
    return data


def delete(objects: ServerObjects, address: Address, entry: Entry | None) -> None:
    """Remove a managed object from the server (already gone is fine)."""
    client = objects.client
    current = objects.seen(address) or objects.current(address)
    if address.kind is Kind.WORK_POOL:
        client.delete(f"/work_pools/{workspace.segment(address.name)}", allow=(404,))
        objects.pools.pop(address.name, None)
    elif address.kind is Kind.DEPLOYMENT:
        if current is not None:
            if mapping.shared_limit(current) is not None:  # deleting it would delete the shared limit
                client.patch(f"/deployments/{current['id']}", {"global_concurrency_limit_id": None})
            if entry is not None and entry.triggers:
                client.delete(f"/automations/owned-by/prefect.deployment.{current['id']}", allow=(404,))
            client.delete(f"/deployments/{current['id']}", allow=(404,))
        objects.deployments.pop(address.name, None)
    else:
        if current is not None:
            client.delete(f"/block_documents/{current['id']}", allow=(404,))
        objects.blocks.pop(address.name, None)
