"""Cloud Run launch throughput and API economy against the in-repo Cloud Run v2 fake, with a baseline.

A project with one ``cloud-run-v2:push`` pool, a ``gcp-credentials`` block (a real RSA service
account key whose ``token_uri`` is the fake) and 5 deployments is applied with the real CLI. Runs
are created and launched through the run lifecycle (``runs.create`` + ``runs.launch``, the real
SQLite store) by 8 threads sharing one launcher, as ``reconcile serve`` would; the real
``google-cloud-run`` REST clients talk to the fake over loopback. API calls are counted on the
server side, by route. Scenarios, in one go (ratios matter; absolute numbers depend on the machine):

* ``reconciler``: a fresh launcher, no faults (jobs created on first use, then reused);
* ``20% run_job throttled``: every 5th ``:run`` answered 429 (Retry-After: 0) before it acts;
* ``20% run_job answers lost``: every 5th ``:run`` starts the execution, then answers 503;
* ``1 of 5 deployments changed``: one deployment's image changed and re-applied, 40 runs;
* ``follow to the end``: runs that finish after 2 reads, refreshed until terminal (poll + cleanup);
  their executions are deleted as they end, so ``executions/run`` counts ``:run`` calls that started one;
* ``baseline``: Prefect's worker pattern with the same SDK: a new job per run (``create_job`` +
  ``run_job``), no lookups, no store, no retries.

Every launch scenario checks that each run has exactly one execution (by ``RECONCILE_RUN_ID``).

    python bench/cloud_run_launch.py [--runs 200] [--threads 8]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconciler import state  # noqa: E402
from reconciler.launch import RunContext, make_launcher, runs  # noqa: E402
from reconciler.launch.cloud_run.gcp import ENDPOINT_ENV, open_session  # noqa: E402
from reconciler.state import RunState  # noqa: E402
from tests.fakes.cloud_run import CloudRunFake, Outcome, iter_env, service_account  # noqa: E402

DEPLOYMENTS = 5
PROJECT = "cloud-run-bench"
FLOW = '''
def work(n: int = 1) -> int:
    """Pretend to work."""
    return n
'''


def write_project(root: Path, *, changed: bool = False) -> None:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "work.py").write_text(FLOW)
    lines = [
        f"name: {PROJECT}",
        "blocks:",
        "  - type: gcp-credentials",
        "    name: bench",
        "    data:",
        '      service_account_info: "{{ $BENCH_GCP_SERVICE_ACCOUNT_JSON }}"',
        "      project: demo-project",
        "work_pools:",
        "  - name: cr-bench",
        "    type: cloud-run-v2:push",
        "    job_variables:",
        '      credentials: "{{ prefect.blocks.gcp-credentials.bench }}"',
        "      region: europe-west1",
        "      cpu: '1'",
        "      memory: 1Gi",
        "deployments:",
    ]
    for i in range(DEPLOYMENTS):
        image = "ghcr.io/acme/flows:changed" if changed and i == 0 else f"ghcr.io/acme/flows:{i}"
        lines += [
            f"  - name: dep-{i}",
            "    entrypoint: flows/work.py:work",
            "    work_pool:",
            "      name: cr-bench",
            f"      job_variables: {{image: '{image}', env: {{INDEX: '{i}'}}}}",
        ]
    (root / "prefect.yaml").write_text("\n".join(lines) + "\n")


def apply(root: Path, environ: dict[str, str]) -> None:
    env = {**os.environ, **environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), "apply", "--yes"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"apply failed: {done.stderr}")


def context(root: Path, store: Any, environ: dict[str, str]) -> RunContext:
    runs_dir = root / ".reconcile" / "runs"
    return RunContext(
        store=store,
        live=store.read_all(),
        project_dir=root,
        runs_dir=runs_dir,
        environ=environ,
        launcher_factory=lambda name: make_launcher(name, runs_dir=runs_dir, environ=environ),
    )


@dataclass
class Result:
    name: str
    runs: int
    seconds: float
    calls: collections.Counter[str]
    executions: int
    duplicates: int
    crashed: int

    def row(self) -> str:
        api = sum(n for route, n in self.calls.items() if route != "token")
        return (
            f"| {self.name} | {self.runs} | {self.seconds:.2f} | {self.runs / self.seconds:.1f} | "
            f"{self.calls['create_job']} | {self.calls['run_job'] / self.runs:.2f} | "
            f"{self.executions / self.runs:.2f} | {self.calls['list_executions'] / self.runs:.2f} | "
            f"{api / self.runs:.2f} | {self.calls['token']} | {self.duplicates} | {self.crashed} |"
        )


def calls_since(fake: CloudRunFake, start: int) -> collections.Counter[str]:
    return collections.Counter(r.route for r in fake.requests[start:])


def executions_by_run(fake: CloudRunFake) -> collections.Counter[str]:
    return collections.Counter(dict(iter_env(e)).get("RECONCILE_RUN_ID", "?") for e in fake.executions())


def scenario(
    name: str,
    fake: CloudRunFake,
    root: Path,
    environ: dict[str, str],
    n: int,
    threads: int,
    *,
    follow: bool = False,
) -> Result:
    fake.model.executions.clear()  # earlier scenarios' runs ended and were cleaned up
    store = state.open_store(f"sqlite:///{root / '.reconcile' / 'state.db'}", project=PROJECT)
    ctx = context(root, store, environ)
    deployments = [f"work/dep-{i}" for i in range(DEPLOYMENTS)]
    start = len(fake.requests)
    try:
        ctx.launcher("cloud-run")  # one launcher shared by the threads, as in one reconcile process

        def one(i: int) -> Any:
            run = runs.launch(ctx, runs.create(ctx, deployments[i % DEPLOYMENTS], reason="bench"))
            if follow:
                run = runs.wait(ctx, run, timeout=60, interval=0.05)
            return run

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            launched = list(pool.map(one, range(n)))
        seconds = time.perf_counter() - began
    finally:
        ctx.close()
        store.close()
    counts = executions_by_run(fake)
    mine = [counts[r.id] for r in launched]
    bad = sum(r.state is not RunState.COMPLETED for r in launched) if follow else 0
    # Followed runs' executions are deleted when they end: count the runs Cloud Run started instead.
    started = sum(1 for r in fake.requests[start:] if r.route == "run_job" and r.status == 200)
    return Result(
        name=name,
        runs=n,
        seconds=seconds,
        calls=calls_since(fake, start),
        executions=started if follow else sum(mine),
        duplicates=sum(c - 1 for c in mine if c > 1),
        crashed=sum(r.state is RunState.CRASHED for r in launched) + bad,
    )


def baseline(fake: CloudRunFake, info: dict[str, str], n: int, threads: int) -> Result:
    """Prefect's cloud-run-v2 worker pattern: a fresh job per run, then run it; nothing else."""
    session = open_session(
        {"service_account_info": json.dumps(info), "project": "demo-project"},
        environ={ENDPOINT_ENV: fake.url},
        who="bench",
    )
    parent = "projects/demo-project/locations/europe-west1"
    fake.model.executions.clear()
    start = len(fake.requests)

    def one(i: int) -> str:
        run_id = str(uuid.uuid4())
        job_id = f"naive-{run_id[:8]}-{i}"
        body = {
            "labels": {"prefect-io-flow-run-id": run_id},
            "template": {
                "template": {
                    "containers": [
                        {
                            "image": f"ghcr.io/acme/flows:{i % DEPLOYMENTS}",
                            "command": ["python", "-m", "reconciler.runtime"],
                            "env": [{"name": "RECONCILE_RUN_ID", "value": run_id}],
                        }
                    ]
                }
            },
        }
        session.create_job(parent, job_id, body)
        session.run_job_once(f"{parent}/jobs/{job_id}", {})
        return run_id

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        run_ids = list(pool.map(one, range(n)))
    seconds = time.perf_counter() - began
    session.close()
    counts = executions_by_run(fake)
    return Result(
        "baseline: a new job per run (Prefect worker pattern)",
        n,
        seconds,
        calls_since(fake, start),
        sum(counts[r] for r in run_ids),
        0,
        0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    n, threads = args.runs, args.threads

    with CloudRunFake(outcome=Outcome.hang()) as fake, tempfile.TemporaryDirectory() as tmp:
        info = service_account(fake)
        environ = {
            **os.environ,
            "BENCH_GCP_SERVICE_ACCOUNT_JSON": json.dumps(info),
            ENDPOINT_ENV: fake.url,
        }
        root = Path(tmp) / "cloud-run-bench"
        write_project(root)
        apply(root, environ)
        results = [scenario("reconciler", fake, root, environ, n, threads)]
        fake.throttle("run_job", 10**9, every=5)
        results.append(scenario("reconciler, 20% run_job throttled (429)", fake, root, environ, n, threads))
        fake.clear_faults()
        fake.fail_after_effect("run_job", 10**9, every=5)
        results.append(
            scenario(
                "reconciler, 20% run_job answers lost (503 after start)", fake, root, environ, n, threads
            )
        )
        fake.clear_faults()
        write_project(root, changed=True)
        apply(root, environ)
        results.append(scenario("reconciler, 1 of 5 deployments changed", fake, root, environ, 40, threads))
        fake.outcome = Outcome.succeed(after=2)
        results.append(
            scenario(
                "reconciler, follow to the end (poll + cleanup)", fake, root, environ, n, threads, follow=True
            )
        )
        fake.outcome = Outcome.hang()
        results.append(baseline(fake, info, n, threads))

    print(
        f"Cloud Run launch benchmark: in-repo Cloud Run v2 fake (this process), {threads} threads, "
        f"{DEPLOYMENTS} deployments, python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n"
    )
    print(
        "| scenario | runs | wall s | runs/s | create_job | run_job calls/run | executions/run | "
        "list_executions/run | API calls/run | token requests | duplicate executions | not as expected |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        print(result.row())
    ours, base = results[0], results[-1]
    print(
        f"\nreconciler vs baseline: {ours.runs / ours.seconds / (base.runs / base.seconds):.2f}x the "
        "submit rate, "
        f"{ours.calls['create_job']} vs {base.calls['create_job']} jobs created for {ours.runs} runs"
    )


if __name__ == "__main__":
    main()
