"""Prefect's clamped Poisson interval (retry jitter), as a pure function of a uniform draw.

Prefect jitters a retry's delay by drawing an exponentially distributed interval around the
configured delay and clamping it: never more than ``delay * (1 + factor)``, and never less
than a lower bound chosen so that the median stays where the unclamped one was. The rules
read no randomness, so the draw is an argument: the command layer passes ``random.random()``,
tests pass fixed values.
"""

from __future__ import annotations

import math

__all__ = ["clamped_poisson_interval", "jitter_bounds"]


def _exponential_cdf(x: float, average: float) -> float:
    return 1 - math.exp(-x / average)


def _lower_clamp_multiple(upper_multiple: float) -> float:
    """The lower bound, as a multiple of the average, that balances the mass around the median.

    Past 50 the multiple is 0 for every practical purpose, and 2**k would overflow later on.
    """
    if upper_multiple >= 50:
        return 0.0
    return math.log(max(2**upper_multiple / (2**upper_multiple - 1), 1e-10), 2)


def jitter_bounds(average: float, clamping_factor: float) -> tuple[float, float]:
    """The least and the greatest interval ``clamped_poisson_interval`` can give."""
    upper_multiple = 1 + clamping_factor
    return max(0.0, average * _lower_clamp_multiple(upper_multiple)), average * upper_multiple


def clamped_poisson_interval(average: float, clamping_factor: float, draw: float) -> float:
    """An interval around ``average`` for a uniform ``draw`` in [0, 1].

    The draw is mapped onto the part of the exponential distribution's range that lies
    between the bounds (inverse-CDF sampling), so 0 gives the lower bound, 1 the upper bound
    and the values between spread as Prefect's jitter does. A non-positive average gives 0.
    """
    if average <= 0:
        return 0.0
    if clamping_factor <= 0:
        raise ValueError("the clamping factor must be positive")
    lower, upper = jitter_bounds(average, clamping_factor)
    lower_rv, upper_rv = _exponential_cdf(lower, average), _exponential_cdf(upper, average)
    probability = lower_rv + (upper_rv - lower_rv) * min(max(draw, 0.0), 1.0)
    return -math.log(max(1 - probability, 1e-10)) * average
