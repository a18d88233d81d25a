"""Secrets never leave the environment (issue #3, "How it is checked"), across every command.

A project whose aws-credentials block takes its keys from env placeholders set to distinctive
values, and whose deployment passes ``{{ $API_TOKEN }}`` to the job, goes through plan, a saved plan,
apply, a run on ECS (moto), the run listings, history, state and logs. Every stdout and stderr, the
plan file and every file under ``.reconcile/`` (SQLite database, its WAL, run logs) is scanned for
the values: zero hits. The HMAC fingerprint of the token *is* found in the database, which shows the
scan reads the place where a leak would be. Rotating a secret shows as ``(sensitive, changed)``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler import state
from tests.fakes.moto_server import STEP_PER_DESCRIBE, MotoStandIn, TaskScript
from tests.helpers import make_project, run_cli

pytestmark = pytest.mark.cloud

SECRETS = {
    "LEAK_AWS_ACCESS_KEY_ID": "AKIALEAKCHECK4F2C9D1E",
    "LEAK_AWS_SECRET_ACCESS_KEY": "s3cr3t-LEAK-CANARY-8b1e0c7d",
    "API_TOKEN": "api-tok-LEAK-CANARY-33aa91",
}
ROTATED = "s3cr3t-LEAK-CANARY-ROTATED-5150"

PROJECT = """
name: leak-check
blocks:
  - type: aws-credentials
    name: canary
    data:
      aws_access_key_id: "{{{{ $LEAK_AWS_ACCESS_KEY_ID }}}}"
      aws_secret_access_key: "{{{{ $LEAK_AWS_SECRET_ACCESS_KEY }}}}"
      region_name: us-east-1
      aws_client_parameters:
        endpoint_url: {endpoint}
work_pools:
  - name: ecs-canary
    type: ecs:push
    job_variables:
      aws_credentials: "{{{{ prefect.blocks.aws-credentials.canary }}}}"
      cluster: {cluster}
      image: ghcr.io/acme/flows:1
      configure_cloudwatch_logs: true
      execution_role_arn: arn:aws:iam::123456789012:role/ecsTaskExecutionRole
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool:
      name: ecs-canary
      job_variables:
        env:
          API_TOKEN: "{{{{ $API_TOKEN }}}}"
          STAGE: leak-check
"""


def _cli(root: Path, *args: str, env: Mapping[str, str] = SECRETS) -> subprocess.CompletedProcess[str]:
    return run_cli("-C", str(root), *args, env=env, timeout=60)


def _hits(blobs: Mapping[str, bytes], values: Mapping[str, str]) -> list[str]:
    return [
        f"{name} in {where}"
        for where, blob in blobs.items()
        for name, v in values.items()
        if v.encode() in blob
    ]


def test_no_command_output_plan_file_or_state_file_holds_a_secret(tmp_path: Path, moto: MotoStandIn) -> None:
    cluster = "leak-check"
    moto.create_cluster(cluster)
    root = make_project(tmp_path / "leak", PROJECT.format(endpoint=moto.url, cluster=cluster))
    moto.set_transition(STEP_PER_DESCRIBE)
    moto.script = TaskScript(output=("hello from the canary task",))

    outputs: dict[str, subprocess.CompletedProcess[str]] = {}

    def step(name: str, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = _cli(root, *args)
        assert result.returncode == expect, f"{name}: {result.stdout}\n{result.stderr}"
        outputs[name] = result
        return result

    step("plan", "plan")
    plan_file = root / "p.json"
    step("plan-json", "plan", "--json", "--out", str(plan_file))
    step("apply", "apply", str(plan_file), "--yes")
    run = step("run", "run", "hello/greet", "--wait", "--timeout", "30")
    assert "hello from the canary task" in run.stdout
    run_id = json.loads(step("runs-json", "runs", "--json").stdout)[0]["id"]
    step("runs", "runs")
    step("history", "history")
    step("state", "state", "list", "--json")
    step("logs", "logs", run_id)

    # the job did get its token (through RunTask's container override, to AWS only)
    ecs = moto.client("ecs")
    task = ecs.describe_tasks(cluster=cluster, tasks=[moto.started[0][1]])["tasks"][0]
    environment = task["overrides"]["containerOverrides"][0]["environment"]
    assert {"name": "API_TOKEN", "value": SECRETS["API_TOKEN"]} in environment

    blobs: dict[str, bytes] = {}
    for name, result in outputs.items():
        blobs[f"{name} stdout"] = result.stdout.encode()
        blobs[f"{name} stderr"] = result.stderr.encode()
    blobs["plan file"] = plan_file.read_bytes()
    files = [p for p in (root / ".reconcile").rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in files)
    blobs.update({str(p.relative_to(root)): p.read_bytes() for p in files})
    assert _hits(blobs, SECRETS) == []

    # ... and the scan looks where a leak would be: the token's fingerprint is stored there.
    store = state.open_store(f"sqlite:///{root / '.reconcile' / 'state.db'}", project="leak-check")
    try:
        token_fingerprint = desired_state.fingerprint(store.fingerprint_key(), SECRETS["API_TOKEN"])
    finally:
        store.close()
    database = b"".join(blob for where, blob in blobs.items() if "state.db" in where)
    assert token_fingerprint.encode() in database
    assert token_fingerprint.encode() in blobs["plan file"]

    # rotating a secret: the plan says it changed, never what it was or is
    rotated = _cli(root, "plan", env={**SECRETS, "LEAK_AWS_SECRET_ACCESS_KEY": ROTATED})
    assert rotated.returncode == 0, rotated.stderr
    assert "(sensitive, changed)" in rotated.stdout
    assert "aws_secret_access_key" in rotated.stdout
    text = (rotated.stdout + rotated.stderr).encode()
    assert _hits({"rotated plan": text}, {**SECRETS, "ROTATED": ROTATED}) == []
