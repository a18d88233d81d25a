"""Cloud Run through the real CLI (a subprocess per command) against the Cloud Run v2 fake.

The CLI finds the fake through ``RECONCILE_CLOUD_RUN_ENDPOINT`` and authenticates with a real
service account key (held in ``RUN_SERVICE_ACCOUNT_JSON``) whose ``token_uri`` is the fake's.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.cli.app import App
from reconciler.launch import runs
from reconciler.state import RunState
from tests.fakes.cloud_run import CloudRunFake, Outcome, service_account
from tests.helpers import REPO, make_project, run_cli

pytestmark = pytest.mark.cloud

EXECUTION = re.compile(
    r"^projects/demo-project/locations/europe-west1/jobs/[a-z0-9-]+/executions/[a-z0-9-]+$"
)

PROJECT = """
name: cloud-run-e2e
blocks:
  - type: gcp-credentials
    name: prod
    data:
      service_account_info: "{{ $RUN_SERVICE_ACCOUNT_JSON }}"
      project: demo-project
work_pools:
  - name: cloud-run
    type: cloud-run-v2:push
    job_variables:
      credentials: "{{ prefect.blocks.gcp-credentials.prod }}"
      region: europe-west1
      image: europe-docker.pkg.dev/demo-project/flows/hello:1.0
      cpu: "1"
      memory: 1Gi
      env:
        FLOW_API_TOKEN: "{{ $FLOW_API_TOKEN }}"
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    parameters: {name: cloud}
    work_pool:
      name: cloud-run
