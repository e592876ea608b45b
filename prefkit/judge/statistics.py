"""Win rates with ties as half a win, and percentile-bootstrap confidence intervals (pure functions)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")

OUTCOME_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def win_rate(values: Sequence[float]) -> float:
    """Mean of per-item values (1 win, 0.5 tie, 0 loss); NaN when there is no item."""
    return sum(values) / len(values) if values else math.nan


def percentile_bootstrap(
    items: Sequence[Item],
    statistic: Callable[[list[Item]], float],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(items)`: the statistic of `resamples` resamples of the
    items (with replacement, seeded), cut where `floor(tail * resamples)` of them lie outside on each side.

    tail = (1 - confidence) / 2, so 1000 resamples at 95 % give the 26th smallest and the 26th largest:
    the same count left out on both sides. Paired data are resampled as pairs (items are tuples).
    NaN, NaN when there is no item.
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    if not items:
        return math.nan, math.nan
    rng = random.Random(seed)
    count = len(items)
    statistics = sorted(statistic(rng.choices(items, k=count)) for _ in range(resamples))
    # the small epsilon keeps e.g. 0.025 * 40 (= 1.0000000000000002 in floats) from rounding the wrong way
    outside = min(math.floor((1 - confidence) / 2 * resamples + 1e-9), (resamples - 1) // 2)
    return statistics[outside], statistics[resamples - 1 - outside]


def bootstrap_interval(
    values: Sequence[float], *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (see `percentile_bootstrap`)."""
    return percentile_bootstrap(values, win_rate, resamples=resamples, confidence=confidence, seed=seed)
