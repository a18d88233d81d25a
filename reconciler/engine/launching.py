"""The one launch loop: create and launch one run per deployment an event asked for.

Runs launch what is applied (the stored state), one failure does not stop the others, and a run
with an idempotency key that already exists is reported as it is now (refreshed), not launched again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.errors import ReconcileError
from reconciler.state import RunRecord, RunState

if TYPE_CHECKING:
    from reconciler.engine.workspace import Workspace

RunKey = Callable[[str], str | None]
"""deployment -> the idempotency key of its run for this event (None: every call is a new run)."""


@dataclass(frozen=True)
class LaunchedRun:
    """One run an event asked for: launched now, launched by an earlier attempt, or failed to launch."""

    deployment: str
    reason: str
    run: RunRecord | None
    new: bool = True  # False: the run already existed (a re-run of the same CI job)
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.run is None or self.run.state is RunState.CRASHED

    def describe(self) -> str:
        """``Launched run ID of DEPLOYMENT (REASON): STATE`` with the reason a run failed, for people."""
        if self.run is None:
            return f"Could not launch {self.deployment} ({self.reason}): {self.error}"
        verb = "Launched" if self.new else "Already launched for this commit:"
        state = self.run.state.value
        if self.run.state in _EXPLAINED and self.run.message:
            state += f" ({' '.join(self.run.message.split())})"
        return f"{verb} run {self.run.id} of {self.deployment} ({self.reason}): {state}"


_EXPLAINED = frozenset({RunState.CRASHED, RunState.FAILED, RunState.CANCELLED})


def launch_runs(
    ws: Workspace, wanted: Mapping[str, str], *, run_key: RunKey | None = None
) -> tuple[LaunchedRun, ...]:
    """Create and launch one run per ``deployment -> reason``; report each as it is now."""
    if not wanted:
        return ()
    from reconciler.launch import runs  # the launchers load only when a run is asked for (~25 ms)

    launched: list[LaunchedRun] = []
    ctx = ws.run_context()
    try:
        for deployment, reason in wanted.items():
            key = run_key(deployment) if run_key is not None else None
            try:
                run = runs.create(ctx, deployment, reason=reason, idempotency_key=key)
                if run.state is RunState.SCHEDULED:
                    launched.append(LaunchedRun(deployment, reason, runs.launch(ctx, run)))
                else:  # an earlier attempt of this event launched it: say how it is now
                    launched.append(LaunchedRun(deployment, reason, runs.refresh(ctx, run), new=False))
            except ReconcileError as exc:
                launched.append(LaunchedRun(deployment, reason, None, error=str(exc)))
    finally:
        ctx.close()
    return tuple(launched)
