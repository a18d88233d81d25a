"""``reconcile --watch``: a developer's loop over watchfiles. Save -> plan printed -> applied -> runs.

One process, one :class:`~reconciler.engine.Workspace` kept for the whole session: the store is opened once,
the flow-file AST cache stays warm, so the hot path of a save is load + read + diff + render (measured
in BENCHMARKS.md, "Watch latency"). watchfiles is asked for small batches (``step``) so a save is seen
soon after it lands; bursts of saves are coalesced here, per deployment, for launching runs.

What happens on a change:

1. A change to the desired-state file or an entrypoint's source reconciles through the engine (plan
   printed, applied under the store lock unless ``--plan-only``). An invalid file prints its
   ``FILE:LINE:COL`` problems and changes nothing: the last good desired state stays in force (its
   run rules, its watched files).
2. A change under a deployment's ``run_on: watch`` paths queues a run of it; when the burst is over
   the run is created and launched (``reason: "watch: <first path>"``). Runs launch what is applied,
   and a burst that also changed the file was applied when it was seen, before its runs launch.
   A run of that deployment still going defers the next one until it ends (``--allow-overlap`` starts
   it at once), so a burst never stacks runs.
3. With a sandbox prefix the engine plans against the sandbox's own objects only and refuses to
   write anything shared (blocks included).
4. SIGINT/SIGTERM set the stop event; the current step finishes (never half an apply), runs in flight
   are left running and listed, queued ones are listed as not launched, and the loop returns 0.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import watchfiles

from reconciler import desired as desired_state
from reconciler import engine, plan
from reconciler.errors import ReconcileError, SpecError
from reconciler.infra import signals
from reconciler.launch import RunContext, runs
from reconciler.state import RunRecord
from reconciler.triggers.watch_events import (
    Coalescer,
    PathMatcher,
    ProjectFilter,
    compile_globs,
    describe,
    spec_files,
    state_files,
)

DEBUG_ENV = "RECONCILE_DEBUG"

# watch has no --allow-rollback: a rollback is a deliberate, one-off apply
ROLLBACK_REMEDY = (
    "watch never rolls back: check out the last applied commit or a newer one, or roll back once, "
    "on purpose, with `reconcile apply --allow-rollback`"
)


@dataclass(frozen=True)
class WatchOptions:
    """How the loop behaves; the defaults are the CLI's."""

    apply_changes: bool = True  # False: --plan-only (no applies, no runs: nothing is written)
    sandbox: str | None = None  # prefix of the developer's copies of pools and deployments
    allow_overlap: bool = False  # start a run even while the previous one of that deployment runs
    burst_window: float = 0.4  # seconds of quiet that end a burst of changes (for runs)
    max_burst: float = 5.0  # a burst longer than this fires anyway
    step_ms: int = 10  # watchfiles: a batch ends after this much quiet (it bounds the latency of a save)
    debounce_ms: int = 50  # watchfiles: a batch never grows longer than this
    tick_ms: int = 100  # watchfiles rust_timeout: how often an idle loop wakes to launch due runs
    lock_timeout: float = 60.0
    deferred_poll: float = 1.0  # seconds between checks of a run that holds back the next one


DEFAULT_WATCH = WatchOptions()


