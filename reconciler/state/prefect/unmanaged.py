"""What a Prefect server holds of the workspace kinds (work queues, variables, global concurrency
limits, automations) beyond the projects' inventories, as canonical bodies: what ``import`` offers.

Left out, because they are not a user's objects: a pool's ``default`` queue while it is as Prefect made
it (the pool brings it; the file need not say so; its priority is Prefect's numbering, not a choice), the global concurrency limit Prefect keeps for a
deployment's own ``concurrency_limit`` (``deployment:<id>``), the bookkeeping Variables and limits of
this tool (inventories, ownership records, leases, admission slots), automations a deployment owns
(its ``triggers:``: they come with the deployment) and automations carrying a project's tag.

The bodies are the store's own (``workspace.py``), the bookkeeping is the store's one predicate
(``bookkeeping.py``). An automation's action names objects by id; :func:`discover` names each by the address of the object
it belongs to (any pool, queue, deployment, block or automation on the server), through
``automations.from_api``. An id that names nothing there stays ``deployment_id:<uuid>`` in the body,
which ``import`` reports and skips: a file cannot name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.objects import Address, Kind
from reconciler.state.prefect import automations, bookkeeping, workspace
from reconciler.state.prefect.client import PrefectClient

Json = Any

DEFAULT_QUEUE = {  # Prefect's pool creation (server.models.workers.create_work_pool)
    "name": "default",
    "description": "The work pool's default queue.",
    "concurrency_limit": None,
    "paused": False,
}
"""Not its priority: Prefect renumbers the default queue (1 at first) whenever another queue takes
a priority, so a changed number is no choice anyone made about the default queue."""
_PROJECT_TAG = "managed-by:prefect-reconciler/"  # followed by a project's name (objects._OWNER_TAG)


def is_prefects_default_queue(body: Mapping[str, Any]) -> bool:
    """A pool's ``default`` queue as Prefect made it: nothing about it for a file to say."""
    return all(body.get(key) == value for key, value in DEFAULT_QUEUE.items())


def discover(client: PrefectClient, *, exclude: set[Address]) -> dict[Address, Json]:
    """Canonical bodies of the workspace kinds' user objects on the server, minus ``exclude``."""
    names: dict[tuple[Kind, str], Address] = {}
    found: dict[Address, Json] = {}
    for pool in client.paged("/work_pools/filter", {}):
        names[(Kind.WORK_POOL, str(pool["id"]))] = Address.pool(pool["name"])
    for queue in client.paged("/work_queues/filter", {}):
        body = workspace.queue_body(queue, managed_priority=True)  # a snapshot: the order it had
        if not body["pool"]:
            continue
        address = Address.work_queue(body["pool"], body["name"])
        names[(Kind.WORK_QUEUE, str(queue["id"]))] = address
        if not is_prefects_default_queue(body):
            found[address] = body
    flows = {str(f["id"]): f["name"] for f in client.paged("/flows/filter", {})}
    for deployment in client.paged("/deployments/filter", {}):
        flow = flows.get(str(deployment.get("flow_id")))
        if flow is not None:
            names[(Kind.DEPLOYMENT, str(deployment["id"]))] = Address.deployment(flow, deployment["name"])
    criteria = {"block_documents": {"is_anonymous": {"eq_": False}}}
    for document in client.paged("/block_documents/filter", criteria):
        slug = (document.get("block_type") or {}).get("slug")
        if slug and document.get("name"):
            names[(Kind.BLOCK, str(document["id"]))] = Address.block(slug, document["name"])
    for variable in client.paged("/variables/filter", {}):
        name = str(variable["name"])
        if not bookkeeping.is_bookkeeping(Kind.VARIABLE, name) and not _project_tagged(variable):
            found[Address.variable(name)] = workspace.variable_body(variable)
    for limit in client.paged("/v2/concurrency_limits/filter", {}):
        name = str(limit["name"])
        if not bookkeeping.is_bookkeeping(Kind.CONCURRENCY_LIMIT, name) and not workspace.is_deployment_limit(
            name
        ):
            found[Address.concurrency_limit(name)] = workspace.limit_body(limit)
    standalone = []
    for automation in client.paged("/automations/filter", {}):
        names[(Kind.AUTOMATION, str(automation["id"]))] = Address.automation(automation["name"])
        if not automation.get("owner_resource") and not _project_tagged(automation):
            standalone.append(automation)
    for automation in standalone:
        body = automations.from_api(automation, lambda kind, id_: names.get((kind, id_)))
        found[Address.automation(automation["name"])] = body
    return {a: b for a, b in found.items() if a not in exclude}


def _project_tagged(item: Mapping[str, Any]) -> bool:
    return any(str(tag).startswith(_PROJECT_TAG) for tag in item.get("tags") or ())
