"""The inventory's Variables on the server: the head, the shards in force, and resharding.

All of a project's Variables carry its tag, so one paged filter call reads the head and every shard.
Writers hold the project's lease (``lock.py``) while they read a shard, write the object and
write the shard back, so no update is lost; resharding writes the new generation completely before
the head points at it and only then deletes the old one.
"""

from __future__ import annotations

import secrets
import threading
import uuid

from reconciler.errors import StateError
from reconciler.objects import Address
from reconciler.state.prefect.client import PrefectClient
from reconciler.state.prefect.inventory import MAX_VALUE_BYTES, Head, Names, Shard, shard_index

_MAX_SHARDS = 4096


class InventoryVariables:
    """Reads and writes one project's inventory Variables; caches the head between calls."""

    def __init__(self, client: PrefectClient, names: Names) -> None:
        self._client, self._names = client, names
        self._mutex = threading.RLock()
        self._head: Head | None = None

    def forget_head(self) -> None:
        """Another holder of the lease may have resharded: read the head again before a write."""
        with self._mutex:
            self._head = None

    def read(self) -> tuple[Head | None, list[Shard]]:
        """The head and the shards in force, in one filter call."""
        criteria = {"variables": {"tags": {"all_": [self._names.marker]}}}
        variables = list(self._client.paged("/variables/filter", criteria))
        head = next((Head.from_variable(v) for v in variables if v["name"] == self._names.head), None)
        with self._mutex:
            self._head = head
        if head is None:
            return None, []
        wanted = {self._names.shard(head.generation, i) for i in range(head.shards)}
        return head, [Shard.from_variable(v) for v in variables if v["name"] in wanted]

    def head(self, *, create: bool, fresh: bool = False) -> Head | None:
        """The head (made, with a new fingerprint key, when ``create`` and there is none)."""
        with self._mutex:
            if self._head is not None and not fresh:
                return self._head
            response = self._client.get(f"/variables/name/{self._names.head}", allow=(404,))
            if response.status_code == 200:
                self._head = Head.from_variable(response.json())
            elif create:
                head = Head(key=secrets.token_bytes(32).hex(), lineage=str(uuid.uuid4()))
                body = {"name": self._names.head, "value": head.value(), "tags": [self._names.marker]}
                created = self._client.create("/variables/", body)
                if created.status_code == 409:  # another process made it first: use theirs
                    created = self._client.get(f"/variables/name/{self._names.head}")
                self._head = Head.from_variable(created.json())
            return self._head

    def save_head(self, head: Head) -> None:
        with self._mutex:
            self._client.patch(f"/variables/name/{self._names.head}", {"value": head.value()})
            self._head = head

    def shard(self, head: Head, address: Address) -> Shard:
        """The shard ``address`` belongs to, fresh from the server (empty if not made yet)."""
        name = self._names.shard(head.generation, shard_index(str(address), head.shards))
        response = self._client.get(f"/variables/name/{name}", allow=(404,))
        return Shard.from_variable(response.json()) if response.status_code == 200 else Shard(name=name)

    def save_shard(self, head: Head, shard: Shard) -> None:
        if shard.size() > MAX_VALUE_BYTES:
            self._reshard(head, shard)
            return
        if shard.id is None:
            body = {"name": shard.name, "value": shard.value(), "tags": [self._names.marker]}
            shard.id = self._client.post("/variables/", body).json()["id"]
        else:
            self._client.patch(f"/variables/name/{shard.name}", {"value": shard.value()})

    def _reshard(self, head: Head, changed: Shard) -> None:
        """Double the shards into a new generation, then point the head at it (crash-safe order)."""
        _, shards = self.read()
        shards = [s for s in shards if s.name != changed.name] + [changed]
        entries = {a: e for s in shards for a, e in s.entries.items()}
        writes = head.base + sum(s.writes for s in shards)
        generation, count = head.generation + 1, head.shards * 2
        while True:
            fresh = [Shard(name=self._names.shard(generation, i)) for i in range(count)]
            for address, entry in entries.items():
                fresh[shard_index(address, count)].entries[address] = entry
            if all(s.size() <= MAX_VALUE_BYTES for s in fresh):
                break
            if count >= _MAX_SHARDS:
                raise StateError("the inventory outgrew its Variables (an entry is too large to record)")
            count *= 2
        for shard in fresh:
            self._client.delete(f"/variables/name/{shard.name}", allow=(404,))  # leftovers of a crash
            body = {"name": shard.name, "value": shard.value(), "tags": [self._names.marker]}
            shard.id = self._client.post("/variables/", body).json()["id"]
        self.save_head(head.evolve(generation=generation, shards=count, base=writes))
        for shard in shards:
            if shard.id is not None:
                self._client.delete(f"/variables/name/{shard.name}", allow=(404,))
