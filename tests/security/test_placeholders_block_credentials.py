"""A cloud SDK's credential variable may fill a credentials block's data — where the design's own
example reads it, and where the value stays a Secret — and nowhere else; the tool's own
configuration is out of reach everywhere."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import make_project, run_cli

BLOCK = """\
blocks:
  - type: aws-credentials
    name: prod
    data:
      aws_access_key_id: "{{ $AWS_ACCESS_KEY_ID }}"
      aws_secret_access_key: "{{ $AWS_SECRET_ACCESS_KEY }}"
      region_name: us-east-1
work_pools:
  - name: local
    type: process
deployments:
  - name: d
    entrypoint: flows/hello.py:hello
    description: DESCRIPTION
    work_pool: {name: local}
"""
ENV = {"AWS_ACCESS_KEY_ID": "AKIA-CANARY-1", "AWS_SECRET_ACCESS_KEY": "CANARY-secret-2"}


def test_the_design_example_block_plans_and_never_shows_the_values(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", BLOCK.replace("DESCRIPTION", "hello"))
    for fmt in ((), ("--json",), ("--markdown",)):
        done = run_cli("-C", str(project), "plan", *fmt, env=ENV)
        assert done.returncode == 0, done.stdout + done.stderr
        assert not any(v in done.stdout + done.stderr for v in ENV.values())


def test_a_cloud_credential_outside_block_data_is_refused(tmp_path: Path) -> None:
    for where in ("{{ $AWS_SECRET_ACCESS_KEY }}", "{{ $RECONCILE_STATE }}", "{{ $GITHUB_TOKEN }}"):
        project = make_project(tmp_path / where[5:-3], BLOCK.replace("DESCRIPTION", f'"{where}"'))
        done = run_cli(
            "-C", str(project), "plan", env={**ENV, "GITHUB_TOKEN": "ghs_CANARY", "RECONCILE_STATE": ""}
        )
        assert done.returncode == 1 and "can never read it" in done.stderr, done.stderr
        assert "CANARY" not in done.stdout + done.stderr


def test_the_tools_own_configuration_is_refused_inside_block_data_too(tmp_path: Path) -> None:
    text = BLOCK.replace('"{{ $AWS_ACCESS_KEY_ID }}"', '"{{ $GITHUB_TOKEN }}"').replace("DESCRIPTION", "x")
    project = make_project(tmp_path / "p", text)
    done = run_cli("-C", str(project), "plan", env={**ENV, "GITHUB_TOKEN": "ghs_CANARY"})
    assert (
        done.returncode == 1 and "GITHUB_TOKEN belongs to the reconciler's own configuration" in done.stderr
    )
