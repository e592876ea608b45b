"""AlpacaEval 2 data read from a local folder (never the hub, never `datasets`: upstream's loader breaks on >= 4).

A data folder holds `gpt4_1106_preview.model_outputs.json` (the 805 instructions with the baseline's
outputs) and optionally `df_gamed.csv`, which the length-controlled win rate needs. prefkit ships the
first in `prefkit/data/alpaca_eval/` (see data_cards/alpaca_eval.md).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from prefkit.errors import InputError

BASELINE_FILE = "gpt4_1106_preview.model_outputs.json"
LEADERBOARD_FILE = "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
GAMED_FILE = "df_gamed.csv"
FULL_SET_SIZE = 805
REQUIRED_FIELDS = ("instruction", "output")


def bundled_data_dir() -> Path:
    """The AlpacaEval folder shipped inside the prefkit package."""
    import prefkit.data

    return Path(prefkit.data.__file__).parent / "alpaca_eval"


@dataclass(frozen=True)
class AlpacaEvalSet:
    """Instructions with baseline outputs (in the dataset's order) and where LC's `df_gamed.csv` is, if present."""

    rows: tuple[dict, ...]
    data_dir: Path
    gamed_csv: Path | None
    is_full_set: bool

    @property
    def instructions(self) -> list[str]:
        return [row["instruction"] for row in self.rows]


def read_outputs_file(path: Path) -> list[dict]:
    """Read an alpaca_eval outputs JSON (a list of objects with `instruction` and `output`), validating each row."""
    if not path.exists():
        raise InputError(
            "file not found", file=path, hint="give data_dir=FOLDER holding the AlpacaEval files"
        )
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg} at line {error.lineno})", file=path) from None
    if not isinstance(rows, list) or not rows:
        raise InputError("must hold a non-empty list of objects", file=path)
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"expected an object, got {type(row).__name__}", file=path, row=index)
        for field in REQUIRED_FIELDS:
            if not isinstance(row.get(field), str):
                raise InputError("is missing or not a string", file=path, row=index, field=field)
    return rows


def load_alpaca_eval_set(
    data_dir: str | Path | None = None, max_instances: int | None = None, subset_seed: int = 0
) -> AlpacaEvalSet:
    """Load the instructions and baseline outputs; `max_instances` keeps a seeded subset in dataset order."""
    folder = Path(data_dir) if data_dir is not None else bundled_data_dir()
    rows = read_outputs_file(folder / BASELINE_FILE)
    if max_instances is not None:
        if max_instances < 1:
            raise InputError(f"must be at least 1, got {max_instances}", field="max_instances")
        if max_instances < len(rows):
            keep = sorted(random.Random(subset_seed).sample(range(len(rows)), max_instances))
            rows = [rows[index] for index in keep]
    gamed = folder / GAMED_FILE
    return AlpacaEvalSet(
        rows=tuple(rows),
        data_dir=folder,
        gamed_csv=gamed if gamed.exists() else None,
        is_full_set=max_instances is None or max_instances >= FULL_SET_SIZE,
    )


def length_control_unavailable_reason(data: AlpacaEvalSet) -> str:
    """Why the LC win rate cannot be computed for this set ('' when it can)."""
    reasons = []
    if not data.is_full_set or len(data.rows) != FULL_SET_SIZE:
        reasons.append(
            f"LC is defined on the full {FULL_SET_SIZE}-instruction set only (this run used {len(data.rows)})"
        )
    if data.gamed_csv is None:
        reasons.append(
            f"{GAMED_FILE} is not in {data.data_dir} (LC needs it; upstream downloads it from the hub)"
        )
    return "; ".join(reasons)
