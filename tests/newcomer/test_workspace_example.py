"""examples/workspace, the project that uses every kind, as a newcomer runs it on SQLite: it validates,
apply-then-plan is a no-op, and a file that lost its workspace sections gets them back from
``import --write`` with the plan still clean."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler.objects import Address, Kind
from tests.helpers import REPO, run_cli

EXAMPLE = REPO / "examples" / "workspace"
WORKSPACE_SECTIONS = ("variables:", "concurrency_limits:", "work_queues:", "automations:")


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".reconcile", "__pycache__"))
    return root


def test_the_example_declares_every_kind_and_references_them_by_name(project: Path) -> None:
    desired = desired_state.load(desired_state.WorkingTree(project), environ={}, fingerprint_key=b"k" * 32)
    kinds = {address.kind for address in desired.resources}
    assert kinds == set(Kind) - {Kind.BLOCK}  # blocks: the other examples show them
    load = desired.resources[Address.deployment("load-warehouse", "load-warehouse")]
    assert load.body["global_concurrency_limit"] == "warehouse"
    assert load.body["parameters"]["region"] == "{{ prefect.variables.warehouse_region }}"  # read at launch
    assert load.body["work_pool"]["work_queue_name"] == "critical"
    automation = desired.resources[Address.automation("report-after-load")]
    assert automation.depends_on == (Address.deployment("send-report", "send-report"),)
    validated = run_cli("-C", str(project), "validate")
    assert validated.returncode == 0, validated.stderr


def test_apply_then_plan_is_a_no_op_on_sqlite(project: Path) -> None:
    applied = run_cli("-C", str(project), "apply", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 9 created." in applied.stdout
    again = run_cli("-C", str(project), "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout


@pytest.mark.slow
def test_the_variable_reaches_the_run_and_serve_runs_the_automation_on_sqlite(project: Path) -> None:
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    load = run_cli("-C", str(project), "run", "load-warehouse/load-warehouse", "--wait", "--timeout", "90")
    assert load.returncode == 0, load.stdout + load.stderr
    assert "loading 500 rows into the eu-west-1 warehouse" in load.stdout  # {{ prefect.variables.… }}

    served = run_cli("-C", str(project), "serve", "--once", timeout=180)
    assert served.returncode == 0, served.stderr
    assert "automation report-after-load fired on the end of run" in served.stderr
    for _ in range(60):  # serve follows the launched run to its end, one pass at a time
        runs = json.loads(run_cli("-C", str(project), "runs", "--json").stdout)
        report = [r for r in runs if r["deployment"] == "send-report/send-report"]
        if report and report[0]["state"] not in ("SCHEDULED", "PENDING", "RUNNING"):
            break
        run_cli("-C", str(project), "serve", "--once", "--lookback", "0", timeout=180)
    assert len(report) == 1  # fired once, however many passes saw the load's end
    assert report[0]["state"] == "COMPLETED", report
    assert report[0]["parameters"] == {"audience": "warehouse-team"}


def test_import_writes_back_the_workspace_sections_a_file_lost(project: Path) -> None:
    assert run_cli("-C", str(project), "apply", "--yes").returncode == 0
    full = (project / "prefect.yaml").read_text(encoding="utf-8")
    trimmed = _without_sections(full, WORKSPACE_SECTIONS)
    (project / "prefect.yaml").write_text(trimmed, encoding="utf-8")
    orphans = json.loads(run_cli("-C", str(project), "plan", "--json").stdout)
    assert orphans["summary"]["orphaned"] == 6  # 2 variables, 1 limit, 2 queues, 1 automation

    written = run_cli("-C", str(project), "import", "--write")
    assert written.returncode == 0, written.stderr
    assert "Wrote 2 variables, 1 concurrency limit, 2 work queues and 1 automation to" in written.stderr
    after = (project / "prefect.yaml").read_text(encoding="utf-8")
    assert after.startswith(trimmed.split("work_pools:")[0])  # the header and its comments kept
    positions = [after.index(s) for s in ("variables:", "concurrency_limits:", "work_pools:", "work_queues:")]
    assert positions == sorted(positions)  # new sections in apply order, around the existing ones
    assert "deployment: send-report/send-report" in after  # by address, never an id
    plan = run_cli("-C", str(project), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes" in plan.stdout


def _without_sections(text: str, keys: tuple[str, ...]) -> str:
    """``text`` without the top-level sections ``keys`` (and the comment lines just above each)."""
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    skipping = False
    for line in lines:
        top = bool(line.strip()) and not line[0].isspace() and not line.startswith("#")
        if top:
            skipping = line.startswith(keys)
            if skipping:
                while kept and kept[-1].startswith("#"):
                    kept.pop()
        if not skipping:
            kept.append(line)
    return "".join(kept)


def test_the_readme_example_of_the_workspace_sections_loads(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The rest of the workspace", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    root = tmp_path / "readme"
    shutil.copytree(EXAMPLE / "flows", root / "flows")
    (root / "prefect.yaml").write_text("name: readme\n" + snippet, encoding="utf-8")
    desired = desired_state.load(desired_state.WorkingTree(root), environ={}, fingerprint_key=b"k" * 32)
    assert {address.kind for address in desired.resources} == set(Kind) - {Kind.BLOCK}
    assert desired.resources[Address.work_queue("local", "default")].body["paused"] is True
    # the automation runs a deployment the snippet does not declare: checked against the store at plan
    assert [r.target for r in desired.external_references] == [
        Address.deployment("send-report", "send-report")
    ]