class WatchLoop:
    """One watch session. ``run()`` blocks until ``stop`` is set (or a signal sets it) and returns 0."""

    def __init__(
        self,
        project: engine.Workspace,
        *,
        options: WatchOptions = DEFAULT_WATCH,
        stop: threading.Event | None = None,
    ) -> None:
        if options.sandbox is not None:
            desired_state.check_prefix(options.sandbox)
        self.project, self.options = project, options
        self.stop = stop or threading.Event()
        self.root = Path(project.project_dir).resolve()
        self.file = os.path.relpath(self.root / project.file, self.root).replace(os.sep, "/")
        self.filter = ProjectFilter(
            self.root, ignored=state_files(project.state_location, self.root), outside=frozenset({self.file})
        )
        self.coalescer = Coalescer(quiet=options.burst_window, max_delay=options.max_burst)
        self._good: desired_state.Desired | None = None  # the last desired state that loaded and checked
        self._broken = True  # the file was invalid at the last look: any change retries it
        self._spec_files = spec_files(None, self.file)
        self._rules: list[tuple[str, PathMatcher]] = []
        self._ctx: RunContext | None = None
        self._runs: dict[str, RunRecord] = {}  # every run this session launched, as last seen
        self._newest: dict[str, str] = {}  # deployment -> id of its newest run of this session
        self._deferred: dict[str, str] = {}  # deployment -> reason, waiting for its previous run to end
        self._next_deferred_check = 0.0

    # -- the loop ----------------------------------------------------------------------------------

    def run(self) -> int:
        o = self.options
        paths = {self.root, (self.root / self.file).resolve().parent}
        with signals.stop_on_signals(self.stop):
            try:
                batches = watchfiles.watch(
                    *sorted(paths),
                    watch_filter=None,  # filtered here, so ignored churn (run logs) still yields ticks
                    step=o.step_ms,
                    debounce=o.debounce_ms,
                    rust_timeout=o.tick_ms,
                    yield_on_timeout=True,
                    stop_event=self.stop,
                    raise_interrupt=False,
                )
                started = False
                for changes in batches:
                    if not started:  # the watcher is live from here: nothing saved from now is missed
                        started = True
                        self._guard(lambda: self._reconcile("start"))
                        self.project.out(f"Watching {self.root} for changes (Ctrl-C to stop)")
                        continue
                    wanted = sorted({p for p in map(self.filter.wanted, _expand(changes)) if p})
                    if wanted:
                        self._guard(functools.partial(self._on_changes, wanted))
                    self._guard(self._tick)
                    if self.stop.is_set():
                        break
            finally:
                self._shutdown()
        return 0

    def _on_changes(self, paths: list[str]) -> None:
        touched = [p for p in paths if p in self._spec_files]
        if touched or self._broken:
            self._reconcile(describe(touched or paths))
        now = time.monotonic()
        for deployment, matches in self._rules:
            hit = next((p for p in paths if matches(p)), None)
            if hit is not None and self.coalescer.add(deployment, hit, now):
                self.project.out(f"[{_clock()}] {hit} changed: a run of {deployment} is queued")

    def _tick(self) -> None:
        for deployment, path in self.coalescer.due(time.monotonic()):
            self._launch(deployment, f"watch: {path}")
        if self._deferred and time.monotonic() >= self._next_deferred_check:
            self._next_deferred_check = time.monotonic() + self.options.deferred_poll
            for deployment, reason in list(self._deferred.items()):
                if not self._still_going(deployment):
                    del self._deferred[deployment]
                    self._launch(deployment, reason)

    # -- desired -> plan -> apply ------------------------------------------------------------------

    def _reconcile(self, why: str) -> None:
        self.project.out(f"[{_clock()}] {why}: planning")
        self._wait_for_file()
        sandbox = self.options.sandbox
        try:
            if self.options.apply_changes:
                outcome = engine.reconcile(
                    self.project,
                    engine.ReconcileOptions(
                        sandbox=sandbox,
                        lock_timeout=self.options.lock_timeout,
                        purpose="watch",
                        launch=False,
                        rollback_remedy=ROLLBACK_REMEDY,
                    ),
                    review=self._review,
                )
            else:
                outcome = engine.plan_only(self.project, sandbox=sandbox)
                self._review(outcome.plan)
        except SpecError as exc:
            for diagnostic in exc.report():
                self.project.err(str(diagnostic))
            self._broken = True
            kept = "keeping the last good state" if self._good is not None else "nothing applied"
            self.project.out(f"{self.file} is invalid ({_count(len(exc.diagnostics), 'problem')}); {kept}")
            return
        except engine.SandboxRefused as exc:
            self.project.out(str(exc))
            return
        assert outcome.desired is not None
        self._adopt(outcome.desired)
        if outcome.applied is None:
            if outcome.plan.has_changes:
                self.project.out("Not applied (--plan-only).")
            return
        self.project.out(f"Apply complete: {outcome.applied.describe()}.")
        for request in outcome.plan.runs:
            self._launch(request.deployment, request.reason)

    def _review(self, result: plan.Plan) -> bool:
        """Print the plan; apply only when there is something to write."""
        self.project.out(plan.render_text(result, color=self.project.color))
        return result.has_changes

    def _wait_for_file(self) -> None:
        """Editors that save by rename leave a moment without the file."""
        path = self.root / self.file
        deadline = time.monotonic() + 0.2
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _adopt(self, desired: desired_state.Desired) -> None:
        self._good, self._broken = desired, False
        self._spec_files = spec_files(desired, self.file)
        self._rules = [
            (address.name, compile_globs(p for rule in watch for p in rule.paths))
            for address, rules in sorted(desired.run_rules.items())
            if (watch := [r for r in rules if r.kind is desired_state.RuleKind.WATCH])
        ]

    # -- runs --------------------------------------------------------------------------------------

    def _context(self) -> RunContext:
        live = self.project.store().read_all()  # runs launch what is applied, as of now
        if self._ctx is None:
            self._ctx = self.project.run_context(live)
        else:
            self._ctx.live = live
        return self._ctx

    def _launch(self, deployment: str, reason: str) -> None:
        if not self.options.apply_changes:
            self.project.out(f"Would launch a run of {deployment} ({reason}); not launched (--plan-only).")
            return
        if not self.options.allow_overlap and self._still_going(deployment):
            previous = self._runs[self._newest[deployment]]
            if deployment not in self._deferred:
                self.project.out(
                    f"Run {previous.id} of {deployment} is still {previous.state.value}: the next run starts "
                    "when it ends (--allow-overlap runs them side by side)"
                )
            self._deferred[deployment] = reason
            return
        (launched,) = engine.launch_runs(self.project, {deployment: reason})
        self.project.out(launched.describe())
        if launched.run is not None:
            self._runs[launched.run.id] = launched.run
            self._newest[deployment] = launched.run.id

    def _still_going(self, deployment: str) -> bool:
        previous = self._runs.get(self._newest.get(deployment, ""))
        if previous is None or previous.state.terminal:
            return False
        return not self._refresh(previous).state.terminal

    def _refresh(self, run: RunRecord) -> RunRecord:
        try:
            run = runs.refresh(self._context(), run)
        except ReconcileError as exc:
            self.project.err(f"error: cannot follow run {run.id}: {exc}")
        self._runs[run.id] = run
        return run

    # -- shutdown ----------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        self.project.out(f"\n[{_clock()}] Stopping.")
        try:
            queued = [(d, f"watch: {p}") for d, p in self.coalescer.clear()] + list(self._deferred.items())
            for deployment, reason in queued:
                self.project.out(f"Not launched: a run of {deployment} ({reason})")
            open_runs = [self._refresh(r) for r in list(self._runs.values()) if not r.state.terminal]
            going = [r for r in open_runs if not r.state.terminal]
            if going:
                self.project.out("Runs still in flight (left running):")
                for run in going:
                    where = run.infrastructure_id or "-"
                    self.project.out(f"  {run.id}  {run.deployment}  {run.state.value}  {where}")
        except ReconcileError as exc:
            self.project.err(f"error: {exc}")
        finally:
            if self._ctx is not None:
                self._ctx.close()

    def _guard(self, step: Callable[[], None]) -> None:
        """One step's failure is reported and the loop goes on: a watcher never dies of a bad save."""
        try:
            step()
        except ReconcileError as exc:
            self.project.err(f"error: {' '.join(str(exc).split())}")
        except Exception as exc:  # the loop outlives any one step
            if os.environ.get(DEBUG_ENV, "") not in ("", "0", "false"):
                traceback.print_exception(exc)
            name = type(exc).__name__
            self.project.err(f"error: internal error: {name}: {exc} (set {DEBUG_ENV}=1 for a traceback)")


def _expand(changes: set[tuple[watchfiles.Change, str]], *, limit: int = 10_000) -> Iterator[str]:
    """The changed paths, plus the files inside each new directory: inotify watches a new directory
    only once it exists, so files written into it right away (``mkdir -p``, ``git checkout``,
    unpacking) may never be reported on their own."""
    for change, path in changes:
        yield path
        if change is watchfiles.Change.added and os.path.isdir(path):
            for count, (folder, _, files) in enumerate(os.walk(path)):
                if count >= limit:
                    break
                for name in files:
                    yield os.path.join(folder, name)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")
