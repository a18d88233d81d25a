"""Admission on a Prefect server: ``serve`` replicas share concurrency limits through Prefect's own
global concurrency limits (``/v2/concurrency_limits``), slots taken with a lease.

A run's limits (``state.Limit``) become GCL names: the pool's, the work queue's and ``serve
--max-concurrent`` are bookkeeping limits of ours, named ``reconcile-admission:PROJECT:KEY`` (created
and kept at the limit's value on first use; never a user object: ``bookkeeping.py`` hides the prefix).
The deployment's ``concurrency_limit`` and the global concurrency limit it names are not here: the
store writes either as the deployment's ``global_concurrency_limit`` on the server, which takes a slot
of it itself when the claim proposes PENDING (its ``SecureFlowConcurrencySlots`` rule) and refuses the
claim when it is full; a slot of ours as well would count each run twice against it.

One slot of every name is taken in one ``increment-with-lease`` call (all or nothing: the server
checks and increments in one transaction, so replicas never overshoot); 423 means a limit is full.
The lease (holder: the flow run) is recorded on the run as the label ``prefect-reconciler.lease``.
Whoever reads a run's end frees its slots (``decrement-with-lease``); a Variable created per lease
(the server's 409 on a second create is the compare-and-swap) makes sure two replicas that see the
same end free them once, since the server reads, decrements and revokes a lease in separate steps.
Replicas following a run renew its lease; if every replica is gone the lease expires and the server
frees the slots itself, so a killed replica leaks nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.state.base import Limit
from reconciler.state.prefect.client import PrefectClient

log = logging.getLogger(__name__)

PREFIX = "reconcile-admission:"  # our bookkeeping GCLs: never shown, imported or pruned as user objects
RELEASE_PREFIX = "reconcile_admission_release_"  # the Variable that makes one release of a lease win
LEASE_SECONDS = 300.0  # a lease nobody renews for this long is freed by the server
RENEW_EVERY = 60.0  # a replica following a run renews its lease this often
_BANNED = str.maketrans({c: "_" for c in "/%&><"})  # characters Prefect refuses in a GCL name


def limit_name(project: str, limit: Limit) -> str | None:
    """The GCL that carries ``limit`` on the server (None: the server enforces it without us)."""
    kind = limit.key.partition(":")[0]
    if kind in ("deployment", "gcl"):
        return None  # the deployment's own global_concurrency_limit on the server: the server's rule
    return (PREFIX + f"{project}:{limit.key}").translate(_BANNED)


class ConcurrencySlots:
    """Slots of Prefect GCLs taken and freed for our runs, by lease."""

    def __init__(self, client: PrefectClient, *, project: str) -> None:
        self._client, self._project = client, project
        self._limits: dict[str, int] = {}  # our GCLs as last written by this process: name -> limit
        self._renewed: dict[str, float] = {}  # lease id -> when this process last renewed it

    def acquire(self, run_id: str, limits: Sequence[Limit]) -> tuple[str | None, Limit | None]:
        """Take one slot of every limit's GCL for ``run_id``: (lease id, None), or (None, the full
        limit). No GCL to take: (None, None)."""
        names: dict[str, Limit] = {}
        for limit in limits:
            name = limit_name(self._project, limit)
            if name is not None:
                names[name] = limit
                self._keep(name, limit.limit)
        if not names:
            return None, None
        body = {
            "names": sorted(names),
            "slots": 1,
            "mode": "concurrency",
            "lease_duration": LEASE_SECONDS,
            "holder": {"type": "flow_run", "id": run_id},
        }
        response = self._client.post("/v2/concurrency_limits/increment-with-lease", body, allow=(423,))
        if response.status_code == 423:
            return None, self._full(names)
        lease = str(response.json()["lease_id"])
        self._renewed[lease] = time.monotonic()
        return lease, None

    def release(self, lease: str) -> bool:
        """Free the slots of ``lease`` once, whoever asks and however many ask at once; True when this
        call (or an earlier one) freed them, False when another process is freeing them right now."""
        guard = RELEASE_PREFIX + lease.replace("-", "")
        created = self._client.post("/variables/", {"name": guard, "value": lease}, allow=(409,))
        if created.status_code == 409:
            return False
        try:
            self._client.post("/v2/concurrency_limits/decrement-with-lease", {"lease_id": lease})
        finally:
            self._client.delete(f"/variables/{created.json()['id']}", allow=(404,))
        self._renewed.pop(lease, None)
        return True

    def renew(self, leases: Iterable[str]) -> None:
        """Keep the leases of runs still in flight (each at most every RENEW_EVERY seconds here)."""
        now = time.monotonic()
        for lease in leases:
            if now - self._renewed.get(lease, 0.0) < RENEW_EVERY:
                continue
            response = self._client.post(
                f"/v2/concurrency_limits/leases/{lease}/renew",
                {"lease_duration": LEASE_SECONDS},
                allow=(410,),
            )
            self._renewed[lease] = now
            if response.status_code == 410:
                log.warning("concurrency lease %s expired before its run ended: its slots were freed", lease)

    def _keep(self, name: str, limit: int) -> None:
        """Our GCL ``name`` exists with ``limit`` (created on first use, corrected when it changes)."""
        if self._limits.get(name) == limit:
            return
        body = {"name": name, "limit": limit, "active": True}
        created = self._client.post("/v2/concurrency_limits/", body, allow=(409,))
        if created.status_code == 409:
            self._client.patch(f"/v2/concurrency_limits/{name}", {"limit": limit, "active": True})
        self._limits[name] = limit

    def _full(self, names: Mapping[str, Limit]) -> Limit:
        """Which limit refused the slot (the first found at its limit; else the first asked)."""
        for name, limit in sorted(names.items()):
            found = self._client.get(f"/v2/concurrency_limits/{name}", allow=(404,))
            if found.status_code == 404:
                continue
            document: Any = found.json()
            if document.get("active", True) and int(document.get("active_slots", 0)) >= int(
                document["limit"]
            ):
                return limit
        return next(iter(names.values()))
