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
    # a SQLite state runs only run-deployment actions (serve/automations.py): the pool action is refused
    root = make_project(
        tmp_path / "p", PROJECT.replace("      - {type: pause-work-pool, work_pool: local}\n", "")
    )
    assert run_cli("-C", str(root), "validate").returncode == 0
    result = run_cli("-C", str(root), "plan", "--json")
    assert result.returncode == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    order = [c["address"] for c in changes]
    assert order.index("automation.greet-again") > order.index("deployment.hello/greet")
    automation = changes[order.index("automation.greet-again")]
    assert automation["action"] == "create"
    assert automation["depends_on"] == ["deployment.hello/greet"]


def test_validate_refuses_a_sensitive_placeholder_set_or_not(tmp_path: Path) -> None:
    text = (
        PROJECT
        + '      - {type: send-notification, block: slack-webhook/ops, body: "key {{ $OPS_TOKEN }}"}\n'
    )
    root = make_project(tmp_path / "p", text)
    for env in ({"OPS_TOKEN": "hunter2-secret-value"}, {}):
        result = run_cli("-C", str(root), "validate", env=env)
        assert result.returncode == 1, result.stderr
        errors = [
            line for line in result.stderr.splitlines() if not line.split(": ", 1)[-1].startswith("warning")
        ]
        assert len(errors) == 1 and errors[0].startswith("prefect.yaml:17:"), result.stderr
        assert "$OPS_TOKEN is not a public environment variable" in errors[0]
        assert "readable by anyone with API access" in errors[0]
        assert "hunter2" not in result.stderr + result.stdout
    public = run_cli("--public-env", "OPS_TOKEN", "-C", str(root), "validate", env={"OPS_TOKEN": "shown"})
    assert public.returncode == 0, public.stderr
