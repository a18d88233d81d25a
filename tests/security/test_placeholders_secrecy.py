"""No value from the environment reaches any output unless the operator allows its name (issue 9 item 2).

Every ``{{ $NAME }}`` value is a Secret (template + fingerprint, shown as sensitive) unless the
operator lists NAME as public (``RECONCILE_PUBLIC_ENV`` / ``--public-env``, never the file); the
reconciler's own configuration variables cannot be read by a placeholder at all.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler.desired import templating
from reconciler.errors import SpecError, UsageError
from reconciler.objects import Address, Secret
from tests.helpers import make_project, run_cli

CANARY = "canary-Value-7d1e"  # an ordinary-looking value under an ordinary-looking name

PROJECT = """\
work_pools:
  - name: local
    type: process
    job_variables: {env: {STAGE: "{{ $STAGE }}"}}
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    description: "Greets {{ $GREETING }}"
    version: "{{ $RELEASE }}"
    parameters: {name: "{{ $WHO }}", nested: {deep: ["{{ $WHO }}"]}}
    work_pool: {name: local, job_variables: {working_dir: "{{ $WORKDIR }}"}}
"""
ENV = {
    "STAGE": CANARY + "-stage",
    "GREETING": CANARY + "-greeting",
    "RELEASE": CANARY + "-release",
    "WHO": CANARY + "-who",
    "WORKDIR": "/tmp",
}


def _outputs(project: Path, env: dict[str, str]) -> list[str]:
    texts = []
    for args in (["plan"], ["plan", "--json"], ["plan", "--markdown"], ["validate"]):
        result = run_cli("-C", str(project), *args, env=env)
        assert result.returncode in (0, 2), result.stderr
        texts += [result.stdout, result.stderr]
    return texts


def test_no_environment_value_reaches_plans_plan_files_or_the_store(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    outputs = _outputs(project, ENV)
    saved = run_cli("-C", str(project), "plan", "--out", str(tmp_path / "saved.plan"), env=ENV)
    assert saved.returncode == 0, saved.stderr
    outputs.append((tmp_path / "saved.plan").read_bytes().decode("utf-8", "replace"))
    applied = run_cli("-C", str(project), "apply", "--yes", env=ENV)
    assert applied.returncode == 0, applied.stderr
    outputs += [applied.stdout, applied.stderr]
    outputs += [run_cli("-C", str(project), "state", "list", "--json", env=ENV).stdout]
    outputs.append((project / ".reconcile" / "state.db").read_bytes().decode("latin-1"))
    for text in outputs:
        assert CANARY not in text
    planned = json.loads(run_cli("-C", str(project), "plan", "--json", env={**ENV, "WHO": "rotated"}).stdout)
    (change,) = [c for c in planned["changes"] if c["action"] == "update"]
    assert {f["path"] for f in change["fields"]} == {"parameters.name", "parameters.nested.deep"}
    assert all(f["sensitive"] and "before" not in f and "after" not in f for f in change["fields"])


def test_a_name_the_operator_lists_as_public_is_shown(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    shown = run_cli("-C", str(project), "plan", env={**ENV, "RECONCILE_PUBLIC_ENV": "GREETING, RELEASE"})
    assert shown.returncode == 0, shown.stderr
    assert f"Greets {CANARY}-greeting" in shown.stdout and f"{CANARY}-release" in shown.stdout
    assert f"{CANARY}-who" not in shown.stdout and f"{CANARY}-stage" not in shown.stdout


@pytest.mark.parametrize(
    "name",
    [
        "RECONCILE_STATE",
        "PREFECT_API_AUTH_STRING",
        "PREFECT_API_KEY",
        "PREFECT_CLOUD_API_KEY",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "RUNNER_TEMP",
        "AWS_SECRET_ACCESS_KEY",
        "AZURE_CLIENT_SECRET",
        "ARM_CLIENT_SECRET",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GCP_SERVICE_ACCOUNT_JSON",
        "CLOUDSDK_AUTH_ACCESS_TOKEN",
        "github_token",
    ],
)
def test_the_reconcilers_own_configuration_can_never_be_read(tmp_path: Path, name: str) -> None:
    project = make_project(
        tmp_path / "p",
        f"""
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            description: "{{{{ $DESC }}}} and {{{{ ${name} }}}}"
        """,
    )
    env = {name: CANARY, "DESC": "x", "RECONCILE_PUBLIC_ENV": "DESC"}
    for args in (["validate"], ["plan", "--markdown"], ["apply", "--yes"]):
        result = run_cli("-C", str(project), *args, env=env)
        assert result.returncode == 1
        assert result.stderr.startswith(f"prefect.yaml:4:18: {{{{ ${name} }}}}: {name} belongs to"), (
            result.stderr
        )
        assert CANARY not in result.stdout + result.stderr


def test_reserved_names_are_refused_in_pull_steps_too(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        pull:
          - prefect.deployments.steps.git_clone:
              repository: https://github.com/acme/flows
              access_token: "{{ $GITHUB_TOKEN }}"
        deployments:
          - {name: greet, entrypoint: flows/hello.py:hello}
        """,
    )
    result = run_cli("-C", str(project), "validate", env={"GITHUB_TOKEN": CANARY})
    assert result.returncode == 1
    assert result.stderr.startswith("prefect.yaml:4:21: {{ $GITHUB_TOKEN }}"), result.stderr


