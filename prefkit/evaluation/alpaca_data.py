"""AlpacaEval 2 data: the instructions from a local folder, `df_gamed.csv` from a folder or the hub.

A data folder holds `gpt4_1106_preview.model_outputs.json` (the 805 instructions with the baseline's
outputs) and optionally `df_gamed.csv`, which the length-controlled win rate needs. prefkit ships the
first in `prefkit/data/alpaca_eval/` (see data_cards/alpaca_eval.md). `df_gamed.csv` is looked for in
`data_dir`, then in `$PREFKIT_HOME/alpaca_eval/`, then fetched from the hub's `tatsu-lab/alpaca_eval`
dataset through huggingface_hub's cache (offline, only a cached copy is used). Never `datasets`:
upstream's loader breaks on datasets >= 4.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from prefkit.errors import InputError

BASELINE_FILE = "gpt4_1106_preview.model_outputs.json"
LEADERBOARD_FILE = "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
GAMED_FILE = "df_gamed.csv"
GAMED_REPO = "tatsu-lab/alpaca_eval"  # a dataset repository on the hub
# the revision asked for when the user pins none; the commit it resolved to is recorded with the result
GAMED_REVISION = "main"
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
    gamed_revision: str = ""  # hub commit, or "local sha256:..." for a file from a folder
    gamed_reason: str = ""  # why df_gamed.csv was not found, when it was not

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
    data_dir: str | Path | None = None,
    max_instances: int | None = None,
    subset_seed: int = 0,
    *,
    gamed_revision: str | None = None,
) -> AlpacaEvalSet:
    """Load the instructions and baseline outputs; `max_instances` keeps a seeded subset in dataset order.

    On the full set, `df_gamed.csv` is located as the module docstring says (`gamed_revision` pins
    the hub revision); on a subset LC is undefined and nothing is fetched.
    """
    folder = Path(data_dir) if data_dir is not None else bundled_data_dir()
    rows = read_outputs_file(folder / BASELINE_FILE)
    if max_instances is not None:
        if max_instances < 1:
            raise InputError(f"must be at least 1, got {max_instances}", field="max_instances")
        if max_instances < len(rows):
            keep = sorted(random.Random(subset_seed).sample(range(len(rows)), max_instances))
            rows = [rows[index] for index in keep]
    is_full_set = len(rows) == FULL_SET_SIZE
    gamed = (
        locate_gamed_csv(Path(data_dir) if data_dir is not None else None, gamed_revision or GAMED_REVISION)
        if is_full_set
        else GamedFile(None, "", "")
    )
    return AlpacaEvalSet(
        rows=tuple(rows),
        data_dir=folder,
        gamed_csv=gamed.path,
        is_full_set=is_full_set,
        gamed_revision=gamed.revision,
        gamed_reason=gamed.reason,
    )


@dataclass(frozen=True)
class GamedFile:
    """Where `df_gamed.csv` is (None if nowhere), which revision it is, or why it is missing."""

    path: Path | None
    revision: str
    reason: str


def locate_gamed_csv(data_dir: Path | None, revision: str = GAMED_REVISION) -> GamedFile:
    """`df_gamed.csv` from `data_dir`, `$PREFKIT_HOME/alpaca_eval/`, or the hub (through its cache)."""
    from prefkit.models import cache_home

    folders = [folder for folder in (data_dir, cache_home() / "alpaca_eval") if folder is not None]
    for folder in folders:
        if (folder / GAMED_FILE).exists():
            digest = hashlib.sha256((folder / GAMED_FILE).read_bytes()).hexdigest()
            return GamedFile(folder / GAMED_FILE, f"local sha256:{digest[:16]}", "")
    import huggingface_hub

    try:
        path = Path(
            huggingface_hub.hf_hub_download(
                repo_id=GAMED_REPO, filename=GAMED_FILE, repo_type="dataset", revision=revision
            )
        )
    except (OSError, ValueError, huggingface_hub.errors.HfHubHTTPError) as error:
        # offline without a cached copy, no network, or an unknown revision: LC is skipped, not guessed
        looked = ", ".join(str(folder) for folder in folders)
        return GamedFile(
            None,
            "",
            f"{GAMED_FILE} is not in {looked} and the hub ({GAMED_REPO}@{revision}) did not provide it "
            f"({error.__class__.__name__})",
        )
    # the hub cache keeps files under snapshots/<commit>/: record the commit the revision resolved to
    commit = path.parent.name if path.parent.parent.name == "snapshots" else revision
    return GamedFile(path, f"{GAMED_REPO}@{commit}", "")


def length_control_unavailable_reason(data: AlpacaEvalSet) -> str:
    """Why the LC win rate cannot be computed for this set ('' when it can)."""
    reasons = []
    if not data.is_full_set or len(data.rows) != FULL_SET_SIZE:
        reasons.append(
            f"LC is defined on the full {FULL_SET_SIZE}-instruction set only (this run used {len(data.rows)})"
        )
    elif data.gamed_csv is None:
        reasons.append(data.gamed_reason or f"{GAMED_FILE} was not found (LC needs it)")
    return "; ".join(reasons)
