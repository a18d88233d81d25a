"""Every trigger reconciles through the one engine, so every trigger keeps the engine's guards.

The probe is a file whose pool references a block that is neither declared nor stored: each trigger
(``apply``, ``trigger push``, ``--watch``, the GitHub Action on a pull request and on a push) must refuse
it with the located error and write nothing to the store.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.fakes.github import FakeGitHub
from tests.helpers import run_cli
from tests.triggers.conftest import GitRepo, invoke
from tests.watch.watcher import Watcher

PROJECT = """\
name: guards
work_pools:
  - name: local
    type: process
    job_variables:
      env:
        CREDS: "{{ prefect.blocks.secret.ghost }}"
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""
FLOW = 'def hello():\n    print("hi")\n'
REFUSED = "prefect.yaml:7:9: unknown block 'secret/ghost'"


def _repo(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("project", {"prefect.yaml": PROJECT, "flows/hello.py": FLOW, ".gitignore": ".reconcile/\n"})
    return repo


def _stored_objects(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM objects").fetchone()[0]


def test_apply_refuses_an_unresolved_reference(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    code, out, err = invoke(repo.root, "apply", "--yes")
    assert code == 1 and REFUSED in err, out + err
    assert _stored_objects(repo.root / ".reconcile" / "state.db") == 0


def test_trigger_push_refuses_an_unresolved_reference(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    code, out, err = invoke(
        repo.root, "trigger", "push", "--before", "0" * 40, "--after", repo.head(), "--yes"
    )
    assert code == 1 and REFUSED in err, out + err
    assert "Launched run" not in out
    assert _stored_objects(repo.root / ".reconcile" / "state.db") == 0


def test_watch_refuses_an_unresolved_reference(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    w = Watcher(repo.root, "--watch")
    try:
        w.expect(r"unknown block 'secret/ghost'", timeout=30)
        w.expect(r"is invalid \(1 problem\); nothing applied")
        assert w.stop() == 0
    finally:
        w.kill()
    assert _stored_objects(repo.root / ".reconcile" / "state.db") == 0


def _action_env(tmp_path: Path, repo: GitRepo, fake: FakeGitHub, event: str, payload: dict) -> dict[str, str]:
    (tmp_path / "event.json").write_text(json.dumps(payload), encoding="utf-8")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_REPOSITORY": "acme/flows",
        "GITHUB_API_URL": fake.url,
        "GITHUB_REF": payload.get("ref", "refs/pull/7/merge"),
        "GITHUB_SHA": repo.head(),
        "GITHUB_WORKSPACE": str(repo.root),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "GITHUB_TOKEN": fake.token,
        "RECONCILE_STATE": f"sqlite:///{tmp_path / 'state.db'}",
        "INPUT_COMMAND": "auto",
        "INPUT_WORKING_DIRECTORY": ".",
        "INPUT_PRUNE": "false",
        "INPUT_COMMENT": "true",
    }


def test_the_action_refuses_an_unresolved_reference_on_push_and_on_a_pull_request(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repository = {"full_name": "acme/flows", "default_branch": "main"}
    push = {"ref": "refs/heads/main", "before": "0" * 40, "after": repo.head(), "repository": repository}
    pull = {
        "action": "opened",
        "number": 7,
        "repository": repository,
        "pull_request": {
            "number": 7,
            "base": {"ref": "main", "sha": repo.head()},
            "head": {"sha": repo.head()},
        },
    }
    with FakeGitHub() as fake:
        for event, payload in (("push", push), ("pull_request", pull)):
            done = run_cli(
                "-C",
                ".",
                "trigger",
                "github",
                cwd=repo.root,
                env=_action_env(tmp_path, repo, fake, event, payload),
            )
            assert done.returncode == 1 and REFUSED in done.stderr, (event, done.stdout, done.stderr)
        assert fake.writes() == []  # no plan comment for a file the engine refused
    assert _stored_objects(tmp_path / "state.db") == 0
