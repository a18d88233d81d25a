"""Who manages a work pool, block, work queue, Variable, global concurrency limit or automation on a
Prefect server: one ownership record (a Variable) each.

A deployment carries its owner in a tag (``managed-by:prefect-reconciler/<project>``), but the server
gives pools, blocks, queues and limits no tags (and the tags of Variables and automations are the
file's own, kept apart from any mark of ours), and a project's inventory is its own: another project cannot read
every inventory to learn that ``work_pool.local`` is taken. So every pool and block a project writes
gets a record, ``reconciler_owner__<hash of the address>``, holding the address and the project
(and tagged with the project's mark, so the UI shows whose it is). The record is made before the
object is written and removed after it is deleted; a name taken by another project refuses the write.
Looking up the records of N addresses is one filter call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import Any

from reconciler.errors import StateError
from reconciler.objects import Address, Kind
from reconciler.state.prefect.client import PAGE, PrefectClient

PREFIX = "reconciler_owner__"
RECORDED = frozenset(  # deployments carry their owner in a tag; the other kinds have none to spare
    {
        Kind.WORK_POOL,
        Kind.BLOCK,
        Kind.WORK_QUEUE,
        Kind.VARIABLE,
        Kind.CONCURRENCY_LIMIT,
        Kind.AUTOMATION,
    }
)


def record_name(address: Address) -> str:
    """The record's Variable name: letters, digits and underscores only, whatever the address holds."""
    return PREFIX + hashlib.sha256(str(address).encode()).hexdigest()[:40]


class OwnerRecords:
    """Reads and writes the ownership records of pools and blocks."""

    def __init__(self, client: PrefectClient, *, project: str, marker: str) -> None:
        self._client, self._project, self._marker = client, project, marker

    def owners(self, addresses: Collection[Address]) -> dict[Address, str]:
        """``address -> project`` for the recorded ones among ``addresses``."""
        wanted = {record_name(a): a for a in addresses if a.kind in RECORDED}
        found: dict[Address, str] = {}
        names = sorted(wanted)
        for start in range(0, len(names), PAGE):
            criteria = {"variables": {"name": {"any_": names[start : start + PAGE]}}, "limit": PAGE}
            for variable in self._client.post("/variables/filter", criteria).json():
                address, project = _parse(variable.get("value"))
                if address is not None and wanted.get(variable["name"]) == address and project:
                    found[address] = project
        return found

    def claim(self, address: Address) -> None:
        """Record this project as the owner (kept if it already is); another owner refuses the write."""
        if address.kind not in RECORDED:
            return
        name = record_name(address)
        body = {
            "name": name,
            "value": {"address": str(address), "project": self._project},
            "tags": [self._marker],
        }
        response = self._client.create("/variables/", body)
        if response.status_code != 409:
            return
        current = self._client.get(f"/variables/name/{name}", allow=(404,))
        if current.status_code == 404:  # released meanwhile: take it
            self._client.post("/variables/", body)
            return
        _, owner = _parse(current.json().get("value"))
        if owner and owner != self._project:
            raise StateError(f"{address} is managed by project {owner!r}: nothing was written to it")
        if owner != self._project:
            self._client.patch(f"/variables/name/{name}", {"value": body["value"], "tags": body["tags"]})

    def release(self, address: Address) -> None:
        """Remove the record after the object is deleted (only this project's own record)."""
        if address.kind not in RECORDED:
            return
        name = record_name(address)
        current = self._client.get(f"/variables/name/{name}", allow=(404,))
        if current.status_code == 200 and _parse(current.json().get("value"))[1] == self._project:
            self._client.delete(f"/variables/name/{name}", allow=(404,))

    def move(self, addresses: Collection[Address], *, new_project: str, new_marker: str) -> None:
        """Give this project's records of ``addresses`` to ``new_project`` (``state mv-project``)."""
        for address, owner in self.owners(addresses).items():
            if owner == self._project:
                value = {"address": str(address), "project": new_project}
                self._client.patch(
                    f"/variables/name/{record_name(address)}", {"value": value, "tags": [new_marker]}
                )


def _parse(value: Any) -> tuple[Address | None, str | None]:
    if not isinstance(value, Mapping):
        return None, None
    try:
        address = Address.parse(str(value.get("address")))
    except ValueError:
        return None, None
    project = value.get("project")
    return address, str(project) if project else None
