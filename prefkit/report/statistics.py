"""Small pure statistics: mean and standard error (also used by the reward-kl evaluator), per-prompt error
bars and constant leaderboard columns for the report."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

# identity columns are never folded into the "same for every row" line
IDENTITY_COLUMNS = ("subject", "model", "content_hash")


def constant_columns(frame: pl.DataFrame) -> dict[str, Any]:
    """Columns whose value is the same on every row (shown once above the table, not on each row)."""
    constants = {}
    for name in frame.columns:
        if name in IDENTITY_COLUMNS:
            continue
        values = frame[name].to_list()
        if values and all(value == values[0] for value in values):
            constants[name] = values[0]
    return constants


def mean_and_standard_error(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation, ddof 1; 0 for one value)."""
    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, statistics.stdev(values) / math.sqrt(len(values))


def per_prompt_mean_and_se(
    samples: Iterable[dict[str, Any]], value: Callable[[dict[str, Any]], float]
) -> tuple[float, float]:
    """Mean and standard error of `value` over prompts (each prompt's samples averaged first), as the
    reward-kl evaluator reports reward; one prompt gives a standard error of 0."""
    by_prompt: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        by_prompt[str(sample.get("prompt_id"))].append(float(value(sample)))
    if not by_prompt:
        return float("nan"), float("nan")
    return mean_and_standard_error([statistics.fmean(values) for values in by_prompt.values()])
