"""Session-wide settings: the shared fixtures, how many workers ``-n auto`` starts, the order the
slow tests run in, the package's bytecode, and the zygote that forks ``reconcile`` runs.

About 750 tests start ``reconcile`` as a real process, and many wait on servers they started (a
Prefect server, PostgreSQL, moto) or on runs: a worker spends about half of its time waiting, so
``-n auto`` starts two workers per core (BENCHMARKS.md, "The test command").
"""

from __future__ import annotations

import compileall
import os

import pytest

from tests import zygote
from tests.helpers import REPO

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.prefect_server"]

MAX_AUTO_WORKERS = 8  # each worker starts its own Prefect server and PostgreSQL cluster when it needs one


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown when it is not loaded
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(2, min(2 * cores, MAX_AUTO_WORKERS))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests early and spread out: xdist sends each worker a contiguous share of the first
    quarter of the list, then the rest as workers finish. All slow tests at the head landed in one
    worker's share, which then ran them one after another while the others idled."""
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if not slow:
        return
    rest = [item for item in items if item.get_closest_marker("slow") is None]
    step = max(1, len(items) // 4 // len(slow))
    spread: list[pytest.Item] = []
    for i, item in enumerate(slow):
        spread.extend(rest[i * (step - 1) : (i + 1) * (step - 1)] if step > 1 else [])
        spread.append(item)
    items[:] = spread + rest[len(slow) * (step - 1) :]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    zygote.stop()  # the process that forks reconcile runs (tests/zygote.py), by its pid


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package once, before any worker starts: with PYTHONDONTWRITEBYTECODE set (as on
    CI images) every ``reconcile`` process would otherwise compile ~40 modules from source again."""
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        compileall.compile_dir(REPO / "reconciler", quiet=1)
