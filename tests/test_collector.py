"""`siaga.collector`: the young generation's threshold is raised inside the block and put back
after, and automatic collection paused and resumed, however the blocks nest or interleave across
threads."""
from __future__ import annotations

import gc
import threading

import pytest

from siaga.collector import fewer_collections, long_lived_frozen, paused


@pytest.fixture(autouse=True)
def usual_threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_put_back_after() -> None:
    with fewer_collections(50_000):
        assert gc.get_threshold() == (50_000, 10, 10)
        with fewer_collections(200_000):  # a nested block may raise it further
            assert gc.get_threshold()[0] == 200_000
        assert gc.get_threshold()[0] == 200_000  # still inside the outer block
    assert gc.get_threshold() == (700, 10, 10)


def test_the_threshold_is_put_back_when_the_block_raises() -> None:
    with pytest.raises(ValueError):
        with fewer_collections(50_000):
            raise ValueError("a post")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_lower_threshold_is_never_set_and_automatic_collection_left_off_stays_off() -> None:
    gc.set_threshold(300_000, 10, 10)
    with fewer_collections(50_000):
        assert gc.get_threshold()[0] == 300_000
    gc.set_threshold(0, 10, 10)
    with fewer_collections(50_000):
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)


def test_blocks_that_interleave_across_threads_put_back_the_first_threshold() -> None:
    """Thread A enters, B enters, A leaves, B leaves: B must not restore A's raised value."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def a() -> None:
        with fewer_collections(50_000):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with fewer_collections(50_000):
            b_in.set()
            a_out.wait(5)
            seen.append(gc.get_threshold()[0])  # A left, B is still inside

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [50_000]
    assert gc.get_threshold() == (700, 10, 10)


@pytest.fixture
def collection_on():
    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


def test_collection_is_paused_inside_and_resumed_after_even_when_the_block_raises(collection_on) -> None:
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # still inside the outer block
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with paused():
            raise ValueError("a poll")
    assert gc.isenabled()


def test_collection_switched_off_before_stays_off(collection_on) -> None:
    gc.disable()
    with paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_pauses_that_interleave_across_threads_resume_only_when_the_last_leaves(collection_on) -> None:
    """Thread A pauses, B pauses, A leaves, B leaves: A leaving must not switch collection back
    on under B, and B leaving must."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def a() -> None:
        with paused():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with paused():
            b_in.set()
            a_out.wait(5)
            seen.append(gc.isenabled())  # A left, B is still inside

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()


def test_long_lived_objects_are_frozen_inside_and_handed_back_after() -> None:
    """`long_lived_frozen` (detection, `siaga tag`): the objects alive at the start are left out
    of the collector's passes while the block runs, and handed back after, even when it raises;
    a process whose objects someone else froze is left alone."""
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError):
        with long_lived_frozen():
            assert gc.get_freeze_count() > 0
            raise RuntimeError("detection failed")
    assert gc.get_freeze_count() == 0
    # The frozen count itself is no witness: other threads of a long test run free frozen
    # objects by reference counting and it drifts down. An object frozen by someone else must
    # still be out of the collector's generations after the block.
    held: list[object] = []
    gc.freeze()
    try:
        with long_lived_frozen():
            pass
        assert gc.get_freeze_count() > 0
        assert all(obj is not held for obj in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(obj is held for obj in gc.get_objects())
