"""A fake launcher for `reconcile serve` PROCESSES (through the RECONCILE_TEST_LAUNCHER seam).

Each "job" runs for ``REPLICA_RUN_SECONDS`` from its submit, in no process at all. Every event is
one line appended to the file ``REPLICA_EVENTS`` (``O_APPEND``: lines of several processes never
interleave): ``start RUN_ID TIME`` at submit, ``end RUN_ID TIME`` when a poll first finds the job over.
A run's interval [start, first end] is how long it held a slot as the store saw it, which is what a
concurrency limit bounds. On a Prefect store the launcher also reports the flow run's states as
Prefect's engine would (COMPLETED at the end), through the job's own PREFECT_API_URL and
PREFECT__FLOW_RUN_ID.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from reconciler.launch import Job, JobStatus, LogChunk
from reconciler.state import RunState

EVENTS_ENV = "REPLICA_EVENTS"
SECONDS_ENV = "REPLICA_RUN_SECONDS"


class ReplicaLauncher:
    def __init__(self, name: str, *, runs_dir: Path, environ: Mapping[str, str]) -> None:
        self._events = Path(environ[EVENTS_ENV])
        self._seconds = float(environ.get(SECONDS_ENV, "0.2"))
        self._ended: set[str] = set()

    def submit(self, job: Job) -> str:
        now = time.time()
        self._append(f"start {job.run_id} {now:.6f}")
        return f"fake:{job.run_id}:{now:.6f}"

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus:
        started = float(infrastructure_id.rsplit(":", 1)[1])
        if time.time() < started + self._seconds:
            return JobStatus(RunState.RUNNING)
        if job.run_id not in self._ended:
            self._ended.add(job.run_id)
            self._append(f"end {job.run_id} {time.time():.6f}")  # before anyone can see the end
            self._report(job, "COMPLETED")
        return JobStatus(RunState.COMPLETED, exit_code=0)

    def find(self, job: Job) -> str | None:
        """The job of a run whose launcher was killed after submitting, before saving the id."""
        for line in self._events.read_text(encoding="utf-8").splitlines():
            kind, run_id, at = line.split()
            if kind == "start" and run_id == job.run_id:
                return f"fake:{run_id}:{at}"
        return None

    def cancel(self, job: Job, infrastructure_id: str) -> None:
        self._ended.add(job.run_id)

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk:
        return LogChunk("", cursor)

    def close(self) -> None:
        pass

    def _append(self, line: str) -> None:
        fd = os.open(self._events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    @staticmethod
    def _report(job: Job, state: str) -> None:
        api, run_id = job.env.get("PREFECT_API_URL"), job.env.get("PREFECT__FLOW_RUN_ID")
        if api and run_id:
            body = {"state": {"type": state}, "force": True}
            httpx.post(f"{api}/flow_runs/{run_id}/set_state", json=body, timeout=30).raise_for_status()


def events(path: Path) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Every start of each run (more than one would be a duplicate launch), and each run's first end."""
    starts: dict[str, list[float]] = {}
    ends: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else ():
        kind, run_id, at = line.split()
        if kind == "start":
            starts.setdefault(run_id, []).append(float(at))
        else:
            ends[run_id] = min(ends.get(run_id, float(at)), float(at))
    return starts, ends


def most_at_once(starts: Mapping[str, list[float]], ends: Mapping[str, float]) -> int:
    """The most runs holding a slot at one instant (an unfinished run holds it to the end)."""
    edges = sorted(
        [(at, 1) for times in starts.values() for at in times]
        + [(ends.get(run_id, float("inf")), -1) for run_id, times in starts.items() for _ in times]
    )
    # at equal instants, ends come first (-1 < 1): a slot freed and taken at once is not an overlap
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak
