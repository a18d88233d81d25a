"""``serve --sync-interval``: continuous sync of a Git ref, as Argo CD does.

Every ``interval`` seconds a sync pass fetches the ref from its remote (when the ref follows one: a
clone's branch, or ``origin/main``; a local branch otherwise), plans its commit against the store and
logs one line: the commit, the changes pending and how many of them are drift (objects changed behind
the tool's back). With ``self_heal`` the pass applies them THROUGH THE ENGINE (``engine.reconcile``),
so every guard holds: the store's lock, the empty-file guard, the rollback guard, adoption consent,
and deletes only with ``prune``. A commit that fails (an invalid file, a guard's refusal, Git
failing) is reported and nothing is applied: the store keeps the last good state.

The serve loop calls :meth:`Syncer.run_if_due` before each of its passes and sleeps through
:meth:`Syncer.sleep`, so syncs keep their own interval whatever the serve interval is.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import desired as desired_state
from reconciler import engine
from reconciler import plan as planning
from reconciler.errors import ReconcileError, SpecError
from reconciler.infra import redact

__all__ = ["SyncOptions", "SyncReport", "SyncTotals", "Syncer"]


@dataclass(frozen=True)
class SyncOptions:
    """How continuous sync behaves; ``interval`` None turns it off (the CLI's default)."""

    interval: float | None = None  # seconds between sync passes
    ref: str | None = None  # the Git ref to follow; None: the branch checked out
    self_heal: bool = False  # apply what the pass finds (else report only)
    prune: bool = False  # delete objects gone from the file (only with self_heal)
    lock_timeout: float = engine.DEFAULT_OPTIONS.lock_timeout


@dataclass(frozen=True)
class SyncReport:
    """One sync pass, in counts (what the log line says and what a metric exposes)."""

    at: datetime
    ref: str
    commit: str | None = None  # None: the ref could not be read
    pending: int = 0  # changes the commit asks for (orphans not counted)
    drifted: int = 0  # of those, objects changed behind the tool's back
    orphaned: int = 0  # objects gone from the file, kept because prune is off
    applied: int = 0  # changes written by self-heal
    error: str | None = None  # why nothing was applied (invalid commit, guard, Git, store)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def in_sync(self) -> bool:
        return not self.failed and self.pending == self.applied


@dataclass
class SyncTotals:
    """Counters over the process's life (monotonic, as Prometheus counters are)."""

    passes: int = 0
    failures: int = 0
    drifted: int = 0
    applied: int = 0
    last: SyncReport | None = None
    last_good_commit: str | None = None  # the last commit that planned (and, with self-heal, applied)

    def add(self, report: SyncReport) -> None:
        self.passes += 1
        self.failures += report.failed  # a failed pass keeps the last good commit
        self.drifted += report.drifted
        self.applied += report.applied
        self.last = report
        if not report.failed:
            self.last_good_commit = report.commit


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Syncer:
    """Continuous sync of one workspace to one Git ref; one instance per serve process."""

    ws: engine.Workspace
    options: SyncOptions
    log: Callable[[str], None]
    now: Callable[[], datetime] = _utcnow
    clock: Callable[[], float] = time.monotonic
    totals: SyncTotals = field(default_factory=SyncTotals)
    # seconds a self-heal pass waited for the store's lock (serve's metrics set this)
    on_lock_wait: Callable[[float], None] | None = None
    _next: float | None = None  # monotonic time the next pass is due; None: due now

    @property
    def enabled(self) -> bool:
        return self.options.interval is not None

    def run_if_due(self) -> SyncReport | None:
        """One sync pass when its interval has elapsed (always the first time); the serve loop's hook."""
        if not self.enabled or (self._next is not None and self.clock() < self._next):
            return None
        assert self.options.interval is not None
        self._next = self.clock() + self.options.interval
        return self.sync()

    def loop_hooks(self) -> dict[str, Any]:
        """``ServeLoop`` keyword arguments: a sync pass before each serve pass when due, and sleeps
        that run the sync passes falling due meanwhile (a signal still ends them at once)."""
        stop = threading.Event()
        return {"before_pass": self.run_if_due, "sleep": self.sleep(stop), "stop": stop}

    def sleep(self, stop: threading.Event) -> Callable[[float], None]:
        """A sleep for the serve loop that runs the sync passes falling due while it waits and ends
        at once when ``stop`` is set."""

        def wait(seconds: float) -> None:
            until = self.clock() + seconds
            while not stop.is_set():
                left = until - self.clock()
                if left <= 0:
                    return
                due = left if self._next is None or not self.enabled else self._next - self.clock()
                if stop.wait(max(0.0, min(left, due))):
                    return
                if self.enabled and self._next is not None and self.clock() >= self._next:
                    self.run_if_due()

        return wait

    def sync(self) -> SyncReport:
        """Fetch, plan, report, and with self-heal apply through the engine; never raises a user error."""
        at = self.now()
        ref, commit = self.options.ref or "HEAD", None
        try:
            ref = self.options.ref or self._checked_out()
            target = self._fetch(ref)
            commit = target.git.commit  # an invalid commit is named in the report
            report = self._reconcile(at, ref, target)
        except ReconcileError as exc:
            report = SyncReport(at, ref, commit=commit, error=_describe(exc))
        finally:
            self.ws.close_tree()
        self.totals.add(report)
        self.log(self._line(report))
        return report

    # -- steps ---------------------------------------------------------------------------------------

    def _fetch(self, ref: str) -> desired_state.GitTree:
        """The ref's newest commit: fetched from its remote when it follows one. The tree returned
        owns its repository handle (the workspace closes it)."""
        repo = desired_state.GitRepo.open(Path(self.ws.project_dir))
        try:
            upstream = repo.upstream(ref)
            target = ref
            if upstream is not None:
                remote, target = upstream
                repo.fetch(remote)
            tree = repo.tree(Path(self.ws.project_dir), target, label=ref)
        except BaseException:
            repo.close()
            raise
        return dataclasses.replace(tree, owns_repo=True)

    def _checked_out(self) -> str:
        """The branch checked out (``HEAD`` when detached): what sync follows without ``--sync-ref``."""
        info = desired_state.detect(Path(self.ws.project_dir))
        return info.ref if info is not None and info.ref else "HEAD"

    def _reconcile(self, at: datetime, ref: str, tree: desired_state.GitTree) -> SyncReport:
        """Plan the commit (and with self-heal apply it, under the lock, every guard included)."""
        self.ws.use_tree(tree)
        commit = tree.git.commit
        if not self.options.self_heal:
            outcome = engine.plan_only(self.ws, prune=self.options.prune)
            return _counted(at, ref, commit, outcome.plan, applied=0)
        outcome = engine.reconcile(
            self.ws,
            engine.ReconcileOptions(
                prune=self.options.prune,
                lock_timeout=self.options.lock_timeout,
                purpose="serve sync",
                rollback_remedy=rollback_remedy(ref),
                on_lock_wait=self.on_lock_wait,
            ),
            review=_worth_applying,
        )
        applied = len(outcome.applied.results) if outcome.applied is not None else 0
        return _counted(at, ref, commit, outcome.plan, applied=applied)

    def _line(self, report: SyncReport) -> str:
        stamp = report.at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        where = f"{report.ref} at {report.commit[:12]}" if report.commit else report.ref
        if report.error is not None:
            kept = self.totals.last_good_commit
            keeping = f", the store keeps {kept[:12]}" if kept else ""
            return f"{stamp} sync: {where}: error: {report.error}; nothing applied{keeping}"
        counts = f"{report.pending} change(s) pending, {report.drifted} drifted"
        if report.orphaned:
            counts += f", {report.orphaned} orphaned (not pruned)"
        if report.pending == 0:
            state = "in sync"
        elif self.options.self_heal:
            state = f"self-healed: {report.applied} applied"
        else:
            state = "out of sync (not applied: --self-heal is off)"
        return f"{stamp} sync: {where}: {state}; {counts}"


def rollback_remedy(ref: str) -> str:
    """What the operator of ``serve --self-heal`` can do when the ref went back to an older commit.

    serve has no ``--allow-rollback``, on purpose: an unattended loop that may roll back would, at
    every interval, put the ref's older commit over whatever a person applied from a newer one (Argo
    CD likewise refuses a rollback while automated sync is on). A rollback is a person's decision,
    taken once with ``apply``; sync then follows from the commit applied."""
    return (
        f"serve never rolls back on its own: to roll back on purpose, run `reconcile apply "
        f"--allow-rollback` with {ref} checked out (sync follows from there), or move {ref} forward "
        "(e.g. a revert commit)"
    )


def _worth_applying(plan: planning.Plan) -> bool:
    """Apply (and take a history row) only when there is something to write or a new commit to record."""
    git = plan.source.git
    return plan.has_changes or (git is not None and git.commit != plan.state.last_commit)


def _counted(at: datetime, ref: str, commit: str, plan: planning.Plan, *, applied: int) -> SyncReport:
    """Drift: a change the store flags as made outside the tool, or any change when the commit is
    the one last applied (Git did not move, so the store did)."""
    writes = plan.writes
    same_commit = plan.state.last_commit == commit
    drifted = sum(1 for c in writes if same_commit or c.drift is not None)
    orphaned = sum(1 for c in plan.changes if c.action is planning.Action.ORPHANED)
    return SyncReport(
        at, ref, commit, pending=len(writes), drifted=drifted, orphaned=orphaned, applied=applied
    )


def _describe(exc: ReconcileError) -> str:
    """One line: an invalid file's first problems located ``path:line:col``, or the error itself."""
    if isinstance(exc, SpecError) and exc.diagnostics:
        shown = "; ".join(str(d) for d in exc.diagnostics[:3])
        more = len(exc.diagnostics) - 3
        return f"invalid desired state: {shown}" + (f" (and {more} more)" if more > 0 else "")
    return redact.redact_urls(" ".join(str(exc).split()))  # a failed fetch names the remote's URL
