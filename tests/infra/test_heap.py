"""The collector pause: what the block built skips the young collections, and nothing leaks."""

from __future__ import annotations

import gc
import weakref

import pytest

from reconciler.infra.heap import collector_paused


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _collector_on() -> None:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_what_the_block_built_is_in_the_oldest_generation() -> None:
    """Young collections would walk it all (and again in the middle generation) for nothing."""
    with collector_paused():
        built = [{"i": [i]} for i in range(1000)]
    young = {id(o) for o in gc.get_objects(generation=0)} | {id(o) for o in gc.get_objects(generation=1)}
    assert id(built) not in young
    assert not any(id(item) in young for item in built)
    assert any(o is built for o in gc.get_objects(generation=2))


def test_a_cycle_built_in_the_block_is_still_collected() -> None:
    with collector_paused():
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
    del a, b
    gc.collect()
    assert alive() is None


def test_an_error_in_the_block_still_turns_the_collector_back_on() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
