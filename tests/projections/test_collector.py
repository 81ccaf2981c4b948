"""The collector's young threshold raised while long folds run, and restored after."""

from __future__ import annotations

import gc

import pytest

from runlog.projections.collector import YOUNG_THRESHOLD, fewer_collections


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
