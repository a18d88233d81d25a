"""ENGINE: one reconcile, whatever triggered it (``reconcile`` / ``plan_only``), and the one launch loop.

Below the triggers and the CLI, above launch, apply, plan, state and desired: every entry point hands
the engine a :class:`Workspace` and receives an :class:`Outcome`.
"""

from reconciler.apply import DEFAULT_PARALLELISM
from reconciler.engine.launching import LaunchedRun, RunKey, launch_runs
from reconciler.engine.reconcile import (
    DEFAULT_OPTIONS,
    ForeignPlan,
    Outcome,
    ReconcileOptions,
    Review,
    SandboxRefused,
    plan_only,
    reconcile,
    source_notes,
)
from reconciler.engine.workspace import STATE_ENV, Workspace

__all__ = [
    "DEFAULT_OPTIONS",
    "DEFAULT_PARALLELISM",
    "STATE_ENV",
    "ForeignPlan",
    "LaunchedRun",
    "Outcome",
    "ReconcileOptions",
    "Review",
    "RunKey",
    "SandboxRefused",
    "Workspace",
    "launch_runs",
    "plan_only",
    "reconcile",
    "source_notes",
]
