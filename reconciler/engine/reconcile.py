"""One reconcile: lock -> load -> read live -> plan with every guard -> review -> apply -> launch -> record.

Every entry point that changes the store (``apply``, ``trigger push``, ``--watch``, the GitHub Action)
calls :func:`reconcile`; none re-implements a step. What differs between them is passed in, never
re-coded: where the desired state comes from (the workspace's tree), how the plan is shown and
confirmed (``review``), which extra runs the event asks for (``runs_for``) and the idempotency key of
each launched run (``run_key``). Planning alone (``plan``, a pull request) is :func:`plan_only`, which
goes through the same guards without taking the lock, so reading never writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from reconciler import apply as applying
from reconciler import desired as desired_state
from reconciler import plan as planning
from reconciler.engine import gitrules
from reconciler.engine.launching import LaunchedRun, RunKey, launch_runs
from reconciler.engine.workspace import Workspace
from reconciler.errors import PlanFileError, ReconcileError, SpecError
from reconciler.objects import Kind, LiveState
from reconciler.state import JobRuntime, ObjectStore, Store


class ForeignPlan(PlanFileError):
    """A saved plan applied to a store (or project) other than the one it was made against."""


class SandboxRefused(ReconcileError):
    """A sandboxed reconcile (``--watch --sandbox``) would write an object outside its sandbox."""


@dataclass(frozen=True)
class ReconcileOptions:
    """How a reconcile behaves; the defaults are the CLI's."""

    prune: bool = False
    allow_empty: bool = False
    allow_rollback: bool = False
    lock_timeout: float = 60.0
    purpose: str = "apply"  # shown to whoever waits for the lock, and in history
    sandbox: str | None = None  # plan and write only the developer's copies (``--watch --sandbox``)
    saved_plan: planning.Plan | None = None  # apply exactly this plan (``apply PLANFILE``)
    launch: bool = True  # launch the runs the plan and the event ask for
    parallelism: int = applying.DEFAULT_PARALLELISM  # writes of one dependency wave in flight at once
    adopt: bool = False  # consent to take over existing objects no project manages (``apply --adopt``)
    rollback_remedy: str = gitrules.ROLLBACK_REMEDY  # what the rollback guard's refusal tells to do
    # seconds it took to get the store's lock (or to give up on it): serve's lock-wait metric
    on_lock_wait: Callable[[float], None] | None = field(default=None, compare=False)


DEFAULT_OPTIONS = ReconcileOptions()


class Review(Protocol):
    """Shows the plan and decides: return True to apply it, False to stop without writing.
    Raising (``click.Abort``, a refusal) also stops before anything is written."""

    def __call__(self, plan: planning.Plan) -> bool: ...


RunsFor = Callable[[planning.Plan, desired_state.Desired | None, LiveState], Mapping[str, str]]


@dataclass(frozen=True)
class Outcome:
    """What one reconcile did: the plan, what it wrote (None when nothing was applied) and the runs."""

    plan: planning.Plan
    applied: applying.ApplyResult | None
    runs: tuple[LaunchedRun, ...] = ()
    desired: desired_state.Desired | None = field(default=None, compare=False)

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.runs)


def plan_only(
    ws: Workspace, *, prune: bool = False, sandbox: str | None = None, preflight: bool = False
) -> Outcome:
    """Desired + live -> Plan through every planning guard, without the lock (nothing is written).
    With ``preflight``, the push pools are also checked against their clouds (read-only calls)."""
    desired = _load(ws, sandbox)
    store = ws.store(desired.project)
    _refuse_server_only(desired, store)
    live = _scope(store.read_all(), sandbox)
    result = _stamped(applying.plan_for(desired, live, prune=prune, store=store), store)
    if preflight:  # imported here: a plain plan never loads the cloud checks
        from reconciler.launch import preflight as launch_preflight

        findings = launch_preflight.preflight_for(desired, ws.environ, live=live)
        result = dataclasses.replace(result, preflight=findings)
    return Outcome(result, None, desired=desired)


def reconcile(
    ws: Workspace,
    options: ReconcileOptions = DEFAULT_OPTIONS,
    *,
    review: Review | None = None,
    runs_for: RunsFor | None = None,
    run_key: RunKey | None = None,
    on_write: Callable[[planning.Change], None] | None = None,
) -> Outcome:
    """Make the store match the workspace's desired state (or a saved plan), then launch the runs."""
    saved = options.saved_plan
    # the file is checked before the lock: bad input stops here, having touched nothing
    desired = None if saved is not None else _load(ws, options.sandbox)
    store = ws.store(desired.project if desired is not None else None)  # a saved plan: this project's
    if desired is not None:
        _refuse_server_only(desired, store)
    with _locked(store, options):
        live = _scope(store.read_all(), options.sandbox)
        result = _stamped(_guarded_plan(ws, store, desired, live, options), store)
        if review is not None and not review(result):
            return Outcome(result, None, desired=desired)
        if result.has_changes:
            _refuse_outside_sandbox(result, options.sandbox)
        applied = applying.execute(
            result,
            store,
            options=applying.ApplyOptions(options.allow_empty, options.parallelism),
            on_change=on_write,
        )
        wanted = {r.deployment: r.reason for r in result.runs}
        if runs_for is not None:
            wanted |= dict(runs_for(result, desired, live))
    launched = launch_runs(ws, wanted, run_key=run_key) if options.launch else ()
    return Outcome(result, applied, launched, desired=desired)