@pytest.mark.parametrize(
    ("field", "line", "col"),
    [
        ('name: "{{ $HIDDEN }}"', 2, 11),
        ('tags: ["{{ $HIDDEN }}"]', 4, 12),
        ('schedules: [{cron: "{{ $HIDDEN }}"}]', 4, 24),
        ('work_pool: {name: "{{ $HIDDEN }}"}', 4, 23),
    ],
)
def test_a_non_public_value_where_the_plan_shows_values_is_refused(
    tmp_path: Path, field: str, line: int, col: int
) -> None:
    lines = ["deployments:", "  - name: greet", "    entrypoint: flows/hello.py:hello"]
    if field.startswith("name:"):
        lines[1] = f"  - {field}"
    else:
        lines.append(f"    {field}")
    project = make_project(tmp_path / "p", "\n".join(lines) + "\n")
    result = run_cli("-C", str(project), "plan", env={"HIDDEN": "0 6 * * *"})
    assert result.returncode == 1
    assert f"prefect.yaml:{line}:{col}: $HIDDEN is not a public environment variable" in result.stderr
    assert "0 6 * * *" not in result.stdout + result.stderr


def test_public_env_names_come_from_the_operator() -> None:
    environ = {"RECONCILE_PUBLIC_ENV": "IMAGE, REGION  TIER", "IMAGE": "x"}
    assert templating.public_env_names(environ, ["STAGE", "A,B"]) == {
        "IMAGE",
        "REGION",
        "TIER",
        "STAGE",
        "A",
        "B",
    }
    assert templating.public_env_names({}) == frozenset()
    with pytest.raises(UsageError, match="GITHUB_TOKEN is the reconciler's own configuration"):
        templating.public_env_names({}, ["GITHUB_TOKEN"])
    with pytest.raises(UsageError, match="not a variable name"):
        templating.public_env_names({"RECONCILE_PUBLIC_ENV": "BAD-NAME"})


def _load(root: Path, environ: dict[str, str], **options: object) -> desired_state.Desired:
    return desired_state.load(
        desired_state.WorkingTree(root),
        environ=environ,
        fingerprint_key=b"k" * 32,
        **options,  # type: ignore[arg-type]
    )


