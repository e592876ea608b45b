"""The data card (Hugging Face README.md with YAML front matter) written beside sampled candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

from prefkit.conversation import Prompt, is_conversation


def size_category(rows: int) -> str:
    """Hugging Face's `size_categories` bucket for a row count."""
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return label
    return "n>1M"


def length_stats(values: pl.Series) -> dict[str, float]:
    """Mean, median, min and max of a numeric series (zeros when empty)."""
    if values.len() == 0:
        return {"mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0}
    return {
        "mean": round(float(values.mean()), 2),
        "median": round(float(values.median()), 2),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def candidates_card(
    table: pl.DataFrame,
    prompts_path: Path,
    prompts_hash: str,
    sampler: dict[str, Any],
    use_chat_template: bool,
    rendered_example: str,
    example_prompt: Prompt | None = None,
) -> str:
    """Card text: licence, provenance, sizes, length statistics, sampler settings, one rendered prompt
    (for conversations: the whole history through the chat template, as the model saw it)."""
    completions = table["completions"].explode()
    tokens = table["completion_tokens"].explode().cast(pl.Float64)
    characters = completions.str.len_chars().cast(pl.Float64)
    front_matter = {
        "license": "other",
        "license_details": "inherits the licences of the source prompts and of the sampling model's outputs",
        "pretty_name": f"candidates sampled from {sampler['model']}",
        "task_categories": ["text-generation"],
        "tags": ["prefkit", "synthetic", "candidates"],
        "size_categories": [size_category(table.height)],
        "source_prompts": {"path": str(prompts_path), "sha256": prompts_hash},
        "configs": [{"config_name": "default", "data_files": "data.parquet"}],
    }
    token_stats, char_stats = length_stats(tokens), length_stats(characters)
    lines = [
        "---",
        yaml.safe_dump(front_matter, sort_keys=False).strip(),
        "---",
        "",
        f"# Candidates sampled from `{sampler['model']}`",
        "",
        f"{table.height} prompts from `{prompts_path}` (sha256 `{prompts_hash[:16]}…`), "
        f"{sampler['n']} completions each ({completions.len()} in all), sampled with the "
        f"`{sampler['backend']}` backend by prefkit.",
        "",
        "## Columns",
        f"`prompt_id`, `prompt`{prompt_column_note(table, example_prompt)}, `completions` (list of strings, "
        "each the next assistant turn), `completion_tokens` (generated tokens per "
        "completion, EOS included when emitted), `completion_logprobs` (summed raw log-probs of the "
        "generated tokens under the sampling model; nulls when not requested), `finish_reasons` "
        "(`stop`: EOS or a stop string, `length`: cut at the token limit).",
        "",
        "## Lengths",
        "| unit | mean | median | min | max |",
        "| --- | --- | --- | --- | --- |",
        "| tokens | {mean} | {median} | {min:.0f} | {max:.0f} |".format(**token_stats),
        "| characters | {mean} | {median} | {min:.0f} | {max:.0f} |".format(**char_stats),
        "",
        "## Sampling",
        "| setting | value |",
        "| --- | --- |",
        *[f"| {key} | `{value}` |" for key, value in sampler.items()],
        f"| use_chat_template | `{use_chat_template}` |",
        "",
        "## One prompt as the model saw it",
        "```text",
        rendered_example,
        "```",
        "",
    ]
    return "\n".join(lines)


def prompt_column_note(table: pl.DataFrame, example_prompt: Prompt | None) -> str:
    """How the card describes the prompt column: nothing for strings; turn counts for conversations."""
    if example_prompt is None or not is_conversation(example_prompt):
        return ""
    turns = table["prompt"].list.len().cast(pl.Float64)
    stats = length_stats(turns)
    return (
        " (a conversation: a list of `{role, content}` chat messages ending with the user turn the "
        f"completions answer; {stats['mean']} messages on average, {stats['min']:.0f} to {stats['max']:.0f})"
    )
