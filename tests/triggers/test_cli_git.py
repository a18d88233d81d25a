"""``--ref``, recorded commits, rollback refusal and ``trigger push`` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.triggers.conftest import GitRepo, invoke, wait_runs

PROJECT = """
name: gitops
work_pools:
  - {name: local, type: process}
deployments:
  - name: daily
    entrypoint: flows/etl/etl.py:etl
    parameters: {rows: ROWS}
    work_pool: {name: local}
    run_on:
      - push: {branches: [main], paths: ["flows/etl/**"]}
  - name: nightly
    entrypoint: flows/report.py:report
    version: "1"  # pinned: an edit of its flow file changes no object (else the version is its hash)
    work_pool: {name: local}
    run_on:
      - push: {paths: ["flows/report.py", "!flows/*.md"]}
"""
ETL = """
def etl(rows: int = 1):
    print("etl", rows)
"""
REPORT = """
def report():
    print("report")
"""


def _project(rows: int) -> dict[str, str]:
    return {"prefect.yaml": PROJECT.replace("ROWS", str(rows)), ".gitignore": ".reconcile/\n"}


@pytest.fixture
def gitops(repo: GitRepo) -> GitRepo:
    repo.commit("first", {**_project(1), "flows/etl/etl.py": ETL, "flows/report.py": REPORT})
    return repo


def cli(repo: GitRepo, *args: str) -> tuple[int, str, str]:
    return invoke(repo.root, *args)


def test_plan_and_validate_read_the_desired_state_at_a_ref(gitops: GitRepo) -> None:
    c1 = gitops.head()
    gitops.commit(
        "rename the flow and change rows",
        {
            **_project(5),
            "flows/etl/etl.py": "from prefect import flow\n\n\n@flow(name='extract')\n" + ETL.lstrip(),
        },
    )
    gitops.write({"prefect.yaml": "this: [is not valid"})  # the disk is broken; refs are not

    code, out, err = cli(gitops, "plan", "--ref", c1, "--json")
    assert code == 0, err
    old = json.loads(out)
    assert old["source"]["git"] == {"commit": c1, "ref": None, "dirty": False}
    assert {c["address"] for c in old["changes"]} >= {"deployment.etl/daily"}
    code, out, err = cli(gitops, "plan", "--ref", "main", "--json")
    assert code == 0, err
    new = json.loads(out)
    daily = next(c for c in new["changes"] if c["name"] == "extract/daily")  # flow file read at the ref
    assert daily["after"]["parameters"] == {"rows": 5}
    assert new["source"]["git"]["ref"] == "main"

    code, out, _ = cli(gitops, "validate", "--ref", "HEAD~1")
    assert code == 0 and "is valid" in out
    code, out, err = cli(gitops, "plan", "--ref", "no-such-branch")
    assert code == 1 and err.strip().startswith("error: unknown Git ref 'no-such-branch'") and not out
    assert "Traceback" not in err


def test_apply_records_the_commit_and_refuses_rollbacks(gitops: GitRepo) -> None:
    c1 = gitops.head()
    code, out, err = cli(gitops, "apply", "--yes")  # the working tree, clean at c1
    assert code == 0, err
    c2 = gitops.commit("rows 2", _project(2))
    code, out, err = cli(gitops, "apply", "--ref", c2, "--yes")
    assert code == 0, err
    state = json.loads(cli(gitops, "state", "list", "--json")[1])
    assert state["last_commit"] == c2
    history = json.loads(cli(gitops, "history", "--json")[1])
    assert [h["commit"] for h in history] == [c2, c1]

    code, out, _ = cli(gitops, "plan", "--ref", c1)
    assert code == 0 and f"commit {c1[:12]} is behind the last applied commit {c2[:12]}" in out
    code, out, err = cli(gitops, "apply", "--ref", c1, "--yes")
    assert code == 1 and "refusing to apply commit" in err and "--allow-rollback" in err
    assert json.loads(cli(gitops, "state", "list", "--json")[1])["last_commit"] == c2  # untouched
    code, out, err = cli(gitops, "apply", "--ref", c1, "--yes", "--allow-rollback")
    assert code == 0, err
    assert json.loads(cli(gitops, "state", "list", "--json")[1])["last_commit"] == c1

    # nothing to change still moves the recorded commit forward (the state is at that commit now)
    c3 = gitops.commit("docs only", {"README.md": "hello\n"})
    code, out, err = cli(gitops, "apply", "--ref", c3, "--yes", "--allow-rollback")
    assert code == 0, err
    code, out, err = cli(gitops, "apply", "--ref", c3)  # no changes: no confirmation needed
    assert code == 0, err
    assert json.loads(cli(gitops, "state", "list", "--json")[1])["last_commit"] == c3


def test_plan_notes_a_dirty_working_tree(gitops: GitRepo) -> None:
    (gitops.root / "prefect.yaml").write_text(PROJECT.replace("ROWS", "7"), encoding="utf-8")
    code, out, err = cli(gitops, "plan")
    assert code == 0, err
    assert "working tree dirty" in out and "uncommitted changes" in out
    code, out, err = cli(gitops, "plan", "--json")
    assert json.loads(out)["source"]["git"]["dirty"] is True and "uncommitted changes" in err


def test_trigger_push_applies_and_launches_exactly_the_matching_runs(gitops: GitRepo) -> None:
    zero = "0" * 40
    c1 = gitops.head()
    code, out, err = cli(
        gitops, "trigger", "push", "--before", zero, "--after", c1, "--branch", "main", "--yes"
    )
    assert code == 0, out + err
    assert "Apply complete: 3 created." in out
    assert "Launched run" in out and out.count("Launched run") == 2  # a root commit: every file is new

    c2 = gitops.commit("etl change", {"flows/etl/etl.py": ETL + "\n# tweak\n", "flows/NOTES.md": "x\n"})
    code, out, err = cli(
        gitops, "trigger", "push", "--before", c1, "--after", c2, "--branch", "main", "--yes"
    )
    assert code == 0, out + err
    assert "push: flows/etl/** matched flows/etl/etl.py on main" in out
    assert "of report/nightly skips: no changed path matches" in out
    assert out.count("Launched run") == 1

    again = cli(gitops, "trigger", "push", "--before", c1, "--after", c2, "--branch", "main", "--yes")
    assert again[0] == 0 and "Already launched for this commit" in again[1] and "Launched run" not in again[1]
    wait_runs(gitops.root)  # process runs execute the checkout: let them finish before it moves on

    # a rename out of flows/etl/ still fires the etl rule (its old path changed), on another branch not
    c3 = gitops.commit(
        "move",
        rename={"flows/etl/etl.py": "flows/etl2.py"},
        files={
            "prefect.yaml": PROJECT.replace("ROWS", "1").replace("flows/etl/etl.py:etl", "flows/etl2.py:etl"),
        },
    )
    code, out, err = cli(gitops, "trigger", "push", "--before", c2, "--after", c3, "--branch", "dev", "--yes")
    assert code == 0, out + err
    assert "branch dev is not in branches ['main']" in out and "Launched run" not in out
    c4 = gitops.commit("report", {"flows/report.py": REPORT + "\n# v2\n"})
    code, out, err = cli(
        gitops, "trigger", "push", "--before", c3, "--after", c4, "--branch", "main", "--yes"
    )
    assert code == 0, out + err
    assert "push: flows/report.py matched flows/report.py" in out and out.count("Launched run") == 1

    wait_runs(gitops.root)
    listed = json.loads(cli(gitops, "runs", "--json")[1])
    assert len(listed) == 4 and {r["state"] for r in listed} == {"COMPLETED"}, [
        (r["deployment"], r["message"], Path(r["log_path"]).read_text())
        for r in listed
        if r["state"] != "COMPLETED"
    ]
    reasons = sorted(r["reason"] for r in listed)
    assert reasons[0].startswith("push: ") and all(r.startswith("push: ") for r in reasons)
    history = json.loads(cli(gitops, "history", "--json")[1])
    assert history[0]["commit"] == c3  # c4 changed no object: no history row, but recorded below
    assert json.loads(cli(gitops, "state", "list", "--json")[1])["last_commit"] == c4

    code, out, err = cli(
        gitops, "trigger", "push", "--before", c3, "--after", c1, "--branch", "main", "--yes"
    )
    assert code == 1 and "refusing to apply commit" in err


def test_trigger_push_as_a_process_without_yes_is_refused(gitops: GitRepo, tmp_path: Path) -> None:
    done = run_cli("-C", str(gitops.root), "trigger", "push", "--before", "0" * 40, "--after", "HEAD")
    code, out, err = done.returncode, done.stdout, done.stderr
    assert code == 1 and err.startswith("error: ") and "pass --yes" in err and "Traceback" not in err
    assert "No runs" not in out and not (gitops.root / ".reconcile" / "runs").exists()
