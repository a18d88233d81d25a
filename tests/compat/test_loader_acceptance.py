"""Issue 10 part 1 through the CLI: what Prefect accepts, with the same meaning, and every problem at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import make_project, run_cli

FLOW = "def hello(name: str = 'x'):\n    return name\n"


def _project(tmp_path: Path, text: str, flows: dict[str, str] | None = None) -> Path:
    return make_project(tmp_path / "p", text, flows or {"flows/hello.py": FLOW})


def test_an_empty_schedule_stanza_is_no_schedule(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        "deployments:\n  - name: d\n    entrypoint: flows/hello.py:hello\n    schedule: {}\n"
        "  - name: e\n    entrypoint: flows/hello.py:hello\n    schedule: {}\n"
        "    schedules: [{}, {cron: '0 6 * * *', slug: six}]\n",
    )
    result = run_cli("-C", str(project), "plan", "--json")
    assert result.returncode == 0, result.stderr
    bodies = {c["address"]: c["after"] for c in json.loads(result.stdout)["changes"]}
    assert bodies["deployment.hello/d"]["schedules"] in ({}, [])
    assert list(bodies["deployment.hello/e"]["schedules"]) == ["six"]


def test_placeholder_entries_are_skipped_with_a_warning_at_their_line(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        "deployments:\n"
        "  - name:\n    entrypoint:\n    schedule: {}\n"  # prefect init's template entry
        "  - name: half\n    entrypoint:\n"
        "  - name: real\n    entrypoint: flows/hello.py:hello\n",
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 0, result.stderr
    assert "1 deployment " in result.stdout
    assert "prefect.yaml:2:5: warning: a deployment entry has no name: skipped" in result.stderr
    assert "prefect.yaml:5:5: warning: deployment 'half' has no entrypoint: skipped" in result.stderr


def test_only_placeholders_is_an_error(tmp_path: Path) -> None:
    project = _project(tmp_path, "deployments:\n  - name:\n    entrypoint:\n")
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:1:1: nothing to deploy")


@pytest.mark.parametrize(
    "text", ["", "# just a comment\n", "name: proj\n", "prefect-version: 3.1.0\npull: null\n"]
)
def test_an_empty_or_declaration_free_file_is_an_error_at_line_1(tmp_path: Path, text: str) -> None:
    project = _project(tmp_path, text)
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:1:1: the file declares nothing"), result.stderr


def test_an_explicitly_empty_project_is_allowed(tmp_path: Path) -> None:
    result = run_cli("-C", str(_project(tmp_path, "name: proj\ndeployments: []\n")), "validate")
    assert result.returncode == 0, result.stderr


def test_module_path_entrypoints_are_read_not_imported(tmp_path: Path) -> None:
    boom = "raise SystemExit('imported!')\n\nfrom prefect import flow\n\n\n@flow(name='Daily')\ndef daily():\n    pass\n"
    project = _project(
        tmp_path,
        "deployments:\n  - name: a\n    entrypoint: jobs.daily:daily\n  - name: b\n    entrypoint: jobs.daily.daily\n",
        {"jobs/__init__.py": "", "jobs/daily.py": boom},
    )
    result = run_cli("-C", str(project), "plan", "--json")
    assert result.returncode == 0, result.stderr
    addresses = {c["address"] for c in json.loads(result.stdout)["changes"]}
    assert addresses == {"deployment.Daily/a", "deployment.Daily/b"}


@pytest.mark.parametrize(
    ("entrypoint", "expected"),
    [
        ("flows/hello.py", "must look like path/to/file.py:function or package.module:function"),
        ("jobs.missing:f", "module jobs.missing is not in the project"),
        ("flows.hello:nope", "function 'nope' not found in flows/hello.py"),
        ("not a module:f", "must look like path/to/file.py:function"),
    ],
)
def test_bad_entrypoints_say_what_is_wrong_without_a_regex(
    tmp_path: Path, entrypoint: str, expected: str
) -> None:
    project = _project(tmp_path, f"deployments:\n  - name: a\n    entrypoint: {entrypoint}\n")
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:3:17: ") and expected in result.stderr, result.stderr
    assert not re.search(r"\[A-Za-z|\\\.|\^\(", result.stderr)


def test_a_missing_flow_file_hides_nothing_else(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        "work_pools:\n  - {name: local, type: process}\n"
        "deployments:\n"
        "  - name: a\n    entrypoint: flows/missing.py:f\n"
        "    work_pool: {name: locl}\n"
        "    schedules: [{cron: '0 6 * * *', slug: s}, {interval: 60, slug: s}]\n"
        "  - name: b\n    entrypoint: flows/also_missing.py:g\n",
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any("flows/missing.py does not exist" in line for line in lines)
    assert any("flows/also_missing.py does not exist" in line for line in lines)
    assert any("unknown work pool 'locl'" in line for line in lines)
    assert any("two schedules have the slug 's'" in line for line in lines)


def test_a_refused_shape_hides_neither_the_flow_nor_the_schedules(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        "deployments:\n  - name: a\n    entrypoint: flows/missing.py:f\n"
        "    schedules: [{cron: bogus}, {interval: 60, timezone: Mars/Base}]\n"
        "    work_pool: {name: 'p&q'}\n",
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "prefect.yaml:3:17: entrypoint file flows/missing.py does not exist in the project",
        "prefect.yaml:4:24: deployments[0].schedules[0].cron: invalid cron expression 'bogus'",
        "prefect.yaml:4:57: deployments[0].schedules[1].timezone: unknown time zone 'Mars/Base'",
        "prefect.yaml:5:23: deployments[0].work_pool.name: may not contain / % & > <, a newline or any other control character",
    ]


def test_a_computed_flow_name_is_a_warning_at_the_entrypoint(tmp_path: Path) -> None:
    flow = "import os\nfrom prefect import flow\n\n\n@flow(name=os.environ['X'])\ndef computed_one():\n    pass\n"
    project = _project(
        tmp_path,
        "deployments:\n  - name: a\n    entrypoint: flows/c.py:computed_one\n",
        {"flows/c.py": flow},
    )
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 0, result.stderr
    assert "prefect.yaml:3:5: warning: the flow's name is computed in flows/c.py:5" in result.stderr
    assert "'computed-one'" in result.stderr


def test_flow_files_are_read_as_python_reads_them(tmp_path: Path) -> None:
    """A byte-order mark is fine (Python accepts it); bytes that are not UTF-8 are a located error."""
    project = _project(
        tmp_path,
        "deployments:\n  - name: a\n    entrypoint: bom.py:bom\n  - name: b\n    entrypoint: latin.py:latin\n",
        {"flows/hello.py": FLOW},
    )
    (project / "bom.py").write_bytes(b"\xef\xbb\xbfdef bom():\n    pass\n")
    (project / "latin.py").write_bytes(b"# caf\xe9\ndef latin():\n    pass\n")
    result = run_cli("-C", str(project), "validate")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["prefect.yaml:5:17: latin.py: cannot read flow: not UTF-8 text"]
