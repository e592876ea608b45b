"""`prefkit validate-labeler`: measure a labeler against reference preference labels before trusting it.

Reference pairs come from the shipped set (`builtin`, built by scripts/build_labeler_reference.py from
published AlpacaEval 2 annotations; card in prefkit/data/labeler_reference/README.md), a JSONL file of
`prompt, first, second, second_preferred` rows, or any preference file or artifact with `prompt,
chosen, rejected` (chosen is the reference's pick; it is shown first or second by a seeded coin so that
position carries no signal). The labeler scores both responses of each pair; the measures are those of
`prefkit.evaluation.labeler_agreement`.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from prefkit.errors import InputError
from prefkit.evaluation.labeler_agreement import outcome_from_preference, validate_scorer

BUILTIN = "builtin"


@dataclass(frozen=True)
class ReferencePair:
    """Two responses to one prompt and the reference's probability that the second is better."""

    prompt: Any
    first: str
    second: str
    second_preferred: float


def builtin_reference_path() -> Path:
    """The shipped reference set (192 AlpacaEval 2 pairs judged by GPT-4 Turbo)."""
    import prefkit.data

    return Path(prefkit.data.__file__).parent / "labeler_reference" / "alpaca_eval_gpt4_turbo.jsonl.gz"


def read_reference(source: str | Path = BUILTIN, seed: int = 0) -> list[ReferencePair]:
    """Reference pairs from `builtin`, a pairs JSONL, or a preference file/artifact (see module docstring)."""
    path = builtin_reference_path() if str(source) == BUILTIN else Path(source)
    if path.is_dir():
        from prefkit.artifacts import open_artifact

        rows = open_artifact(path, "preferences").table().to_dicts()
    elif not path.exists():
        raise InputError("reference file not found", file=path, hint="give a preference file or 'builtin'")
    else:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            rows = []
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise InputError(f"not valid JSON ({error.msg})", file=path, row=number) from None
    return [pair_from_row(row, path, number, seed) for number, row in enumerate(rows, start=1)]


def pair_from_row(row: dict, path: Path, number: int, seed: int) -> ReferencePair:
    """One pair from a `first/second/second_preferred` row or a `chosen/rejected` row."""
    if "prompt" not in row:
        raise InputError("is missing", file=path, row=number, field="prompt")
    if {"first", "second", "second_preferred"} <= set(row):
        preferred = row["second_preferred"]
        if not isinstance(preferred, int | float) or not 0 <= preferred <= 1:
            raise InputError("must be a number in [0, 1]", file=path, row=number, field="second_preferred")
        return ReferencePair(row["prompt"], str(row["first"]), str(row["second"]), float(preferred))
    for field in ("chosen", "rejected"):
        if field not in row:
            raise InputError(
                "is missing (a reference row needs chosen/rejected or first/second/second_preferred)",
                file=path,
                row=number,
                field=field,
            )
    chosen, rejected = (text_of(row["chosen"]), text_of(row["rejected"]))
    if random.Random(f"{seed}/{number}").random() < 0.5:
        return ReferencePair(row["prompt"], chosen, rejected, 0.0)
    return ReferencePair(row["prompt"], rejected, chosen, 1.0)


def text_of(response: Any) -> str:
    """A response's text: a string, or the content of a conversational [{"role": "assistant", ...}] list."""
    if isinstance(response, list):
        return "".join(str(message.get("content", "")) for message in response if isinstance(message, dict))
    return str(response)


def validate_labeler(
    labeler: str,
    options: dict[str, Any] | None = None,
    source: str | Path = BUILTIN,
    *,
    max_pairs: int | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Agreement, kappa, ties, length bias (with bootstrap intervals) and time of `labeler` on the reference."""
    pairs = read_reference(source, seed)[:max_pairs]
    from prefkit.labeling.registry import load_labeler

    report = validate_scorer(
        load_labeler(labeler, dict(options or {})),
        [pair.prompt for pair in pairs],
        [pair.first for pair in pairs],
        [pair.second for pair in pairs],
        [outcome_from_preference(pair.second_preferred) for pair in pairs],
        resamples=resamples,
        seed=seed,
    )
    return {"labeler": labeler, "reference": str(source), **report}


class LabelerCheck(BaseModel):
    """`iterate`'s optional check of its labeler before round 1 (the `labeler_check` config section)."""

    model_config = ConfigDict(extra="forbid")

    reference: str = BUILTIN
    min_agreement: float = Field(0.6, ge=0.0, le=1.0)
    on_fail: Literal["stop", "warn"] = "stop"
    max_pairs: int | None = Field(None, ge=1)
    resamples: int = Field(1000, ge=10)


def check_labeler(
    check: LabelerCheck, labeler: str, options: dict[str, Any], report_path: Path, *, progress: bool = True
) -> dict[str, Any]:
    """Validate `labeler` once (the report is kept at `report_path`); stop or warn below `min_agreement`."""
    import sys

    from prefkit.artifacts import atomic_write_text
    from prefkit.errors import ConfigError
    from prefkit.progress import say

    if report_path.exists():
        report = json.loads(report_path.read_text())
    else:
        say(progress, f"[iterate] validating labeler {labeler} against {check.reference} ...")
        report = validate_labeler(
            labeler, options, check.reference, max_pairs=check.max_pairs, resamples=check.resamples
        )
        report_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(report_path, json.dumps(report, indent=2))
    if report["agreement"] < check.min_agreement:
        message = (
            f"labeler {labeler} agrees with the reference labels on {report['agreement']:.3f} of "
            f"{report['n_pairs']} pairs (kappa {report['kappa']:.3f}), below min_agreement {check.min_agreement}"
        )
        if check.on_fail == "stop":
            raise ConfigError(
                message,
                field="labeler_check.min_agreement",
                hint=f"see {report_path}; choose another labeler, or set labeler_check.on_fail = 'warn'",
            )
        print(f"[iterate] warning: {message}", file=sys.stderr)
    return report
