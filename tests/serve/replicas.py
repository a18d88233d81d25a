"""N `reconcile serve` processes on one store, with the fake launcher of ``replica_launcher``: what
the replica tests and ``bench/bench_replicas.py`` share.

A project with one pool (``concurrency_limit`` LIMIT) and one deployment is applied, COUNT due runs
are recorded in the store at once, then the replicas are started and left to launch them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reconciler import state as state_api
from reconciler.launch import RunContext, runs
from reconciler.state import RunRecord
from tests.helpers import REPO, make_project, run_cli
from tests.serve import replica_launcher


def project_file(limit: int, *, pool: str, deployment: str) -> str:
    return f"""
        name: replicas
        work_pools:
          - name: {pool}
            type: process
            concurrency_limit: {limit}
        deployments:
          - name: {deployment}
            entrypoint: flows/hello.py:hello
            work_pool: {{name: {pool}}}
        """


@dataclass
class Replicas:
    """A project applied to ``state_url`` and the serve processes started on it."""

    root: Path
    state_url: str
    project: str
    events: Path
    deployment: str
    run_seconds: float = 0.2
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @classmethod
    def prepare(
        cls,
        tmp: Path,
        state_url: str,
        *,
        project: str,
        limit: int,
        pool: str = "local",
        deployment: str = "job",
    ) -> Replicas:
        root = make_project(tmp / "proj", project_file(limit, pool=pool, deployment=deployment))
        applied = run_cli("-C", str(root), "--state", state_url, "--project", project, "apply", "--yes")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        return cls(root, state_url, project, tmp / "events.txt", f"hello/{deployment}")

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
        env.update(
            {
                "PYTHONPATH": str(REPO),
                "NO_COLOR": "1",
                "RECONCILE_TEST_LAUNCHER": "tests.serve.replica_launcher:ReplicaLauncher",
                replica_launcher.EVENTS_ENV: str(self.events),
                replica_launcher.SECONDS_ENV: str(self.run_seconds),
            }
        )
        return env

    def store(self) -> state_api.Store:
        return state_api.open_store(self.state_url, project=self.project)

    def record_due_runs(self, count: int, *, now: datetime | None = None) -> list[RunRecord]:
        """COUNT runs of the deployment, due now, recorded as ``reconcile run`` would (nothing launched)."""
        store = self.store()
        try:
            ctx = RunContext(
                store=store,
                live=store.read_all(),
                project_dir=self.root,
                runs_dir=self.root / ".reconcile" / "runs",
                environ={},
                launcher_factory=lambda name: replica_launcher.ReplicaLauncher(
                    name, runs_dir=self.root, environ=self.environ()
                ),
            )
            at = now or datetime.now(UTC)
            return [
                runs.create(ctx, self.deployment, reason="manual", scheduled_for=at) for _ in range(count)
            ]
        finally:
            store.close()

    def start(self, count: int, *, interval: float = 0.1, extra: tuple[str, ...] = ()) -> None:
        for _ in range(count):
            index = len(self.procs)
            log = self.root.parent / f"replica-{index}.log"
            command = [
                sys.executable,
                "-m",
                "reconciler",
                "-C",
                str(self.root),
                "--state",
                self.state_url,
                "--project",
                self.project,
                "serve",
                "--interval",
                str(interval),
                "--lookback",
                "5",
                *extra,
            ]
            with log.open("w", encoding="utf-8") as out:
                self.procs.append(
                    subprocess.Popen(
                        command, env=self.environ(), stdout=out, stderr=subprocess.STDOUT, text=True
                    )
                )
            self.logs.append(log)

    def kill(self, index: int) -> None:
        """SIGKILL one replica (mid-pass: it gets no chance to tidy up)."""
        self.procs[index].send_signal(signal.SIGKILL)
        self.procs[index].wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM every replica still running, then wait for it (SIGKILL after 30 s)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def starts(self) -> int:
        return sum(len(times) for times in replica_launcher.events(self.events)[0].values())

    def wait_until(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            dead = [p.args for p in self.procs if p.poll() not in (None, -signal.SIGKILL)]
            assert not dead, f"a replica exited early; logs: {self.tail()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}; logs: {self.tail()}"
            time.sleep(0.2)

    def ended(self, ids: set[str]) -> bool:
        store = self.store()
        try:
            done = {r.id for r in store.list_runs(limit=10_000) if r.state.terminal}
        finally:
            store.close()
        return ids <= done

    def final_states(self) -> Mapping[str, str]:
        store = self.store()
        try:
            return {r.id: r.state.value for r in store.list_runs(limit=10_000)}
        finally:
            store.close()

    def tail(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(encoding="utf-8").splitlines()[-lines:])
            for log in self.logs
            if log.exists()
        )
