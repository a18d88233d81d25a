"""``action.yml`` against the Action metadata schema, and its steps run by a fake runner with bash.

The fake runner does what GitHub's does for a composite action: fills ``${{ inputs.x }}``,
``${{ github.* }}`` and ``${{ steps.<id>.outputs.<name> }}``, gives each step a fresh GITHUB_OUTPUT
file and reads it back, carries GITHUB_ENV into later steps, runs ``run:`` with
``bash --noprofile --norc -eo pipefail``, and maps the action's outputs from its steps' outputs. The
install step runs against stub ``python3``/``pip`` executables that record what they were asked and
with which environment (no network), and hands this interpreter on as its ``python`` output (the
package is on PYTHONPATH, which is what the install step arranges on a real runner).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from reconciler.triggers import github
from tests.fakes.github import FakeGitHub
from tests.helpers import REPO
from tests.triggers.conftest import GitRepo, parse_github_output
from tests.triggers.test_github_action import ETL, REPORT, SECRETS, _yaml, pull_request_payload

_STRING_MAP = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
ACTION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "GitHub Action metadata (composite)",
    "type": "object",
    "required": ["name", "description", "runs"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 1},
        "author": {"type": "string"},
        "branding": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "icon": {"type": "string"},
                "color": {
                    "enum": [
                        "white",
                        "black",
                        "yellow",
                        "blue",
                        "green",
                        "orange",
                        "red",
                        "purple",
                        "gray-dark",
                    ]
                },
            },
        },
        "inputs": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["description"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string"},
                    "required": {"type": "boolean"},
                    "default": {"type": "string"},
                    "deprecationMessage": {"type": "string"},
                },
            },
        },
        "outputs": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
            "additionalProperties": {
                "type": "object",
                "required": ["description", "value"],  # composite outputs must say where they come from
                "additionalProperties": False,
                "properties": {"description": {"type": "string"}, "value": {"type": "string"}},
            },
        },
        "runs": {
            "type": "object",
            "required": ["using", "steps"],
            "additionalProperties": False,
            "properties": {
                "using": {"const": "composite"},
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "oneOf": [
                            {"required": ["run", "shell"]},
                            {"required": ["uses"], "not": {"required": ["run"]}},
                        ],
                        "additionalProperties": False,
                        "properties": {
                            "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
                            "name": {"type": "string"},
                            "if": {"type": ["string", "boolean"]},
                            "run": {"type": "string"},
                            "shell": {"enum": ["bash", "sh", "pwsh", "powershell", "python", "cmd"]},
                            "env": _STRING_MAP,
                            "working-directory": {"type": "string"},
                            "continue-on-error": {"type": ["string", "boolean"]},
                            "uses": {"type": "string"},
                            "with": _STRING_MAP,
                        },
                    },
                },
            },
        },
    },
}
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def _action() -> dict[str, Any]:
    return yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))


def test_action_yml_is_valid_action_metadata() -> None:
    action = _action()
    jsonschema.validate(action, ACTION_SCHEMA)
    assert set(action["inputs"]) == {
        "command",
        "working-directory",
        "state",
        "public-env",
        "prune",
        "github-token",
        "comment",
        "preflight",
    }
    assert action["inputs"]["comment"]["default"] == "true"
    assert action["inputs"]["preflight"]["default"] == "false"
    assert action["inputs"]["state"]["required"] is True and "default" not in action["inputs"]["state"]
    assert set(action["outputs"]) == {"has-changes", "plan-json", "summary"}
    text = json.dumps(action)  # every expression in a value (comments are not the action)
    step_ids = {s["id"] for s in action["runs"]["steps"] if "id" in s}
    for expression in EXPRESSION.findall(text):
        root, _, rest = expression.partition(".")
        assert root in {"inputs", "github", "steps"}, expression
        if root == "inputs":
            assert rest.split(" ")[0] in action["inputs"], expression
        if root == "steps":
            assert rest.split(".")[0] in step_ids, expression
    with pytest.raises(jsonschema.ValidationError):  # the schema does reject a broken action
        jsonschema.validate(
            {**action, "runs": {"using": "composite", "steps": [{"run": "x"}]}}, ACTION_SCHEMA
        )


def test_the_example_workflow_uses_what_the_action_offers() -> None:
    workflow = yaml.safe_load((REPO / "examples" / "github" / "workflow.yml").read_text(encoding="utf-8"))
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on:` as true
    assert set(triggers) == {"pull_request", "push"}
    assert workflow["permissions"] == {}  # nothing at workflow level: each job asks for its own
    plan, apply = workflow["jobs"]["plan"], workflow["jobs"]["apply"]
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert apply["permissions"] == {"contents": "read"} and apply["environment"] == "production"
    assert "pull_request" in plan["if"] and "push" in apply["if"] and "refs/heads/main" in apply["if"]
    for job in (plan, apply):
        steps = job["steps"]
        assert steps[0]["with"]["fetch-depth"] == 0 and steps[0]["with"]["persist-credentials"] is False
        assert all(re.search(r"@[0-9a-f]{40}$", s["uses"]) for s in steps if "uses" in s)
        ours = next(s for s in steps if s.get("id") == "reconcile")
        assert set(ours["with"]) <= set(_action()["inputs"]) and ours["with"]["state"].startswith(
            "${{ secrets."
        )
        assert "steps.reconcile.outputs.plan-json" in steps[-1]["with"]["path"]
    assert "secrets" not in str(plan.get("env", "")) + str([s.get("env") for s in plan["steps"]])


class FakeRunner:
    """Runs a composite action's steps the way the GitHub runner does (bash steps only)."""

    def __init__(self, workspace: Path, temp: Path, env: dict[str, str], github_ctx: dict[str, str]) -> None:
        self.workspace, self.temp, self.env, self.github = workspace, temp, env, github_ctx
        self.exported: dict[str, str] = {}  # what the steps wrote to GITHUB_ENV (leaks into later steps)

    def run(self, action: dict[str, Any], with_: dict[str, str]) -> dict[str, str]:
        inputs = {name: spec.get("default", "") for name, spec in action.get("inputs", {}).items()}
        inputs = {k: self._fill(v, {"inputs": {}, "steps": {}}) for k, v in inputs.items()} | with_
        steps_ctx: dict[str, dict[str, dict[str, str]]] = {}
        extra_env: dict[str, str] = {}
        for index, step in enumerate(action["runs"]["steps"]):
            context = {"inputs": inputs, "steps": steps_ctx}
            step_dir = self.temp / f"step-{index}"
            step_dir.mkdir()
            files = {"GITHUB_OUTPUT": step_dir / "output", "GITHUB_ENV": step_dir / "env"}
            for path in files.values():
                path.touch()
            script = step_dir / "script.sh"
            script.write_text(self._fill(step["run"], context), encoding="utf-8")
            env = {
                **self.env,
                **extra_env,
                **{k: str(p) for k, p in files.items()},
                **{k: self._fill(str(v), context) for k, v in (step.get("env") or {}).items()},
            }
            cwd = self.workspace / self._fill(step.get("working-directory", "."), context)
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"step {step.get('name')} failed:\n{done.stdout}\n{done.stderr}"
            extra_env |= parse_github_output(files["GITHUB_ENV"].read_text(encoding="utf-8"))
            if "id" in step:
                steps_ctx[step["id"]] = {"outputs": parse_github_output(files["GITHUB_OUTPUT"].read_text())}
        self.exported = extra_env
        context = {"inputs": inputs, "steps": steps_ctx}
        return {name: self._fill(spec["value"], context) for name, spec in action.get("outputs", {}).items()}

    def _fill(self, text: str, context: dict[str, Any]) -> str:
        def value(match: re.Match[str]) -> str:
            left, equals, right = match.group(1).partition(" == ")
            if equals:  # the one operator action.yml uses
                one, two = (self._fill("${{ " + side + " }}", context) for side in (left, right))
                return str(one == two).lower()
            root, _, rest = match.group(1).partition(".")
            if root == "github":
                return self.github[rest]
            if root == "inputs":
                return str(context["inputs"].get(rest, ""))
            if root == "steps":
                step, _, output = rest.partition(".outputs.")
                return str(context["steps"].get(step, {}).get("outputs", {}).get(output, ""))
            raise AssertionError(f"unsupported expression {match.group(0)}")

        return EXPRESSION.sub(value, text)


