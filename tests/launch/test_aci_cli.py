"""The ``aci`` launcher through the real CLI: ``apply``, ``run --wait``, ``runs``, ``logs``, ``cancel``.

Each test applies a project (credentials block, ``azure-container-instance:push`` pool, deployment)
and drives ``reconcile`` subprocesses against the Azure fake. In the end-to-end test the fake runs the
container's command for real (the runtime and the flow, in the project directory), so the command
and environment the launcher sends are proven, and nothing secret may appear in any output or file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import state
from reconciler.launch import RunContext, make_launcher, runs
from reconciler.state import RunState
from tests.fakes.aci import AciFake, Outcome
from tests.helpers import REPO, make_project, run_cli
from tests.launch.aci_support import CLIENT_SECRET, DB_PASSWORD, KEEP_RUNNING, environ

pytestmark = pytest.mark.cloud


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[AciFake]:
    with AciFake.running(tmp_path / "fake", client_secret=CLIENT_SECRET) as fake:
        yield fake


PROJECT = """
    name: aci-e2e
    blocks:
      - type: azure-container-instance-credentials
        name: test
        data:
          client_id: {client_id}
          tenant_id: {tenant_id}
          client_secret: "{{{{ $ACI_CLIENT_SECRET }}}}"
    work_pools:
      - name: aci-fake
        type: azure-container-instance:push
        job_variables:
          resource_group_name: rg-flows
          subscription_id: {subscription_id}
          image: ghcr.io/acme/flows:1
          cpu: 0.5
          memory: 1.0
          task_watch_poll_interval: 0
          aci_credentials: "{{{{ prefect.blocks.azure-container-instance-credentials.test }}}}"
    deployments:
      - name: greet
        entrypoint: flows/hello.py:hello
        parameters: {{name: aci, times: 2}}
        work_pool:
          name: aci-fake
          job_variables:
            env:
              STAGE: e2e
              DB_PASSWORD: "{{{{ $DB_PASSWORD }}}}"
