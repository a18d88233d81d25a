"""``reconcile serve`` replicas on one PostgreSQL state: throughput (runs/s) with 1, 2 and 3 replicas.

Each round applies a project (one pool with ``concurrency_limit`` LIMIT, one deployment), records N
due runs, starts R ``reconcile serve`` processes on the fake launcher of the replica tests (each run
lasts ``--run-seconds``), and times from the first launch to the last end. Throughput is N divided by
that time; each R is reported as a ratio to R=1 measured in the same invocation (same machine, same
load), median of ``--repeat`` rounds. The check of every round: no run launched twice, never more
than LIMIT running at once.

    python bench/bench_replicas.py [--runs 300] [--limit 5] [--run-seconds 0.2] [--repeat 3]
                                   [--postgres postgresql+psycopg://...]

Without ``--postgres`` a throwaway cluster is started as the tests do (PostgreSQL 15 binaries).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.serve import replica_launcher  # noqa: E402
from tests.serve.replicas import Replicas  # noqa: E402


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.fixtures import postgres as fixture

    yield from fixture.postgres_url._get_wrapped_function()()


def one_round(url: str, *, replicas: int, runs: int, limit: int, run_seconds: float) -> float:
    """Runs per second from the first launch to the last end, with ``replicas`` serve processes."""
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        tag = uuid.uuid4().hex[:8]  # one database serves every round: each its own project and objects
        group = Replicas.prepare(
            Path(tmp), url, project=f"bench-{tag}", limit=limit, pool=f"pool-{tag}", deployment=f"job-{tag}"
        )
        group.run_seconds = run_seconds
        ids = {run.id for run in group.record_due_runs(runs)}
        try:
            group.start(replicas)
            group.wait_until(lambda: group.ended(ids), timeout=600, what=f"{runs} runs to end")
        finally:
            group.stop()
        starts, ends = replica_launcher.events(group.events)
        assert all(len(times) == 1 for times in starts.values()), "a run was launched twice"
        assert replica_launcher.most_at_once(starts, ends) <= limit, "the pool limit was exceeded"
        first = min(times[0] for times in starts.values())
        return len(starts) / (max(ends.values()) - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--run-seconds", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (default: a throwaway cluster)")
    args = parser.parse_args()
    ideal = args.limit / args.run_seconds
    print(f"{args.runs} runs of {args.run_seconds:g} s, pool limit {args.limit} (ceiling {ideal:.1f} runs/s)")
    with postgres(args.postgres) as url:
        rates: dict[int, float] = {}
        for count in args.replicas:
            samples = [
                one_round(url, replicas=count, runs=args.runs, limit=args.limit, run_seconds=args.run_seconds)
                for _ in range(args.repeat)
            ]
            rates[count] = statistics.median(samples)
            shown = ", ".join(f"{s:.2f}" for s in samples)
            print(f"replicas={count}: median {rates[count]:.2f} runs/s (rounds: {shown})", flush=True)
    base = rates[args.replicas[0]]
    print("\n| replicas | runs/s (median) | ratio to 1 replica | of the ceiling |")
    print("|---:|---:|---:|---:|")
    for count, rate in rates.items():
        print(f"| {count} | {rate:.2f} | {rate / base:.2f} | {rate / ideal:.0%} |")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"\n(total {time.monotonic() - started:.0f} s)")
