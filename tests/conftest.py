"""Session-wide settings: the shared fixtures, how many workers ``-n auto`` starts, and bytecode.

About 750 tests start ``reconcile`` as a real process, and many wait on servers they started (a
Prefect server, PostgreSQL, moto) or on runs: a worker spends about half of its time waiting, so
``-n auto`` starts two workers per core (BENCHMARKS.md, "The test command").
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import pytest

from tests import zygote

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.prefect_server"]

REPO = Path(__file__).resolve().parents[1]
MAX_AUTO_WORKERS = 8  # each worker starts its own Prefect server and PostgreSQL cluster when it needs one


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown when it is not loaded
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(2, min(2 * cores, MAX_AUTO_WORKERS))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow tests first: the workers share the rest out as they finish, so the run does not end
    with three workers idle while the fourth starts a test of 30 seconds."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    zygote.stop()  # the process that forks reconcile runs (tests/zygote.py), by its pid


def pytest_configure(config: pytest.Config) -> None:
    """Compile the package once, before any worker starts: with PYTHONDONTWRITEBYTECODE set (as on
    CI images) every ``reconcile`` process would otherwise compile ~40 modules from source again."""
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist)
        compileall.compile_dir(REPO / "reconciler", quiet=1)
