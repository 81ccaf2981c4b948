"""The collector's young threshold raised while long folds run, or the collector off, and restored after."""

from __future__ import annotations

import gc

import pytest

from runlog.projections.collector import YOUNG_THRESHOLD, fewer_collections, no_collections


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
