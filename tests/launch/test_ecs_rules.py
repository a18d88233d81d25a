"""ECS rules that moto alone would not catch: AWS's documented API rules and Prefect's worker behaviour.

* ListTasks: ``startedBy`` "must be the only filter" (the moto stand-in refuses the combination, as
  AWS may), so the launcher finds live tasks by ``startedBy`` alone and stopped ones client-side;
* ``auto_deregister_task_definition`` retires only the revision registered for the run, and only
  when no other run uses it;
* an OOM kill (137) or a Spot interruption is CRASHED; a user's ``requiresCompatibilities`` is kept;
  no task-level cpu/memory on EC2; ``family`` is checked; RunTask's 8192-character override limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from reconciler import pooltypes
from reconciler.errors import LaunchError
from reconciler.launch.ecs import taskdef
from reconciler.launch.ecs.launcher import EcsLauncher
from reconciler.state import RunState
from tests.fakes.moto_server import MotoStandIn, TaskScript
from tests.helpers import make_project, run_cli
from tests.launch.test_ecs import FAST, make_job

pytestmark = pytest.mark.cloud


@pytest.fixture
def cluster(moto: MotoStandIn) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    moto.create_cluster(name)
    return name


@pytest.fixture
def launcher() -> Iterator[EcsLauncher]:
    launcher = EcsLauncher(environ={}, retry_policy=FAST)
    yield launcher
    launcher.close()


# -- ListTasks -------------------------------------------------------------------------------------


def test_the_stand_in_refuses_started_by_with_another_filter(moto: MotoStandIn, cluster: str) -> None:
    ecs = moto.client("ecs")
    with pytest.raises(botocore.exceptions.ClientError, match="startedBy must be the only filter"):
        ecs.list_tasks(cluster=cluster, startedBy="reconcile-x", desiredStatus="RUNNING")
    assert ecs.list_tasks(cluster=cluster, startedBy="reconcile-x")["taskArns"] == []


def test_find_adopts_a_live_and_a_stopped_task_without_combining_filters(
    moto: MotoStandIn, cluster: str, launcher: EcsLauncher
) -> None:
    job = make_job(moto, cluster)
    infrastructure_id = launcher.submit(job)
    assert launcher.find(job) == infrastructure_id
    ref = taskdef.TaskRef.parse(infrastructure_id)
    moto.finish(ref.cluster, ref.task_arn, exit_code=0)
    moto.task(ref.cluster, ref.task_arn).desired_status = "STOPPED"

    fresh = EcsLauncher(environ={}, retry_policy=FAST)  # another process: nothing cached
    try:
        assert fresh.find(job) == infrastructure_id
    finally:
        fresh.close()
    assert moto.calls["RunTask"] == 1


# -- auto_deregister_task_definition -------------------------------------------------------------------


def _stop(moto: MotoStandIn, infrastructure_id: str, code: int = 0) -> None:
    ref = taskdef.TaskRef.parse(infrastructure_id)
    moto.finish(ref.cluster, ref.task_arn, exit_code=code)


def _status(moto: MotoStandIn, arn: str) -> str:
    return str(moto.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"])


def test_deregisters_the_revision_registered_for_the_run_once_no_other_run_uses_it(
    moto: MotoStandIn, cluster: str, launcher: EcsLauncher
) -> None:
    family = f"fam-{uuid.uuid4().hex[:8]}"
    pool = {"family": family, "auto_deregister_task_definition": True}
    first, second = make_job(moto, cluster, pool=pool), make_job(moto, cluster, pool=pool)
    first_id, second_id = launcher.submit(first), launcher.submit(second)  # the second reuses the revision
    assert moto.calls["RegisterTaskDefinition"] == 1
    arn = moto.client("ecs").describe_tasks(
        cluster=cluster, tasks=[taskdef.TaskRef.parse(first_id).task_arn]
    )["tasks"][0]["taskDefinitionArn"]

    _stop(moto, first_id)
    assert launcher.poll(first, first_id).state is RunState.COMPLETED
    assert _status(moto, arn) == "ACTIVE"  # the second run still uses it

    _stop(moto, second_id)
    assert launcher.poll(second, second_id).state is RunState.COMPLETED
    assert _status(moto, arn) == "ACTIVE"  # registered for the first run, not the second


def test_a_run_that_registered_the_revision_retires_it_when_alone(
    moto: MotoStandIn, cluster: str, launcher: EcsLauncher
) -> None:
    pool = {"family": f"fam-{uuid.uuid4().hex[:8]}", "auto_deregister_task_definition": True}
    job = make_job(moto, cluster, pool=pool)
    infrastructure_id = launcher.submit(job)
    arn = moto.started[-1][1]
    definition = moto.client("ecs").describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0][
        "taskDefinitionArn"
    ]
    _stop(moto, infrastructure_id)
    assert launcher.poll(job, infrastructure_id).state is RunState.COMPLETED
    assert _status(moto, definition) == "INACTIVE"


def test_another_process_running_the_revision_keeps_it_active(
    moto: MotoStandIn, cluster: str, launcher: EcsLauncher
) -> None:
    pool = {"family": f"fam-{uuid.uuid4().hex[:8]}", "auto_deregister_task_definition": True}
    mine = make_job(moto, cluster, pool=pool)
    mine_id = launcher.submit(mine)
    other_process = EcsLauncher(environ={}, retry_policy=FAST)
    try:
        other_process.submit(make_job(moto, cluster, pool=pool))  # reuses the latest equal revision
    finally:
        other_process.close()
    definition = moto.client("ecs").describe_tasks(cluster=cluster, tasks=[moto.started[0][1]])["tasks"][0][
        "taskDefinitionArn"
    ]
    _stop(moto, mine_id)
    assert launcher.poll(mine, mine_id).state is RunState.COMPLETED
    assert _status(moto, definition) == "ACTIVE"  # ECS lists the other run's task on it


# -- exits the infrastructure caused --------------------------------------------------------------------


@pytest.mark.parametrize(
    "script, words",
    [
        (
            TaskScript(
                exit_code=137,
                stop=True,
                container_reason="OutOfMemoryError: Container killed due to memory usage",
            ),
            "out of memory",
        ),
        (
            TaskScript(
                exit_code=143,
                stop=True,
                stop_code="SpotInterruption",
                stopped_reason="Your Spot Task was interrupted.",
            ),
            "SpotInterruption",
        ),
        (TaskScript(exit_code=137, stop=True), "killed by signal 9"),
    ],
)
def test_oom_kills_and_spot_interruptions_are_crashed_not_failed(
    moto: MotoStandIn, cluster: str, launcher: EcsLauncher, script: TaskScript, words: str
) -> None:
    moto.script = script
    job = make_job(moto, cluster)
    status = launcher.poll(job, launcher.submit(job))
    assert status.state is RunState.CRASHED and status.exit_code == script.exit_code
    assert words in status.message


# -- the task definition ---------------------------------------------------------------------------


def _wanted(moto: MotoStandIn, **pool: Any) -> dict[str, Any]:
    return taskdef.wanted_task_definition(make_job(moto, "c", pool=pool), region="us-east-1")


def test_a_users_requires_compatibilities_is_kept(moto: MotoStandIn) -> None:
    template = pooltypes.get("ecs:push").base_job_template()
    template["job_configuration"]["task_definition"]["requiresCompatibilities"] = ["EC2", "FARGATE"]
    job = make_job(moto, "c")
    rendered = (
        pooltypes.get("ecs:push")
        .with_template(template)
        .render(pool_variables={"image": "python:3.12-slim"}, deployment_variables={}, run_variables={})
    )
    body = taskdef.wanted_task_definition(
        type(job)(**{**job.__dict__, "configuration": rendered}), region="us-east-1"
    )
    assert body["requiresCompatibilities"] == ["EC2", "FARGATE"]
    assert body["networkMode"] == "awsvpc" and body["cpu"] == "1024"


def test_ec2_tasks_get_container_level_cpu_and_memory_only(moto: MotoStandIn) -> None:
    body = taskdef.wanted_task_definition(
        make_job(moto, "c", pool={"launch_type": "EC2"}, deployment={"cpu": None, "memory": None}),
        region="us-east-1",
    )
    assert "cpu" not in body and "memory" not in body and "requiresCompatibilities" not in body
    container = body["containerDefinitions"][0]
    assert (container["cpu"], container["memory"]) == (1024, 2048)
    fargate = _wanted(moto)
    assert (fargate["cpu"], fargate["memory"], fargate["requiresCompatibilities"]) == (
        "512",
        "1024",
        ["FARGATE"],
    )


def test_a_family_ecs_would_refuse_is_a_clear_error(moto: MotoStandIn) -> None:
    with pytest.raises(LaunchError, match="family must be 1 to 255 letters"):
        _wanted(moto, family="prod.flows")
    problems = pooltypes.get("ecs:push").validate_job_variables({"family": "a" * 256})
    assert [p.path for p in problems] == [("family",)]


def test_runtask_overrides_over_8192_characters_fail_before_the_call(
    moto: MotoStandIn, cluster: str, launcher: EcsLauncher
) -> None:
    job = make_job(moto, cluster, env={"BIG": "x" * 7000})
    with pytest.raises(LaunchError, match="over ECS's 8192"):
        launcher.submit(job)
    assert moto.calls["RunTask"] == 0


# -- validation ------------------------------------------------------------------------------------


def test_cloudwatch_logs_without_an_execution_role_is_caught_at_validate() -> None:
    ecs = pooltypes.get("ecs:push")
    pool = {"configure_cloudwatch_logs": True}
    assert ecs.validate_job_variables(pool) == []  # a deployment may still bring the role
    problems = ecs.validate_job_variables({}, beneath=pool)
    assert [p.path for p in problems] == [("configure_cloudwatch_logs",)]
    assert ecs.validate_job_variables({"execution_role_arn": "{{ $ROLE }}"}, beneath=pool) == []


def test_older_template_variables_are_deprecated_not_unknown_and_still_honoured() -> None:
    ecs = pooltypes.get("ecs:push")
    problems = ecs.validate_job_variables({"task_start_timeout_seconds": 600, "stream_output": True})
    assert problems and all(p.warning for p in problems)
    assert "deprecated" in problems[0].message
    rendered = ecs.render(
        pool_variables={"task_start_timeout_seconds": 600}, deployment_variables={}, run_variables={}
    )
    assert rendered["task_start_timeout_seconds"] == 600


DEPRECATED_PROJECT = """
name: old-template
work_pools:
  - name: ecs-old
    type: ecs:push
    job_variables:
      image: python:3.12-slim
      task_start_timeout_seconds: 600
      task_watch_poll_interval: 10
      stream_output: true
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool:
      name: ecs-old
      job_variables:
        stream_output: false
"""


def test_cli_validate_warns_about_older_template_variables_and_succeeds(tmp_path: Path) -> None:
    root = make_project(tmp_path / "old", DEPRECATED_PROJECT)
    result = run_cli("-C", str(root), "validate")
    assert result.returncode == 0, result.stderr
    assert "unknown variable" not in result.stderr
    for name in ("task_start_timeout_seconds", "task_watch_poll_interval", "stream_output"):
        assert f"variable {name!r} of older Prefect templates is deprecated" in result.stderr
    assert "prefect.yaml:7:" in result.stderr  # the warning points at the line
