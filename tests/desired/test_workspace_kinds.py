"""Loading ``work_queues:``, ``variables:`` and ``concurrency_limits:`` (issue: the whole workspace as
code): canonical bodies with Prefect's defaults explicit, references ordered by ``depends_on``,
located errors, and no secret ever in a variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.load import load
from reconciler.desired.source import WorkingTree
from reconciler.errors import SpecError
from reconciler.objects import Address
from tests.helpers import make_project, run_cli

KEY = b"k" * 32

BASE = """
name: ws
work_pools:
  - name: local
    type: process
{extra}
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {{name: local, work_queue_name: {queue}}}
{deployment_extra}
"""


def _load(tmp_path: Path, extra: str, *, queue: str = "default", deployment_extra: str = "", **kw):
    text = BASE.format(extra=extra, queue=queue, deployment_extra=deployment_extra)
    root = make_project(tmp_path / "p", text)
    environ = kw.pop("environ", {})
    return load(WorkingTree(root), environ=environ, fingerprint_key=KEY, **kw)


def _messages(exc: pytest.ExceptionInfo[SpecError]) -> str:
    return "\n".join(str(d) for d in exc.value.diagnostics)


def test_each_kind_has_its_address_and_canonical_body(tmp_path: Path) -> None:
    desired = _load(
        tmp_path,
        """
work_queues:
  - {pool: local, name: critical, priority: 1, concurrency_limit: 2}
  - {pool: local, name: default, paused: true}
variables:
  - {name: api_base, value: {url: "https://x", retries: 3}, tags: [b, a, b]}
concurrency_limits:
  - {name: database, limit: 3}
""",
        queue="critical",
        deployment_extra="    global_concurrency_limit: database",
    )
    queue = desired.resources[Address.work_queue("local", "critical")]
    assert queue.body == {
        "pool": "local",
        "name": "critical",
        "description": "",
        "priority": 1,
        "concurrency_limit": 2,
        "paused": False,
    }
    assert queue.depends_on == (Address.pool("local"),)
    assert desired.resources[Address.work_queue("local", "default")].body["paused"] is True
    assert desired.resources[Address.variable("api_base")].body == {
        "name": "api_base",
        "value": {"url": "https://x", "retries": 3},
        "tags": ["a", "b"],
    }
    assert desired.resources[Address.concurrency_limit("database")].body == {
        "name": "database",
        "limit": 3,
        "active": True,
        "slot_decay_per_second": 0.0,
    }
    deployment = next(r for a, r in desired.resources.items() if a.kind.value == "deployment")
    assert deployment.body["global_concurrency_limit"] == "database"
    assert Address.concurrency_limit("database") in deployment.depends_on
    assert Address.work_queue("local", "critical") in deployment.depends_on


def test_a_deployment_without_a_global_limit_keeps_its_body(tmp_path: Path) -> None:
    """Stored bodies of existing deployments must not change on upgrade (no perpetual diff)."""
    desired = _load(tmp_path, "")
    deployment = next(r for a, r in desired.resources.items() if a.kind.value == "deployment")
    assert "global_concurrency_limit" not in deployment.body


def test_an_undeclared_queue_of_a_pool_with_declared_queues_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, "work_queues:\n  - {pool: local, name: critical}", queue="critcal")
    assert "unknown work queue 'critcal' of pool 'local'" in _messages(exc)
    assert "did you mean 'critical'?" in _messages(exc)


def test_queues_stay_implicit_when_the_file_declares_none(tmp_path: Path) -> None:
    """A file that never mentions queues (every public prefect.yaml) keeps working as in Prefect."""
    desired = _load(tmp_path, "", queue="anything")
    assert not [a for a in desired.resources if a.kind.value == "work_queue"]


def test_an_undeclared_global_limit_is_a_reference_checked_against_the_store(tmp_path: Path) -> None:
    desired = _load(tmp_path, "", deployment_extra="    global_concurrency_limit: elsewhere")
    problems = desired.unresolved_references(set())
    assert any("unknown concurrency limit 'elsewhere'" in str(p) for p in problems)
    assert desired.unresolved_references({Address.concurrency_limit("elsewhere")}) == []


def test_both_limits_on_one_deployment_are_refused_as_prefect_does(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        _load(
            tmp_path,
            "concurrency_limits:\n  - {name: db, limit: 1}",
            deployment_extra="    global_concurrency_limit: db\n    concurrency_limit: 2",
        )
    assert "either concurrency_limit or global_concurrency_limit" in _messages(exc)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("variables:\n  - {name: Bad Name, value: 1}", "may only contain lowercase letters"),
        ("variables:\n  - {name: ok}", "value"),
        ("concurrency_limits:\n  - {name: db, limit: -1}", "must be >= 0"),
        ("work_queues:\n  - {pool: local, name: q, priority: 0}", "must be >= 1"),
        ("work_queues:\n  - {pool: local, name: q, colour: red}", "colour"),
        ("work_queues:\n  - {pool: local, name: q}\n  - {pool: local, name: q}", "duplicate work queue"),
        ("variables:\n  - {name: big, value: '" + "x" * 5001 + "'}", "longer than Prefect's 5000"),
    ],
)
def test_bad_items_are_located_errors(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, extra)
    assert expected in _messages(exc)
    assert all(d.line > 1 for d in exc.value.diagnostics)


@pytest.mark.parametrize("env", [{}, {"API_TOKEN": "s3cr3t-value"}])
def test_a_variable_from_a_sensitive_placeholder_is_refused_even_by_validate(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Variables are readable by anyone with API access: set or unset, a non-public placeholder is
    an error at validate (not the warning validate gives elsewhere), and its value is never shown."""
    root = make_project(
        tmp_path / "p",
        BASE.format(
            extra='variables:\n  - {name: token, value: "{{ $API_TOKEN }}"}',
            queue="default",
            deployment_extra="",
        ),
    )
    result = run_cli("-C", str(root), "validate", env=env)
    assert result.returncode == 1
    assert "prefect.yaml:6:" in result.stderr
    assert "variable 'token': $API_TOKEN is not a public environment variable" in result.stderr
    assert "s3cr3t-value" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    allowed = run_cli("-C", str(root), "--public-env", "API_TOKEN", "validate", env={"API_TOKEN": "shown"})
    assert allowed.returncode == 0, allowed.stderr
    assert "1 variable," in allowed.stdout


