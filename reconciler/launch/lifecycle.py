"""The run state machine: the moves a stored run may make, and the one function that makes them.

Every change to a recorded run goes through :func:`move` (``launch.runs`` calls it; nothing else
calls ``RunStore.update_run``). A move the table does not list is a bug in the caller and raises
:class:`IllegalMove` before anything is written. Terminal states never change again. A run leaves
the queue (SCHEDULED) only once, so leaving it clears ``waiting``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.errors import StaleVersion, StateError
from reconciler.state import ACTIVE_STATES, Admission, ClaimsRuns, Limit, RunRecord, RunState, RunStore

RUNS_SCAN = 10_000  # runs a store without an atomic claim reads to count what is active

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


def claim(store: RunStore, run: RunRecord, limits: Sequence[Limit], **changes: Any) -> Admission:
    """Move a SCHEDULED run to PENDING (with ``changes``) if every limit has room: the admission.

    A store that claims atomically (:class:`~reconciler.state.ClaimsRuns`: the SQL stores, a Prefect
    server) checks the limits and moves the run in one step no other process can split, so replicas
    never overshoot. Any other store is counted here and then moved by compare-and-set: exact within
    one process, and never a run launched twice.
    """
    if not allowed(run.state, RunState.PENDING):
        raise IllegalMove(f"run {run.id}: a {run.state.value} run cannot become PENDING")
    claimed = run.evolve(**{**changes, "state": RunState.PENDING, "waiting": None})
    if isinstance(store, ClaimsRuns):
        return store.claim_run(run, limits, claimed=claimed)
    if limits:
        active = [r for r in store.list_runs(limit=RUNS_SCAN) if r.state in ACTIVE_STATES]
        for limit in limits:
            if sum(1 for r in active if limit.covers(r)) >= limit.limit:
                return Admission(run, claimed=False, full=limit)
    try:
        return Admission(store.update_run(claimed), claimed=True)
    except StaleVersion:
        return Admission(store.get_run(run.id) or run, claimed=False)
