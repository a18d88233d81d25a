"""``automations:`` through the command line: located errors from ``validate`` (exit 1), and a plan
that creates the automation after the deployment and pool it names."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import make_project, run_cli

PROJECT = """
name: auto
work_pools:
  - name: local
    type: process
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
automations:
  - name: greet-again
    trigger:
      expect: [prefect.flow-run.Failed]
      match_related: {prefect.resource.role: flow, prefect.resource.name: hello}
    actions:
      - {type: run-deployment, deployment: hello/greet, schedule_after: PT5M}
      - {type: pause-work-pool, work_pool: local}
"""


def test_validate_locates_each_problem_in_the_file(tmp_path: Path) -> None:
    text = PROJECT.replace(
        "schedule_after: PT5M", "deployment_id: 5d3c1f7e-0000-4000-8000-000000000000"
    ).replace("work_pool: local}", "work_pool: local, whitin: 5}")
    root = make_project(tmp_path / "p", text)
    result = run_cli("-C", str(root), "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "prefect.yaml:15:72: automations[0].actions[0].deployment_id: ids differ between servers and say "
        "nothing in review: write the address, deployment: FLOW/NAME",
        "prefect.yaml:16:51: automations[0].actions[1].whitin: unknown key 'whitin'",
    ]


def test_a_plan_creates_the_automation_after_what_it_names(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", PROJECT)
    assert run_cli("-C", str(root), "validate").returncode == 0
    result = run_cli("-C", str(root), "plan", "--json")
    assert result.returncode == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    order = [c["address"] for c in changes]
    assert order.index("automation.greet-again") > order.index("deployment.hello/greet")
    automation = changes[order.index("automation.greet-again")]
    assert automation["action"] == "create"
    assert automation["depends_on"] == ["deployment.hello/greet", "work_pool.local"]
