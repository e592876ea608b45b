"""How evaluators generate and score: the sampler plugins of `prefkit sample`, and one reference scorer.

Evaluators describe generation with a `SampleConfig` (the same fields, the same `backend="auto"` rule,
vLLM when installed else transformers, and the same per-shard seeds as `prefkit sample`), so an
evaluator's samples equal `prefkit sample --shard-size S` with the same model, prompts, seed and
backend. Prompts are `PromptRecord`s whose prompt may be a string or a chat message list; they reach
the sampler unchanged. Log-probs of those samples under another model (the KL reference) are scored
by `reference_logprobs`, the one function for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefkit.chat import encode_prompt, wants_chat_template
from prefkit.progress import SamplingProgress, StepProgress
from prefkit.records import PromptRecord
from prefkit.sampling.base import Completion
from prefkit.sampling.stage import SampleConfig, check_prompt_lengths, resolve_backend

# prompts per sampler call in evaluators: small enough that the progress bar moves every few seconds
EVAL_SHARD_SIZE = 16
SCORING_CHUNK = 64  # sequences per progress update while scoring log-probs


@dataclass(frozen=True)
class SampledPrompts:
    """Completions per prompt, the prompt token ids they continue, and how they were made."""

    completions: list[list[Completion]]
    prompt_ids: list[list[int]]
    use_chat_template: bool
    backend: str
    tokenizer: Any

    @property
    def texts(self) -> list[list[str]]:
        """The completion texts, grouped per prompt."""
        return [[completion.text for completion in group] for group in self.completions]


def sample_prompts(
    records: Sequence[PromptRecord],
    config: SampleConfig,
    *,
    progress: bool = True,
    description: str = "sampling",
    prompts_file: Path | None = None,
) -> SampledPrompts:
    """`config.n` completions per record from `config.model` with the sampler plugin `config.backend` picks."""
    from prefkit.models import load_tokenizer, resolve_model
    from prefkit.plugins import construct_plugin

    location = resolve_model(config.model)
    backend = resolve_backend(config.backend)
    tokenizer = load_tokenizer(location, trust_remote_code=config.trust_remote_code)
    use_chat_template = wants_chat_template(tokenizer, config.use_chat_template)
    sampler = construct_plugin("samplers", backend, config.sampler_options(use_chat_template), model=location)
    completions: list[list[Completion]] = []
    try:
        check_prompt_lengths(
            tokenizer,
            list(records),
            use_chat_template,
            sampler.max_model_len,
            prompts_file or Path("prompts"),
        )
        shards = [records[i : i + config.shard_size] for i in range(0, len(records), config.shard_size)]
        with SamplingProgress(len(records), enabled=progress, description=description) as bar:
            for index, shard in enumerate(shards):
                batch = sampler.generate([record.prompt for record in shard], config.sampling_params(index))
                completions.extend(batch)
                bar.advance(len(shard), sum(c.num_tokens for group in batch for c in group))
    finally:
        sampler.close()
    prompt_ids = [encode_prompt(tokenizer, record.prompt, use_chat_template) for record in records]
    return SampledPrompts(completions, prompt_ids, use_chat_template, backend, tokenizer)


def reference_logprobs(
    reference: str,
    records: Sequence[PromptRecord],
    sampled: SampledPrompts,
    *,
    dtype: str = "float32",
    batch_size: int = 8,
    use_chat_template: bool | None = None,
    progress: bool = True,
) -> list[list[float]]:
    """Summed log-prob of every sampled completion under `reference`, grouped like `sampled.completions`.

    With the sampler's vocabulary the exact sampled token ids are scored (EOS included when it was
    sampled); with another vocabulary the text is re-tokenised and rendered as in sampling.
    """
    from prefkit.chat import encode_pairs
    from prefkit.models import load_causal_lm, load_tokenizer, resolve_model
    from prefkit.scoring import completion_logprobs_from_ids

    location = resolve_model(reference)
    tokenizer = load_tokenizer(location)
    model = load_causal_lm(location, dtype=dtype)
    model.eval()
    flat = [(index, completion) for index, group in enumerate(sampled.completions) for completion in group]
    if tokenizer.get_vocab() == sampled.tokenizer.get_vocab():
        pairs = [(sampled.prompt_ids[index], list(c.token_ids)) for index, c in flat]
    else:  # a different vocabulary: re-tokenise the text with the reference's tokenizer
        pairs = encode_pairs(
            tokenizer,
            [records[index].prompt for index, _ in flat],
            [c.text for _, c in flat],
            use_chat_template,
        )
    scores: list[float] = []
    with StepProgress("reference log-probs", len(pairs), unit="completions", enabled=progress) as bar:
        for start in range(0, len(pairs), SCORING_CHUNK):
            chunk = pairs[start : start + SCORING_CHUNK]
            scores.extend(completion_logprobs_from_ids(model, chunk, batch_size=batch_size))
            bar.advance(len(chunk))
    iterator = iter(scores)
    return [[next(iterator) for _ in group] for group in sampled.completions]


def score_rewards(
    scorer, records: Sequence[PromptRecord], texts: list[list[str]], *, progress: bool = True
) -> list[list[float]]:
    """A labeler's scores of every completion, in chunks of prompts so that progress shows."""
    prompts = [record.prompt for record in records]
    rewards: list[list[float]] = []
    chunk = max(1, SCORING_CHUNK // max(1, max((len(group) for group in texts), default=1)))
    with StepProgress("reward scoring", len(prompts), unit="prompts", enabled=progress) as bar:
        for start in range(0, len(prompts), chunk):
            rewards.extend(scorer.score(prompts[start : start + chunk], texts[start : start + chunk]))
            bar.advance(len(prompts[start : start + chunk]))
    return rewards


@dataclass(frozen=True)
class EvalGeneration:
    """How an evaluator samples its subject: the `prefkit sample` settings its options set, declared once.

    Checked when built (a bad value is one ConfigError naming the option, before any model loads);
    `sample_config(model)` gives the SampleConfig that `sample_prompts` takes.
    """

    max_new_tokens: int
    temperature: float
    top_p: float = 1.0
    n: int = 1
    seed: int = 0
    batch_size: int = 8
    dtype: str = "float32"
    use_chat_template: bool | None = None
    backend: str = "auto"
    engine: Mapping[str, Any] | None = None  # any other `prefkit sample` setting (device, max_model_len, ...)

    def __post_init__(self) -> None:
        self.sample_config("(subject)")

    def sample_config(self, model: str, **overrides: Any) -> SampleConfig:
        """The validated SampleConfig for sampling `model` (`overrides`: other SampleConfig fields, e.g.
        logprobs); a bad value is one ConfigError naming the option. `engine` carries any other `prefkit
        sample` setting (device, tensor_parallel_size, max_model_len, ...); `shard_size` defaults to
        EVAL_SHARD_SIZE."""
        from prefkit.errors import validated_config

        fields = {**asdict(self), **overrides}
        engine = dict(fields.pop("engine", None) or {})
        values = {"shard_size": EVAL_SHARD_SIZE, **engine, **fields, "model": model}
        return validated_config(
            SampleConfig, {key: value for key, value in values.items() if value is not None}
        )
