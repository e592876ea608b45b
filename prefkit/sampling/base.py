"""The sampler contract: prompts in, k completions per prompt out (text, token count, sequence log-prob)."""

from __future__ import annotations

from dataclasses import dataclass

from prefkit.protocols import Sampler
from prefkit.sampling.options import SamplingParams

__all__ = ["Completion", "Sampler", "SamplingParams"]  # Sampler: the contract lives in prefkit.protocols


@dataclass(frozen=True)
class Completion:
    """One sampled completion; `logprob` is the summed token log-prob under the sampling policy.

    `token_ids` are the generated tokens exactly as sampled (the closing EOS included when the model
    emitted it; a stop string's tokens included); `num_tokens == len(token_ids)` and `logprob` is the
    sum over these tokens of the model's raw log-probs (before temperature and top-p), the quantity
    `prefkit.scoring.completion_logprobs_from_ids` computes for (prompt ids, token_ids).
    """

    text: str
    num_tokens: int
    logprob: float | None = None
    finish_reason: str | None = None
    token_ids: tuple[int, ...] = ()
