"""ECS launch throughput and API economy against moto (server mode), with a naive baseline.

A project with one ``ecs:push`` pool and 5 deployments is applied with the real CLI; then 200 runs
are created and launched through the run lifecycle (``runs.create`` + ``runs.launch``, the real
SQLite store) by 8 threads sharing one launcher, as ``reconcile serve`` would. A botocore
``before-call`` hook counts every AWS call by operation. Scenarios, all on this machine in one go
(ratios matter, absolute numbers depend on the machine):

* ``reconciler``: fresh launcher, no faults;
* ``reconciler, 20% RunTask throttled``: a new launcher (as a new process: the task definitions are
  compared again, none registered), every 5th RunTask answered ``ThrottlingException`` before moto;
* ``reconciler, 20% RunTask answers lost``: every 5th RunTask carried out by moto but answered 500
  (the client cannot know the task started);
* ``reconciler, 1 deployment changed``: one deployment's image changed and re-applied, 40 runs;
* ``baseline: naive launcher``: the same lifecycle, store and threads with a launcher that registers
  the task definition and runs it every time (no reuse, no lookups, no retries);
* ``lifecycle + SQLite store only``: a no-op launcher, to show what the bookkeeping costs alone.

Every scenario runs on its own cluster and checks that each run has exactly one ECS task (moto's
backend, by ``startedBy``).

    python bench/ecs_launch.py [--runs 200] [--threads 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
import botocore.config  # noqa: E402

from reconciler import state  # noqa: E402
from reconciler.launch import RunContext, make_launcher, runs  # noqa: E402
from reconciler.launch.ecs import taskdef  # noqa: E402
from reconciler.state import RunState  # noqa: E402
from tests.fakes.moto_server import ACCOUNT, KEEP_RUNNING, REGION, Fault, MotoStandIn  # noqa: E402

DEPLOYMENTS = 5
SECRETS = {"BENCH_AWS_ACCESS_KEY_ID": "AKIABENCH0000", "BENCH_AWS_SECRET_ACCESS_KEY": "bench-secret"}
FLOW = '''
def work(n: int = 1) -> int:
    """Pretend to work."""
    return n
'''


# -- counting AWS calls on the client side ---------------------------------------------------------

_COUNTS: collections.Counter[str] = collections.Counter()
_COUNT_LOCK = threading.Lock()
_ORIGINAL_SESSION = boto3.Session


def _before_call(model: Any, **_: Any) -> None:
    with _COUNT_LOCK:
        _COUNTS[model.name] += 1


def _counting_session(*args: Any, **kwargs: Any) -> boto3.Session:
    """Every boto3 session built in this process gets the before-call hook."""
    session = _ORIGINAL_SESSION(*args, **kwargs)
    session.events.register("before-call", _before_call)
    return session


boto3.Session = _counting_session  # type: ignore[misc]


@contextmanager
def counted() -> Iterator[collections.Counter[str]]:
    with _COUNT_LOCK:
        _COUNTS.clear()
    result: collections.Counter[str] = collections.Counter()
    yield result
    with _COUNT_LOCK:
        result.update(_COUNTS)


# -- the project -----------------------------------------------------------------------------------


def write_project(root: Path, *, endpoint: str, cluster: str, image_of: Callable[[int], str]) -> None:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "work.py").write_text(FLOW)
    lines = [
        "name: ecs-bench",
        "blocks:",
        "  - type: aws-credentials",
        "    name: bench",
        "    data:",
        '      aws_access_key_id: "{{ $BENCH_AWS_ACCESS_KEY_ID }}"',
        '      aws_secret_access_key: "{{ $BENCH_AWS_SECRET_ACCESS_KEY }}"',
        f"      region_name: {REGION}",
        f"      aws_client_parameters: {{endpoint_url: '{endpoint}'}}",
        "work_pools:",
        "  - name: ecs-bench",
        "    type: ecs:push",
        "    job_variables:",
        '      aws_credentials: "{{ prefect.blocks.aws-credentials.bench }}"',
        f"      cluster: {cluster}",
        "      configure_cloudwatch_logs: true",
        "      cpu: 512",
        "      memory: 1024",
        "deployments:",
    ]
    for i in range(DEPLOYMENTS):
        lines += [
            f"  - name: dep-{i}",
            "    entrypoint: flows/work.py:work",
            "    work_pool:",
            "      name: ecs-bench",
            f"      job_variables: {{image: '{image_of(i)}', env: {{INDEX: '{i}'}}}}",
        ]
    (root / "prefect.yaml").write_text("\n".join(lines) + "\n")


def apply(root: Path) -> None:
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), "apply", "--yes"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"apply failed: {done.stderr}")


def context(root: Path, store: Any) -> RunContext:
    environ = {**os.environ, **SECRETS}
    runs_dir = root / ".reconcile" / "runs"
    return RunContext(
        store=store,
        live=store.read_all(),
        project_dir=root,
        runs_dir=runs_dir,
        environ=environ,
        launcher_factory=lambda name: make_launcher(name, runs_dir=runs_dir, environ=environ),
    )


# -- scenarios -------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    runs: int
    seconds: float
    calls: collections.Counter[str]
    tasks: int
    duplicates: int
    crashed: int

    def row(self) -> str:
        describes = sum(n for op, n in self.calls.items() if op.startswith("Describe"))
        return (
            f"| {self.name} | {self.runs} | {self.seconds:.2f} | {self.runs / self.seconds:.1f} | "
            f"{self.calls['RegisterTaskDefinition']} | {self.calls['RunTask'] / self.runs:.2f} | "
            f"{self.tasks / self.runs:.2f} | {self.calls['ListTasks'] / self.runs:.2f} | "
            f"{describes} ({self.calls['DescribeTaskDefinition']} td, {self.calls['DescribeVpcs']} vpc, "
            f"{self.calls['DescribeSubnets']} subnet) | {sum(self.calls.values()) / self.runs:.2f} | "
            f"{self.duplicates} | {self.crashed} |"
        )


class NaiveEcsLauncher:
    """The baseline strategy: register the task definition and run it, every time; no lookups.

    It builds the same requests as the real launcher (``ecs_taskdef``) so only the strategy differs.
    """

    def __init__(self, moto: MotoStandIn) -> None:
        self.moto = moto
        self.lock = threading.Lock()
        self.ecs: Any = None
        self.network: dict[str, Any] = {}

    def _setup(self) -> None:
        """Clients and subnets on first use, as the real launcher does (so both pay for it timed)."""
        with self.lock:
            if self.ecs is not None:
                return
            config = botocore.config.Config(retries={"total_max_attempts": 1})
            session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
            ec2 = session.client("ec2", endpoint_url=self.moto.url, config=config)
            vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
            found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
            self.network = taskdef.awsvpc(None, subnets=[s["SubnetId"] for s in found])
            self.ecs = session.client("ecs", endpoint_url=self.moto.url, config=config)

    def submit(self, job: Any) -> str:
        self._setup()
        wanted = taskdef.wanted_task_definition(job, region=REGION)
        arn = self.ecs.register_task_definition(**wanted)["taskDefinition"]["taskDefinitionArn"]
        request = taskdef.run_task_request(
            job, task_definition=arn, container="prefect", network_configuration=self.network
        )
        task = self.ecs.run_task(**request)["tasks"][0]
        return f"{request['cluster']}::{task['taskArn']}"

    def poll(self, job: Any, infrastructure_id: str) -> Any:
        raise NotImplementedError

    def cancel(self, job: Any, infrastructure_id: str) -> None: ...

    def find(self, job: Any) -> str | None:
        return None

    def logs(self, job: Any, infrastructure_id: str, *, cursor: int = 0) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        if self.ecs is not None:
            self.ecs.close()


class NoopLauncher(NaiveEcsLauncher):
    """The Launcher protocol doing nothing: what the run lifecycle and the SQLite store cost alone."""

    def __init__(self) -> None:
        pass

    def submit(self, job: Any) -> str:
        return f"noop::{job.run_id}"

    def close(self) -> None: ...


def tasks_by_starter(cluster: str) -> collections.Counter[str]:
    from moto.ecs.models import ecs_backends

    tasks = ecs_backends[ACCOUNT][REGION].tasks.get(cluster, {})
    return collections.Counter(t.started_by for t in tasks.values())


def scenario(
    name: str,
    root: Path,
    moto: MotoStandIn,
    *,
    runs_count: int,
    threads: int,
    launcher: Callable[[], Any] | None = None,
) -> Result:
    """Launch ``runs_count`` runs round-robin over the deployments, each scenario on its own cluster
    (moto's ListTasks scans every task of a cluster, so scenarios must not share one)."""
    cluster = f"bench-{uuid.uuid4().hex[:8]}"
    moto.create_cluster(cluster)
    store = state.open_store(f"sqlite:///{root / '.reconcile' / 'state.db'}", project="ecs-bench")
    ctx = context(root, store)
    if launcher is not None:
        ctx.launcher_factory = lambda _name: launcher()
    ctx.launcher("ecs")  # one launcher shared by the threads, as in one reconcile process
    deployments = [f"work/dep-{i}" for i in range(DEPLOYMENTS)]

    def one(i: int) -> Any:
        run = runs.create(
            ctx, deployments[i % DEPLOYMENTS], job_variables={"cluster": cluster}, reason="bench"
        )
        return runs.launch(ctx, run)

    try:
        with counted() as calls:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=threads) as pool:
                launched = list(pool.map(one, range(runs_count)))
            seconds = time.perf_counter() - started
    finally:
        ctx.close()
        store.close()
    per_run = tasks_by_starter(cluster)
    counts = [per_run[taskdef.started_by(r.id)] for r in launched]
    tasks = runs_count if launcher is NoopLauncher else sum(counts)
    return Result(
        name=name,
        runs=runs_count,
        seconds=seconds,
        calls=calls,
        tasks=tasks,
        duplicates=sum(c - 1 for c in counts if c > 1),
        crashed=sum(r.state is RunState.CRASHED for r in launched),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="alternating reconciler/baseline repeats")
    args = parser.parse_args()
    n, threads = args.runs, args.threads
    rates: dict[str, list[float]] = {"reconciler": [], "naive": []}

    moto = MotoStandIn()
    results: list[Result] = []
    try:
        moto.set_transition(KEEP_RUNNING)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "ecs-bench"
            write_project(
                root, endpoint=moto.url, cluster="bench", image_of=lambda i: f"ghcr.io/acme/flows:{i}"
            )
            apply(root)
            results.append(scenario("reconciler", root, moto, runs_count=n, threads=threads))
            naive = scenario(
                "baseline: naive launcher (register + run every time)",
                root,
                moto,
                runs_count=n,
                threads=threads,
                launcher=lambda: NaiveEcsLauncher(moto),
            )
            rates["reconciler"].append(n / results[0].seconds)
            rates["naive"].append(n / naive.seconds)
            for _ in range(args.repeat - 1):  # alternate, so machine noise hits both alike
                again = scenario("reconciler (again)", root, moto, runs_count=n, threads=threads)
                rates["reconciler"].append(n / again.seconds)
                again = scenario(
                    "naive",
                    root,
                    moto,
                    runs_count=n,
                    threads=threads,
                    launcher=lambda: NaiveEcsLauncher(moto),
                )
                rates["naive"].append(n / again.seconds)
            moto.inject(Fault("RunTask", 10**9, every=5))
            results.append(
                scenario("reconciler, 20% RunTask throttled", root, moto, runs_count=n, threads=threads)
            )
            moto.reset_steering()
            moto.inject(Fault("RunTask", 10**9, code="InternalFailure", status=500, forward=True, every=5))
            results.append(
                scenario(
                    "reconciler, 20% RunTask answers lost (500 after the task started)",
                    root,
                    moto,
                    runs_count=n,
                    threads=threads,
                )
            )
            moto.reset_steering()
            write_project(
                root,
                endpoint=moto.url,
                cluster="bench",
                image_of=lambda i: "ghcr.io/acme/flows:changed" if i == 0 else f"ghcr.io/acme/flows:{i}",
            )
            apply(root)
            results.append(
                scenario("reconciler, 1 of 5 deployments changed", root, moto, runs_count=40, threads=threads)
            )
            results.append(naive)
            results.append(
                scenario(
                    "lifecycle + SQLite store only (no-op launcher)",
                    root,
                    moto,
                    runs_count=n,
                    threads=threads,
                    launcher=NoopLauncher,
                )
            )
    finally:
        moto.stop()

    print(
        f"ECS launch benchmark: moto server mode (in this process), {threads} threads, "
        f"{DEPLOYMENTS} deployments, python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n"
    )
    print(
        "| scenario | runs | wall s | runs/s | RegisterTaskDefinition | RunTask calls/run | tasks/run | "
        "ListTasks/run | Describe* calls | AWS calls/run | duplicate tasks | crashed runs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        print(result.row())
    ours, naive = results[0], results[4]
    ours_rate, naive_rate = statistics.median(rates["reconciler"]), statistics.median(rates["naive"])
    each = " vs ".join(", ".join(f"{r:.1f}" for r in rates[k]) for k in ("reconciler", "naive"))
    calls_per_run = (
        f"{sum(ours.calls.values()) / ours.runs:.2f} vs {sum(naive.calls.values()) / naive.runs:.2f}"
    )
    print(
        f"\nreconciler vs naive baseline (same lifecycle, store, threads; median of {len(rates['naive'])} "
        f"alternating runs of {n}): {ours_rate:.1f} vs {naive_rate:.1f} runs/s = "
        f"{ours_rate / naive_rate:.2f}x the submit rate (each: {each}); "
        f"{ours.calls['RegisterTaskDefinition']} vs {naive.calls['RegisterTaskDefinition']} task definition "
        f"registrations, {calls_per_run} AWS calls per run"
    )


if __name__ == "__main__":
    main()
