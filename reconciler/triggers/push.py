"""``reconcile trigger push``: apply the pushed commit, then launch exactly the runs its push matched.

The sequence, each step one call into the layer that owns it:

1. read the desired state at ``after`` from Git (no checkout; the recorded commit is ``after``);
2. under the store lock: refuse a rollback, plan (``plan.diff``), apply (``apply.execute``, which
   records the commit even when nothing changed, so the next push compares from here);
3. decide the runs: ``run_on: push`` rules matched by the changed paths and the branch, plus
   ``apply: changed`` rules of what was just applied; one run per deployment;
4. launch them through the run lifecycle, each with an idempotency key of the commit and the
   deployment, so a re-run of the same CI job returns the runs it launched the first time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler import apply as applying
from reconciler import desired as desired_state
from reconciler import plan as planning
from reconciler.errors import ReconcileError
from reconciler.launch import RunContext, runs
from reconciler.objects import LiveState
from reconciler.state import RunRecord, RunState, Store
from reconciler.triggers import git as gitrules


class Workspace(Protocol):
    """What a trigger needs from its caller (the CLI's App satisfies it)."""

    project_dir: Path

    def use_tree(self, tree: desired_state.SourceTree) -> None: ...

    def desired(self) -> desired_state.Desired: ...

    def store(self, project: str | None = None) -> Store: ...

    def run_context(self, live: LiveState | None = None) -> RunContext: ...


@dataclass(frozen=True)
class PushEvent:
    """A push: the commits before and after it, and the branch it went to."""

    before: str | None
    after: str
    branch: str | None = None


@dataclass(frozen=True)
class PushOptions:
    prune: bool = False
    allow_rollback: bool = False
    allow_empty: bool = False
    lock_timeout: float = 60.0


DEFAULT_PUSH = PushOptions()


@dataclass(frozen=True)
class LaunchedRun:
    """One run a push asked for: launched now, launched by an earlier attempt, or failed to launch."""

    deployment: str
    reason: str
    run: RunRecord | None
    new: bool = True  # False: this commit's run already existed (a re-run of the same job)
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.run is None or self.run.state is RunState.CRASHED


@dataclass(frozen=True)
class PushResult:
    plan: planning.Plan
    applied: applying.ApplyResult
    changed: gitrules.ChangedPaths
    relation: gitrules.Relation
    decisions: tuple[gitrules.RuleDecision, ...]
    runs: tuple[LaunchedRun, ...]

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.runs)


def trigger_push(
    ws: Workspace,
    repo: desired_state.GitRepo,
    event: PushEvent,
    *,
    options: PushOptions = DEFAULT_PUSH,
    on_plan: Callable[[planning.Plan], None] | None = None,
) -> PushResult:
    """Apply ``event.after`` and launch the runs it triggers. ``on_plan`` may show/confirm (or raise)."""
    after = repo.resolve(event.after)
    before = repo.resolve(event.before) if repo.has_commit(event.before) else event.before
    ws.use_tree(repo.tree(ws.project_dir, after, label=event.branch))
    desired = ws.desired()
    store = ws.store(desired.project)
    with store.lock(timeout=options.lock_timeout, info=applying.lock_info("trigger push")):
        live = store.read_all()
        found = gitrules.relation(repo, after, live.last_commit)
        gitrules.refuse_rollback(found, after, live.last_commit, allow=options.allow_rollback)
        base, why = gitrules.push_base(repo, before=before, after=after, last_applied=live.last_commit)
        result = applying.plan_for(desired, live, prune=options.prune)
        applying.check_not_empty(result, options=applying.ApplyOptions(allow_empty=options.allow_empty))
        if on_plan is not None:
            on_plan(result)
        outcome = applying.execute(
            result, store, options=applying.ApplyOptions(allow_empty=options.allow_empty)
        )
    changed = gitrules.changed_paths(repo, base=base, head=after, prefix=repo.prefix(ws.project_dir), why=why)
    decisions = tuple(gitrules.push_decisions(desired.run_rules, branch=event.branch, paths=changed.paths))
    wanted = {r.deployment: r.reason for r in result.runs} | gitrules.fired(decisions)
    launched = _launch(ws, wanted, commit=after)
    return PushResult(result, outcome, changed, found, decisions, launched)


def _launch(ws: Workspace, wanted: dict[str, str], *, commit: str) -> tuple[LaunchedRun, ...]:
    """Create and launch one run per deployment; one failure does not stop the others."""
    if not wanted:
        return ()
    launched: list[LaunchedRun] = []
    ctx = ws.run_context()
    try:
        for deployment, reason in wanted.items():
            try:
                run = runs.create(
                    ctx, deployment, reason=reason, idempotency_key=f"push:{commit}:{deployment}"
                )
                new = run.state is RunState.SCHEDULED
                launched.append(LaunchedRun(deployment, reason, runs.launch(ctx, run), new))
            except ReconcileError as exc:
                launched.append(LaunchedRun(deployment, reason, None, error=str(exc)))
    finally:
        ctx.close()
    return tuple(launched)


def describe(result: PushResult) -> list[str]:
    """What happened, for a terminal and for logs: the range compared, each rule's verdict, each run."""
    lines = [f"Changed paths ({result.changed.why}): {len(result.changed.paths)}"]
    lines.extend(f"  {path}" for path in result.changed.paths[:50])
    if len(result.changed.paths) > 50:
        lines.append(f"  ... and {len(result.changed.paths) - 50} more")
    for decision in result.decisions:
        verdict = "fires" if decision.fired else "skips"
        lines.append(f"Rule {decision.rule.describe()} of {decision.deployment} {verdict}: {decision.why}")
    if not result.runs:
        lines.append("No runs to launch.")
    for item in result.runs:
        if item.run is None:
            lines.append(f"Could not launch {item.deployment} ({item.reason}): {item.error}")
            continue
        verb = "Launched" if item.new else "Already launched for this commit:"
        state = item.run.state.value + (f" ({item.run.message})" if item.failed and item.run.message else "")
        lines.append(f"{verb} run {item.run.id} of {item.deployment} ({item.reason}): {state}")
    return lines
