"""What every lease-based lock needs, whatever holds the lease (a SQL row, a Prefect Variable).

A lease names its holder's host and pid, and its holder proves it is alive by renewing it
(:class:`Heartbeat`). A waiter asks again and again with growing, jittered pauses (:func:`wait_for`)
until it gets the lease or its patience ends in ``LockTimeout`` naming the holder. A lease whose
holder is a process gone from this very host is abandoned at once (:func:`holder_is_gone`); other
hosts' leases only by age, which the backend judges.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from reconciler.errors import LockTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (an unknown pid, 0 or less, counts as alive)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def holder_is_gone(*, host: str, pid: int) -> bool:
    """A lease held by a process of this host that no longer exists: free to take over now."""
    return host == socket.gethostname() and not pid_alive(pid)


@dataclass(frozen=True)
class Busy:
    """One try found the lease held; ``holder`` describes who, for the timeout message."""

    holder: str | None = None


def wait_for(
    attempt: Callable[[], T | Busy | None],
    *,
    timeout: float,
    max_poll: float,
    first_pause: float = 0.02,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``attempt`` until it returns the lease; raises LockTimeout after ``timeout`` seconds.

    ``attempt`` returns the lease, :class:`Busy` (held: pause, then ask again), or None (it changed
    hands under us: ask again at once). Pauses double from ``first_pause`` up to ``max_poll``, with
    jitter so that waiters do not ask in step.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    pause = min(first_pause, max_poll)
    while True:
        result = attempt()
        if result is None:
            continue
        if not isinstance(result, Busy):
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockTimeout(
                f"state is locked by {result.holder or 'another process'}; gave up after {timeout:g}s"
            )
        sleep(min(pause * random.uniform(0.5, 1.0), remaining))
        pause = min(pause * 2, max_poll)


class Heartbeat:
    """A daemon thread that renews a lease every ``every`` seconds until stopped.

    ``beat`` renews once and returns False when the lease is no longer ours (taken over: stop
    beating). A failed beat is logged and retried at the next tick: a blip must not cost the lease.
    """

    def __init__(self, beat: Callable[[], bool], *, every: float, name: str) -> None:
        self._beat, self._every, self._name = beat, every, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                if not self._beat():
                    return
            except Exception as exc:
                log.warning("%s failed: %s", self._name, type(exc).__name__)
