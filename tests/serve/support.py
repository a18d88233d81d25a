"""What the serve tests share: a frozen clock, a controllable launcher, and an applied project."""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from reconciler import desired as desired_state
from reconciler.launch import Job, JobStatus, LogChunk, RunContext
from reconciler.serve import loop as serve
from reconciler.state import RunState, Store
from reconciler.state.memory import MemoryStore
from reconciler.state.sql.schema import objects
from reconciler.state.sql.store import SqlStore
from tests.helpers import make_project

T0 = datetime(2024, 6, 3, 10, 0, 0, tzinfo=UTC)  # a Monday


@dataclass
class Clock:
    """The loop's clock seam: ``sleep`` moves time on instead of waiting."""

    at: datetime = T0
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class FakeLauncher:
    """A Launcher whose jobs run until the test finishes them (``finish``)."""

    def __init__(self) -> None:
        self.submitted: list[str] = []  # run ids, in submit order
        self.outcomes: dict[str, JobStatus] = {}
        self.orphans: dict[str, str] = {}  # run id -> infrastructure it "has" without a recorded id
        self.fail_submit = False

    def submit(self, job: Job) -> str:
        if self.fail_submit:
            from reconciler.errors import LaunchError

            raise LaunchError("no capacity in the test cluster")
        self.submitted.append(job.run_id)
        return f"fake:{job.run_id}"

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus:
        return self.outcomes.get(job.run_id, JobStatus(RunState.RUNNING))

    def cancel(self, job: Job, infrastructure_id: str) -> None:
        self.outcomes[job.run_id] = JobStatus(RunState.CANCELLED)

    def find(self, job: Job) -> str | None:
        if job.run_id in self.submitted:
            return f"fake:{job.run_id}"
        return self.orphans.get(job.run_id)

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk:
        return LogChunk("", cursor)

    def close(self) -> None:
        pass

    def finish(self, run_id: str, state: RunState = RunState.COMPLETED, exit_code: int = 0) -> None:
        self.outcomes[run_id] = JobStatus(state, exit_code=exit_code, ended_at=T0)


FLOW = '''
def hello(name: str = "world") -> str:
    """Say hello."""
    print(f"hello {name}", flush=True)
    return name
'''


def project(root: Path, body: str, *, flows: dict[str, str] | None = None) -> Path:
    """A project directory with ``body`` under a ``local`` process pool header."""
    return make_project(root, body, flows or {"flows/hello.py": FLOW})


def apply_file(
    store: Store,
    root: Path,
    *,
    environ: dict[str, str] | None = None,
    written_at: datetime | None = T0 - timedelta(days=1),
) -> None:
    """Write the file's desired state into ``store`` as an apply would (creates and updates).

    The objects are dated ``written_at`` (by default a day before the test clock's start, so the
    deployments existed throughout every lookback window; None keeps the store's real write time):
    serve never schedules a slot due before a deployment was written.
    """
    desired = desired_state.load(
        desired_state.WorkingTree(root), environ=environ or {}, fingerprint_key=store.fingerprint_key()
    )
    live = store.read_all()
    for address, resource in desired.resources.items():
        current = live.get(address)
        store.write(resource, expected_version=current.version if current else None)
    if written_at is not None:
        backdate(store, written_at)


def backdate(store: Store, at: datetime) -> None:
    """Date every object of ``store`` as written at ``at`` (the test clock's past, not the wall's)."""
    if isinstance(store, MemoryStore):
        with store._mutex:
            for address, stored in store._objects.items():
                store._objects[address] = dataclasses.replace(stored, updated_at=at)
        return
    assert isinstance(store, SqlStore), type(store)
    with store._db._writer.begin() as conn:
        conn.execute(update(objects).where(objects.c.project == store.project).values(updated_at=at))


def backdate_file(db: Path, project: str, at: datetime) -> None:
    """``backdate`` for a SQLite state file that a CLI process wrote."""
    store = SqlStore(f"sqlite:///{db}", project=project)
    try:
        backdate(store, at)
    finally:
        store.close()


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip()


@dataclass
class Harness:
    """One serve loop over ``store`` with a frozen clock and a fake launcher, its log kept."""

    store: Store
    root: Path
    clock: Clock = field(default_factory=Clock)
    launcher: FakeLauncher = field(default_factory=FakeLauncher)
    log: list[str] = field(default_factory=list)
    options: serve.ServeOptions = field(default_factory=lambda: serve.ServeOptions(lookback=300))
    _loop: serve.ServeLoop | None = None

    def context(self) -> RunContext:
        return RunContext(
            store=self.store,
            live=self.store.read_all(),
            project_dir=self.root,
            runs_dir=self.root / ".reconcile" / "runs",
            environ={},
            launcher_factory=lambda name: self.launcher,
        )

    @property
    def loop(self) -> serve.ServeLoop:
        if self._loop is None:
            self._loop = serve.ServeLoop(
                self.context(),
                log=self.log.append,
                options=self.options,
                now=self.clock.now,
                sleep=self.clock.sleep,
            )
        return self._loop

    def restart(self, **options: Any) -> serve.ServeLoop:
        """A new serve process over the same store (its memory of past passes gone)."""
        if options:
            self.options = dataclasses.replace(self.options, **options)
        self._loop = None
        return self.loop

    def lines(self, word: str) -> list[str]:
        return [line for line in self.log if f" {word} " in line]
