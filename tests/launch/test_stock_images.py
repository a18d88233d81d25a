"""Push pools run in stock images: the exact container command each launcher sends, run in a fresh venv.

For each push launcher (ecs, cloud-run, cloud-run-v2, aci) the Job is built by the real lifecycle
code and turned into the request body the launcher sends (RunTask overrides, the Cloud Run Job plus
its run overrides, the ACI container group). Its command and environment are then run, as the
container would run them, by the Python of a venv that does not have this package:

* ``plain``: ``python -m venv`` and nothing else (a ``python:3.12-slim`` image): a plain function;
* ``prefect``: a venv that sees Prefect 3.9.1 (Prefect's image) but not ``reconciler``: a ``@flow``,
  run through Prefect's engine.

Both venvs are checked to fail ``import reconciler``; every command runs with ``-I`` semantics
(isolated: no user site, no PYTHONPATH) from a directory that is not this repository. The last test
runs the command and env as each stand-in *received* them (moto, the Cloud Run and ARM fakes).
"""

from __future__ import annotations

import ast
import json
import site
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.launch import bootstrap
from reconciler.launch.aci import body as aci_body
from reconciler.launch.aci.launcher import AciLauncher
from reconciler.launch.base import Job
from reconciler.launch.cloud_run import body as cloud_run_body
from reconciler.launch.cloud_run.gcp import ENDPOINT_ENV
from reconciler.launch.cloud_run.launcher import CloudRunLauncher
from reconciler.launch.ecs import taskdef
from reconciler.launch.ecs.launcher import EcsLauncher
from tests.fakes.aci import AciFake
from tests.fakes.cloud_run import CloudRunFake, service_account
from tests.fakes.cloud_run import Outcome as CloudRunOutcome
from tests.fakes.moto_server import MotoStandIn
from tests.fixtures.prefect_server import PrefectServer
from tests.launch.aci_support import CLIENT_SECRET
from tests.launch.aci_support import environ as aci_environ
from tests.launch.live_support import job_of, live_state

PLAIN_FLOW = '''
import os


def hello(name: str = "world") -> str:
    """A plain function: no Prefect."""
    print(f"hello {name} from {os.environ['RECONCILE_DEPLOYMENT']}")
    return name
'''

PREFECT_FLOW = """
from prefect import flow


@flow(name="hello")
def hello(name: str = "world") -> str:
    print(f"hello {name} through Prefect")
    return name
"""

POOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "ecs": ("ecs:push", {"image": "python:3.12-slim", "cluster": "flows"}),
    "cloud-run": ("cloud-run:push", {"image": "python:3.12-slim", "region": "europe-west1"}),
    "cloud-run-v2": ("cloud-run-v2:push", {"image": "python:3.12-slim", "region": "europe-west1"}),
    "aci": (
        "azure-container-instance:push",
        {"image": "python:3.12-slim", "resource_group_name": "rg", "subscription_id": "sub"},
    ),
}


def ecs_container(job: Job) -> tuple[list[str], dict[str, str]]:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/flows:1"
    request = taskdef.run_task_request(
        job, task_definition=arn, container="prefect", network_configuration=None
    )
    override = request["overrides"]["containerOverrides"][0]
    return override["command"], {e["name"]: e["value"] for e in override["environment"]}


