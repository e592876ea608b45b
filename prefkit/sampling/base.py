"""The sampler contract: prompts in, k completions per prompt out (text, token count, sequence log-prob)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SamplingParams:
    """What to sample: k completions per prompt, decoding settings, and whether to return log-probs."""

    n: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)
    logprobs: bool = False


@dataclass(frozen=True)
class Completion:
    """One sampled completion; `logprob` is the summed token log-prob under the sampling policy."""

    text: str
    num_tokens: int
    logprob: float | None = None
    finish_reason: str | None = None


class Sampler(Protocol):
    """A sampling backend, constructed by its plugin class as `Cls(model, options)`."""

    name: str

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        """Return `params.n` completions for each prompt (prompts are raw user text)."""
        ...

    def close(self) -> None:
        """Free the model/engine."""
        ...
