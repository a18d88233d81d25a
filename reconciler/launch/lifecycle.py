"""The run state machine: the moves a stored run may make, and the one function that makes them.

Every change to a recorded run goes through :func:`move` (``launch.runs`` calls it; nothing else
calls ``RunStore.update_run``). A move the table does not list is a bug in the caller and raises
:class:`IllegalMove` before anything is written. Terminal states never change again. A run leaves
the queue (SCHEDULED) only once, so leaving it clears ``waiting``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.errors import StateError
from reconciler.state import RunRecord, RunState, RunStore

_S = RunState
_ENDINGS = frozenset({_S.COMPLETED, _S.FAILED, _S.CRASHED, _S.CANCELLED})

#: state -> the states a run in it may be saved with (itself: other fields change, the state stays).
MOVES: Mapping[RunState, frozenset[RunState]] = {
    # queued: claimed by a launcher, cancelled (by request or CANCEL_NEW), or closed as abandoned
    _S.SCHEDULED: frozenset({_S.SCHEDULED, _S.PENDING, _S.CANCELLED, _S.CRASHED}),
    # claimed: its infrastructure reports; submission failing or being interrupted crashes it
    _S.PENDING: frozenset({_S.PENDING, _S.RUNNING, _S.CANCELLING} | _ENDINGS),
    _S.RUNNING: frozenset({_S.RUNNING, _S.CANCELLING} | _ENDINGS),
    # stopping: only an end may follow (a poll that still says RUNNING does not undo the request)
    _S.CANCELLING: frozenset({_S.CANCELLING} | _ENDINGS),
    **{state: frozenset() for state in _ENDINGS},
}


class IllegalMove(StateError):
    """A caller tried a move the run state machine does not allow (a bug, never a user error)."""


def allowed(source: RunState, target: RunState) -> bool:
    return target in MOVES[source]


def move(store: RunStore, run: RunRecord, **changes: Any) -> RunRecord:
    """Save ``run`` with ``changes`` if the state machine allows it; returns the stored record.

    Raises StaleVersion (from the store) when the run moved since it was read: of two processes
    making a move from one version, exactly one wins.
    """
    target = changes.get("state", run.state)
    if not allowed(run.state, target):
        raise IllegalMove(f"run {run.id}: a {run.state.value} run cannot become {target.value}")
    if target is not RunState.SCHEDULED:
        changes["waiting"] = None
    return store.update_run(run.evolve(**changes))
