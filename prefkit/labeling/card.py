"""The data card (README.md with Hugging Face YAML front matter) and histogram of a preferences artifact."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from prefkit.sampling.card import size_category

HISTOGRAM_FILE = "histograms.png"
STAT_COLUMNS = ("score_chosen", "score_rejected", "len_chosen", "len_rejected")


@dataclass(frozen=True)
class CardInputs:
    """Everything the card reports, gathered by the labeling stage."""

    source: str
    source_hash: str
    sampler: Mapping[str, Any]
    config: Mapping[str, Any]
    license: str
    counts: Mapping[str, Any]
    statistics: Mapping[str, Mapping[str, float]]
    example: Mapping[str, Any] | None
    rendered_prompt: str | None
    truncation: Mapping[str, float | None] | None = None  # see truncation_rates


def truncation_rates(frame: pl.DataFrame) -> dict[str, float | None]:
    """Share of kept pairs whose chosen / rejected completion was cut at the token limit.

    None for a side whose finish reasons were not recorded (candidates from an older sampler).
    """
    rates: dict[str, float | None] = {}
    for side in ("chosen", "rejected"):
        column = f"finish_{side}"
        if frame.height == 0 or column not in frame.columns or frame[column].null_count() == frame.height:
            rates[f"truncated_{side}"] = None
        else:
            rates[f"truncated_{side}"] = round(float((frame[column] == "length").mean()), 4)
    return rates


def column_statistics(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Mean, std, min, median and max of the score and length columns (empty dict when no rows)."""
    if frame.height == 0:
        return {}
    stats: dict[str, dict[str, float]] = {}
    for name in STAT_COLUMNS:
        column = frame[name].cast(pl.Float64)
        stats[name] = {
            "mean": round(float(column.mean()), 4),
            "std": round(float(column.std() or 0.0), 4),
            "min": round(float(column.min()), 4),
            "median": round(float(column.median()), 4),
            "max": round(float(column.max()), 4),
        }
    return stats


