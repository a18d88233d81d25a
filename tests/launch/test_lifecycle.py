"""The run state machine: every move is checked against one table before anything is written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.launch import lifecycle
from reconciler.state import MemoryStore, RunRecord, RunState


def _stored(store: MemoryStore, state: RunState, *, waiting: str | None = None) -> RunRecord:
    run = store.create_run(
        RunRecord(
            id="r-1", deployment="etl/daily", pool="local", pool_type="process", state=RunState.SCHEDULED
        )
    )
    if waiting is not None:
        run = store.update_run(run.evolve(waiting=waiting))
    if state is not RunState.SCHEDULED:
        run = store.update_run(run.evolve(state=state))
    return run


@given(source=st.sampled_from(RunState), target=st.sampled_from(RunState))
def test_a_move_is_saved_if_and_only_if_the_table_allows_it(source: RunState, target: RunState) -> None:
    store = MemoryStore()
    run = _stored(store, source)
    if lifecycle.allowed(source, target):
        assert lifecycle.move(store, run, state=target).state is target
    else:
        with pytest.raises(lifecycle.IllegalMove, match=f"{source.value} run cannot become {target.value}"):
            lifecycle.move(store, run, state=target)
        assert store.get_run(run.id) == run  # nothing written


def test_terminal_states_never_change_and_a_run_is_claimed_before_it_runs() -> None:
    for state in RunState:
        assert (lifecycle.MOVES[state] == frozenset()) is state.terminal
    assert not lifecycle.allowed(RunState.SCHEDULED, RunState.RUNNING)
    assert not lifecycle.allowed(RunState.CANCELLING, RunState.RUNNING)
    assert not lifecycle.allowed(RunState.RUNNING, RunState.PENDING)


def test_leaving_the_queue_clears_waiting_and_staying_keeps_it() -> None:
    store = MemoryStore()
    held = _stored(store, RunState.SCHEDULED, waiting="pool local concurrency limit 2 reached")
    assert lifecycle.move(store, held, message="still queued").waiting == held.waiting
    claimed = lifecycle.move(store, store.get_run(held.id), state=RunState.PENDING)  # type: ignore[arg-type]
    assert claimed.waiting is None and store.get_run(held.id).waiting is None  # type: ignore[union-attr]
