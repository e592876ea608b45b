"""The sampler contract: prompts in, k completions per prompt out (text, token count, sequence log-prob)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from prefkit.conversation import Prompt
from prefkit.sampling.options import SamplingParams  # noqa: F401  (the sampler contract's input)


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


class Sampler(Protocol):
    """A sampling backend, constructed by its plugin class as `Cls(model, options)`.

    `options` is a `prefkit.sampling.options.SamplerOptions`. `max_model_len` is the longest
    prompt + completion (in tokens) the backend accepts; a prompt must leave room for one new token.
    """

    name: str
    max_model_len: int

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """Return `params.n` completions for each prompt (raw user text or a conversation; the backend
        renders it with `prefkit.chat.encode_prompt`)."""
        ...

    def close(self) -> None:
        """Free the model/engine."""
        ...