def write_histograms(frame: pl.DataFrame, path: Path, length_unit: str) -> None:
    """Two panels: score and length distributions, chosen against rejected."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    panels = [("score", "score"), ("len", f"length ({length_unit})")]
    for axis, (prefix, label) in zip(axes, panels, strict=True):
        for side, colour in (("chosen", "tab:green"), ("rejected", "tab:red")):
            values = frame[f"{prefix}_{side}"].cast(pl.Float64).to_list() if frame.height else []
            axis.hist(values, bins=30, alpha=0.55, color=colour, label=side)
        axis.set_xlabel(label)
        axis.set_ylabel("pairs")
        axis.legend()
    figure.suptitle("chosen vs rejected")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def render_card(inputs: CardInputs) -> str:
    """The README.md text: YAML front matter, provenance, counts, statistics, one example."""
    config = dict(inputs.config)
    front = {
        "license": inputs.license,
        "tags": ["prefkit", "preferences", "dpo"],
        "task_categories": ["text-generation"],
        "size_categories": [size_category(int(inputs.counts.get("pairs", 0)))],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data.parquet"}]}],
        "prefkit": {
            "stage": "preferences",
            "source": {"path": inputs.source, "content_hash": inputs.source_hash},
            "labeler": config.get("labeler"),
            "labeler_options": config.get("labeler_options", {}),
            "pairing": config.get("pairing"),
            "min_margin": config.get("min_margin"),
            "length_penalty": config.get("length_penalty"),
            "length_unit": config.get("length_unit"),
            "truncated": config.get("truncated", "keep"),
            "seed": config.get("seed"),
        },
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "", "# Preference pairs", ""]
    lines += [
        _format_line(inputs.example),
        "",
        "## Provenance",
        f"- candidates: `{inputs.source}` (content hash `{inputs.source_hash[:16]}`)",
        f"- sampler: `{json.dumps(dict(inputs.sampler), sort_keys=True, default=str)}`",
        f"- labeler: `{config.get('labeler')}` with options `{json.dumps(config.get('labeler_options', {}), sort_keys=True)}`",
        f"- pairing: `{config.get('pairing')}`, minimum margin {config.get('min_margin')}, seed {config.get('seed')}",
        f"- length control: chosen by `score - lambda * length` with lambda = {config.get('length_penalty')}, "
        f"length in {config.get('length_unit')}",
        "",
        "## Counts",
        "| what | count |",
        "| --- | --- |",
    ]
    for key in ("prompts", "prompts_with_pairs", "pairs"):
        lines.append(f"| {key} | {inputs.counts.get(key, 0)} |")
    for reason, count in sorted(dict(inputs.counts.get("dropped", {})).items()):
        lines.append(f"| dropped: {reason} | {count} |")
    lines += [
        "",
        "Drop units: `empty_completion`, `nan_score` and `truncated` count candidates; `tie` and `below_margin` count "
        "candidate pairs; `too_few_candidates` counts prompts.",
        "",
    ]
    lines += _truncation_block(inputs.truncation, inputs.counts, str(config.get("truncated", "keep")))
    lines += [
        "",
        "## Score and length, chosen vs rejected",
    ]
    lines += _statistics_table(inputs.statistics, str(config.get("length_unit")))
    lines += ["", f"![score and length histograms]({HISTOGRAM_FILE})", "", "## Example", ""]
    lines += _example_block(inputs.example, inputs.rendered_prompt)
    return "\n".join(lines) + "\n"


TRUNCATION_MEANING = {
    "drop": "never paired (counted as `dropped: truncated`)",
    "no-eos": "paired, and trained without an EOS after the cut (`eos_*` false), so no stop signal is taught",
    "keep": "paired, and trained with an EOS appended (as TRL does)",
}


def _truncation_block(
    rates: Mapping[str, float | None] | None, counts: Mapping[str, Any], mode: str
) -> list[str]:
    candidates = int(counts.get("candidates", 0))
    lines = ["", "## Truncated completions", ""]
    lines.append(
        f"Completions cut at `max_new_tokens` (finish reason `length`) are {TRUNCATION_MEANING[mode]}."
    )
    if candidates:
        cut = int(counts.get("candidates_truncated", 0))
        lines.append(f"Candidates cut: {cut} of {candidates} ({cut / candidates:.1%}).")
    if rates and any(value is not None for value in rates.values()):
        lines += ["", "| side | pairs with a cut completion |", "| --- | --- |"]
        for side in ("chosen", "rejected"):
            value = rates.get(f"truncated_{side}")
            lines.append(f"| {side} | {'unrecorded' if value is None else f'{value:.1%}'} |")
    else:
        lines.append("The sampler recorded no finish reasons, so every completion counts as finished.")
    return lines


def _statistics_table(statistics: Mapping[str, Mapping[str, float]], length_unit: str) -> list[str]:
    if not statistics:
        return ["", "No pairs were kept, so there are no statistics."]
    rows = ["", "| column | mean | std | min | median | max |", "| --- | --- | --- | --- | --- | --- |"]
    for name, values in statistics.items():
        label = f"{name} ({length_unit})" if name.startswith("len_") else name
        rows.append(
            f"| {label} | {values['mean']} | {values['std']} | {values['min']} | {values['median']} | {values['max']} |"
        )
    return rows


def _example_block(example: Mapping[str, Any] | None, rendered_prompt: str | None) -> list[str]:
    if example is None:
        return ["No pairs were kept."]
    block = [
        f"prompt_id `{example['prompt_id']}`; score chosen {example['score_chosen']:.4g}, "
        f"rejected {example['score_rejected']:.4g}",
        "",
        "```json",
        json.dumps(
            {key: example[key] for key in ("prompt", "chosen", "rejected")}, indent=2, ensure_ascii=False
        ),
        "```",
    ]
    if rendered_prompt is not None:
        block += [
            "",
            "The prompt as the policy sees it (chat template applied; a conversation is rendered whole, "
            "ending with the generation prompt the chosen and rejected turns follow):",
            "",
            "```text",
            rendered_prompt,
            "```",
        ]
    return block


def _format_line(example: Mapping[str, Any] | None) -> str:
    """Which TRL preference format the pairs are in: conversational when the prompt is a message list."""
    if example is not None and isinstance(example["prompt"], list):
        return (
            "Pairs in TRL's conversational preference format (`prompt`: the chat messages so far; `chosen`, "
            "`rejected`: `[{role: assistant, content}]`), made by `prefkit label`."
        )
    return (
        "Pairs in TRL's standard preference format (`prompt`, `chosen`, `rejected`), made by `prefkit label`."
    )
