"""Code that the contract suite runs in child processes (spawned, so it must be importable)."""

from __future__ import annotations

import os
import socket
import time
from multiprocessing.synchronize import Event
from typing import Any

from reconciler.errors import StaleVersion
from reconciler.objects import Address, Resource, Secret
from reconciler.state.base import LockInfo
from reconciler.state.sql.store import SqlStore


def lock_info(name: str) -> LockInfo:
    """What a real apply would say about itself: this process on this host."""
    host = socket.gethostname()
    return LockInfo(holder=f"{name}@{host}", pid=os.getpid(), host=host, purpose="apply")


def big_body(index: int) -> dict[str, Any]:
    """A body large enough that a kill is likely to land inside its transaction, checkable after."""
    return {
        "index": index,
        "rows": [{"n": n, "text": f"row {n} of object {index} " * 8} for n in range(60)],
        "password": Secret("{{ $DB_PASSWORD }}", f"fp-{index}"),
    }


def concurrent_apply(url: str, project: str, worker: int, rounds: int, shared: int) -> tuple[int, int]:
    """Like an apply: under the lock, read, then write own and shared objects at the versions read.

    Between rounds it also races the others without the lock on ``race-*`` objects, where losing
    (StaleVersion) is allowed. Returns (locked writes, race writes that succeeded).
    """
    store = SqlStore(url, project=project)
    locked = raced = 0
    try:
        for r in range(rounds):
            with store.lock(timeout=120, info=lock_info(f"worker{worker}")):
                live = store.read_all()
                for address in (Address.pool(f"own-{worker}-{r}"), Address.pool(f"shared-{r % shared}")):
                    current = live.get(address)
                    body = {"worker": worker, "round": r}
                    store.write(
                        Resource(address, body), expected_version=current.version if current else None
                    )
                    locked += 1
            address = Address.pool(f"race-{r % shared}")
            current = store.read_all().get(address)
            try:
                store.write(
                    Resource(address, {"worker": worker}),
                    expected_version=current.version if current else None,
                )
                raced += 1
            except StaleVersion:
                pass
    finally:
        store.close()
    return locked, raced


def write_until_killed(url: str, project: str, started: Event, count: int) -> None:
    """Hold the lock and create objects one by one until SIGKILL lands."""
    store = SqlStore(url, project=project)
    with store.lock(timeout=30, info=lock_info("doomed")):
        for index in range(count):
            store.write(Resource(Address.pool(f"obj-{index:06d}"), big_body(index)), expected_version=None)
            if index == 10:
                started.set()
        time.sleep(600)  # never reached in the test: it kills us long before
