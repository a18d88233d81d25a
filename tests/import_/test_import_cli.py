"""``reconcile import`` as users run it: what it prints, what --write changes, and that plan is clean after."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import QUICKSTART, REPO, run_cli

ECS_ENV = {
    "FLOW_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "FLOW_AWS_SECRET_ACCESS_KEY": "wJalr-very-secret-value",
    "ECS_CLUSTER": "prod",
    "FLOWS_IMAGE": "ghcr.io/acme/flows:1",
    "ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/exec",
}


def copy_example(name: str, tmp_path: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(REPO / "examples" / name, root, ignore=shutil.ignore_patterns(".reconcile"))
    return root


def cut(text: str, start: str, end: str | None) -> str:
    """``text`` without the lines from the one starting with ``start`` up to (not incl.) ``end``."""
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next((i for i, line in enumerate(lines) if end and line.startswith(end) and i > first), len(lines))
    return "".join(lines[:first] + lines[last:])


def assert_lines_kept(before: str, after: str) -> None:
    """Every line of ``before`` is in ``after``, in the same order."""
    remaining = iter(after.splitlines())
    for line in before.splitlines():
        assert any(candidate == line for candidate in remaining), f"lost or moved: {line!r}"


def test_import_writes_back_what_the_file_lost_and_plan_is_clean(tmp_path: Path) -> None:
    root = tmp_path / "qs"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconcile"))
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    full = (root / "prefect.yaml").read_text(encoding="utf-8")
    trimmed = cut(cut(full, "work_pools:", "deployments:"), "  - name: nightly", "  - name: greet")
    trimmed = trimmed.replace("deployments:\n", "# only greet is left here\ndeployments:\n")
    (root / "prefect.yaml").write_text(trimmed, encoding="utf-8")
    orphans = json.loads(run_cli("-C", str(root), "plan", "--json").stdout)
    assert orphans["summary"]["orphaned"] == 2

    shown = run_cli("-C", str(root), "import")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("work_pools:\n  - name: local\n    type: process\n")
    assert "deployments:\n  - name: nightly\n    entrypoint: flows/report.py:daily_report\n" in shown.stdout
    assert (root / "prefect.yaml").read_text(encoding="utf-8") == trimmed  # printing changes nothing

    written = run_cli("-C", str(root), "import", "--write")
    assert written.returncode == 0, written.stderr
    assert "Wrote 1 work pool and 1 deployment to" in written.stderr
    after = (root / "prefect.yaml").read_text(encoding="utf-8")
    assert_lines_kept(trimmed, after)
    assert after.index("work_pools:") < after.index("# only greet is left here")
    plan = run_cli("-C", str(root), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes" in plan.stdout
    again = run_cli("-C", str(root), "import")
    assert again.returncode == 0 and again.stdout == "" and "Nothing to import" in again.stderr


def test_secrets_come_back_as_their_placeholders_and_never_as_values(tmp_path: Path) -> None:
    root = copy_example("ecs", tmp_path)
    assert run_cli("-C", str(root), "apply", "--yes", env=ECS_ENV).returncode == 0
    text = (root / "prefect.yaml").read_text(encoding="utf-8")
    (root / "prefect.yaml").write_text(cut(text, "blocks:", "work_pools:"), encoding="utf-8")
    result = run_cli("-C", str(root), "import", "--write", env=ECS_ENV)
    assert result.returncode == 0, result.stderr
    after = (root / "prefect.yaml").read_text(encoding="utf-8")
    assert 'aws_secret_access_key: "{{ $FLOW_AWS_SECRET_ACCESS_KEY }}"' in after
    for output in (after, result.stdout, result.stderr):
        assert ECS_ENV["FLOW_AWS_SECRET_ACCESS_KEY"] not in output
    plan = run_cli("-C", str(root), "plan", "--detailed-exitcode", env=ECS_ENV)
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_a_deployment_whose_entrypoint_is_gone_is_written_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "qs"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconcile"))
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    text = (root / "prefect.yaml").read_text(encoding="utf-8")
    (root / "prefect.yaml").write_text(cut(text, "  - name: nightly", "  - name: greet"), encoding="utf-8")
    (root / "flows" / "report.py").unlink()
    result = run_cli("-C", str(root), "import", "--write")
    assert result.returncode == 0, result.stderr
    assert (
        "  - name: nightly\n    entrypoint: flows/report.py:daily_report\n"
        in (root / "prefect.yaml").read_text()
    )
    assert "warning: deployment.daily-report/nightly: written anyway" in result.stderr
    assert "flows/report.py does not exist" in result.stderr


def test_named_addresses_bring_what_they_need(tmp_path: Path) -> None:
    root = tmp_path / "qs"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconcile"))
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    (root / "prefect.yaml").write_text("name: quickstart\n", encoding="utf-8")
    result = run_cli("-C", str(root), "import", "deployment.hello/greet", "--write")
    assert result.returncode == 0, result.stderr
    assert "also importing work_pool.local: deployment.hello/greet needs it" in result.stderr
    after = (root / "prefect.yaml").read_text(encoding="utf-8")
    assert "name: greet" in after and "name: local" in after and "nightly" not in after


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deployment.nope/none",), "error: no deployment.nope/none in sqlite:///"),
        (("not-an-address",), "error: not an address: 'not-an-address'"),
    ],
)
def test_bad_addresses_are_one_line_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    root = tmp_path / "qs"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconcile"))
    result = run_cli("-C", str(root), "import", *args)
    assert result.returncode == 1 and result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_it_cannot_edit_is_left_untouched(tmp_path: Path) -> None:
    root = tmp_path / "qs"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconcile"))
    assert run_cli("-C", str(root), "apply", "--yes").returncode == 0
    text = (
        "name: quickstart\nwork_pools: [{name: local, type: process, concurrency_limit: 4}]\n"
        "deployments: [{name: greet, entrypoint: 'flows/hello.py:hello', work_pool: {name: local}}]\n"
    )
    (root / "prefect.yaml").write_text(text, encoding="utf-8")
    result = run_cli("-C", str(root), "import", "--write")
    assert result.returncode == 1
    assert "deployments: is not a block list" in result.stderr
    assert (root / "prefect.yaml").read_text(encoding="utf-8") == text


def test_without_a_file_import_creates_one(tmp_path: Path) -> None:
    root = tmp_path / "qs"
    shutil.copytree(QUICKSTART, root, ignore=shutil.ignore_patterns(".reconcile"))
    assert run_cli("-C", str(root), "--project", "quickstart", "apply", "--yes").returncode == 0
    (root / "prefect.yaml").unlink()
    result = run_cli("-C", str(root), "--project", "quickstart", "import", "--write")
    assert result.returncode == 0, result.stderr
    text = (root / "prefect.yaml").read_text(encoding="utf-8")
    assert text.startswith("name: quickstart\n\nwork_pools:\n")
    plan = run_cli("-C", str(root), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