def source_notes(ws: Workspace, result: planning.Plan) -> list[str]:
    """Dirty working tree; behind (or diverged from) the commit last applied."""
    git = result.source.git
    if git is None:
        return []
    found = gitrules.relation_at(ws.project_dir, git.commit, result.state.last_commit)
    return gitrules.source_notes(git, result.state.last_commit, found)


def _load(ws: Workspace, sandbox: str | None) -> desired_state.Desired:
    desired = ws.desired()
    return desired_state.sandbox(desired, sandbox) if sandbox is not None else desired


def _refuse_server_only(desired: desired_state.Desired, store: Store) -> None:
    """On a store where serve is the scheduler (SQLite, PostgreSQL), automations serve cannot run
    are refused at their place in the file, before the lock: they would be stored and never fire."""
    if store.job_runtime is JobRuntime.RECONCILER and desired.of_kind(Kind.AUTOMATION):
        from reconciler.desired import automations as desired_automations  # ~30 ms of models

        problems = desired_automations.local_problems(desired)
        if problems:
            raise SpecError(problems)


def _guarded_plan(
    ws: Workspace,
    store: ObjectStore,
    desired: desired_state.Desired | None,
    live: LiveState,
    options: ReconcileOptions,
) -> planning.Plan:
    """The plan to apply, after every guard: references, saved plan bound to this store and still
    current, empty file, rollback."""
    if options.saved_plan is not None:
        _refuse_foreign_plan(options.saved_plan, store, live)
        applying.verify(options.saved_plan, live)
        result = options.saved_plan
    else:
        assert desired is not None
        result = applying.plan_for(desired, live, prune=options.prune, store=store)
    applying.check_not_empty(result, options=applying.ApplyOptions(options.allow_empty))
    applying.check_adoption(result, allow=options.adopt)
    git = result.source.git
    if git is not None:
        found = gitrules.relation_at(ws.project_dir, git.commit, live.last_commit)
        gitrules.refuse_rollback(
            found, git.commit, live.last_commit, allow=options.allow_rollback, remedy=options.rollback_remedy
        )
    return result


def _locked(store: ObjectStore, options: ReconcileOptions) -> contextlib.ExitStack:
    """The store's lock, held until the returned stack closes; the time it took to get it (or to
    give up) goes to ``options.on_lock_wait``."""
    held = contextlib.ExitStack()
    started = time.monotonic()
    try:
        held.enter_context(store.lock(timeout=options.lock_timeout, info=applying.lock_info(options.purpose)))
    finally:
        if options.on_lock_wait is not None:
            options.on_lock_wait(time.monotonic() - started)
    return held


def _stamped(result: planning.Plan, store: ObjectStore) -> planning.Plan:
    """The plan names the store it was made against (its lineage, None for a store that does not
    exist yet), so it applies nowhere else."""
    if result.state.lineage is not None:
        return result
    return dataclasses.replace(result, state=dataclasses.replace(result.state, lineage=store.lineage()))


def _refuse_foreign_plan(saved: planning.Plan, store: ObjectStore, live: LiveState) -> None:
    """A saved plan made for another project or another store is refused before anything is written
    (as Terraform refuses a plan of another state lineage)."""
    if saved.project != store.project:
        raise ForeignPlan(
            f"the saved plan is for project {saved.project!r}, not {store.project!r}: nothing was applied"
        )
    if saved.state.lineage is None:  # made against a store that did not exist yet (or an older file)
        if live.serial == 0 and not live.objects:
            return  # this store is still empty: the plan was made for exactly this
        raise ForeignPlan(
            "the saved plan does not name the store it was made against, and this store is not empty: "
            "run `reconcile plan --out FILE` again"
        )
    if saved.state.lineage != store.lineage():
        raise ForeignPlan(
            f"the saved plan was made against another store (lineage {saved.state.lineage}), not this one "
            f"({store.lineage()} at {store.url}): nothing was applied"
        )


def _scope(live: LiveState, sandbox: str | None) -> LiveState:
    """In a sandbox, the plan sees only the sandbox's objects and the shared ones it uses (blocks,
    variables, global concurrency limits)."""
    if sandbox is None:
        return live
    kept = {
        a: o
        for a, o in live.objects.items()
        if a.kind in desired_state.SHARED_KINDS or desired_state.in_sandbox(a, sandbox)
    }
    return LiveState(url=live.url, serial=live.serial, objects=kept, last_commit=live.last_commit)


def _refuse_outside_sandbox(result: planning.Plan, sandbox: str | None) -> None:
    if sandbox is None:
        return
    shared = [c for c in result.writes if not desired_state.in_sandbox(c.address, sandbox)]
    if shared:
        listed = ", ".join(f"{c.action.value} {c.address}" for c in shared)
        raise SandboxRefused(
            f"Not applied: the sandbox never writes shared objects ({listed}). "
            "Apply those without --sandbox first."
        )