"""


@pytest.fixture
def project(tmp_path: Path, fake: AciFake) -> Path:
    root = make_project(
        tmp_path / "project",
        PROJECT.format(
            client_id=fake.client_id, tenant_id=fake.tenant_id, subscription_id=fake.subscription_id
        ),
    )
    applied = cli(root, fake, "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return root


def cli_env(fake: AciFake) -> dict[str, str]:
    return {**environ(fake), "ACI_CLIENT_SECRET": CLIENT_SECRET, "DB_PASSWORD": DB_PASSWORD}


def cli(root: Path, fake: AciFake, *args: str) -> Any:
    return run_cli("-C", str(root), *args, env=cli_env(fake))


def scan_for_secrets(root: Path, outputs: list[str]) -> list[str]:
    """Where any distinctive secret value shows up: command output, the state DB (+WAL), run files."""
    hits = []
    blobs = [(f"output #{i}", text.encode()) for i, text in enumerate(outputs)]
    blobs += [(str(p), p.read_bytes()) for p in (root / ".reconcile").rglob("*") if p.is_file()]
    for where, blob in blobs:
        hits += [f"{value!r} in {where}" for value in (CLIENT_SECRET, DB_PASSWORD) if value.encode() in blob]
    return hits


def test_cli_run_wait_runs_the_flow_in_the_container_and_leaks_nothing(project: Path, fake: AciFake) -> None:
    fake.execute(project, extra_env={"PYTHONPATH": str(REPO)})  # the "image": this Python + the repo
    run = cli(project, fake, "run", "hello/greet", "--wait", "--timeout", "60")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "hello aci e2e\nhello aci e2e\n" in run.stdout  # the flow's own output, through list_logs
    assert "COMPLETED (exit code 0)" in run.stdout
    assert [r.status for r in fake.requests if r.route == "put_group"] == [201]
    (group,) = fake.created_groups
    assert group.environment()["DB_PASSWORD"] == DB_PASSWORD  # delivered to the container...
    assert "DB_PASSWORD" in group.secure_names()  # ...as a secureValue Azure never shows
    listed = cli(project, fake, "runs", "--json")
    record = json.loads(listed.stdout)[0]
    assert record["state"] == "COMPLETED" and record["exit_code"] == 0
    assert record["infrastructure_id"].endswith(f"/containerGroups/hello-{record['id']}")
    assert record["started_at"] and record["ended_at"]
    assert fake.groups == {}  # cleaned up; the log lives on in the run directory
    logs = cli(project, fake, "logs", record["id"])
    assert logs.returncode == 0 and "hello aci e2e\nhello aci e2e\n" in logs.stdout
    table = cli(project, fake, "runs")
    outputs = [r.stdout + r.stderr for r in (run, listed, logs, table)]
    assert scan_for_secrets(project, outputs) == []


def test_cli_failed_flow_exits_1_after_streaming_its_whole_log(project: Path, fake: AciFake) -> None:
    """With a real watch interval (1 s) the 0.5 s wait loop reuses answers in between."""
    fake.outcome = Outcome(exit_code=2, logs="first line\nlast line\n")
    run = cli(
        project,
        fake,
        "run",
        "hello/greet",
        "--wait",
        "--timeout",
        "30",
        "--job-variable",
        "task_watch_poll_interval=1",
    )
    assert run.returncode == 1
    assert "FAILED (exit code 2)" in run.stderr
    assert "first line\nlast line\n" in run.stdout
    assert fake.count("GET", "get_group") <= 5  # not one per 0.5 s wait loop turn


@pytest.mark.slow
def test_cli_wait_timeout_leaves_the_group_running_then_cancel_deletes_it(
    project: Path, fake: AciFake
) -> None:
    fake.outcome = Outcome(running_polls=KEEP_RUNNING)
    run = cli(project, fake, "run", "hello/greet", "--wait", "--timeout", "1.5")
    assert run.returncode == 1
    assert "still RUNNING after 1.5s" in run.stderr
    record = json.loads(cli(project, fake, "runs", "--json").stdout)[0]
    assert record["state"] == "RUNNING"
    assert len(fake.groups) == 1
    cancelled = cli(project, fake, "cancel", record["id"])
    assert cancelled.returncode == 0 and "CANCELLED" in cancelled.stdout
    assert fake.groups == {}


def test_cli_auth_failure_crashes_the_run_with_a_clear_message(project: Path, fake: AciFake) -> None:
    env = {**cli_env(fake), "ACI_CLIENT_SECRET": "wrong-CANARY-secret-5678"}
    run = run_cli("-C", str(project), "run", "hello/greet", env=env)
    assert run.returncode == 1
    assert "CRASHED" in run.stderr and "Azure refused" in run.stderr and "aci-fake" in run.stderr
    assert "Traceback" not in run.stderr and "wrong-CANARY-secret-5678" not in run.stderr
    assert fake.created == 0


def test_runs_reconcile_adopts_a_group_created_by_a_launcher_that_died(project: Path, fake: AciFake) -> None:
    """Claimed, submitted, then the process died before saving the group id: `runs --reconcile` adopts
    it by its name and run tag; a run claimed but never submitted becomes CRASHED. Never a second group."""
    fake.outcome = Outcome(running_polls=KEEP_RUNNING)
    store = state.open_store(f"sqlite:///{project / '.reconcile' / 'state.db'}", project="aci-e2e")
    env = {**os.environ, **cli_env(fake)}
    runs_dir = project / ".reconcile" / "runs"
    ctx = RunContext(
        store=store,
        live=store.read_all(),
        project_dir=project,
        runs_dir=runs_dir,
        environ=env,
        launcher_factory=lambda name: make_launcher(name, runs_dir=runs_dir, environ=env),
    )
    try:
        submitted = store.update_run(runs.create(ctx, "hello/greet").evolve(state=RunState.PENDING))
        group_id = ctx.launcher_for(submitted).submit(ctx.job_for(submitted))  # ... and the process dies
        never = store.update_run(runs.create(ctx, "hello/greet").evolve(state=RunState.PENDING))
    finally:
        ctx.close()
        store.close()
    recovered = cli(project, fake, "runs", "--reconcile", "--grace", "0", "--json")
    assert recovered.returncode == 0, recovered.stderr
    by_id = {r["id"]: r for r in json.loads(recovered.stdout)}
    assert by_id[submitted.id]["infrastructure_id"] == group_id
    assert by_id[submitted.id]["state"] in ("PENDING", "RUNNING")
    assert by_id[never.id]["state"] == "CRASHED"
    assert fake.count("PUT", "put_group") == 1 and fake.created == 1


def test_example_project_validates() -> None:
    env = {
        "FLOW_AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "FLOW_AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000002",
        "FLOW_AZURE_CLIENT_SECRET": "example-secret",
        "FLOW_AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000003",
        "FLOWS_IMAGE": "acme.azurecr.io/flows:1",
        "INVENTORY_API_TOKEN": "example-token",
    }
    result = run_cli("-C", str(REPO / "examples" / "aci"), "validate", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
