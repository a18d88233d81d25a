"""``reconcile import`` of the workspace kinds on a SQL store: what is held back or skipped, and why."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import make_project, run_cli

FILE = """
name: ws
work_pools: [{name: local, type: process}]
{extra}
deployments:
  - {name: greet, entrypoint: flows/hello.py:hello, work_pool: {name: local}}
"""
WORKSPACE = """
variables:
  - {name: api_token, value: not-really-secret}
  - {name: region, value: eu-west-1}
work_queues:
  - {pool: local, name: high, priority: 1}
automations:
  - name: after-greet
    trigger:
      expect: [prefect.flow-run.Completed]
      match_related: {prefect.resource.role: deployment, prefect.resource.name: greet}
    actions: [{type: run-deployment, deployment: hello/again}]
"""
AGAIN = """
  - {name: again, entrypoint: flows/hello.py:hello, work_pool: {name: local, work_queue_name: high}}
"""


def _applied_then_forgotten(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "ws", FILE.replace("{extra}", WORKSPACE) + AGAIN)
    applied = run_cli("-C", str(root), "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    (root / "prefect.yaml").write_text(FILE.replace("{extra}", ""), encoding="utf-8")
    return root


def test_a_secret_looking_variable_is_written_only_when_named(tmp_path: Path) -> None:
    root = _applied_then_forgotten(tmp_path)
    everything = run_cli("-C", str(root), "import", "--write")
    assert everything.returncode == 0, everything.stderr
    assert "warning: not importing variable.api_token: its name looks secret" in everything.stderr
    assert "reconcile import variable.api_token" in everything.stderr
    text = (root / "prefect.yaml").read_text(encoding="utf-8")
    assert "region" in text and "api_token" not in text and "not-really-secret" not in text
    assert "deployment: hello/again" in text  # the automation names the deployment it runs by address

    named = run_cli("-C", str(root), "import", "variable.api_token", "--write")
    assert named.returncode == 0, named.stderr
    assert "warning: variable.api_token: its value is written to prefect.yaml as plain text" in named.stderr
    assert "not-really-secret" in (root / "prefect.yaml").read_text(encoding="utf-8")
    plan = run_cli("-C", str(root), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_naming_an_automation_brings_what_it_acts_on(tmp_path: Path) -> None:
    root = _applied_then_forgotten(tmp_path)
    result = run_cli("-C", str(root), "import", "automation.after-greet", "--write")
    assert result.returncode == 0, result.stderr
    assert "also importing deployment.hello/again: automation.after-greet needs it" in result.stderr
    assert "also importing work_queue.local/high: deployment.hello/again needs it" in result.stderr
    assert "Wrote 1 work queue, 1 deployment and 1 automation" in result.stderr
    plan = run_cli("-C", str(root), "plan", "--json")
    assert '"orphaned": 2' in plan.stdout  # the two variables, not asked for


def test_a_secret_looking_variable_a_written_deployment_reads_comes_along(tmp_path: Path) -> None:
    reads = FILE.replace("{extra}", "variables: [{name: db_password, value: hunter2}]").replace(
        "work_pool: {name: local}}",
        "work_pool: {name: local}, parameters: {name: '{{ prefect.variables.db_password }}'}}",
    )
    root = make_project(tmp_path / "ws", reads)
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    (root / "prefect.yaml").write_text("name: ws\n", encoding="utf-8")
    result = run_cli("-C", str(root), "import", "--write")
    assert result.returncode == 0, result.stderr
    assert (
        "warning: variable.db_password: deployment.hello/greet reads it, so its value is written to "
        "prefect.yaml as plain text"
    ) in result.stderr
    assert "does not load yet" not in result.stderr
    plan = run_cli("-C", str(root), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
