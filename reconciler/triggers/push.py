"""``reconcile trigger push``: apply the pushed commit, then launch exactly the runs its push matched.

The engine does the reconcile (the desired state read at ``after`` from Git, no checkout; the commit
is recorded even when nothing changed, so the next push compares from here). What a push adds is
decided here: the ``run_on: push`` rules matched by the paths changed since the last applied commit
and the branch, and an idempotency key of the commit and the deployment per run, so a re-run of the
same CI job returns the runs it launched the first time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler import apply as applying
from reconciler import desired as desired_state
from reconciler import engine
from reconciler import plan as planning
from reconciler.engine import LaunchedRun, gitrules
from reconciler.objects import LiveState


@dataclass(frozen=True)
class PushEvent:
    """A push: the commits before and after it, and the branch it went to."""

    before: str | None
    after: str
    branch: str | None = None


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


@dataclass
class _PushRules:
    """Decides, under the engine's lock (it needs the last applied commit), which runs the push fires."""

    repo: desired_state.GitRepo
    event: PushEvent
    before: str | None
    after: str
    prefix: str
    changed: gitrules.ChangedPaths | None = None
    relation: gitrules.Relation = gitrules.Relation.FIRST
    decisions: tuple[gitrules.RuleDecision, ...] = ()

    def __call__(
        self, _plan: planning.Plan, desired: desired_state.Desired | None, live: LiveState
    ) -> Mapping[str, str]:
        self.relation = gitrules.relation(self.repo, self.after, live.last_commit)
        base, why = gitrules.push_base(
            self.repo, before=self.before, after=self.after, last_applied=live.last_commit
        )
        self.changed = gitrules.changed_paths(
            self.repo, base=base, head=self.after, prefix=self.prefix, why=why
        )
        rules = desired.run_rules if desired is not None else {}
        self.decisions = tuple(
            gitrules.push_decisions(rules, branch=self.event.branch, paths=self.changed.paths)
        )
        return gitrules.fired(self.decisions)


def trigger_push(
    ws: engine.Workspace,
    repo: desired_state.GitRepo,
    event: PushEvent,
    *,
    options: engine.ReconcileOptions = engine.DEFAULT_OPTIONS,
    review: engine.Review | None = None,
) -> PushResult:
    """Apply ``event.after`` through the engine and launch the runs it triggers (``review`` may
    show/confirm the plan, or raise)."""
    after = repo.resolve(event.after)
    before = repo.resolve(event.before) if repo.has_commit(event.before) else event.before
    ws.use_tree(repo.tree(ws.project_dir, after, label=event.branch))
    rules = _PushRules(repo, event, before, after, repo.prefix(ws.project_dir))
    outcome = engine.reconcile(
        ws,
        dataclasses.replace(options, purpose="trigger push"),
        review=review,
        runs_for=rules,
        run_key=lambda deployment: f"push:{after}:{deployment}",
    )
    assert outcome.applied is not None and rules.changed is not None  # push never stops at review
    return PushResult(
        outcome.plan, outcome.applied, rules.changed, rules.relation, rules.decisions, outcome.runs
    )


def describe(result: PushResult) -> list[str]:
    """What happened, for a terminal and for logs: the range compared, each rule's verdict, each run."""
    lines = [f"Changed paths, {result.changed.why}: {len(result.changed.paths)}"]
    lines.extend(f"  {path}" for path in result.changed.paths[:50])
    if len(result.changed.paths) > 50:
        lines.append(f"  ... and {len(result.changed.paths) - 50} more")
    for decision in result.decisions:
        verdict = "fires" if decision.fired else "skips"
        lines.append(f"Rule {decision.rule.describe()} of {decision.deployment} {verdict}: {decision.why}")
    if not result.runs:
        lines.append("No runs to launch.")
    lines.extend(item.describe() for item in result.runs)
    return lines
