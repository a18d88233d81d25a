"""The apply lock on a Prefect server: a lease held as a Variable, created atomically, kept alive.

Creating a Variable is the compare-and-swap: the server refuses a second one with the same name
(409), so of two lockers exactly one gets 201. The value names the holder (user@host, pid, purpose,
since when) for the next locker's error message. The holder renews the lease by re-writing the value
(the server stamps ``updated``); a lease whose ``updated`` is older than ``stale_after`` *by the
server's own clock* (its ``Date`` header), or whose holder is a dead process on this very host, is
taken over: deleted **by id** and created again, so two lockers racing for one stale lease cannot
both win (the loser's delete finds nothing and its create gets 409).

Why not a global concurrency limit slot with a lease (``/v2/concurrency_limits/increment-with-lease``):
its holder can only be a flow run, task run or deployment, its shortest lease is 60 s, an expired one
is freed only by the server's repossessor loop, and the holder's name would need a Variable anyway;
the Variable alone takes one request to acquire and one to release.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.infra.lease import Busy, Heartbeat, holder_is_gone, wait_for
from reconciler.state.base import LockInfo
from reconciler.state.prefect.client import PrefectClient, server_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeasePolicy:
    """How often the holder renews, when a lease counts as abandoned, how often a waiter looks again."""

    renew_every: float = 10.0
    stale_after: float = 60.0
    max_poll: float = 0.5


DEFAULT_POLICY = LeasePolicy()


@dataclass(frozen=True)
class Lease:
    """A lease as read from the server."""

    id: str
    holder: str
    pid: int
    host: str
    purpose: str
    acquired_at: str
    updated: datetime | None

    def describe(self) -> str:
        since = ""
        with suppress(ValueError):
            since = " since " + datetime.fromisoformat(self.acquired_at).astimezone().strftime("%H:%M:%S")
        return f"{self.holder} (pid {self.pid}, {self.purpose}){since}"

    @classmethod
    def from_variable(cls, variable: dict[str, Any]) -> Lease:
        value = variable.get("value") or {}
        updated = None
        with suppress(ValueError):
            updated = datetime.fromisoformat(str(variable.get("updated")))
        return cls(
            id=str(variable["id"]),
            holder=str(value.get("holder", "?")),
            pid=int(value.get("pid", 0)),
            host=str(value.get("host", "")),
            purpose=str(value.get("purpose", "apply")),
            acquired_at=str(value.get("acquired_at", "")),
            updated=updated,
        )


class HeldLease:
    """A lease this process holds, renewed by a heartbeat until released."""

    def __init__(
        self, client: PrefectClient, *, variable_id: str, value: dict[str, Any], policy: LeasePolicy
    ) -> None:
        self._client, self._id, self._value = client, variable_id, value
        self._heartbeat = Heartbeat(self._renew, every=policy.renew_every, name="state-lock-renewal")

    def release(self) -> None:
        self._heartbeat.stop()
        self._client.delete(f"/variables/{self._id}", allow=(404,))

    def _renew(self) -> bool:
        response = self._client.patch(f"/variables/{self._id}", {"value": self._value}, allow=(404,))
        if response.status_code == 404:
            log.warning("the state lock was taken over by another process")
            return False
        return True


@contextmanager
def hold(
    client: PrefectClient, *, name: str, info: LockInfo, timeout: float, policy: LeasePolicy = DEFAULT_POLICY
) -> Iterator[None]:
    """Hold the lease ``name`` for the duration of the block (LockTimeout after ``timeout`` seconds)."""
    held = acquire(client, name=name, info=info, timeout=timeout, policy=policy)
    try:
        yield
    finally:
        try:
            held.release()
        except Exception as exc:  # never hide the error that ended the block; the lease goes stale
            log.warning("releasing the state lock failed: %s", exc)


def acquire(
    client: PrefectClient, *, name: str, info: LockInfo, timeout: float, policy: LeasePolicy
) -> HeldLease:
    value = {
        "token": uuid.uuid4().hex,
        "holder": info.holder,
        "pid": info.pid,
        "host": info.host,
        "purpose": info.purpose,
        "acquired_at": datetime.now(UTC).isoformat(),
    }

    def attempt() -> HeldLease | Busy | None:
        created = client.create("/variables/", {"name": name, "value": value})
        if created.status_code != 409:
            return HeldLease(client, variable_id=created.json()["id"], value=value, policy=policy)
        current = client.get(f"/variables/name/{name}", allow=(404,))
        if current.status_code == 404:
            return None  # released between our two requests: try again at once
        held = current.json().get("value")
        if isinstance(held, dict) and held.get("token") == value["token"]:
            # our own create, whose answer was lost and which the client repeated: we hold it
            return HeldLease(client, variable_id=current.json()["id"], value=value, policy=policy)
        lease = Lease.from_variable(current.json())
        if _abandoned(lease, now=server_time(current), policy=policy):
            log.warning("taking over the abandoned state lock of %s", lease.describe())
            client.delete(f"/variables/{lease.id}", allow=(404,))
            return None
        return Busy(lease.describe())

    return wait_for(attempt, timeout=timeout, max_poll=policy.max_poll, first_pause=0.05)


def _abandoned(lease: Lease, *, now: datetime | None, policy: LeasePolicy) -> bool:
    if holder_is_gone(host=lease.host, pid=lease.pid):
        return True
    if now is None or lease.updated is None:
        return False
    return (now - lease.updated).total_seconds() > policy.stale_after
