"""Placeholders are validated like the literals they stand for (issue 9 item 9, issue 10 ``validate``).

A ``{{ $NAME }}`` is resolved first (Prefect's rule: text substitution) and the value is then checked by
the same rules as a literal in the same place, at plan time, pointing at the placeholder. ``validate``
needs no environment: unset variables are "not checked" warnings there, errors at plan/apply.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler.errors import SpecError
from reconciler.objects import Address
from tests.helpers import make_project, run_cli

SCHEDULED = """\
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    schedules:
      - interval: "{{ $IVL }}"
        timezone: "{{ $TZ }}"
      - cron: "{{ $CRON }}"
"""
PUBLIC = {"RECONCILE_PUBLIC_ENV": "IVL TZ CRON"}


def test_an_interval_from_a_placeholder_is_stored_as_its_value(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SCHEDULED)
    env = {**PUBLIC, "IVL": "PT1H", "TZ": "Europe/Berlin", "CRON": "0 6 * * *"}
    result = run_cli("-C", str(project), "plan", "--json", env=env)
    assert result.returncode == 0, result.stderr
    (change,) = json.loads(result.stdout)["changes"]
    schedules = change["after"]["schedules"]
    assert schedules["interval-1"]["interval"] == 3600  # was 0 whatever IVL said
    assert schedules["interval-1"]["timezone"] == "Europe/Berlin"
    assert schedules["cron-1"]["cron"] == "0 6 * * *"


@pytest.mark.parametrize(
    ("override", "where", "message"),
    [
        ({"IVL": "soon"}, "prefect.yaml:5:19:", "interval"),
        ({"IVL": "-PT1H"}, "prefect.yaml:5:19:", "interval"),
        ({"TZ": "Mars/Olympus"}, "prefect.yaml:6:19:", "unknown time zone"),
        ({"CRON": "61 25 * * *"}, "prefect.yaml:7:15:", "invalid cron expression"),
    ],
)
def test_a_bad_value_from_a_placeholder_fails_the_plan_at_the_placeholder(
    tmp_path: Path, override: dict[str, str], where: str, message: str
) -> None:
    project = make_project(tmp_path / "p", SCHEDULED)
    env = {**PUBLIC, "IVL": "PT1H", "TZ": "UTC", "CRON": "0 6 * * *", **override}
    for command in ("plan", "apply"):
        result = run_cli("-C", str(project), command, "--yes" if command == "apply" else "--json", env=env)
        assert result.returncode == 1, result.stdout
        assert any(line.startswith(where) and message in line for line in result.stderr.splitlines()), (
            result.stderr
        )
    assert (
        not (project / ".reconcile" / "state.db").exists()
        or "hello/greet" not in run_cli("-C", str(project), "state", "list").stdout
    )


def test_a_bad_hidden_value_is_reported_without_printing_it(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        work_pools:
          - name: local
            type: process
            job_variables: {stream_output: "{{ $STREAM }}"}
        deployments:
          - {name: greet, entrypoint: flows/hello.py:hello, work_pool: {name: local}}
        """,
    )
    secret = "not-a-boolean-Zx81"
    result = run_cli("-C", str(project), "plan", env={"STREAM": secret})
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:4:36:"), result.stderr
    assert secret not in result.stdout + result.stderr
    good = run_cli("-C", str(project), "plan", env={"STREAM": "true"})
    assert good.returncode == 0, good.stderr
    assert "stream_output = (sensitive)" in good.stdout


def _load(root: Path, environ: dict[str, str], *, strict_env: bool) -> desired_state.Desired:
    return desired_state.load(
        desired_state.WorkingTree(root), environ=environ, fingerprint_key=b"k" * 32, strict_env=strict_env
    )


def test_validate_needs_no_environment_but_plan_does(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        work_pools:
          - {name: local, type: process, concurrency_limit: 2}
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            parameters: {name: "{{ $WHO }}"}
            work_pool: {name: local, job_variables: {stream_output: "{{ $STREAM }}"}}
            schedules: [{interval: "{{ $IVL }}"}]
        """,
    )
    checked = _load(root, {}, strict_env=False)
    assert Address.deployment("hello", "greet") in checked.resources
    assert checked.warnings == (
        "prefect.yaml:6:24: warning: not checked: $WHO unset",
        "prefect.yaml:7:61: warning: not checked: $STREAM unset",
        "prefect.yaml:8:28: warning: not checked: $IVL unset",
    )
    with pytest.raises(SpecError) as caught:
        _load(root, {}, strict_env=True)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3, lines  # one error per placeholder; the checks do not judge the template text
    assert all("environment variable" in line and "is not set" in line for line in lines)


def test_validate_still_reports_real_problems_next_to_unchecked_placeholders(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            parameters: {name: "{{ $WHO }}"}
            schedules: [{cron: "61 25 * * *"}]
        """,
    )
    with pytest.raises(SpecError) as caught:
        _load(root, {}, strict_env=False)
    assert str(caught.value).startswith("prefect.yaml:5:")
    assert "invalid cron expression" in str(caught.value)


def test_validate_warns_about_a_value_plan_will_refuse_to_show(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            tags: ["{{ $TEAM }}"]
        """,
    )
    checked = _load(root, {"TEAM": "data"}, strict_env=False)
    assert checked.warnings == (
        "prefect.yaml:4:12: warning: $TEAM is not a public environment variable, and this field is shown "
        "as it is in plans: allow it with --public-env (or RECONCILE_PUBLIC_ENV) if its value may be "
        "shown, else write the value in the file",
    )
    with pytest.raises(SpecError, match=r"^prefect\.yaml:4:12: \$TEAM is not a public"):
        _load(root, {"TEAM": "data"}, strict_env=True)
