"""Reading and writing the managed objects themselves on a Prefect server, with the API's real semantics.

Reads are paged filter calls, one per kind present (plus one for flow names and, only when needed,
one for block names behind ``$ref`` ids, one for automations, and one per kind for the objects
outside the project that standalone automations name, so they read back by address). The workspace
kinds (work queues, Variables, global concurrency limits, standalone automations: last seen in
:attr:`ServerObjects.queues` ... :attr:`ServerObjects.standalone`) are written by
``workspace_writers.py``; an automation is known by the id the inventory records, since names are
not unique on the server. Writes follow the API:

* work pools: POST, or PATCH of the fields that differ; a type change is delete + create (the pool's
  deployments are pointed at the new pool again); a name taken by a pool of another type is refused;
* deployments: created once (``POST /flows/`` get-or-create, then ``POST /deployments/``), then
  PATCHed with only the fields that differ and *never* with ``schedules``: schedules are reconciled by
  slug through ``/deployments/{id}/schedules`` so their ids, and the runs the scheduler made for them,
  survive; a deployment with nothing to change gets no request at all;
* block documents: created, or PATCHed with ``merge_existing_data: false`` (block types and schemas
  our block types need are created first when the server lacks them, e.g. ``string`` and ``json``);
* a deployment's ``global_concurrency_limit`` (a name) is written as ``global_concurrency_limit_id``
  and never in the same request as ``concurrency_limit`` (``mapping.limit_steps``), and is detached
  before the deployment is deleted: Prefect deletes the limit a deleted deployment points at.

Every writer returns the server's object *after* the write, mapped to a raw canonical body, so the
store can hash what it wrote.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from reconciler import pooltypes
from reconciler.desired.automations import REFERENCES
from reconciler.errors import StateError
from reconciler.objects import Address, Claim, Kind
from reconciler.state.prefect import automations as automation_mapping
from reconciler.state.prefect import mapping, values, workspace
from reconciler.state.prefect import triggers as prefect_triggers
from reconciler.state.prefect.client import PAGE, PrefectClient
from reconciler.state.prefect.inventory import Entry

log = logging.getLogger(__name__)
Json = Any
_OWNER_TAG = "managed-by:prefect-reconciler/"  # followed by the managing project's name


class ServerObjects:
    """The objects of one project on the server, with what was last seen of each (ids, current state)."""

    def __init__(self, client: PrefectClient, *, marker: str) -> None:
        self.client, self.marker = client, marker
        self.pools: dict[str, Json] = {}
        self.deployments: dict[str, Json] = {}  # "flow/name"
        self.blocks: dict[str, Json] = {}  # "type/name"
        self.flow_ids: dict[str, str] = {}
        self.flow_names: dict[str, str] = {}
        self.block_names: dict[str, tuple[str, str]] = {}  # document id -> (type, name)
        self.automations: list[Json] | None = None  # every automation on the server, when read
        self.queues: dict[str, Json] = {}  # "pool/name"
        self.variables: dict[str, Json] = {}
        self.limits: dict[str, Json] = {}  # global concurrency limits by name
        self.standalone: dict[str, Json] = {}  # our automations (``automations:``) by name
        self.automation_ids: dict[str, str] = {}  # automation name -> id, from the inventory
        self.outside: dict[str, Address] = {}  # id -> address of objects automations name, not ours
        self.fresh = False  # True while what read_all saw is current (it read under the held lock)
        self._block_types: dict[str, tuple[str, str]] = {}
        self._flow_locks: dict[str, threading.Lock] = {}  # one creation of a flow at a time (flow_id)
        self._flow_locks_guard = threading.Lock()

    # -- reading -------------------------------------------------------------------------------------

    def read(self, entries: Mapping[Address, Entry]) -> dict[Address, tuple[Json, Json]]:
        """``address -> (server object, raw canonical body)`` for every entry still on the server."""
        kinds = {a.kind for a in entries}
        if Kind.WORK_POOL in kinds:
            self._read_pools([a.name for a in entries if a.kind is Kind.WORK_POOL])
        if Kind.DEPLOYMENT in kinds:
            self._read_deployments()
        if Kind.BLOCK in kinds:
            self._read_blocks([a.name for a in entries if a.kind is Kind.BLOCK])
        if Kind.WORK_QUEUE in kinds:
            self._read_queues([a.name for a in entries if a.kind is Kind.WORK_QUEUE])
        if Kind.VARIABLE in kinds:
            self._read_variables([a.name for a in entries if a.kind is Kind.VARIABLE])
        if Kind.CONCURRENCY_LIMIT in kinds:
            self._read_limits()
        self._name_blocks(self._referenced_ids())
        if any(e.triggers for e in entries.values()) or Kind.AUTOMATION in kinds:
            self.automations = list(self.client.paged("/automations/filter", {}))
        if Kind.AUTOMATION in kinds:
            self._read_standalone({a.name: e.id for a, e in entries.items() if a.kind is Kind.AUTOMATION})
        result: dict[Address, tuple[Json, Json]] = {}
        for address, entry in entries.items():
            found = self.map(address, entry)
            if found is not None:
                result[address] = found
        return result

    def map(self, address: Address, entry: Entry | None) -> tuple[Json, Json] | None:
        """The last seen server object at ``address`` and its raw canonical body (None if absent)."""
        if address.kind is Kind.WORK_POOL:
            pool = self.pools.get(address.name)
            if pool is None:
                return None
            body = mapping.pool_body(
                pool, names=entry.names if entry else None, originals=entry.originals if entry else None
            )
            body["job_variables"] = values.ids_to_references(body["job_variables"], self.block_names)
            return pool, body
        if address.kind is Kind.DEPLOYMENT:
            deployment = self.deployments.get(address.name)
            if deployment is None:
                return None
            triggers: list[Json] = []
            if entry is not None and entry.triggers and self.automations is not None:
                owned = prefect_triggers.owned_automations(
                    self.automations, deployment_id=str(deployment["id"]), marker=self.marker
                )
                triggers = prefect_triggers.triggers_body(owned)
            flow_name = address.name.split("/", 1)[0]
            body = mapping.deployment_body(
                deployment, flow_name=flow_name, marker=self.marker, triggers=triggers
            )
            if body["work_pool"]:
                pool = body["work_pool"]
                pool["job_variables"] = values.ids_to_references(pool["job_variables"], self.block_names)
            return deployment, body
        if address.kind is Kind.BLOCK:
            document = self.blocks.get(address.name)
            return (document, mapping.block_body(document)) if document is not None else None
        return self._map_workspace(address, entry)

    def _map_workspace(self, address: Address, entry: Entry | None) -> tuple[Json, Json] | None:
        """:meth:`map` for work queues, Variables, global concurrency limits and automations."""
        server = self.seen(address)
        if server is None:
            return None
        if address.kind is Kind.WORK_QUEUE:
            managed = entry is None or workspace.PRIORITY in (entry.names or ())
            return server, workspace.queue_body(server, managed_priority=managed)
        if address.kind is Kind.VARIABLE:
            return server, workspace.variable_body(server)
        if address.kind is Kind.CONCURRENCY_LIMIT:
            return server, workspace.limit_body(server)
        return server, automation_mapping.from_api(server, self.name_of)

    # -- the workspace kinds -------------------------------------------------------------------------

    def _read_queues(self, keys: list[str]) -> None:
        for key in keys:
            self.queues.pop(key, None)
        wanted = set(keys)
        names = sorted({k.split("/", 1)[1] for k in keys})
        for start in range(0, len(names), PAGE):
            criteria = {"work_queues": {"name": {"any_": names[start : start + PAGE]}}}
            for queue in self.client.paged("/work_queues/filter", criteria):
                key = workspace.queue_key(str(queue.get("work_pool_name")), queue["name"])
                if key in wanted:
                    self.queues[key] = queue

    def _read_variables(self, names: list[str]) -> None:
        for name in names:
            self.variables.pop(name, None)
        for start in range(0, len(names), PAGE):
            criteria = {"variables": {"name": {"any_": names[start : start + PAGE]}}, "limit": PAGE}
            for variable in self.client.post("/variables/filter", criteria).json():
                self.variables[variable["name"]] = variable

    def _read_limits(self) -> None:
        """Every global concurrency limit (the API filters them by nothing but a page)."""
        self.limits = {
            limit["name"]: limit for limit in self.client.paged("/v2/concurrency_limits/filter", {})
        }

    def _read_standalone(self, ids: Mapping[str, str | None]) -> None:
        """Our automations, each found by the id we recorded (names are not unique on the server)."""
        by_id = {str(a["id"]): a for a in self.automations or ()}
        self.standalone.clear()
        for name, automation_id in ids.items():
            if automation_id:
                self.automation_ids[name] = automation_id
            found = by_id.get(str(automation_id))
            if found is not None:
                self.standalone[name] = found
        self.name_references(self.standalone.values())

    def id_index(self) -> dict[str, Address]:
        """``id -> address`` of every object seen (ours first, then others automations named)."""
        index = dict(self.outside)
        for automation in self.automations or ():
            index[str(automation["id"])] = Address.automation(automation["name"])
        for block_id, (block_type, name) in self.block_names.items():
            index[block_id] = Address.block(block_type, name)
        for name, pool in self.pools.items():
            index[str(pool["id"])] = Address.pool(name)
        for key, queue in self.queues.items():
            index[str(queue["id"])] = Address(Kind.WORK_QUEUE, key)
        for key, deployment in self.deployments.items():
            index[str(deployment["id"])] = Address(Kind.DEPLOYMENT, key)
        for name, automation in self.standalone.items():
            index[str(automation["id"])] = Address.automation(name)
        return index

    def name_of(self, kind: Kind, object_id: str) -> Address | None:
        """The address of the object ``object_id`` names (for reading automations back)."""
        found = self.id_index().get(object_id)
        return found if found is not None and found.kind is kind else None

    def name_references(self, automations: Iterable[Json]) -> None:
        """Look up, one filter call per kind, the objects automations name that are not among ours
        (a deployment of another project, a pool made in the UI): read back by their address, as
        the file names them, instead of an id that would read as a difference forever."""
        known = self.id_index()
        wanted: dict[Kind, set[str]] = {}
        for automation in automations:
            for key in automation_mapping.ACTION_LISTS:
                for action in automation.get(key) or ():
                    for kind, id_key in REFERENCES.values():
                        value = action.get(id_key)
                        if value and str(value) not in known:
                            wanted.setdefault(kind, set()).add(str(value))
        if wanted.get(Kind.BLOCK):
            self._name_blocks(wanted[Kind.BLOCK])
        for kind, path, filter_key in (
            (Kind.WORK_POOL, "/work_pools/filter", "work_pools"),
            (Kind.WORK_QUEUE, "/work_queues/filter", "work_queues"),
            (Kind.DEPLOYMENT, "/deployments/filter", "deployments"),
        ):
            ids = sorted(wanted.get(kind, ()))
            if not ids:
                continue
            found = list(self.client.paged(path, {filter_key: {"id": {"any_": ids}}}))
            if kind is Kind.DEPLOYMENT:
                flow_ids = sorted({str(d["flow_id"]) for d in found} - set(self.flow_names))
                if flow_ids:
                    criteria = {"flows": {"id": {"any_": flow_ids}}}
                    for flow in self.client.paged("/flows/filter", criteria):
                        self.flow_names[str(flow["id"])] = flow["name"]
            for item in found:
                address = _address_of(kind, item, self.flow_names)
                if address is not None:
                    self.outside[str(item["id"])] = address

    def resolve(self, address: Address) -> str:
        """The id of the object at ``address`` now (for writing automations); "" when there is none."""
        if address.kind is Kind.BLOCK:
            block_type, name = address.name.split("/", 1)
            try:
                return self.block_id(block_type, name)
            except StateError:
                return ""
        found = self.seen(address)
        if found is None and address.kind is Kind.AUTOMATION:
            criteria = {"automations": {"name": {"any_": [address.name]}}, "sort": "CREATED_DESC"}
            named = self.client.post("/automations/filter", {**criteria, "limit": 1}).json()
            found = named[0] if named else None
        elif found is None:
            found = self.current(address)
        return str(found["id"]) if found is not None else ""

    def _read_pools(self, names: list[str]) -> None:
        for name in names:  # what is not found again is gone, whatever an earlier read saw
            self.pools.pop(name, None)
        for start in range(0, len(names), PAGE):
            chunk = names[start : start + PAGE]
            for pool in self.client.post(
                "/work_pools/filter", {"work_pools": {"name": {"any_": chunk}}, "limit": PAGE}
            ).json():
                self.pools[pool["name"]] = pool

    def _read_deployments(self) -> None:
        criteria = {"deployments": {"tags": {"all_": [self.marker]}}}
        for flow in self.client.paged("/flows/filter", criteria):
            self.flow_names[str(flow["id"])] = flow["name"]
            self.flow_ids[flow["name"]] = str(flow["id"])
        self.deployments.clear()
        for deployment in self.client.paged("/deployments/filter", criteria):
            flow_name = self.flow_names.get(str(deployment["flow_id"]))
            if flow_name is not None:
                self.deployments[f"{flow_name}/{deployment['name']}"] = deployment

    def _read_blocks(self, addresses: list[str]) -> None:
        wanted = set(addresses)
        for address in wanted:
            self.blocks.pop(address, None)
        types = sorted({a.split("/", 1)[0] for a in wanted})
        names = sorted({a.split("/", 1)[1] for a in wanted})
        criteria = {
            "block_documents": {"name": {"any_": names}, "is_anonymous": {"eq_": False}},
            "block_types": {"slug": {"any_": types}},
            "include_secrets": True,
        }
        for document in self.client.paged("/block_documents/filter", criteria):
            address = f"{(document.get('block_type') or {}).get('slug')}/{document.get('name')}"
            self.block_names[str(document["id"])] = tuple(address.split("/", 1))  # type: ignore[assignment]
            if address in wanted:
                self.blocks[address] = document

    def _referenced_ids(self) -> set[str]:
        ids: set[str] = set()
        for pool in self.pools.values():
            props = ((pool.get("base_job_template") or {}).get("variables") or {}).get("properties") or {}
            ids |= values.referenced_ids(
                {k: p.get("default") for k, p in props.items() if isinstance(p, Mapping)}
            )
        for deployment in self.deployments.values():
            ids |= values.referenced_ids(deployment.get("job_variables"))
        return ids

    def _name_blocks(self, ids: Iterable[str]) -> None:
        unknown = sorted(set(ids) - set(self.block_names))
        for start in range(0, len(unknown), PAGE):
            criteria = {"block_documents": {"id": {"any_": unknown[start : start + PAGE]}}}
            for document in self.client.post("/block_documents/filter", {**criteria, "limit": PAGE}).json():
                slug = (document.get("block_type") or {}).get("slug")
                self.block_names[str(document["id"])] = (slug, document.get("name"))

    def discover(self, *, exclude: set[Address]) -> dict[Address, Json]:
        """Raw canonical bodies of every pool, untagged-or-ours deployment and block of our types."""
        found: dict[Address, Json] = {}
        names: dict[str, tuple[str, str]] = {}
        slugs = pooltypes.block_type_names()
        criteria = {
            "block_documents": {"is_anonymous": {"eq_": False}},
            "block_types": {"slug": {"any_": slugs}},
        }
        for document in self.client.paged("/block_documents/filter", criteria):
            body = mapping.block_body(document)
            names[str(document["id"])] = (body["type"], body["name"])
            found[Address.block(body["type"], body["name"])] = body
        for pool in self.client.paged("/work_pools/filter", {}):
            body = mapping.pool_body(pool, names=None, originals=None)
            body["job_variables"] = values.ids_to_references(body["job_variables"], names)
            found[Address.pool(pool["name"])] = body
        flows = {str(f["id"]): f["name"] for f in self.client.paged("/flows/filter", {})}
        for deployment in self.client.paged("/deployments/filter", {}):
            tags = deployment.get("tags") or ()
            foreign = any(t.startswith("managed-by:prefect-reconciler/") and t != self.marker for t in tags)
            flow = flows.get(str(deployment["flow_id"]))
            if foreign or flow is None:
                continue
            body = mapping.deployment_body(deployment, flow_name=flow, marker=self.marker, triggers=[])
            if body["work_pool"]:
                body["work_pool"]["job_variables"] = values.ids_to_references(
                    body["work_pool"]["job_variables"], names
                )
            found[Address.deployment(flow, deployment["name"])] = body
        return {a: b for a, b in found.items() if a not in exclude}

    def claims(self, addresses: Collection[Address], owners: Mapping[Address, str]) -> dict[Address, Claim]:
        """What exists at ``addresses`` (which this project does not manage), one filter call per kind.

        A deployment's owner is its ``managed-by:`` tag; a pool's or block's is its ownership record
        (``owners``, from :mod:`~reconciler.state.prefect.owners`). What no project manages comes with
        its canonical body (the adopt's diff starts from it) and is remembered, so that a write made
        under the same lease starts from it too. A deployment carrying this project's own tag but no
        inventory entry (a write whose record was lost) is left out: creating it converges.
        """
        found: dict[Address, Claim] = {}
        for address, server in self._existing(addresses).items():
            owner = owners.get(address)
            if address.kind is Kind.WORK_QUEUE and _is_default_queue(address) and owner is None:
                self.queues[address.name] = server  # every pool has it: configured, never adopted
                continue
            if address.kind is Kind.DEPLOYMENT:
                tags = server.get("tags") or ()
                if self.marker in tags:
                    continue
                owner = next((t.split("/", 1)[1] for t in tags if t.startswith(_OWNER_TAG)), None)
            if address.kind is Kind.BLOCK:  # read without secrets: shown, never cached for writes
                body = mapping.block_body(server) if owner is None else None
                found[address] = Claim(address, owner, body)
                continue
            if owner is None:  # a write under the same lease adopts it from here
                self._table(address.kind)[address.name] = server
            found[address] = Claim(address, owner)
        self._name_blocks(self._referenced_ids())
        adopted = [a for a, c in found.items() if a.kind is Kind.AUTOMATION and c.owner is None]
        if adopted:
            self.name_references(self.standalone[a.name] for a in adopted)
        for address, claim in list(found.items()):
            if claim.owner is None and address.kind is not Kind.BLOCK:
                mapped = self.map(address, None)
                found[address] = Claim(address, None, mapped[1] if mapped else None)
        return found

    def _existing(self, addresses: Collection[Address]) -> dict[Address, Json]:
        """The server objects at ``addresses``, looked up by name (pools, deployments, blocks)."""
        existing: dict[Address, Json] = {}
        pools = sorted(a.name for a in addresses if a.kind is Kind.WORK_POOL)
        for start in range(0, len(pools), PAGE):
            criteria = {"work_pools": {"name": {"any_": pools[start : start + PAGE]}}, "limit": PAGE}
            for pool in self.client.post("/work_pools/filter", criteria).json():
                existing[Address.pool(pool["name"])] = pool
        wanted = {a.name for a in addresses if a.kind is Kind.DEPLOYMENT}
        if wanted:
            flows = sorted({n.split("/", 1)[0] for n in wanted})
            names = sorted({n.split("/", 1)[1] for n in wanted})
            by_flow = {"flows": {"name": {"any_": flows}}}
            flow_names = {str(f["id"]): f["name"] for f in self.client.paged("/flows/filter", by_flow)}
            criteria = {**by_flow, "deployments": {"name": {"any_": names}}}
            for deployment in self.client.paged("/deployments/filter", criteria):
                flow_name = flow_names.get(str(deployment["flow_id"]))
                key = f"{flow_name}/{deployment['name']}"
                if flow_name is not None and key in wanted:
                    self.flow_ids[flow_name] = str(deployment["flow_id"])
                    self.flow_names[str(deployment["flow_id"])] = flow_name
                    existing[Address(Kind.DEPLOYMENT, key)] = deployment
        blocks = {a.name for a in addresses if a.kind is Kind.BLOCK}
        if blocks:
            criteria = {
                "block_documents": {
                    "name": {"any_": sorted({b.split("/", 1)[1] for b in blocks})},
                    "is_anonymous": {"eq_": False},
                },
                "block_types": {"slug": {"any_": sorted({b.split("/", 1)[0] for b in blocks})}},
            }
            for document in self.client.paged("/block_documents/filter", criteria):
                key = f"{(document.get('block_type') or {}).get('slug')}/{document.get('name')}"
                if key in blocks:
                    self.block_names[str(document["id"])] = tuple(key.split("/", 1))  # type: ignore[assignment]
                    existing[Address(Kind.BLOCK, key)] = document
        existing.update(self._existing_workspace(addresses))
        return existing

    def _existing_workspace(self, addresses: Collection[Address]) -> dict[Address, Json]:
        """:meth:`_existing` for the workspace kinds: one filter call per kind asked about."""
        existing: dict[Address, Json] = {}
        by_kind: dict[Kind, list[str]] = {}
        for address in addresses:
            by_kind.setdefault(address.kind, []).append(address.name)
        queues = set(by_kind.get(Kind.WORK_QUEUE, ()))
        if queues:
            names = sorted({q.split("/", 1)[1] for q in queues})
            criteria = {"work_queues": {"name": {"any_": names}}}
            for queue in self.client.paged("/work_queues/filter", criteria):
                key = workspace.queue_key(str(queue.get("work_pool_name")), queue["name"])
                if key in queues:
                    existing[Address(Kind.WORK_QUEUE, key)] = queue
        variables = sorted(by_kind.get(Kind.VARIABLE, ()))
        if variables:
            criteria = {"variables": {"name": {"any_": variables}}}
            for variable in self.client.paged("/variables/filter", criteria):
                existing[Address.variable(variable["name"])] = variable
        limits = set(by_kind.get(Kind.CONCURRENCY_LIMIT, ()))
        if limits:
            for limit in self.client.paged("/v2/concurrency_limits/filter", {}):
                if limit["name"] in limits:
                    existing[Address.concurrency_limit(limit["name"])] = limit
        automations = sorted(by_kind.get(Kind.AUTOMATION, ()))
        if automations:
            criteria = {"automations": {"name": {"any_": automations}}, "sort": "CREATED_DESC"}
            for automation in self.client.paged("/automations/filter", criteria):
                existing[Address.automation(automation["name"])] = automation  # the oldest wins
        return existing

    # -- lookups used by writers ---------------------------------------------------------------------

    def current(self, address: Address) -> Json | None:
        """The server object at ``address`` now (fresh from the server: writes decide on it)."""
        if address.kind is Kind.WORK_POOL:
            response = self.client.get(f"/work_pools/{workspace.segment(address.name)}", allow=(404,))
            found = response.json() if response.status_code == 200 else None
            self._remember(self.pools, address.name, found)
        elif address.kind is Kind.DEPLOYMENT:
            flow, name = (workspace.segment(part) for part in address.name.split("/", 1))
            response = self.client.get(f"/deployments/name/{flow}/{name}", allow=(404,))
            found = response.json() if response.status_code == 200 else None
            self._remember(self.deployments, address.name, found)
        elif address.kind is not Kind.BLOCK:
            found = self._current_workspace(address)
            self._remember(self._table(address.kind), address.name, found)
        else:
            block_type, name = address.name.split("/", 1)
            response = self.client.get(
                f"/block_types/slug/{block_type}/block_documents/name/{workspace.segment(name)}",
                params={"include_secrets": "true"},
                allow=(404,),
            )
            found = response.json() if response.status_code == 200 else None
            self._remember(self.blocks, address.name, found)
            if found is not None:
                self.block_names[str(found["id"])] = (block_type, name)
        return found

    def _current_workspace(self, address: Address) -> Json | None:
        """:meth:`current` for the workspace kinds (an automation only by the id we know it by)."""
        if address.kind is Kind.WORK_QUEUE:
            pool, name = address.name.split("/", 1)
            path = f"/work_pools/{workspace.segment(pool)}/queues/{workspace.segment(name)}"
        elif address.kind is Kind.VARIABLE:
            path = f"/variables/name/{address.name}"
        elif address.kind is Kind.CONCURRENCY_LIMIT:
            path = f"/v2/concurrency_limits/{workspace.segment(address.name)}"
        else:
            known = self.standalone.get(address.name)
            automation_id = str(known["id"]) if known else self.automation_ids.get(address.name)
            if not automation_id:
                return None
            path = f"/automations/{automation_id}"
        response = self.client.get(path, allow=(404,))
        if response.status_code != 200:
            return None
        found = response.json()
        if address.kind is Kind.WORK_QUEUE:
            found.setdefault("work_pool_name", address.name.split("/", 1)[0])
        return found

    def before_write(self, address: Address) -> Json | None:
        """The object a write starts from: as read_all saw it under the lock we hold, else fresh.

        A create needs no look-up either way: every create also adopts an object that already exists.
        """
        if self.fresh:
            return self.seen(address)
        return self.current(address)

    def seen(self, address: Address) -> Json | None:
        """The object as last seen (by read_all or a write), without asking the server."""
        return self._table(address.kind).get(address.name)

    def remember(self, address: Address, found: Json | None) -> None:
        """Keep what a write left on the server (None: it is gone) as the object last seen."""
        self._remember(self._table(address.kind), address.name, found)

    def _table(self, kind: Kind) -> dict[str, Json]:
        """Where the objects of ``kind`` last seen are kept, by address name."""
        return {
            Kind.WORK_POOL: self.pools,
            Kind.DEPLOYMENT: self.deployments,
            Kind.BLOCK: self.blocks,
            Kind.WORK_QUEUE: self.queues,
            Kind.VARIABLE: self.variables,
            Kind.CONCURRENCY_LIMIT: self.limits,
            Kind.AUTOMATION: self.standalone,
        }[kind]

    def limit_id(self, name: str) -> str:
        """The id of the global concurrency limit ``name`` (a deployment's ``global_concurrency_limit``)."""
        found = self.limits.get(name) or self.current(Address.concurrency_limit(name))
        if found is None:
            raise StateError(f"global concurrency limit {name!r} does not exist on the Prefect server")
        return str(found["id"])

    def visible(self, address: Address, found: Json | None) -> bool:
        """Whether read_all would show this object (deployments only count with our tag)."""
        if found is None:
            return False
        if address.kind is Kind.DEPLOYMENT:
            return self.marker in (found.get("tags") or ())
        return True

    def block_id(self, block_type: str, name: str) -> str:
        """The document id behind ``{{ prefect.blocks.TYPE.NAME }}`` (the block must exist)."""
        for block_id, named in self.block_names.items():
            if named == (block_type, name):
                return block_id
        found = self.current(Address.block(block_type, name))
        if found is None:
            raise StateError(f"block {block_type}/{name} does not exist on the Prefect server")
        return str(found["id"])

    def pool_type_of(self, pool_name: str | None) -> pooltypes.PoolType | None:
        if not pool_name:
            return None
        pool = self.pools.get(pool_name) or self.current(Address.pool(pool_name))
        return pooltypes.get(pool["type"]) if pool else None

    def flow_id(self, flow_name: str) -> str:
        """The flow's id, created (``POST /flows/`` is get-or-create) once per name: a wave's threads
        writing deployments of one flow wait for the first one's answer instead of each sending the
        same request (thousands of deployments share a few flows)."""
        if flow_name in self.flow_ids:
            return self.flow_ids[flow_name]
        with self._flow_locks_guard:
            lock = self._flow_locks.setdefault(flow_name, threading.Lock())
        with lock:
            if flow_name not in self.flow_ids:
                flow = self.client.post("/flows/", {"name": flow_name}, idempotent=True).json()
                self.flow_names[str(flow["id"])] = flow_name
                self.flow_ids[flow_name] = str(flow["id"])
        return self.flow_ids[flow_name]

    def block_type(self, slug: str) -> tuple[str, str]:
        """``(block type id, block schema id)``, creating the type and a schema when missing."""
        if slug in self._block_types:
            return self._block_types[slug]
        known = pooltypes.block_type(slug)
        response = self.client.get(f"/block_types/slug/{slug}", allow=(404,))
        if response.status_code == 404:
            if known is None:
                raise StateError(f"block type {slug!r} does not exist on the Prefect server")
            body = {"name": known.title, "slug": slug, "description": known.description}
            response = self.client.create("/block_types/", body)
            if response.status_code == 409:
                response = self.client.get(f"/block_types/slug/{slug}")
        type_id = str(response.json()["id"])
        criteria = {"block_schemas": {"block_type_id": {"any_": [type_id]}}, "limit": 1}
        schemas = self.client.post("/block_schemas/filter", criteria).json()
        if not schemas:
            if known is None:
                raise StateError(f"block type {slug!r} has no schema on the Prefect server")
            created = {"block_type_id": type_id, "fields": known.definition(), "capabilities": []}
            response = self.client.create("/block_schemas/", created)
            schemas = (
                [response.json()]
                if response.status_code != 409
                else self.client.post("/block_schemas/filter", criteria).json()
            )
        self._block_types[slug] = (type_id, str(schemas[0]["id"]))
        return self._block_types[slug]

    @staticmethod
    def _remember(table: dict[str, Json], key: str, found: Json | None) -> None:
        if found is None:
            table.pop(key, None)
        else:
            table[key] = found


def _is_default_queue(address: Address) -> bool:
    return address.name.split("/", 1)[1] == "default"


def _address_of(kind: Kind, item: Mapping[str, Any], flow_names: Mapping[str, str]) -> Address | None:
    """The address of a pool, queue or deployment read by id (None for a deployment of an unknown flow)."""
    if kind is Kind.WORK_POOL:
        return Address.pool(item["name"])
    if kind is Kind.WORK_QUEUE:
        return Address.work_queue(str(item.get("work_pool_name")), item["name"])
    flow = flow_names.get(str(item.get("flow_id")))
    return Address.deployment(flow, item["name"]) if flow else None
