"""The one percentile bootstrap: its quantile rule by hand, resampling of items and pairs, and its two users."""

from __future__ import annotations

import itertools
import math

import pytest

from prefkit.judge.statistics import bootstrap_interval, percentile_bootstrap


def numbered():
    """A 'statistic' that returns 0, 1, 2, ... on successive resamples, so the cut points are visible."""
    counter = itertools.count()
    return lambda resample: float(next(counter))


@pytest.mark.parametrize(
    ("resamples", "confidence", "expected"),
    [
        (1000, 0.95, (25.0, 974.0)),  # 25 of 1000 outside on each side: the 26th smallest and largest
        (200, 0.95, (5.0, 194.0)),
        (40, 0.95, (1.0, 38.0)),  # 0.025 * 40 is 1.0000000000000002 in floats: still one outside
        (10, 0.9, (0.0, 9.0)),  # half a resample outside rounds down to none
        (1000, 0.5, (250.0, 749.0)),
        (3, 0.01, (1.0, 1.0)),  # nearly all outside: the median, never low > high
    ],
)
def test_cut_points_by_hand(resamples, confidence, expected):
    assert percentile_bootstrap([0], numbered(), resamples=resamples, confidence=confidence) == expected


def test_resamples_are_draws_of_whole_items():
    pairs = [("a", 1), ("b", 2), ("c", 3)]
    seen = []

    def record(resample):
        seen.append(resample)
        return 0.0

    percentile_bootstrap(pairs, record, resamples=50, seed=4)
    assert len(seen) == 50 and all(len(resample) == 3 and set(resample) <= set(pairs) for resample in seen)
    assert len({tuple(resample) for resample in seen}) > 1  # resampled, not the items each time


def test_seeded_and_bad_arguments():
    values = [0.0, 1.0, 1.0, 0.5, 0.0]
    assert bootstrap_interval(values, seed=2) == bootstrap_interval(values, seed=2)
    assert all(math.isnan(bound) for bound in percentile_bootstrap([], len))
    with pytest.raises(ValueError, match="confidence"):
        percentile_bootstrap(values, len, confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        percentile_bootstrap(values, len, resamples=0)


def test_win_rate_intervals_did_not_move():
    """The mean's interval is the one the winrate evaluator always reported (same draws, same cut points)."""
    assert bootstrap_interval([0.0, 1.0] * 20, resamples=2000, seed=1) == (0.35, 0.65)
    assert bootstrap_interval([0.0, 0.5, 1.0, 1.0, 0.0, 1.0, 1.0], seed=3) == (0.2857142857142857, 1.0)
