"""Shared helpers for the tests that run against the real Prefect server of ``tests/fixtures``.

The server lives for the whole session, so every test works with its own project name and its own
object names (``unique("pool")``): objects on a Prefect server are global, a project only says which
of them it manages.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.state.prefect.api import PrefectStore
from tests.fixtures.prefect_server import PrefectServer
from tests.helpers import REPO, run_cli

EXAMPLES = REPO / "examples"
_ENV_NAME = re.compile(r"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api(prefect_server: PrefectServer) -> Iterator[httpx.Client]:
    """A plain HTTP client on the server, for what a user would do in the UI (drift, foreign objects)."""
    with prefect_server.client() as client:
        yield client


StoreOpener = Callable[..., PrefectStore]


@pytest.fixture
def open_store(prefect_server: PrefectServer) -> Iterator[StoreOpener]:
    """Opens PrefectStores on the session's server (one project per test unless told otherwise)."""
    default = unique("project")
    opened: list[PrefectStore] = []

    def opener(project: str | None = None, **options: Any) -> PrefectStore:
        store = PrefectStore(prefect_server.state_url, project=project or default, **options)
        opened.append(store)
        return store

    opener.project = default  # type: ignore[attr-defined]
    yield opener
    for store in opened:
        store.close()


def example_env(project_dir: Path) -> dict[str, str]:
    """A dummy value for every ``{{ $NAME }}`` an example's prefect.yaml needs."""
    text = (project_dir / "prefect.yaml").read_text(encoding="utf-8")
    names = sorted(set(_ENV_NAME.findall(text)))
    return {n: '{"type": "dummy"}' if n.endswith("JSON") else f"dummy-{n.lower()}" for n in names}


def examples() -> list[Path]:
    return sorted(p.parent for p in EXAMPLES.glob("*/prefect.yaml"))


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".reconcile", "__pycache__"))
    return target


def cli(
    server: PrefectServer,
    project_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
):
    """``reconcile -C DIR --state prefect+http://.../api ARGS`` in a subprocess, as a user runs it."""
    full_env = {**server.env(), **(env or {})}
    return run_cli("-C", str(project_dir), "--state", server.state_url, *args, env=full_env, timeout=timeout)


LAUNCHED = re.compile(r"Launched run ([0-9a-f-]{36})")
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def settle(server: PrefectServer, output: str, timeout: float = 90) -> None:
    """Wait until the runs an apply launched (``run_on: apply: changed``) have ended, so that no flow
    process started by a test outlives it."""
    deadline = time.monotonic() + timeout
    with server.client() as client:
        for run_id in LAUNCHED.findall(output):
            while time.monotonic() < deadline:
                found = client.get(f"flow_runs/{run_id}")
                if found.status_code != 200 or found.json()["state_type"] in TERMINAL:
                    break
                time.sleep(0.5)


def destroy(
    server: PrefectServer, project_dir: Path, project: str, env: dict[str, str] | None = None
) -> None:
    """Delete everything the project manages (an empty file, applied with --prune --allow-empty)."""
    empty = project_dir / ".empty"
    empty.mkdir(exist_ok=True)
    (empty / "prefect.yaml").write_text(f"name: {project}\ndeployments: []\n", encoding="utf-8")
    result = cli(server, empty, "apply", "--yes", "--prune", "--allow-empty", env=env)
    assert result.returncode == 0, result.stderr