"""


@pytest.fixture
def fake() -> Iterator[CloudRunFake]:
    with CloudRunFake() as server:
        yield server


@pytest.fixture
def env(fake: CloudRunFake) -> dict[str, str]:
    return {
        "RUN_SERVICE_ACCOUNT_JSON": json.dumps(service_account(fake)),
        "FLOW_API_TOKEN": f"flow-token-{secrets.token_hex(12)}",
        "RECONCILE_CLOUD_RUN_ENDPOINT": fake.url,
    }


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Path:
    root = make_project(tmp_path / "project", PROJECT)
    applied = run_cli("-C", str(root), "apply", "--yes", env=env)
    assert applied.returncode == 0, applied.stderr
    return root


def cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("-C", str(root), *args, env=env)


def run_id_of(result: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"Created run ([0-9a-f-]{36})", result.stdout)
    assert match, result.stdout + result.stderr
    return match.group(1)


def listed(root: Path, env: dict[str, str]) -> dict[str, dict]:
    result = cli(root, env, "runs", "--json")
    assert result.returncode == 0, result.stderr
    return {run["id"]: run for run in json.loads(result.stdout)}


def secret_values(env: dict[str, str]) -> list[str]:
    """Distinctive pieces of every secret: the key (a line of its base64), its id, the flow token."""
    info = json.loads(env["RUN_SERVICE_ACCOUNT_JSON"])
    key_line = info["private_key"].splitlines()[5]
    return [key_line, info["private_key_id"], env["FLOW_API_TOKEN"], env["RUN_SERVICE_ACCOUNT_JSON"]]


def assert_no_secret(
    root: Path, env: dict[str, str], outputs: list[subprocess.CompletedProcess[str]]
) -> None:
    texts = [o.stdout for o in outputs] + [o.stderr for o in outputs]
    state = root / ".reconcile"
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in files)
    blobs = [t.encode() for t in texts] + [p.read_bytes() for p in files]
    for secret in secret_values(env):
        for blob in blobs:
            assert secret.encode() not in blob


def test_run_wait_runs_logs_end_to_end_without_leaking_a_secret(
    fake: CloudRunFake, env: dict[str, str], project: Path
):
    fake.outcome = Outcome.succeed(after=2)
    ran = cli(project, env, "run", "hello/greet", "--wait", "--timeout", "60")
    assert ran.returncode == 0, ran.stderr
    run_id = run_id_of(ran)
    assert f"Run {run_id} COMPLETED (exit code 0)" in ran.stdout

    run = listed(project, env)[run_id]
    assert run["state"] == "COMPLETED" and run["exit_code"] == 0
    assert EXECUTION.match(run["infrastructure_id"])
    assert run["started_at"] and run["ended_at"]

    logs = cli(project, env, "logs", run_id)
    assert logs.returncode == 0, logs.stderr
    assert "(log: https://console.cloud.google.com/logs/viewer?project=demo-project" in logs.stderr

    (run_call,) = fake.calls("run_job")
    sent = {v["name"]: v["value"] for v in run_call.body["overrides"]["containerOverrides"][0]["env"]}
    assert sent["RECONCILE_RUN_ID"] == run_id
    assert sent["FLOW_API_TOKEN"] == env["FLOW_API_TOKEN"]  # resolved at launch, sent to the job only
    assert json.loads(sent["RECONCILE_PARAMETERS"]) == {"name": "cloud"}
    assert fake.jobs() == []  # cleaned up after the run

    table = cli(project, env, "runs")
    assert run_id in table.stdout and "COMPLETED" in table.stdout
    assert_no_secret(project, env, [ran, logs, table])


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome.fail(3), "FAILED (exit code 3)"),
        (
            Outcome.no_start("Image 'europe-docker.pkg.dev/demo-project/flows/hello:1.0' not found."),
            "CRASHED",
        ),
    ],
)
def test_failed_and_crashed_runs_exit_1(
    fake: CloudRunFake, env: dict[str, str], project: Path, outcome: Outcome, expected: str
):
    fake.outcome = outcome
    ran = cli(project, env, "run", "hello/greet", "--wait")
    assert ran.returncode == 1
    assert expected in ran.stderr
    if outcome.kind == "no_start":
        assert "could not start the job: Image" in ran.stderr


def test_refused_credentials_fail_the_launch_clearly(fake: CloudRunFake, env: dict[str, str], project: Path):
    fake.reject_tokens = True
    ran = cli(project, env, "run", "hello/greet", "--wait")
    assert ran.returncode == 1
    assert "CRASHED" in ran.stderr and "work pool cloud-run" in ran.stderr and "invalid_grant" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert fake.count("create_job") == 0
    assert_no_secret(project, env, [ran])


def test_wait_timeout_leaves_the_run_going(fake: CloudRunFake, env: dict[str, str], project: Path):
    fake.outcome = Outcome.hang()
    ran = cli(project, env, "run", "hello/greet", "--wait", "--timeout", "1")
    assert ran.returncode == 1
    assert "still RUNNING after 1s" in ran.stderr
    run_id = run_id_of(ran)
    (execution,) = fake.executions()
    assert "completionTime" not in execution and fake.count("cancel_execution") == 0
    assert listed(project, env)[run_id]["state"] == "RUNNING"

    cancelled = cli(project, env, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "CANCELLED" in cancelled.stdout
    assert fake.count("cancel_execution", status=200) == 1
    assert fake.executions() == []  # cancelled, then cleaned up


def test_timeout_job_variable_is_the_task_limit(fake: CloudRunFake, env: dict[str, str], project: Path):
    fake.outcome = Outcome.hang()
    ran = cli(project, env, "run", "hello/greet", "--wait", "--job-variable", "timeout=1", "--timeout", "30")
    assert ran.returncode == 1
    assert "CRASHED" in ran.stderr and "timeout was reached" in ran.stderr
    assert fake.calls("run_job")[0].body["overrides"]["timeout"] == "1s"


def test_runs_reconcile_adopts_an_interrupted_launch(fake: CloudRunFake, env: dict[str, str], project: Path):
    fake.outcome = Outcome.hang()
    app = App(project_dir=project, file="prefect.yaml", state_url=None, no_color=True, environ={**env})
    ctx = app.run_context()
    try:
        submitted = ctx.store.update_run(runs.create(ctx, "hello/greet").evolve(state=RunState.PENDING))
        execution = ctx.launcher_for(submitted).submit(ctx.job_for(submitted))  # ... then the launcher dies
        never = ctx.store.update_run(runs.create(ctx, "hello/greet").evolve(state=RunState.PENDING))
    finally:
        ctx.close()
        app.close()

    recovered = cli(project, env, "runs", "--reconcile", "--grace", "0")
    assert recovered.returncode == 0, recovered.stderr
    assert f"{submitted.id}: PENDING (adopted after an interrupted launch)" in recovered.stderr
    assert f"{never.id}: CRASHED" in recovered.stderr
    after = listed(project, env)
    assert after[submitted.id]["infrastructure_id"] == execution
    assert after[submitted.id]["state"] == "RUNNING"
    assert after[never.id]["state"] == "CRASHED"
    assert len(fake.executions()) == 1 and fake.count("run_job") == 1


def test_the_example_project_validates():
    example = REPO / "examples" / "cloud-run"
    env = {"RUN_SERVICE_ACCOUNT_JSON": json.dumps({"type": "service_account"})}
    result = run_cli("-C", str(example), "validate", env=env)
    assert result.returncode == 0, result.stderr
    missing = run_cli("-C", str(example), "validate")  # validate needs no environment: a warning
    assert missing.returncode == 0 and "not checked: $RUN_SERVICE_ACCOUNT_JSON unset" in missing.stderr
