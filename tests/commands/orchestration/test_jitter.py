"""The clamped Poisson interval behind retry jitter: its bounds, its order, and Prefect's values."""

from __future__ import annotations

import math

import pytest

from runlog.commands.orchestration.jitter import clamped_poisson_interval, jitter_bounds

DRAWS = [i / 20 for i in range(21)]


@pytest.mark.parametrize(
    ("average", "factor", "lower", "upper"),
    [
        pytest.param(10, 0.5, 10 * math.log2(2**1.5 / (2**1.5 - 1)), 15, id="half"),
        pytest.param(30, 0.3, 30 * math.log2(2**1.3 / (2**1.3 - 1)), 39, id="prefects_default_factor"),
        pytest.param(4, 2.0, 4 * math.log2(8 / 7), 12, id="wide"),
        pytest.param(10, 60, 0.0, 610, id="a_huge_factor_has_no_lower_bound"),
    ],
)
def test_the_bounds_are_delay_times_one_plus_factor_and_the_balancing_lower_clamp(
    average: float, factor: float, lower: float, upper: float
) -> None:
    assert jitter_bounds(average, factor) == (pytest.approx(lower), pytest.approx(upper))


@pytest.mark.parametrize(("average", "factor"), [(10, 0.5), (30, 0.3), (4, 2.0), (0.5, 0.1)])
def test_every_draw_stays_within_the_bounds_and_a_higher_draw_waits_longer(average: float, factor: float) -> None:
    lower, upper = jitter_bounds(average, factor)
    intervals = [clamped_poisson_interval(average, factor, draw) for draw in DRAWS]
    assert intervals[0] == pytest.approx(lower) and intervals[-1] == pytest.approx(upper)
    assert all(lower - 1e-9 <= i <= upper + 1e-9 for i in intervals)
    assert intervals == sorted(intervals)


@pytest.mark.parametrize("draw", [-0.5, 1.5])
def test_a_draw_outside_the_unit_range_is_clamped_to_it(draw: float) -> None:
    lower, upper = jitter_bounds(10, 0.5)
    assert clamped_poisson_interval(10, 0.5, draw) == pytest.approx(lower if draw < 0 else upper)


def test_a_huge_factor_stays_finite_and_within_its_bounds() -> None:
    """As in Prefect, the logarithm's argument never drops below 1e-10: at most ~23 times the delay."""
    lower, upper = jitter_bounds(10, 60)
    intervals = [clamped_poisson_interval(10, 60, draw) for draw in DRAWS]
    assert intervals[-1] == pytest.approx(-math.log(1e-10) * 10)
    assert all(lower <= i <= upper for i in intervals) and intervals == sorted(intervals)


def test_no_average_means_no_wait() -> None:
    assert clamped_poisson_interval(0, 0.5, 0.7) == 0.0


def test_a_non_positive_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="clamping factor"):
        clamped_poisson_interval(10, 0, 0.5)


@pytest.mark.parametrize(("average", "factor"), [(10, 0.5), (30, 0.3), (4, 2.0), (10, 60)])
@pytest.mark.parametrize("draw", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_the_same_draw_gives_prefects_interval(monkeypatch: pytest.MonkeyPatch, average: float, factor: float,
                                               draw: float) -> None:
    """Prefect draws ``random.uniform(lower, upper)``; fixing that draw must give our value."""
    prefect_math = pytest.importorskip("prefect.utilities.math")
    monkeypatch.setattr(prefect_math.random, "uniform", lambda lo, hi: lo + (hi - lo) * draw)
    expected = prefect_math.clamped_poisson_interval(average, clamping_factor=factor)
    assert clamped_poisson_interval(average, factor, draw) == pytest.approx(expected)
