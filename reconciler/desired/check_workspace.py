"""Checks and canonical bodies for the workspace sections: ``work_queues:``, ``variables:`` and
``concurrency_limits:`` (part of the loader; ``automations:`` has its own module, ``automations``).

Functions over the load's ``LoadContext``, like ``check_pools``: each checks one entry, reports
through ``ctx.error`` and adds its resource. Bodies hold every field with Prefect's default made
explicit, so that a server's read-back compares equal, except a queue's ``priority``: left out, it is
not managed (Prefect numbers new queues itself).
"""

from __future__ import annotations

from typing import Any

import orjson

from reconciler.desired import canonical, templating
from reconciler.desired.context import LoadContext
from reconciler.desired.desired import Reference
from reconciler.desired.models import ConcurrencyLimit, Variable, WorkQueue
from reconciler.desired.yamlfile import Path
from reconciler.objects import ENV_PLACEHOLDER, Address, Resource

DEFAULT_QUEUE = "default"  # every pool has it; it may be configured, never deleted
# the description Prefect gives a queue it makes itself (models/workers.py); others get ""
DEFAULT_DESCRIPTIONS = {DEFAULT_QUEUE: "The work pool's default queue."}
MAX_VARIABLE_VALUE_LENGTH = 5000  # prefect.types.MAX_VARIABLE_VALUE_LENGTH: the JSON text of the value


def work_queue(ctx: LoadContext, i: int, queue: WorkQueue) -> None:
    base: Path = ("work_queues", i)
    address = Address.work_queue(queue.pool, queue.name)
    if not ctx.claim(address, base):
        return
    pool = Address.pool(queue.pool)
    if pool not in ctx.resources and queue.pool not in ctx.declared_pools:
        ctx.references.append(Reference(pool, (*base, "pool")))
    ctx.declared_queues.setdefault(queue.pool, set()).add(queue.name)
    _unique_priority(ctx, queue, base)
    description = queue.description
    if description is None:
        description = DEFAULT_DESCRIPTIONS.get(queue.name, "")
    body = {
        "pool": queue.pool,
        "name": queue.name,
        "description": description,
        "priority": queue.priority,
        "concurrency_limit": queue.concurrency_limit,
        "paused": queue.paused,
    }
    ctx.resources[address] = Resource(address, body, depends_on=(pool,))


def _unique_priority(ctx: LoadContext, queue: WorkQueue, base: Path) -> None:
    """Prefect keeps a pool's queue priorities unique (it renumbers the others when one takes a
    taken number): two queues of one pool asking for the same one could never both be as written."""
    if queue.priority is None:
        return
    taken = ctx.queue_priorities.setdefault(queue.pool, {})
    other = taken.setdefault(queue.priority, queue.name)
    if other != queue.name:
        ctx.error(
            (*base, "priority"),
            f"work queues {other!r} and {queue.name!r} of pool {queue.pool!r} both ask for priority "
            f"{queue.priority}: Prefect keeps a pool's priorities unique",
        )


def variable(ctx: LoadContext, i: int, item: Variable) -> None:
    base: Path = ("variables", i)
    address = Address.variable(item.name)
    if not ctx.claim(address, base):
        return
    if not public_only(ctx, (*base, "value"), item.value, what=f"variable {item.name!r}"):
        return
    value = canonical.plain(item.value)
    if len(orjson.dumps(value)) > MAX_VARIABLE_VALUE_LENGTH:
        ctx.error(
            (*base, "value"),
            f"variable {item.name!r}: the value is longer than Prefect's {MAX_VARIABLE_VALUE_LENGTH} "
            "characters (as JSON text)",
        )
        return
    body = {"name": item.name, "value": value, "tags": canonical.tags_body(item.tags)}
    ctx.resources[address] = Resource(address, body)


def concurrency_limit(ctx: LoadContext, i: int, item: ConcurrencyLimit) -> None:
    address = Address.concurrency_limit(item.name)
    if not ctx.claim(address, ("concurrency_limits", i)):
        return
    body = {
        "name": item.name,
        "limit": item.limit,
        "active": item.active,
        "slot_decay_per_second": float(item.slot_decay_per_second),
    }
    ctx.resources[address] = Resource(address, body)


def public_only(ctx: LoadContext, path: Path, value: Any, *, what: str) -> bool:
    """False, with an error at each place, when ``value`` holds a placeholder that is not public.

    Variables and automations are readable by anyone with API access and are shown as they are in
    plans: a value from a sensitive placeholder has no place there, whether or not it is set now, so
    even ``validate`` refuses it (elsewhere validate only warns). The resolver's own, vaguer finding
    at the same place is dropped."""
    found = False
    for where, text in _strings(value, path):
        source = ctx.resolver.sources.get(where)
        names = list(dict.fromkeys(ENV_PLACEHOLDER.findall(source.template if source else text)))
        hidden = [n for n in names if n not in ctx.resolver.public]
        if not hidden or any(templating.is_reserved_env(n) for n in names):
            continue  # all public, or already refused as the tool's own configuration
        found = True
        listed = ", ".join(f"${n}" for n in hidden)
        ctx.error(
            where,
            f"{what}: {listed} is not a public environment variable, and {where[0].replace('_', ' ')} "
            "are readable by anyone with API access: keep secrets in a secret block, or list the variable "
            "with --public-env if its value may be shown",
        )
        ctx.resolver.forget(where)
    return not found


def _strings(value: Any, path: Path) -> list[tuple[Path, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _strings(v, (*path, i))]
    return []
