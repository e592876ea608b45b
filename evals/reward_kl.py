"""reward-kl: mean reward and sequence KL(pi || pi_ref) on held-out prompts (the DPO paper's sentiment plot).

For each prompt, k completions are sampled from the subject (seeded) through the sampler plugins of
`prefkit sample` (`backend`: auto = vLLM when installed, else transformers) and scored by a labeler.
Sampling is from the model's own distribution (top-k off, top-p 1 by default) so that the mean of
log pi(y|x) - log pi_ref(y|x) over samples is an unbiased estimate of the sequence KL; log pi is the
sampler's sum over the sampled tokens (EOS included when sampled) and log pi_ref is scored on the same
token ids by `prefkit_evals.sampling.reference_logprobs`. Reward is averaged per prompt first, then
across prompts, with its standard error across prompts. With no reference model the subject is its
own reference and the KL is 0 by construction (no log-probs are computed).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from prefkit_evals.rewards import load_scorer
from prefkit_evals.sampling import (
    EvalGeneration,
    SampledPrompts,
    reference_logprobs,
    sample_prompts,
    score_rewards,
)

from prefkit.chat import wants_chat_template
from prefkit.errors import ConfigError
from prefkit.evaluation.stage import EvalSubject
from prefkit.ingest import read_prompts
from prefkit.report.statistics import mean_and_standard_error
from prefkit.sampling.base import Completion

SAMPLES_FILE = "reward_kl_samples.jsonl"


class RewardKLEvaluator:
    """Sample k completions per held-out prompt; report reward (mean, SE), length, and KL to a reference."""

    name = "reward-kl"

    def __init__(
        self,
        prompts: str | None = None,
        n: int = 4,
        max_new_tokens: int = 48,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int = 0,
        labeler: str = "vader",
        labeler_options: dict[str, Any] | None = None,
        reference: str | None = None,
        max_prompts: int | None = None,
        batch_size: int = 8,
        dtype: str = "float32",
        use_chat_template: bool | None = None,
        best_of: int | None = None,
        backend: str = "auto",
        engine: dict[str, Any] | None = None,
    ) -> None:
        if not prompts:
            raise ConfigError(
                "reward-kl needs held-out prompts", field="prompts", hint="--option prompts=FILE.jsonl"
            )
        if max_prompts is not None and int(max_prompts) < 1:
            raise ConfigError(f"must be at least 1, got {max_prompts}", field="max_prompts")
        if best_of is not None and (int(best_of) < 2 or int(n) % int(best_of)):
            raise ConfigError(f"must be >= 2 and divide n={n}, got {best_of}", field="best_of")
        self.best_of = int(best_of) if best_of is not None else None
        self.prompts_path = Path(prompts)
        self.use_chat_template = use_chat_template
        self.batch_size = int(batch_size)
        self.generation = EvalGeneration(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            n=n,
            seed=seed,
            batch_size=batch_size,
            dtype=dtype,
            use_chat_template=use_chat_template,
            backend=backend,
            engine=engine,
        )
        self.labeler = labeler
        self.labeler_options = dict(labeler_options or {})
        self.reference = reference
        self.max_prompts = int(max_prompts) if max_prompts is not None else None
        self.dtype = dtype
        self.progress = True  # set by prefkit.evaluation.stage (False for --quiet)

    def check_subject(self, subject: EvalSubject) -> None:
        """Refuse, before any output exists, a prompts file with a prompt that leaves the subject's context
        no room for a completion (the rule `prefkit sample` applies to the same file)."""
        import json

        from prefkit.models import load_tokenizer, resolve_model
        from prefkit.sampling.stage import check_prompt_lengths
        from prefkit.validation import check_safetensors

        location = Path(resolve_model(subject.model))
        if not (location / "config.json").exists():
            return  # a hub id: its context is known only once downloaded
        check_safetensors(location)
        config = json.loads((location / "config.json").read_text())
        context = int(config.get("max_position_embeddings") or 2048)
        tokenizer = load_tokenizer(str(location))
        use_chat_template = wants_chat_template(tokenizer, self.use_chat_template)
        records = read_prompts(self.prompts_path)[: self.max_prompts]
        check_prompt_lengths(tokenizer, records, use_chat_template, context, self.prompts_path)

    def evaluate(self, subject: EvalSubject, work_dir: Path) -> dict[str, Any]:
        """Sample, score and compare to the reference; write the samples to `work_dir`; return flat metrics."""
        records = read_prompts(self.prompts_path)[: self.max_prompts]
        scorer = load_scorer(self.labeler, self.labeler_options)
        with_reference = self.reference is not None and not same_model(self.reference, subject.model)
        config = self.generation.sample_config(subject.model, logprobs=with_reference)
        sampled = sample_prompts(
            records, config, progress=self.progress, description="sampling", prompts_file=self.prompts_path
        )
        rewards = score_rewards(scorer.scorer, records, sampled.texts, progress=self.progress)
        reference = self._reference_logprobs(records, sampled) if with_reference else None
        write_samples(work_dir / SAMPLES_FILE, records, sampled.completions, rewards, reference)
        metrics = summarize(sampled.completions, rewards, reference)
        if self.best_of:
            metrics.update(best_of_n_metrics(rewards, self.best_of))
        metrics.update(
            labeler=self.labeler,
            labeler_source=scorer.source,
            reference=self.reference or subject.model,
            backend=sampled.backend,
        )
        return metrics

    def _reference_logprobs(self, records, sampled: SampledPrompts) -> list[list[float]]:
        return reference_logprobs(
            str(self.reference),
            records,
            sampled,
            dtype=self.dtype,
            batch_size=self.batch_size,
            use_chat_template=self.use_chat_template,
            progress=self.progress,
        )


def same_model(first: str, second: str) -> bool:
    """Whether two model names resolve to the same location (then the KL is 0 by construction)."""
    from prefkit.models import resolve_model

    return (
        Path(resolve_model(first)).expanduser().resolve()
        == Path(resolve_model(second)).expanduser().resolve()
    )


def summarize(
    samples: list[list[Completion]],
    rewards: list[list[float]],
    reference_logprobs: list[list[float]] | None,
) -> dict[str, Any]:
    """Flat metrics: reward and length in characters (per-prompt mean, then mean and SE across prompts),
    length in tokens, and sequence KL.

    `length_tokens` counts the sampled tokens, the closing EOS included when the model emitted one (as
    `prefkit sample` counts them).
    """
    if len(rewards) != len(samples) or any(len(r) != len(s) for r, s in zip(rewards, samples, strict=True)):
        raise ConfigError(
            "the labeler returned scores that do not line up with the completions", field="labeler"
        )
    reward_mean, reward_se = mean_and_standard_error([statistics.fmean(group) for group in rewards])
    _, length_chars_se = mean_and_standard_error(
        [statistics.fmean(len(s.text) for s in group) for group in samples]
    )
    flat = [sample for group in samples for sample in group]
    metrics: dict[str, Any] = {
        "reward_mean": reward_mean,
        "reward_se": reward_se,
        "length_chars": statistics.fmean(len(s.text) for s in flat),
        "length_chars_se": length_chars_se,
        "length_tokens": statistics.fmean(s.num_tokens for s in flat),
        "n_prompts": len(samples),
        "n_samples": len(flat),
    }
    if reference_logprobs is None:
        metrics.update(kl_mean=0.0, kl_se=0.0)
        return metrics
    ratios = [
        float(sample.logprob) - reference
        for group, reference_group in zip(samples, reference_logprobs, strict=True)
        for sample, reference in zip(group, reference_group, strict=True)
    ]
    metrics["kl_mean"], metrics["kl_se"] = mean_and_standard_error(ratios)
    return metrics


def best_of_n_metrics(rewards: list[list[float]], best_of: int) -> dict[str, float]:
    """The Best-of-N baseline from the same samples: each prompt's samples split into groups of N, the best
    reward of each group kept; KL is the analytic bound log N - (N - 1) / N of Best-of-N against the
    sampling policy (Stiennon et al. 2020; Beirami et al. 2024)."""
    per_prompt = []
    for group in rewards:
        maxima = [max(group[start : start + best_of]) for start in range(0, len(group), best_of)]
        per_prompt.append(statistics.fmean(maxima))
    mean, se = mean_and_standard_error(per_prompt)
    return {
        "best_of_n": best_of,
        "best_of_n_reward_mean": mean,
        "best_of_n_reward_se": se,
        "best_of_n_kl": math.log(best_of) - (best_of - 1) / best_of,
    }


def write_samples(path: Path, records, samples, rewards, reference_logprobs) -> None:
    """One JSON line per sample: prompt id, text, tokens, finish reason, reward, and both log-probs when known."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for index, (record, group, scores) in enumerate(zip(records, samples, rewards, strict=True)):
            for sample_index, (sample, reward) in enumerate(zip(group, scores, strict=True)):
                row = {
                    "prompt_id": record.prompt_id,
                    "sample": sample_index,
                    "completion": sample.text,
                    "num_tokens": sample.num_tokens,
                    "finish_reason": sample.finish_reason,
                    "reward": reward,
                    "logprob": sample.logprob,
                    "reference_logprob": reference_logprobs[index][sample_index]
                    if reference_logprobs
                    else None,
                }
                handle.write(json.dumps(row) + "\n")
