"""ACI launch latency and ARM economy against the in-repo Azure fake (HTTPS, real SDK, real token flow).

Runs are submitted and followed to the end by one ``AciLauncher`` shared by several threads (as
``reconcile serve`` would), with Jobs rendered by the pool type. The fake logs every request by route,
so the bench reports what each run costs in ARM calls, and checks that every run has exactly one
container group. Scenarios (ratios matter, absolute numbers depend on the machine):

* ``clean``: no faults;
* ``20% PUT throttled``: every 5th create answered 429 (``Retry-After: 0``) before the fake acts;
* ``20% PUT answers lost``: every 5th create carried out, then answered 500 (the client cannot know).

Each run: submit, then poll (and read the log) until terminal; the scripted container waits one
poll, runs one poll, exits 0. ``task_watch_poll_interval`` is 0 so every poll reaches ARM.

    python bench/aci_launch.py [--runs 100] [--threads 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconciler import pooltypes  # noqa: E402
from reconciler.launch.aci.launcher import AciLauncher  # noqa: E402
from reconciler.launch.base import Job  # noqa: E402
from tests.fakes.aci import AciFake, Outcome  # noqa: E402

SECRET = "bench-client-secret"


def make_job(fake: AciFake, root: Path) -> Job:
    run_id = str(uuid.uuid4())
    credentials = {
        "client_id": fake.client_id,
        "tenant_id": fake.tenant_id,
        "client_secret": SECRET,
        "credential_kwargs": {"disable_instance_discovery": True},
    }
    configuration = pooltypes.get("azure-container-instance:push").render(
        pool_variables={
            "resource_group_name": "rg-flows",
            "subscription_id": fake.subscription_id,
            "image": "ghcr.io/acme/flows:1",
            "aci_credentials": credentials,
            "task_watch_poll_interval": 0,
        },
        deployment_variables={},
        run_variables={},
    )
    return Job(
        run_id=run_id,
        deployment="bench/run",
        flow_name="bench",
        entrypoint="flows/bench.py:work",
        parameters={},
        configuration=configuration,
        pool="aci-bench",
        pool_type="azure-container-instance:push",
        project_dir=str(root),
        env={"RECONCILE_RUN_ID": run_id},
        command=("python", "-m", "reconciler.runtime"),
        log_path=str(root / run_id / "log.txt"),
        labels={"reconcile.run-id": run_id, "reconcile.deployment": "bench/run"},
    )


def scenario(name: str, *, runs: int, threads: int, fault: dict[str, Any] | None) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        AciFake.running(Path(tmp) / "fake", client_secret=SECRET) as fake,
    ):
        fake.outcome = Outcome(waiting_polls=1, running_polls=1, logs="done\n")
        if fault is not None:
            fake.inject("PUT", "put_group", times=10**9, every=5, **fault)
        environ = {
            "RECONCILE_AZURE_ARM_ENDPOINT": fake.url,
            "AZURE_AUTHORITY_HOST": fake.url,
            "REQUESTS_CA_BUNDLE": str(fake.cert_path),
        }
        launcher = AciLauncher(environ=environ)
        jobs = [make_job(fake, Path(tmp) / "runs") for _ in range(runs)]
        submit_times: list[float] = []

        def one(job: Job) -> str:
            started = time.perf_counter()
            infrastructure_id = launcher.submit(job)
            submit_times.append(time.perf_counter() - started)
            cursor = 0
            while True:
                status = launcher.poll(job, infrastructure_id)
                cursor = launcher.logs(job, infrastructure_id, cursor=cursor).cursor
                if status.state.terminal:
                    return status.state.value

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            states = Counter(pool.map(one, jobs))
        elapsed = time.perf_counter() - started
        launcher.close()
        by_route = Counter(r.route for r in fake.requests)
        groups_per_run = Counter(
            Counter(g.body["tags"]["reconcile.run-id"] for g in fake.created_groups).values()
        )
        return {
            "scenario": name,
            "runs": runs,
            "states": dict(states),
            "runs/s": runs / elapsed,
            "submit p50 ms": statistics.median(submit_times) * 1000,
            "submit p95 ms": statistics.quantiles(submit_times, n=20)[-1] * 1000,
            "ARM requests/run": sum(v for k, v in by_route.items() if k not in ("openid", "token")) / runs,
            "PUT/run": by_route["put_group"] / runs,
            "token requests": by_route["token"],
            "groups per run": dict(groups_per_run),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    results = [
        scenario("clean", runs=args.runs, threads=args.threads, fault=None),
        scenario(
            "20% PUT throttled", runs=args.runs, threads=args.threads, fault={"status": 429, "retry_after": 0}
        ),
        scenario(
            "20% PUT answers lost", runs=args.runs, threads=args.threads, fault={"status": 500, "after": True}
        ),
    ]
    for result in results:
        print(
            f"{result['scenario']:22}  {result['runs/s']:6.1f} runs/s"
            f"  submit p50 {result['submit p50 ms']:6.1f} ms"
            f"  p95 {result['submit p95 ms']:6.1f} ms  ARM {result['ARM requests/run']:.2f}/run"
            f"  PUT {result['PUT/run']:.2f}/run  tokens {result['token requests']}"
            f"  groups/run {result['groups per run']}  states {result['states']}"
        )


if __name__ == "__main__":
    main()
