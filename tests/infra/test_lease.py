"""The lease helper both locks (SQL row, Prefect Variable) share: liveness, heartbeat, wait loop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from reconciler.errors import LockTimeout
from reconciler.infra.lease import Busy, Heartbeat, holder_is_gone, pid_alive, wait_for


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_a_lease_of_a_dead_process_on_this_host_is_gone_and_nothing_else_is() -> None:
    dead = _dead_pid()
    assert not pid_alive(dead) and pid_alive(os.getpid()) and pid_alive(0)
    assert holder_is_gone(host=socket.gethostname(), pid=dead)
    assert not holder_is_gone(host="another-host", pid=dead)  # only its heartbeat can tell
    assert not holder_is_gone(host=socket.gethostname(), pid=os.getpid())


def test_wait_for_pauses_while_busy_and_gives_up_naming_the_holder() -> None:
    pauses: list[float] = []
    with pytest.raises(LockTimeout, match=r"state is locked by alice@host \(pid 1\); gave up after 0.05s"):
        wait_for(lambda: Busy("alice@host (pid 1)"), timeout=0.05, max_poll=0.01, sleep=pauses.append)
    assert pauses and all(0 < p <= 0.01 for p in pauses)


def test_wait_for_returns_the_lease_and_asks_again_at_once_after_a_handover() -> None:
    answers: list[str | Busy | None] = [Busy(), None, "lease"]
    pauses: list[float] = []
    assert wait_for(lambda: answers.pop(0), timeout=5, max_poll=1, sleep=pauses.append) == "lease"
    assert len(pauses) == 1  # one pause for Busy, none for the handover


def test_heartbeat_beats_through_failures_and_stops_when_the_lease_is_lost() -> None:
    beats: list[int] = []
    lost = threading.Event()

    def beat() -> bool:
        beats.append(1)
        if len(beats) == 1:
            raise OSError("blip")  # logged; the next tick beats again
        if len(beats) == 3:
            lost.set()
            return False
        return True

    heartbeat = Heartbeat(beat, every=0.01, name="test-heartbeat")
    assert lost.wait(5)
    heartbeat.stop()
    assert len(beats) == 3  # no beat after the lease was lost
