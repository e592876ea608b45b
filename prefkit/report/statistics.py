"""Small pure helpers for the report: which leaderboard columns are constant, per-prompt error bars."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
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


def per_prompt_mean_and_se(
    samples: Iterable[dict[str, Any]], value: Callable[[dict[str, Any]], float]
) -> tuple[float, float]:
    """Mean and standard error of `value` over prompts (each prompt's samples averaged first), as the
    reward-kl evaluator reports reward; one prompt gives a standard error of 0."""
    by_prompt: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        by_prompt[str(sample.get("prompt_id"))].append(float(value(sample)))
    means = [sum(values) / len(values) for values in by_prompt.values()]
    if not means:
        return float("nan"), float("nan")
    mean = sum(means) / len(means)
    if len(means) < 2:
        return mean, 0.0
    variance = sum((m - mean) ** 2 for m in means) / (len(means) - 1)
    return mean, math.sqrt(variance / len(means))
