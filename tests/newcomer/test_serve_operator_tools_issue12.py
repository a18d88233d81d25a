"""Operator tooling of issue 12 through the CLI: the pre-commit hook this repository provides, and
click's shell completion of our command group."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from tests.helpers import REPO, make_project, run_cli

VALID = """
name: svc
work_pools:
  - name: local
    type: process
deployments:
  - name: hi
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""


def _hook() -> dict[str, object]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    [hook] = [h for h in hooks if h["id"] == "reconcile-validate"]
    return hook


def test_the_pre_commit_hook_runs_validate_on_prefect_yaml_changes(tmp_path: Path) -> None:
    hook = _hook()
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    pattern = re.compile(str(hook["files"]))
    assert pattern.search("prefect.yaml") and pattern.search("deploy/prefect.yaml")
    assert not pattern.search("prefect.yaml.bak") and not pattern.search("flows/hello.py")
    entry = shlex.split(str(hook["entry"]))
    assert entry[0] == "reconcile"  # the console script pre-commit's python environment installs
    good = make_project(tmp_path / "good", VALID)
    assert run_cli(*entry[1:], cwd=good).returncode == 0  # run at the repository root, no file names
    bad = make_project(tmp_path / "bad", VALID.replace("name: local}", "name: nowhere}"))
    checked = run_cli(*entry[1:], cwd=bad)
    assert checked.returncode == 1 and "nowhere" in checked.stdout + checked.stderr


def test_shell_completion_completes_commands_and_options_of_our_group() -> None:
    script = run_cli(env={"_RECONCILE_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_reconcile_completion" in script.stdout
    commands = run_cli(
        env={"_RECONCILE_COMPLETE": "bash_complete", "COMP_WORDS": "reconcile se", "COMP_CWORD": "1"}
    )
    assert "plain,serve" in commands.stdout.splitlines()
    options = run_cli(
        env={
            "_RECONCILE_COMPLETE": "bash_complete",
            "COMP_WORDS": "reconcile serve --log-format ",
            "COMP_CWORD": "3",
        }
    )
    assert options.stdout.splitlines() == ["plain,text", "plain,json"]