def test_load_takes_public_names_and_makes_every_other_value_a_secret(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            description: "{{ $PLAIN_LOOKING }}"
            parameters: {a: "{{ $PLAIN_LOOKING }}", b: "{{ $SHOWN }}"}
        """,
    )
    env = {"PLAIN_LOOKING": "v1", "SHOWN": "v2"}
    body = _load(root, env, public_env=["SHOWN"]).resources[Address.deployment("hello", "greet")].body
    assert isinstance(body["description"], Secret) and body["description"].template == "{{ $PLAIN_LOOKING }}"
    assert isinstance(body["parameters"]["a"], Secret)
    assert body["parameters"]["b"] == "v2"
    hidden = _load(root, env).resources[Address.deployment("hello", "greet")].body
    assert isinstance(hidden["parameters"]["b"], Secret)


def test_a_check_that_quotes_a_hidden_value_has_it_redacted(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        """
        work_pools:
          - {name: local, type: process, job_variables: {stream_output: "{{ $FLAG }}"}}
        deployments:
          - {name: greet, entrypoint: flows/hello.py:hello}
        """,
    )
    with pytest.raises(SpecError) as caught:
        _load(root, {"FLAG": "s3cr3t-flag-value"})
    assert str(caught.value).startswith("prefect.yaml:2:")
    assert "s3cr3t-flag-value" not in str(caught.value)


def test_the_sqlite_store_keeps_only_the_fingerprint(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    assert run_cli("-C", str(project), "apply", "--yes", env=ENV).returncode == 0
    with sqlite3.connect(project / ".reconcile" / "state.db") as db:
        dump = "\n".join(db.iterdump())
    assert CANARY not in dump and "{{ $WHO }}" in dump


def test_hidden_values_are_cut_from_every_message() -> None:
    resolver = templating.EnvResolver({"LONG": "long-hidden-value", "SHORT": "0"}, lambda: b"k" * 32)
    resolver.substitute({"a": {"b": "{{ $LONG }}", "c": "{{ $SHORT }}"}})
    elsewhere = ("z", 1)
    assert resolver.redact("got 'long-hidden-value' here", elsewhere) == "got '{{ $LONG }}' here"
    assert resolver.redact("deployments[0] got 0", ("a", "c")) == "deployments[0] got {{ $SHORT }}"
    assert resolver.redact("deployments[0] got 0", elsewhere) == "deployments[0] got 0"


def test_public_context_real_files_use_stays_readable(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p",
        """
        pull:
          - prefect.deployments.steps.git_clone:
              repository: https://github.com/acme/flows
              commit_sha: "{{ $GITHUB_SHA }}"
        deployments:
          - name: greet
            entrypoint: flows/hello.py:hello
            version: "{{ $GITHUB_SHA }}"
            parameters: {region: "{{ $AWS_REGION }}"}
        """,
    )
    env = {"GITHUB_SHA": "0123abc" * 5, "AWS_REGION": "eu-west-1"}
    result = run_cli("-C", str(project), "plan", env=env)
    assert result.returncode == 0, result.stderr
    assert "0123abc" not in result.stdout and "eu-west-1" not in result.stdout  # sensitive by default
    assert "version = (sensitive)" in result.stdout


@pytest.mark.parametrize(
    "written",
    [
        r'"\x7b{ $GITHUB_TOKEN }}"',  # a YAML escape: the loaded value is "{{ $GITHUB_TOKEN }}"
        r'"\u007B\u007B $GITHUB_TOKEN }}"',
        '"{\\\n      { $GITHUB_TOKEN }}"',  # a double-quoted line continuation joins the braces
    ],
)
def test_a_placeholder_written_with_escapes_is_a_placeholder(tmp_path: Path, written: str) -> None:
    # Prefect resolves the loaded value, not the text: the file holds no "{{" anywhere
    project = make_project(
        tmp_path / "p",
        "deployments:\n  - name: greet\n    entrypoint: flows/hello.py:hello\n    description: "
        + written
        + "\n",
    )
    assert "{{" not in (project / "prefect.yaml").read_text(encoding="utf-8")
    for args in (["validate"], ["plan"]):
        result = run_cli("-C", str(project), *args, env={"GITHUB_TOKEN": CANARY})
        assert result.returncode == 1, result.stdout
        assert "GITHUB_TOKEN belongs to the reconciler's own configuration" in result.stderr
        assert CANARY not in result.stdout + result.stderr
