"""The collector's young threshold raised while long folds run, or the collector off, and restored
after; a server's full collections kept to what is new (FrozenSurvivors)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from runlog.projections.collector import (
    FULL_COLLECTIONS, YOUNG_THRESHOLD, FrozenSurvivors, fewer_collections, freezing_survivors, no_collections,
)


@pytest.fixture
def default_threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, before[1], before[2])
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after(default_threshold):
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *default_threshold[1:])
    assert gc.get_threshold() == default_threshold


def test_overlapping_users_restore_it_when_the_last_leaves_in_any_order(default_threshold):
    first, second = fewer_collections(), fewer_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to enter leaves first: still raised for the second
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    second.__exit__(None, None, None)
    assert gc.get_threshold() == default_threshold


def test_an_error_inside_restores_it(default_threshold):
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the fold failed")
    assert gc.get_threshold() == default_threshold


def test_a_threshold_already_higher_is_kept(default_threshold):
    gc.set_threshold(YOUNG_THRESHOLD * 2, *default_threshold[1:])
    with fewer_collections():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2


def test_no_collections_turns_it_off_inside_and_on_again_after():
    assert gc.isenabled()
    with no_collections():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_no_collections_turns_it_on_again_after_an_error():
    with pytest.raises(RuntimeError), no_collections():
        raise RuntimeError("the import failed")
    assert gc.isenabled()


def test_no_collections_leaves_it_off_when_it_was_off():
    gc.disable()
    try:
        with no_collections():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_the_import_runs_with_the_collector_off_and_turns_it_on_after(monkeypatch, tmp_path):
    from runlog.commands.import_prefect import run

    seen = []

    class Importer:
        def __init__(self, *args, **kwargs) -> None: ...

        async def run(self):
            seen.append(gc.isenabled())
            return "report"

    monkeypatch.setattr(run, "Importer", Importer)
    assert await run.import_database(None, f"sqlite:///{tmp_path}/runlog.db") == "report"
    assert seen == [False] and gc.isenabled()


# -- FrozenSurvivors: a server's full collections scan only what is new ----------------------


class _Node:
    """A tracked object that can sit in a cycle."""


@pytest.fixture
async def survivors():
    """A FrozenSurvivors on this test's loop with a clock the test moves; the freeze undone after.
    Automatic collections are off meanwhile, so that only the test's own ones count (explicit
    ones still call back)."""
    now = [0.0]
    policy = FrozenSurvivors(asyncio.get_running_loop(), thaw_seconds=600, clock=lambda: now[0])
    policy.install()
    gc.disable()
    try:
        yield policy, now
    finally:
        gc.enable()
        policy.uninstall()
        gc.unfreeze()


async def _until(condition) -> None:
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the loop never ran the thaw")


def _scanned(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


async def test_what_survives_a_full_collection_is_frozen_and_no_longer_scanned(survivors):
    policy, _ = survivors
    kept = [_Node() for _ in range(50)]
    assert _scanned(kept[0])
    frozen_before = gc.get_freeze_count()
    gc.collect()
    assert policy.freezes == 1
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    assert not _scanned(kept[0])


async def test_what_survives_the_middle_generation_is_frozen_and_the_youngest_s_is_not(survivors):
    policy, _ = survivors
    young = _Node()
    gc.collect(0)
    assert policy.freezes == 0 and _scanned(young)
    gc.collect(1)
    assert policy.freezes == 1 and not _scanned(young)


async def test_young_garbage_in_a_cycle_is_still_collected(survivors):
    policy, _ = survivors
    node = _Node()
    node.self = node
    alive = weakref.ref(node)
    del node
    gc.collect(1)
    assert alive() is None and policy.freezes == 1


async def test_a_full_collection_in_another_thread_freezes_too(survivors):
    policy, _ = survivors
    kept = _Node()
    await asyncio.to_thread(gc.collect)
    assert policy.freezes == 1 and not _scanned(kept)


async def test_full_collections_are_timed_for_metrics(survivors):
    before = FULL_COLLECTIONS.collect()[0]
    count = next(s.value for s in before.samples if s.name.endswith("_count"))
    gc.collect()
    gc.collect(1)  # not a full one
    after = FULL_COLLECTIONS.collect()[0]
    assert next(s.value for s in after.samples if s.name.endswith("_count")) == count + 1


async def test_a_cycle_that_dies_after_its_freeze_is_collected_at_the_next_thaw(survivors):
    policy, now = survivors
    kept = _Node()
    node = _Node()
    node.self = node
    alive = weakref.ref(node)
    gc.collect()
    del node
    gc.collect()  # the cycle is frozen: this pass does not see it
    await asyncio.sleep(0)
    assert alive() is not None and policy.thaws == 0
    now[0] = 600.0
    gc.collect()  # past the thaw interval: the thaw is scheduled on the loop
    await _until(lambda: policy.thaws == 1)
    assert alive() is None
    assert policy.thawed_garbage >= 1
    assert not _scanned(kept)  # the thaw's own collection froze the survivors again


async def test_a_dead_object_without_a_cycle_is_freed_at_once_though_frozen(survivors):
    policy, _ = survivors
    node = _Node()
    alive = weakref.ref(node)
    gc.collect()
    assert policy.freezes == 1
    del node
    assert alive() is None


async def test_after_uninstall_nothing_is_frozen(survivors):
    policy, _ = survivors
    policy.uninstall()
    gc.collect()
    assert policy.freezes == 0


def test_a_thaw_due_after_the_loop_closed_is_dropped():
    """What the collector calls when a collection ends after the loop closed must not raise."""
    loop = asyncio.new_event_loop()
    policy = FrozenSurvivors(loop, thaw_seconds=0)
    loop.close()
    try:
        policy._collected("stop", {"generation": 2})
        assert policy.freezes == 1 and policy.thaws == 0
    finally:
        gc.unfreeze()


async def test_freezing_survivors_freezes_what_is_alive_and_thaws_when_it_ends():
    kept = _Node()
    loop = asyncio.get_running_loop()
    with freezing_survivors(loop) as policy:
        assert not _scanned(kept)
        assert policy._collected in gc.callbacks
    assert policy._collected not in gc.callbacks
    assert _scanned(kept)
