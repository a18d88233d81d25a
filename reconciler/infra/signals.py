"""Graceful stop for the long-running loops (``serve``, ``--watch``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` instead of interrupting the step in progress (a serve pass, a
    watch re-plan), which finishes before the loop ends; a second Ctrl-C while that step is still busy
    (a long lock wait, a slow cloud call) interrupts it. Shared by ``serve`` and ``--watch``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C while a pass is stuck (a slow cloud call)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