STUB_PYTHON = """#!/usr/bin/env bash
# python3 / pip stand-in: records each call with its environment, delegates reconcile to the real one
printf '%s\\t%s\\n' "$*" "$(env | sort | tr '\\n' ' ')" >> "{log}"
case "$1 $2" in
  "-m pip") exit 0 ;;
  "-m venv") mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0 ;;
esac
PYTHONPATH="{repo}" exec "{python}" "$@"
"""


def _stub_python(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir()
    stub = bin_dir / "python3"
    stub.write_text(STUB_PYTHON.format(log=log, repo=REPO, python=sys.executable), encoding="utf-8")
    stub.chmod(0o755)


def test_the_composite_steps_run_in_a_fake_runner(
    repo: GitRepo, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    base = repo.commit(
        "project", {"app/prefect.yaml": _yaml(), "app/flows/etl/etl.py": ETL, "app/flows/report.py": REPORT}
    )
    repo.checkout("-b", "feature")
    head = repo.commit("more rows", {"app/prefect.yaml": _yaml(rows=9)})
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(pull_request_payload("opened", 5, base_sha=base, head_sha=head)), encoding="utf-8"
    )
    summary = tmp_path / "summary.md"
    calls = tmp_path / "python-calls.log"
    _stub_python(tmp_path / "stub-bin", calls)
    env = {
        "PATH": f"{tmp_path / 'stub-bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_REPOSITORY": "acme/flows",
        "GITHUB_API_URL": fake_github.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "77",
        "GITHUB_REF": "refs/pull/5/merge",
        "GITHUB_SHA": head,
        "GITHUB_WORKSPACE": str(repo.root),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        **SECRETS,
    }
    runner = FakeRunner(repo.root, tmp_path, env, {"action_path": str(REPO), "token": fake_github.token})
    state = f"sqlite:///{tmp_path / 'state.db'}"
    outputs = runner.run(_action(), {"working-directory": "app", "state": state, "prune": "false"})

    install = [line.split("\t") for line in calls.read_text(encoding="utf-8").splitlines()]
    installs = [args for args, _ in install if args.startswith("-m pip install")]
    assert [args.split()[-1] for args in installs] == [str(REPO)]  # a process pool, SQLite: no extras
    assert all(
        "--only-binary=:all:" in a and f"--constraint {REPO}/action-constraints.txt" in a for a in installs
    )
    secrets = [*SECRETS.values(), state, fake_github.token]
    assert not [
        v for args, environ in install if "trigger github" not in args for v in secrets if v in environ
    ]
    assert runner.exported == {}  # the action's plumbing goes through step outputs, not GITHUB_ENV
    assert outputs["has-changes"] == "true"
    assert outputs["summary"] == "Plan: 4 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged."
    plan = json.loads(Path(outputs["plan-json"]).read_text(encoding="utf-8"))
    assert Path(outputs["plan-json"]).parent == tmp_path / "runner-temp" / "prefect-reconciler"
    assert plan["summary"]["create"] == 4 and plan["source"]["git"]["commit"] == head
    (comment,) = fake_github.comments_on(5)
    assert comment.body.startswith(github.marker("app"))
    assert "Reconcile plan for `acme`" in summary.read_text(encoding="utf-8")
    assert (tmp_path / "state.db").exists()  # the state input reached the step