def cloud_run_container(job: Job) -> tuple[list[str], dict[str, str]]:
    plan = cloud_run_body.plan(job, project="demo-project")
    container = plan.body["template"]["template"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
    env.update({e["name"]: e["value"] for e in plan.overrides["containerOverrides"][0]["env"]})
    return container["command"] + list(container.get("args") or []), env


def aci_container(job: Job) -> tuple[list[str], dict[str, str]]:
    settings = aci_body.Settings.of(job)
    spec = aci_body.build(
        job, settings=settings, location="westeurope", submitted_at=datetime.now(UTC), environ={}
    )
    props = spec.body["properties"]["containers"][0]["properties"]
    env = {e["name"]: e.get("value", e.get("secureValue")) for e in props["environmentVariables"]}
    return props["command"], env


RENDER: dict[str, Callable[[Job], tuple[list[str], dict[str, str]]]] = {
    "ecs": ecs_container,
    "cloud-run": cloud_run_container,
    "cloud-run-v2": cloud_run_container,
    "aci": aci_container,
}


def make_venv(root: Path, *, with_prefect: bool) -> Path:
    """A venv without this package; ``with_prefect`` lets it import this Python's Prefect.

    The installed packages' directory is added by a ``.pth`` *path* line, which puts it on
    ``sys.path`` without processing the ``.pth`` files inside it: this repository's editable-install
    hook lives there and is therefore never run.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    if with_prefect:
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (Path(purelib) / "host-packages.pth").write_text(site.getsitepackages()[0] + "\n", encoding="utf-8")
    return python


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("venvs")
    pythons = {"plain": make_venv(root / "plain", with_prefect=False)}
    pythons["prefect"] = make_venv(root / "prefect", with_prefect=True)
    for kind, python in pythons.items():
        probe = subprocess.run([str(python), "-I", "-c", "import reconciler"], cwd=root, capture_output=True)
        assert probe.returncode != 0, f"the {kind} venv must not see this package"
    probe = subprocess.run(
        [str(pythons["prefect"]), "-I", "-c", "import prefect"], cwd=root, capture_output=True
    )
    assert probe.returncode == 0, probe.stderr
    yield pythons


def run_in_container(
    python: Path, command: list[str], env: dict[str, str], workdir: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    """``command`` as the container runs it: its ``python`` is the venv's, its env only the job's."""
    assert command[0] == "python", command
    assert all("reconciler.runtime" not in part for part in command), "the job must not need our package"
    container_env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(home), **env}
    container_env.setdefault("PREFECT_HOME", str(home / ".prefect"))
    container_env["PYTHONNOUSERSITE"] = "1"
    return subprocess.run(
        [str(python), "-I", *command[1:]],
        cwd=workdir,
        env=container_env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def project(tmp_path: Path, flow_source: str) -> Path:
    flows = tmp_path / "image" / "flows"
    flows.mkdir(parents=True)
    (flows / "hello.py").write_text(textwrap.dedent(flow_source), encoding="utf-8")
    return tmp_path / "image"


@pytest.mark.parametrize("launcher", sorted(POOLS))
def test_a_plain_function_runs_in_a_python_image_without_this_package(
    launcher: str, venvs: dict[str, Path], tmp_path: Path
) -> None:
    pool_type, variables = POOLS[launcher]
    workdir = project(tmp_path, PLAIN_FLOW)
    job = job_of(live_state(pool_type, pool_variables=variables), workdir, parameters={"name": launcher})
    command, env = RENDER[launcher](job)
    assert command == list(bootstrap.inline_command())

    result = run_in_container(venvs["plain"], command, env, workdir, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"hello {launcher} from hello/greet" in result.stdout
    assert f"run {job.run_id} completed" in result.stdout


@pytest.mark.slow
@pytest.mark.prefect_server
def test_a_prefect_flow_runs_through_prefects_engine_in_prefects_image(
    venvs: dict[str, Path], tmp_path: Path, prefect_server: PrefectServer
) -> None:
    """All four launchers' commands, one after the other. The engine reports to the session's real
    server (a job's env points it at one): Prefect's ephemeral server would start inside each run, with a
    start-up timeout a loaded machine can miss."""
    workdir = project(tmp_path, PREFECT_FLOW)
    home = tmp_path / "home"
    home.mkdir()
    for launcher in sorted(POOLS):
        pool_type, variables = POOLS[launcher]
        job = job_of(live_state(pool_type, pool_variables=variables), workdir, parameters={"name": launcher})
        command, env = RENDER[launcher](job)
        env = {**env, "PREFECT_API_URL": prefect_server.api_url}

        result = run_in_container(venvs["prefect"], command, env, workdir, home)

        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert f"hello {launcher} through Prefect" in output
        assert "Finished in state Completed()" in output  # Prefect's engine ran the flow


def test_the_travelling_runtime_fits_every_platform_limit() -> None:
    """About 3 KB: well under half of ECS's 8192-character override budget (the tightest documented),
    which the job's environment and other overrides share."""
    command = bootstrap.inline_command()
    assert len(json.dumps(list(command))) < 3500
    ast.parse(bootstrap.runtime_program(), feature_version=(3, 8))  # images with an older Python
    compiled = compile(bootstrap.runtime_program(), "<runtime>", "exec")
    assert "supervise" not in compiled.co_names  # the local --exec supervisor does not travel


def test_a_pull_step_only_prefect_knows_needs_prefect_and_says_so(
    venvs: dict[str, Path], tmp_path: Path
) -> None:
    workdir = project(tmp_path, PLAIN_FLOW)
    env = {
        "RECONCILE_RUN_ID": "r-1",
        "RECONCILE_ENTRYPOINT": "flows/hello.py:hello",
        "RECONCILE_PULL_STEPS": json.dumps([{"prefect.deployments.steps.git_clone": {"repository": "x"}}]),
    }
    result = run_in_container(venvs["plain"], list(bootstrap.inline_command()), env, workdir, tmp_path)
    assert result.returncode == 2
    assert "needs Prefect installed in the job image" in result.stderr


# -- the command as the stand-ins received it over the wire -------------------------------------------


def _ecs_wire(tmp_path: Path, moto: MotoStandIn) -> tuple[list[str], dict[str, str], Path]:
    cluster = f"stock-{uuid.uuid4().hex[:8]}"
    moto.create_cluster(cluster)
    data = {
        "aws_access_key_id": "AKIASTOCKIMAGE0001",
        "aws_secret_access_key": "stock-secret",
        "region_name": "us-east-1",
        "aws_client_parameters": {"endpoint_url": moto.url},
    }
    variables = {"aws_credentials": "{{ prefect.blocks.aws-credentials.moto }}", "cluster": cluster}
    live = live_state("ecs:push", pool_variables=variables, blocks={("aws-credentials", "moto"): data})
    workdir = project(tmp_path, PLAIN_FLOW)
    launcher = EcsLauncher(environ={})
    try:
        ref = taskdef.TaskRef.parse(launcher.submit(job_of(live, workdir, parameters={"name": "ecs"})))
    finally:
        launcher.close()
    task = moto.client("ecs").describe_tasks(cluster=ref.cluster, tasks=[ref.task_arn])["tasks"][0]
    override = task["overrides"]["containerOverrides"][0]
    return override["command"], {e["name"]: e["value"] for e in override["environment"]}, workdir


def _cloud_run_wire(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    with CloudRunFake() as fake:
        fake.outcome = CloudRunOutcome.hang()
        data = {"service_account_info": service_account(fake), "project": "demo-project"}
        variables = {"credentials": "{{ prefect.blocks.gcp-credentials.prod }}", "image": "python:3.12-slim"}
        live = live_state(
            "cloud-run-v2:push", pool_variables=variables, blocks={("gcp-credentials", "prod"): data}
        )
        workdir = project(tmp_path, PLAIN_FLOW)
        launcher = CloudRunLauncher(environ={ENDPOINT_ENV: fake.url})
        try:
            launcher.submit(job_of(live, workdir, parameters={"name": "cloud-run"}))
        finally:
            launcher.close()
        (created,) = fake.calls("create_job", status=200)
        (ran,) = fake.calls("run_job", status=200)
    container = created.body["template"]["template"]["containers"][0]
    env = {e["name"]: e["value"] for e in ran.body["overrides"]["containerOverrides"][0]["env"]}
    return container["command"], env, workdir


def _aci_wire(tmp_path: Path) -> tuple[list[str], dict[str, str], Path]:
    with AciFake.running(tmp_path / "fake", client_secret=CLIENT_SECRET) as fake:
        data = {"client_id": fake.client_id, "tenant_id": fake.tenant_id, "client_secret": CLIENT_SECRET}
        variables = {
            "aci_credentials": "{{ prefect.blocks.azure-container-instance-credentials.test }}",
            "resource_group_name": "rg-flows",
            "subscription_id": fake.subscription_id,
            "image": "python:3.12-slim",
        }
        blocks = {("azure-container-instance-credentials", "test"): data}
        live = live_state("azure-container-instance:push", pool_variables=variables, blocks=blocks)
        workdir = project(tmp_path, PLAIN_FLOW)
        job = job_of(live, workdir, parameters={"name": "aci"})
        launcher = AciLauncher(environ=aci_environ(fake))
        try:
            launcher.submit(job)
        finally:
            launcher.close()
        props = fake.group(aci_body.group_name(job)).body["properties"]["containers"][0]["properties"]
    env = {e["name"]: e.get("value", e.get("secureValue")) for e in props["environmentVariables"]}
    return props["command"], env, workdir


@pytest.mark.cloud
@pytest.mark.parametrize("launcher", ["ecs", "cloud-run", "aci"])
def test_the_command_each_stand_in_received_runs_in_a_python_image(
    launcher: str, venvs: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """What went over the wire (RunTask's override, the Cloud Run Job and RunJob's overrides, the ACI
    container group), run as the container runs it: the request alone is enough, nothing installed."""
    if launcher == "ecs":
        command, env, workdir = _ecs_wire(tmp_path, request.getfixturevalue("moto"))
    elif launcher == "cloud-run":
        command, env, workdir = _cloud_run_wire(tmp_path)
    else:
        command, env, workdir = _aci_wire(tmp_path)

    result = run_in_container(venvs["plain"], command, env, workdir, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"hello {launcher} from hello/greet" in result.stdout
