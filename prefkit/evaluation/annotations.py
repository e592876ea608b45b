"""Win rate and standard error recomputed from alpaca_eval annotations, counting what is missing or invalid.

alpaca_eval's `preference` is in [1, 2]: 1 means output_1 (the baseline) won, 2 means output_2 (the model)
won, fractional values are the weighted judge's soft preference, and 0 is an old encoding of a draw (read
as 1.5). win_rate = 100 * mean(preference - 1); standard_error = 100 * stdev / sqrt(n) with the sample
standard deviation (ddof 1), as on the AlpacaEval 2 leaderboard. Upstream drops missing annotations
without saying so; here they are counted.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefkit.errors import InputError


@dataclass(frozen=True)
class WinRateSummary:
    """Win rate (%) with its standard error, and counts of what was usable."""

    win_rate: float
    standard_error: float
    n_total: int
    n_wins: int
    n_wins_base: int
    n_draws: int
    discrete_win_rate: float
    n_missing: int
    n_invalid: int
    avg_length: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_preference(value: Any) -> float | None:
    """A preference in [1, 2] (0 read as a draw, 1.5), or None when it is missing or not a valid preference."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if math.isnan(number):
        return None
    if number == 0:
        return 1.5
    return number if 1 <= number <= 2 else None


def summarize_preferences(
    preferences: Sequence[Any], output_lengths: Iterable[int] | None = None, n_expected: int | None = None
) -> WinRateSummary:
    """Win rate from raw preference values; `n_expected` counts absent rows as missing too."""
    parsed = [parse_preference(value) for value in preferences]
    valid = [value - 1 for value in parsed if value is not None]
    n_null = sum(
        1 for value in preferences if value is None or (isinstance(value, float) and math.isnan(value))
    )
    n_invalid = len(preferences) - len(valid) - n_null
    n_missing = n_null + max(0, (n_expected or 0) - len(preferences))
    if not valid:
        raise InputError(f"no valid preference among {len(preferences)} annotations", field="preference")
    standard_error = statistics.stdev(valid) / math.sqrt(len(valid)) if len(valid) > 1 else 0.0
    wins = sum(1 for value in valid if value > 0.5)
    losses = sum(1 for value in valid if value < 0.5)
    draws = len(valid) - wins - losses
    lengths = list(output_lengths) if output_lengths is not None else []
    return WinRateSummary(
        win_rate=100 * statistics.fmean(valid),
        standard_error=100 * standard_error,
        n_total=len(valid),
        n_wins=wins,
        n_wins_base=losses,
        n_draws=draws,
        discrete_win_rate=100 * (wins + draws / 2) / len(valid),
        n_missing=n_missing,
        n_invalid=n_invalid,
        avg_length=int(statistics.fmean(lengths)) if lengths else None,
    )


def read_annotations(path: str | Path) -> list[dict]:
    """Read an alpaca_eval annotations.json (a list of objects, each with `preference`)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg} at line {error.lineno})", file=path) from None
    if not isinstance(rows, list):
        raise InputError("an annotations file must hold a list of objects", file=path)
    for index, row in enumerate(rows, start=1):  # rows count from 1, as everywhere in prefkit
        if not isinstance(row, dict):
            raise InputError(f"expected an object, got {type(row).__name__}", file=path, row=index)
        if "preference" not in row:
            raise InputError("is missing", file=path, row=index, field="preference")
    return rows


def win_rate_from_annotations(
    rows: Sequence[dict], expected_instructions: Sequence[str] | None = None
) -> WinRateSummary:
    """Win rate of `output_2` over `output_1`; instructions of `expected_instructions` with no row count as missing."""
    lengths = [len(row["output_2"]) for row in rows if isinstance(row.get("output_2"), str)]
    n_expected = None
    if expected_instructions is not None:
        annotated = {row.get("instruction") for row in rows}
        absent = sum(1 for instruction in set(expected_instructions) if instruction not in annotated)
        n_expected = len(rows) + absent
    return summarize_preferences([row["preference"] for row in rows], lengths, n_expected=n_expected)
