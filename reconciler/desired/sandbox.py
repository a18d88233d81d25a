"""A developer's sandbox: the same desired state under prefixed names, so a local loop never writes
the pools and deployments that the shared pipeline owns.

``sandbox(desired, "dev")`` is a pure transform: every declared work pool ``P`` becomes ``dev-P``,
every deployment ``FLOW/D`` becomes ``FLOW/dev-D`` (Prefect keys deployments by flow name, and the
flow name comes from the code, so only the deployment part can carry the prefix), and deployments
are re-pointed at the prefixed copies of the pools the file declares; the work queues of those
pools move with them, and automations become ``dev-NAME``, re-pointed at the sandbox's objects.
Blocks, variables and global concurrency limits are left as they are: they are shared, the
sandbox uses the same ones and may not change them. A pool the file only references (declared
elsewhere, found in the store) is not copied, so it stays the shared pool. Run rules move to the new
addresses, so ``run_on`` launches the sandbox's deployments, never the shared ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reconciler.desired.desired import Desired, Reference, RunRule
from reconciler.errors import UsageError
from reconciler.objects import Address, Kind, Resource

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
SHARED_KINDS = frozenset({Kind.BLOCK, Kind.VARIABLE, Kind.CONCURRENCY_LIMIT})  # a sandbox reads, never writes


def check_prefix(prefix: str) -> str:
    """The prefix as given, if it makes valid pool and deployment names; else a UsageError."""
    if not _PREFIX.match(prefix):
        raise UsageError(
            f"sandbox prefix {prefix!r} must be 1-40 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return prefix


def sandboxed_name(prefix: str, name: str) -> str:
    return f"{prefix}-{name}"


def in_sandbox(address: Address, prefix: str) -> bool:
    """Whether ``address`` names one of the sandbox's own objects (a prefixed pool or deployment)."""
    start = f"{prefix}-"
    if address.kind in (Kind.WORK_POOL, Kind.AUTOMATION):
        return address.name.startswith(start)
    if address.kind is Kind.WORK_QUEUE:
        return address.name.partition("/")[0].startswith(start)
    if address.kind is Kind.DEPLOYMENT:
        return address.name.partition("/")[2].startswith(start)
    return False


def sandbox(desired: Desired, prefix: str) -> Desired:
    """``desired`` with prefixed copies of its pools and deployments (see the module docstring)."""
    check_prefix(prefix)
    declared_pools = {a.name for a in desired.resources if a.kind is Kind.WORK_POOL}
    moved: dict[Address, Address] = {}
    for address in desired.resources:
        if address.kind is Kind.WORK_POOL:
            moved[address] = Address.pool(sandboxed_name(prefix, address.name))
        elif address.kind is Kind.DEPLOYMENT:
            flow, _, name = address.name.partition("/")
            moved[address] = Address.deployment(flow, sandboxed_name(prefix, name))
        elif address.kind is Kind.AUTOMATION:
            moved[address] = Address.automation(sandboxed_name(prefix, address.name))
    for address in desired.resources:  # after the pools: a queue moves only with a declared pool
        pool, _, queue = address.name.partition("/")
        if address.kind is Kind.WORK_QUEUE and pool in declared_pools:
            moved[address] = Address.work_queue(sandboxed_name(prefix, pool), queue)
    resources: dict[Address, Resource] = {}
    for address, resource in desired.resources.items():
        new_address = moved.get(address, address)
        body = resource.body
        if address.kind is Kind.DEPLOYMENT:
            body = _deployment_body(body, prefix, declared_pools)
        elif address.kind is Kind.WORK_QUEUE and address in moved:
            body = {**body, "pool": moved[address].name.partition("/")[0]}
        elif address.kind is Kind.AUTOMATION:
            from reconciler.desired import automations  # its models cost ~30 ms to import

            body = {**automations.rename_references(body, moved), "name": moved[address].name}
        depends = tuple(sorted(moved.get(d, d) for d in resource.depends_on))
        resources[new_address] = Resource(new_address, body, depends_on=depends)
    rules: dict[Address, tuple[RunRule, ...]] = {moved.get(a, a): r for a, r in desired.run_rules.items()}
    references = tuple(Reference(moved.get(r.target, r.target), r.path) for r in desired.external_references)
    return replace(desired, resources=resources, run_rules=rules, external_references=references)


def _deployment_body(body: Mapping[str, Any], prefix: str, declared_pools: set[str]) -> dict[str, Any]:
    new = dict(body)
    new["name"] = sandboxed_name(prefix, str(body["name"]))
    pool = body.get("work_pool")
    if isinstance(pool, Mapping) and pool.get("name") in declared_pools:
        new["work_pool"] = {**pool, "name": sandboxed_name(prefix, str(pool["name"]))}
    return new
