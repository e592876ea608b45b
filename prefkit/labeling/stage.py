"""The labeling stage: a candidates artifact in, a preferences artifact (TRL standard format) out.

Candidates are streamed in shards (bounded memory). Each shard is scored by the labeler, turned into
pairs by `pairing.make_pairs`, and written as a completed shard with its drop counts, so an interrupted
run resumes where it stopped. The final data.parquet is written by streaming the shards, then the
card and histograms are made from the numeric columns only.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from prefkit.artifacts import DATA_FILE, Artifact, StageRun, atomic_write_text
from prefkit.conversation import Prompt, assistant_turn
from prefkit.errors import ConfigError, ModelError, PrefkitError
from prefkit.ingest.candidates import resolve_candidates
from prefkit.labeling.base import Labeler, ReportsUsage
from prefkit.labeling.candidates_reader import CandidateShard, check_candidates, iter_candidate_shards
from prefkit.labeling.card import (
    HISTOGRAM_FILE,
    CardInputs,
    column_statistics,
    render_card,
    truncation_rates,
    write_histograms,
)
from prefkit.labeling.config import LabelConfig
from prefkit.labeling.pairing import (
    PairingResult,
    appends_eos,
    is_truncated,
    make_pairs,
    row_rng,
    trained_length,
)
from prefkit.labeling.registry import load_labeler
from prefkit.models import EMBEDDED_ALIASES, cache_home
from prefkit.progress import StepProgress
from prefkit.records import (
    PREFERENCES_SCHEMA,
    PREFERENCES_TRUNCATION_SCHEMA,
    is_conversational,
    stage_schema,
)
from prefkit.validation import reading

PAIR_COLUMNS: dict[str, pl.DataType] = {
    "margin": pl.Float64(),
    "chosen_index": pl.Int64(),
    "rejected_index": pl.Int64(),
    **PREFERENCES_TRUNCATION_SCHEMA,
}
OUTPUT_SCHEMA: dict[str, pl.DataType] = {**PREFERENCES_SCHEMA, **PAIR_COLUMNS}


def output_schema(conversational: bool) -> dict[str, pl.DataType]:
    """The preference columns written; conversational candidates give message-list prompt/chosen/rejected
    (TRL's conversational preference format)."""
    return {**stage_schema("preferences", conversational), **PAIR_COLUMNS}


COUNTS_DIR = "shard-counts"
COUNTED = ("prompts", "prompts_with_pairs", "pairs", "candidates", "candidates_truncated")


def label(
    candidates: str | Path,
    out: str | Path,
    config: LabelConfig,
    *,
    force: bool = False,
    progress: bool = True,
) -> Artifact:
    """Score a candidates artifact and write a preferences artifact; skipped if done, resumed if interrupted."""
    source = resolve_candidates(candidates)  # an artifact, or a candidates file imported as one
    candidates_input = {"candidates": source.path}
    with StageRun(out, "preferences", config.model_dump(), candidates_input, force=force) as run:
        if run.already_done:
            return run.artifact()
        with reading(source.data_path):
            total_rows = check_candidates(source.data_path, config.length_unit)
        # the labeler is loaded before the work folder exists: a bad name or option leaves nothing behind
        labeler: Labeler | None = load_labeler(config.labeler, config.labeler_options)
        try:
            work_dir = run.open()
        except BaseException:
            close_labeler(labeler)
            raise
        # counts live inside the shard folder, so finish() removes shards and counts together; a shard
        # without its counts file is labeled again (no state can leave a resume without its counts)
        counts_dir = run.shard_dir / COUNTS_DIR
        counts_dir.mkdir(parents=True, exist_ok=True)
        done = {index for index in run.completed_shards() if (counts_dir / f"{index:05d}.json").exists()}
        shards = iter_candidate_shards(source.data_path, config.shard_size, skip=done)
        try:
            with StepProgress(
                "labeling", total_rows, unit="rows", enabled=progress, done=len(done) * config.shard_size
            ) as bar:
                for shard in shards:
                    before = _usage(labeler)
                    pairs, counts = label_shard(shard, labeler, config, source.data_path)
                    counts["usage"] = _usage_delta(before, _usage(labeler))
                    # counts first, then the shard file: a shard file on disk means its counts are there too
                    atomic_write_text(counts_dir / f"{shard.index:05d}.json", json.dumps(counts))
                    run.write_shard(shard.index, pairs)
                    bar.advance(shard.frame.height)
        finally:
            close_labeler(labeler)
        counts, usage = _merge_counts(counts_dir, run.completed_shards())
        conversational = is_conversational(pl.read_parquet_schema(source.data_path))
        _write_data(run, work_dir / DATA_FILE, output_schema(conversational))
        numbers = pl.read_parquet(
            work_dir / DATA_FILE, columns=[*list(PREFERENCES_SCHEMA)[4:], *PREFERENCES_TRUNCATION_SCHEMA]
        )
        write_histograms(numbers, work_dir / HISTOGRAM_FILE, config.length_unit)
        card = render_card(_card_inputs(source, run, counts, numbers, work_dir / DATA_FILE))
        # the labeler's usage (prompt_tokens, ...) is a count of this run's work, so it sits with the counts
        counts["labeler_usage"] = usage
        extra = {
            "use_chat_template": source.manifest.extra.get("use_chat_template"),
            "conversational": conversational,
            "length_unit": config.length_unit,
            "length_penalty": config.length_penalty,
            "truncated": config.truncated,
        }
        run.set_result(counts=counts, card=card, extra=extra)
    return run.artifact()


@dataclass(frozen=True)
class ScoredShard:
    """One shard's candidates with their labeler scores, finish reasons and lengths.

    Lengths are in the configured unit and counted as the trainer will see the completion (a cut
    completion's appended EOS included or not, see `pairing.trained_length`). A finish reason is None
    when the sampler did not record it (such a completion is treated as finished).
    """

    prompt_ids: list[str]
    prompts: list[Prompt]
    completions: list[list[str]]
    scores: list[list[float]]
    lengths: list[list[int]]
    finish_reasons: list[list[str | None]] | None = None  # None: none recorded

    def reasons(self, offset: int) -> list[str | None]:
        """The finish reasons of row `offset` (None for each completion when unrecorded)."""
        if self.finish_reasons is None:
            return [None] * len(self.completions[offset])
        return self.finish_reasons[offset]


def score_shard(shard: CandidateShard, labeler: Labeler, config: LabelConfig, source: Path) -> ScoredShard:
    """Score one shard with the labeler (checked: one finite-or-NaN number per completion)."""
    frame = shard.frame
    prompts = frame["prompt"].to_list()
    # a null completion becomes "": labelers get strings, and pairing counts it as an empty completion
    completions = [[text or "" for text in items or []] for items in frame["completions"].to_list()]
    scores = labeler.score(prompts, completions)
    _check_scores(scores, completions, shard.first_row, source, config.labeler)
    tokens = (
        frame["completion_tokens"].to_list()
        if "completion_tokens" in frame.columns
        else [None] * frame.height
    )
    reasons = (
        [[reason or None for reason in row or []] for row in frame["finish_reasons"].to_list()]
        if "finish_reasons" in frame.columns
        else [[None] * len(texts) for texts in completions]
    )
    sampled_lengths = [
        list(row_tokens or []) if config.length_unit == "tokens" else [len(text) for text in texts]
        for texts, row_tokens in zip(completions, tokens, strict=True)
    ]
    lengths = [
        [
            trained_length(length, reason, config.truncated, config.length_unit)
            for length, reason in zip(row_lengths, row_reasons, strict=True)
        ]
        for row_lengths, row_reasons in zip(sampled_lengths, reasons, strict=True)
    ]
    return ScoredShard(
        prompt_ids=[str(prompt_id) for prompt_id in frame["prompt_id"].to_list()],
        prompts=prompts,
        completions=completions,
        scores=[[float(value) for value in row] for row in scores],
        lengths=lengths,
        finish_reasons=reasons,
    )


def pair_scored(scored: ScoredShard, config: LabelConfig, length_penalty: float) -> Iterator[PairingResult]:
    """Each prompt's pairs under `length_penalty` (strategy, margin and seed from `config`), in row order."""
    for offset, (prompt_id, texts, scores, lengths) in enumerate(
        zip(scored.prompt_ids, scored.completions, scored.scores, scored.lengths, strict=True)
    ):
        yield make_pairs(
            config.pairing,
            texts,
            scores,
            lengths,
            length_penalty=length_penalty,
            min_margin=config.min_margin,
            rng=row_rng(config.seed, prompt_id),
            finish_reasons=scored.reasons(offset),
            truncation=config.truncated,
        )


def label_shard(
    shard: CandidateShard, labeler: Labeler, config: LabelConfig, source: Path
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Score one shard and pair its candidates; returns the pairs and counts (prompts, pairs, dropped)."""
    scored = score_shard(shard, labeler, config, source)
    conversational = is_conversational(dict(shard.frame.schema))
    # a conversational pair's completions are one assistant turn each (TRL's conversational format)
    as_completion = assistant_turn if conversational else str
    rows: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    with_pairs = 0
    for offset, result in enumerate(pair_scored(scored, config, config.length_penalty)):
        prompt_id = scored.prompt_ids[offset]
        texts, scores, lengths = scored.completions[offset], scored.scores[offset], scored.lengths[offset]
        reasons = scored.reasons(offset)
        dropped.update(result.dropped)
        with_pairs += bool(result.pairs)
        for pair in result.pairs:
            rows.append(
                {
                    "prompt_id": prompt_id,
                    "prompt": scored.prompts[offset],
                    "chosen": as_completion(texts[pair.chosen]),
                    "rejected": as_completion(texts[pair.rejected]),
                    "score_chosen": scores[pair.chosen],
                    "score_rejected": scores[pair.rejected],
                    "len_chosen": int(lengths[pair.chosen]),
                    "len_rejected": int(lengths[pair.rejected]),
                    "margin": pair.margin,
                    "chosen_index": pair.chosen,
                    "rejected_index": pair.rejected,
                    "finish_chosen": reasons[pair.chosen],
                    "finish_rejected": reasons[pair.rejected],
                    "eos_chosen": appends_eos(reasons[pair.chosen], config.truncated),
                    "eos_rejected": appends_eos(reasons[pair.rejected], config.truncated),
                }
            )
    counts = {
        "prompts": len(scored.prompt_ids),
        "prompts_with_pairs": with_pairs,
        "pairs": len(rows),
        "candidates": sum(len(texts) for texts in scored.completions),
        "candidates_truncated": sum(
            is_truncated(reason)
            for offset in range(len(scored.completions))
            for reason in scored.reasons(offset)
        ),
        "dropped": dict(dropped),
    }
    return pl.DataFrame(rows, schema=output_schema(conversational)), counts


def _check_scores(scores: Any, completions: list[list[str]], first_row: int, source: Path, name: str) -> None:
    if not isinstance(scores, list) or len(scores) != len(completions):
        got = len(scores) if isinstance(scores, list) else type(scores).__name__
        raise PrefkitError(
            f"labeler '{name}' returned {got} score lists for {len(completions)} prompts", file=source
        )
    for offset, (row_scores, texts) in enumerate(zip(scores, completions, strict=True)):
        if len(row_scores) != len(texts):
            raise PrefkitError(
                f"labeler '{name}' returned {len(row_scores)} scores for {len(texts)} completions",
                file=source,
                row=first_row + offset,
                field="completions",
            )


def _usage(labeler: Labeler) -> dict[str, Any]:
    return dict(labeler.usage()) if isinstance(labeler, ReportsUsage) else {}


def _usage_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    return {
        key: value - before.get(key, 0)
        for key, value in after.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and not key.endswith("_per_s")
    }


def _merge_counts(counts_dir: Path, shards: set[int]) -> tuple[dict[str, Any], dict[str, float]]:
    """Sum the per-shard counts and labeler usage (so resumed runs still add up)."""
    total: Counter = Counter()
    dropped: Counter = Counter()
    usage: Counter = Counter()
    for index in sorted(shards):
        shard = json.loads((counts_dir / f"{index:05d}.json").read_text())
        total.update({key: shard.get(key, 0) for key in COUNTED})
        dropped.update(shard["dropped"])
        usage.update(shard["usage"])
    usage_summary: dict[str, float] = dict(usage)
    if usage.get("seconds") and "samples" in usage:
        usage_summary["samples_per_s"] = round(usage["samples"] / usage["seconds"], 2)
    return {**dict(total), "dropped": dict(sorted(dropped.items()))}, usage_summary


def _write_data(run: StageRun, path: Path, columns: dict[str, pl.DataType]) -> None:
    """Stream the shards into one Parquet file (never all pairs in memory at once)."""
    tmp = path.with_name(f".{path.name}.tmp")
    schema = pl.DataFrame(schema=columns).to_arrow().schema
    with pq.ParquetWriter(tmp, schema) as writer:
        for index in sorted(run.completed_shards()):
            writer.write_table(pq.read_table(run.shard_path(index)).cast(schema))
    os.replace(tmp, path)


def _card_inputs(
    source: Artifact, run: StageRun, counts: dict[str, Any], numbers: pl.DataFrame, data: Path
) -> CardInputs:
    example = pl.read_parquet(data, n_rows=1).row(0, named=True) if numbers.height else None
    sampler = source.manifest.config
    return CardInputs(
        source=str(source.path),
        source_hash=source.manifest.content_hash,
        sampler={
            key: sampler[key]
            for key in ("model", "n", "temperature", "top_p", "max_new_tokens", "seed")
            if key in sampler
        },
        config=run.config,  # the redacted config, as in the manifest
        license=run.config["license"],
        counts=counts,
        statistics=column_statistics(numbers),
        example=example,
        rendered_prompt=_rendered_prompt(source, example),
        truncation=truncation_rates(numbers),
    )


def _rendered_prompt(source: Artifact, example: dict[str, Any] | None) -> str | None:
    """The example prompt through the sampling model's chat template, when that model is a local folder."""
    model = source.manifest.config.get("model")
    if example is None or not isinstance(model, str):
        return None
    if model.lower() in EMBEDDED_ALIASES:  # only if already converted: a card never triggers a conversion
        model = str(cache_home() / "models" / EMBEDDED_ALIASES[model.lower()])
    if not (Path(model) / "config.json").exists():
        return None
    from prefkit.chat import render_prompt
    from prefkit.models import load_tokenizer

    try:
        tokenizer = load_tokenizer(model)
    except ModelError:
        return None  # the card still shows the raw example; rendering is a courtesy, not a requirement
    return render_prompt(tokenizer, example["prompt"], source.manifest.extra.get("use_chat_template"))


def close_labeler(labeler: Labeler | None) -> None:
    close = getattr(labeler, "close", None)
    if callable(close):
        close()


def parse_labeler_options(text: str | None) -> dict[str, Any]:
    """Options from a JSON object string (the CLI's `--labeler-options`)."""
    if not text:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"is not valid JSON ({error.msg})", field="labeler_options") from None
    if not isinstance(options, dict):
        raise ConfigError("must be a JSON object", field="labeler_options")
    return options