def test_apply_then_plan_is_a_no_op_and_pruning_a_queue_deletes_only_it(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        BASE.format(
            extra="work_queues:\n  - {pool: local, name: critical, priority: 1}\n"
            "variables:\n  - {name: v, value: [1, 2]}\nconcurrency_limits:\n  - {name: db, limit: 1}",
            queue="critical",
            deployment_extra="",
        ),
    )
    applied = run_cli("-C", str(root), "apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 5 created" in applied.stdout
    again = run_cli("-C", str(root), "plan")
    assert "0 to create, 0 to update, 0 to replace, 0 to delete, 5 unchanged" in again.stdout
    text = (root / "prefect.yaml").read_text().replace("variables:\n  - {name: v, value: [1, 2]}\n", "")
    (root / "prefect.yaml").write_text(text)
    pruned = run_cli("-C", str(root), "apply", "--yes", "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "- variable.v" in pruned.stdout
    assert "1 deleted" in pruned.stdout


def test_two_queues_of_a_pool_may_not_ask_for_one_priority(tmp_path: Path) -> None:
    """Prefect renumbers the others when a queue takes a taken priority: such a file never converges."""
    with pytest.raises(SpecError) as exc:
        _load(
            tmp_path,
            "work_queues:\n  - {pool: local, name: a, priority: 2}\n  - {pool: local, name: b, priority: 2}",
        )
    assert "work queues 'a' and 'b' of pool 'local' both ask for priority 2" in _messages(exc)
    other_pools = (
        "work_queues:\n  - {pool: local, name: a, priority: 2}\n  - {pool: remote, name: b, priority: 2}"
    )
    assert _load(tmp_path / "ok", other_pools).resources


def test_the_default_queue_keeps_prefects_description_unless_the_file_sets_one(tmp_path: Path) -> None:
    desired = _load(tmp_path, "work_queues:\n  - {pool: local, name: default, concurrency_limit: 4}")
    body = desired.resources[Address.work_queue("local", "default")].body
    assert body["description"] == "The work pool's default queue."
