"""``reconcile serve`` at scale: the time of one pass over N scheduled deployments on the SQLite store.

Three kinds of pass, each timed in process on a frozen clock (the launcher is a no-op stand-in, so
what is measured is serve's own work: read the state, list runs, compute slots, record and claim):

* ``idle``: nothing is due (the next slot is minutes away) - the cost of being up;
* ``due``: every deployment has one new slot - N runs recorded, claimed and "launched";
* ``follow``: the N runs of the last pass are in flight and polled.

Plus the slot computation alone (``schedule.schedule_slots``) for cron, interval and rrule schedules
in a DST time zone, on an ordinary day and within hours of a DST change (where a wider range of wall
times must be scanned).

    python bench/serve_pass.py [--sizes 100 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconciler import desired as desired_state  # noqa: E402
from reconciler.launch import Job, JobStatus, LogChunk, RunContext  # noqa: E402
from reconciler.serve import loop as serve  # noqa: E402
from reconciler.serve import schedule  # noqa: E402
from reconciler.state import RunState  # noqa: E402
from reconciler.state.sql.store import SqlStore  # noqa: E402

T0 = datetime(2024, 6, 3, 10, 0, 30, tzinfo=UTC)
DST = datetime(2024, 3, 31, 0, 0, 30, tzinfo=UTC)  # Berlin springs forward at 01:00 UTC


class NullLauncher:
    """Accepts every job at once and reports it running: serve's own cost is what remains."""

    def submit(self, job: Job) -> str:
        return f"null:{job.run_id}"

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus:
        return JobStatus(RunState.RUNNING)

    def cancel(self, job: Job, infrastructure_id: str) -> None:
        pass

    def find(self, job: Job) -> str | None:
        return None

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk:
        return LogChunk("", cursor)

    def close(self) -> None:
        pass


def project(root: Path, n: int) -> Path:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "etl.py").write_text("def etl(rows: int = 1):\n    return rows\n")
    lines = ["name: bench", "work_pools:", "  - {name: pool, type: process}", "deployments:"]
    for i in range(n):
        lines.append(
            f"  - {{name: d{i:05d}, entrypoint: flows/etl.py:etl, work_pool: {{name: pool}}, "
            f'schedules: [{{cron: "*/5 * * * *", timezone: Europe/Berlin, slug: s}}]}}'
        )
    (root / "prefect.yaml").write_text("\n".join(lines) + "\n")
    return root


def one_size(n: int, repeat: int) -> dict[str, float]:
    results: dict[str, list[float]] = {"idle": [], "due": [], "follow": []}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = project(Path(tmp), n)
            store = SqlStore(f"sqlite:///{tmp}/state.db", project="bench")
            desired = desired_state.load(
                desired_state.WorkingTree(root), environ={}, fingerprint_key=store.fingerprint_key()
            )
            for resource in desired.resources.values():
                store.write(resource, expected_version=None)
            clock = [T0]
            launcher = NullLauncher()
            ctx = RunContext(
                store=store,
                live=store.read_all(),
                project_dir=root,
                runs_dir=root / ".runs",
                environ={},
                launcher_factory=lambda name, launcher=launcher: launcher,  # type: ignore[misc]
            )
            loop = serve.ServeLoop(
                ctx,
                log=lambda _: None,
                options=serve.ServeOptions(lookback=20),
                now=lambda clock=clock: clock[0],
            )
            for kind, advance in (("idle", 0), ("due", 270), ("follow", 1)):
                clock[0] += timedelta(seconds=advance)
                began = time.perf_counter()
                report = loop.run_pass()
                results[kind].append(time.perf_counter() - began)
                if kind == "due":
                    assert len(report.launched) == n, len(report.launched)
            store.close()
    return {kind: statistics.median(times) for kind, times in results.items()}


def slot_timing(repeat: int, at: datetime) -> dict[str, float]:
    bodies = {
        "cron */5": {"cron": "*/5 * * * *", "timezone": "Europe/Berlin"},
        "interval 300s": {"interval": 300, "timezone": "Europe/Berlin", "anchor_date": None},
        "rrule minutely/5": {"rrule": "FREQ=MINUTELY;INTERVAL=5", "timezone": "Europe/Berlin"},
    }
    out = {}
    for name, body in bodies.items():
        times = []
        for _ in range(repeat * 200):
            began = time.perf_counter()
            schedule.schedule_slots("f/d", "s", body, after=at - timedelta(seconds=10), until=at)
            times.append(time.perf_counter() - began)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("slot computation for one schedule and a 10 s window (median):")
    for day, at in (("a June day", T0), ("the DST day", DST)):
        for name, seconds in slot_timing(args.repeat, at).items():
            print(f"  {day:12} {name:18} {seconds * 1e6:8.1f} us")
    print("one serve pass on SQLite (median of", args.repeat, "runs):")
    for n in args.sizes:
        timings = one_size(n, args.repeat)
        cells = "  ".join(f"{kind} {seconds * 1000:8.1f} ms" for kind, seconds in timings.items())
        print(f"  {n:6} deployments  {cells}")


if __name__ == "__main__":
    main()
