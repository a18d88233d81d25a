"""``desired_state.sandbox``: a pure transform to prefixed copies that never name a shared pool or deployment."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler import plan
from reconciler.errors import UsageError
from reconciler.objects import Address, Kind, LiveState
from tests.helpers import make_project

PROJECT = """
name: sbx
blocks:
  - type: aws-credentials
    name: shared
    data: {region_name: us-east-1}
work_pools:
  - name: local
    type: process
    job_variables: {env: {STAGE: dev}}
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local, job_variables: {env: {X: "1"}}}
    run_on:
      - watch: {paths: ["flows/**"]}
      - apply: changed
  - name: again
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""


@pytest.fixture
def desired(tmp_path: Path) -> desired_state.Desired:
    root = make_project(tmp_path / "p", PROJECT, {"flows/hello.py": "def hello():\n    pass\n"})
    return desired_state.load(desired_state.WorkingTree(root), environ={}, fingerprint_key=b"k" * 32)


def test_pools_and_deployments_are_prefixed_blocks_are_shared(desired: desired_state.Desired) -> None:
    sandboxed = desired_state.sandbox(desired, "dev")
    assert set(map(str, sandboxed.resources)) == {
        "block.aws-credentials/shared",
        "work_pool.dev-local",
        "deployment.hello/dev-greet",
        "deployment.hello/dev-again",
    }
    block = Address.block("aws-credentials", "shared")
    assert sandboxed.resources[block] == desired.resources[block]
    pool = sandboxed.resources[Address.pool("dev-local")]
    assert pool.body == desired.resources[Address.pool("local")].body


def test_deployments_point_at_the_prefixed_pools(desired: desired_state.Desired) -> None:
    sandboxed = desired_state.sandbox(desired, "dev")
    greet = sandboxed.resources[Address.deployment("hello", "dev-greet")]
    assert greet.body["name"] == "dev-greet"
    assert greet.body["work_pool"]["name"] == "dev-local"
    assert greet.body["work_pool"]["job_variables"] == {"env": {"X": "1"}}
    assert Address.pool("dev-local") in greet.depends_on
    assert Address.pool("local") not in greet.depends_on


def test_a_pool_the_file_does_not_declare_stays_shared(tmp_path: Path) -> None:
    """Without a work_pools section, pools are the store's: the sandbox runs on them, never copies them."""
    root = make_project(
        tmp_path / "p",
        """
        deployments:
          - {name: etl, entrypoint: flows/hello.py:hello, work_pool: {name: team-pool}}
        """,
        {"flows/hello.py": "def hello():\n    pass\n"},
    )
    desired = desired_state.load(desired_state.WorkingTree(root), environ={}, fingerprint_key=b"k" * 32)
    sandboxed = desired_state.sandbox(desired, "dev")
    etl = sandboxed.resources[Address.deployment("hello", "dev-etl")]
    assert etl.body["work_pool"]["name"] == "team-pool"
    assert [r.target for r in sandboxed.external_references] == [Address.pool("team-pool")]


def test_run_rules_move_with_their_deployments(desired: desired_state.Desired) -> None:
    sandboxed = desired_state.sandbox(desired, "dev")
    assert set(sandboxed.run_rules) == {
        Address.deployment("hello", "dev-greet"),
        Address.deployment("hello", "dev-again"),
    }
    kinds = [r.kind for r in sandboxed.run_rules[Address.deployment("hello", "dev-greet")]]
    assert kinds == [desired_state.RuleKind.WATCH, desired_state.RuleKind.APPLY]
    result = plan.diff(sandboxed, LiveState(url="memory://", serial=0))
    assert [r.deployment for r in result.runs] == ["hello/dev-greet"]


def test_the_input_is_not_changed(desired: desired_state.Desired) -> None:
    before = {a: dict(r.body) for a, r in desired.resources.items()}
    desired_state.sandbox(desired, "dev")
    assert {a: dict(r.body) for a, r in desired.resources.items()} == before


def test_a_sandbox_plan_creates_only_prefixed_objects(desired: desired_state.Desired) -> None:
    result = plan.diff(desired_state.sandbox(desired, "alice"), LiveState(url="memory://", serial=0))
    created = [c.address for c in result.writes if c.address.kind is not Kind.BLOCK]
    assert created and all(desired_state.in_sandbox(a, "alice") for a in created)


def test_in_sandbox() -> None:
    assert desired_state.in_sandbox(Address.pool("dev-local"), "dev")
    assert desired_state.in_sandbox(Address.deployment("etl", "dev-daily"), "dev")
    assert not desired_state.in_sandbox(
        Address.deployment("dev-etl", "daily"), "dev"
    )  # the flow name is not ours
    assert not desired_state.in_sandbox(Address.pool("devlocal"), "dev")
    assert not desired_state.in_sandbox(
        Address.block("aws-credentials", "dev-x"), "dev"
    )  # blocks are always shared


@pytest.mark.parametrize("prefix", ["", "-dev", "a/b", "dev name", "x" * 41, "dév"])
def test_bad_prefixes_are_usage_errors(desired: desired_state.Desired, prefix: str) -> None:
    with pytest.raises(UsageError, match="sandbox prefix"):
        desired_state.sandbox(desired, prefix)


WORKSPACE = """
name: sbx
work_pools:
  - name: local
    type: process
work_queues:
  - {pool: local, name: critical, priority: 1}
  - {pool: elsewhere, name: shared-queue}
variables:
  - {name: api_base, value: "https://example.com"}
concurrency_limits:
  - {name: db, limit: 2}
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local, work_queue_name: critical}
    global_concurrency_limit: db
automations:
  - name: chain
    trigger: {type: event, expect: [prefect.flow-run.Completed], posture: Reactive, threshold: 1}
    actions:
      - {type: run-deployment, deployment: hello/greet}
"""


def test_queues_move_with_their_pool_automations_are_prefixed_and_repointed(tmp_path: Path) -> None:
    """The sandbox never writes a shared object: a declared pool's queues and the file's automations
    get sandbox copies (an automation runs the sandbox's deployment, not the shared one), while
    variables and global concurrency limits stay shared like blocks."""
    root = make_project(tmp_path / "p", WORKSPACE, {"flows/hello.py": "def hello():\n    pass\n"})
    desired = desired_state.load(desired_state.WorkingTree(root), environ={}, fingerprint_key=b"k" * 32)
    sandboxed = desired_state.sandbox(desired, "dev")
    names = set(map(str, sandboxed.resources))
    assert {
        "work_queue.dev-local/critical",
        "work_queue.elsewhere/shared-queue",
        "variable.api_base",
        "concurrency_limit.db",
        "automation.dev-chain",
    } <= names
    queue = sandboxed.resources[Address.work_queue("dev-local", "critical")]
    assert queue.body["pool"] == "dev-local"
    assert queue.depends_on == (Address.pool("dev-local"),)
    automation = sandboxed.resources[Address.automation("dev-chain")]
    assert automation.body["name"] == "dev-chain"
    assert automation.body["actions"][0]["deployment"] == "deployment.hello/dev-greet"
    assert automation.depends_on == (Address.deployment("hello", "dev-greet"),)
    greet = sandboxed.resources[Address.deployment("hello", "dev-greet")]
    assert Address.work_queue("dev-local", "critical") in greet.depends_on
    assert desired_state.in_sandbox(Address.work_queue("dev-local", "critical"), "dev")
    assert not desired_state.in_sandbox(Address.work_queue("elsewhere", "shared-queue"), "dev")
    assert not desired_state.in_sandbox(Address.variable("dev-x"), "dev")
    assert Kind.VARIABLE in desired_state.SHARED_KINDS
