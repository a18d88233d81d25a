"""``reconcile plan --preflight`` through the CLI: the checks appear as a section of the plan (text and
JSON), and a failed check makes the plan exit 1 naming the pool and the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers import REPO, run_cli
from tests.launch.test_preflight_ecs import name_of, world  # noqa: F401  (the fixture)


def _copy(tmp_path: Path) -> Path:
    project = tmp_path / "ecs"
    shutil.copytree(REPO / "examples" / "ecs", project, ignore=shutil.ignore_patterns(".reconcile"))
    return project


def test_plan_preflight_passes_on_the_example(moto, world, tmp_path) -> None:  # noqa: F811
    project = _copy(tmp_path)
    done = run_cli("-C", str(project), "plan", "--preflight", env=world)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reflight" in done.stdout  # the section is shown
    as_json = run_cli("-C", str(project), "plan", "--preflight", "--json", env=world)
    findings = json.loads(as_json.stdout)["preflight"]
    assert findings and all(f["ok"] for f in findings)


def test_plan_preflight_fails_on_a_missing_image_naming_the_field(moto, world, tmp_path) -> None:  # noqa: F811
    project = _copy(tmp_path)
    image = name_of("image")
    environ = {**world, image: world[image].replace(":1.4", ":9.9")}
    done = run_cli("-C", str(project), "plan", "--preflight", "--json", env=environ)
    assert done.returncode == 1 and "preflight: 1 check(s) failed" in done.stderr, done.stdout + done.stderr
    failed = [f for f in json.loads(done.stdout)["preflight"] if not f["ok"]]
    assert [(f["pool"], f["field"]) for f in failed] == [("ecs-push", "image")]


def test_validate_needs_no_environment_and_says_what_it_could_not_check(tmp_path) -> None:
    project = _copy(tmp_path)
    done = run_cli("-C", str(project), "validate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"warning: not checked: ${name_of('image')} unset" in done.stderr
    planned = run_cli("-C", str(project), "plan")  # planning needs the values
    assert planned.returncode == 1 and f"environment variable {name_of('image')} is not set" in planned.stderr


def test_the_action_runs_preflight_on_a_pull_request_when_asked(moto, world, tmp_path) -> None:  # noqa: F811
    from tests.fakes.github import FakeGitHub

    project = _copy(tmp_path)
    image = name_of("image")
    environ = {**world, image: world[image].replace(":1.4", ":9.9")}
    payload = {
        "action": "opened",
        "number": 3,
        "repository": {"full_name": "acme/flows", "default_branch": "main"},
        "pull_request": {"number": 3, "base": {"ref": "main", "sha": "0" * 40}, "head": {"sha": "1" * 40}},
    }
    (tmp_path / "event.json").write_text(json.dumps(payload))
    with FakeGitHub() as fake:
        env = {
            **environ,
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_REPOSITORY": "acme/flows",
            "GITHUB_API_URL": fake.url,
            "GITHUB_TOKEN": fake.token,
            "RUNNER_TEMP": str(tmp_path / "runner-temp"),
            "INPUT_STATE": f"sqlite:///{tmp_path / 'state.db'}",
            "INPUT_COMMENT": "false",
            "INPUT_PREFLIGHT": "true",
        }
        done = run_cli("-C", str(project), "trigger", "github", env=env)
    assert done.returncode == 1 and "preflight: 1 check(s) failed" in done.stderr, done.stdout + done.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "image" in summary and "reflight" in summary
