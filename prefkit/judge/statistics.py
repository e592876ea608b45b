"""Win rates with ties as half a win, and percentile-bootstrap confidence intervals (pure functions)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

OUTCOME_VALUE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def win_rate(values: Sequence[float]) -> float:
    """Mean of per-item values (1 win, 0.5 tie, 0 loss); NaN when there is no item."""
    return sum(values) / len(values) if values else math.nan


def bootstrap_interval(
    values: Sequence[float], *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: resample items with replacement `resamples` times."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if not values:
        return math.nan, math.nan
    rng = random.Random(seed)
    count = len(values)
    means = sorted(sum(rng.choices(values, k=count)) / count for _ in range(resamples))
    tail = (1 - confidence) / 2
    low_index = max(0, math.floor(tail * resamples))
    high_index = min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)
    return means[low_index], means[high_index]
