"""Every plugin contract in one place: what a sampler, labeler, trainer or evaluator plugin implements.

Plugins are found through entry-point groups (`prefkit.samplers`, `.labelers`, `.trainers`, `.evals`)
and constructed by `prefkit.plugins.construct_plugin(kind, name, options)`, which checks the options
the same way for every kind before the plugin runs:

| kind      | constructed as            | options checked against                              |
|-----------|---------------------------|------------------------------------------------------|
| samplers  | `Cls(model, options)`     | `SamplerOptions` (core; one model for every backend)  |
| labelers  | `Cls(**options)`          | the class's signature                                |
| trainers  | `Cls()`                   | the plugin's `options_model` (pydantic, extra=forbid) |
| evals     | `Cls(**options)`          | the class's signature                                |

Every protocol is runtime-checkable (`isinstance` checks the members exist, not their signatures).
The records these contracts exchange (SamplingParams, Completion, TrainRequest, TrainResult,
EvalSubject, PairwiseJudging) stay with the stage that owns them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from prefkit.conversation import Prompt
    from prefkit.evaluation.stage import EvalSubject
    from prefkit.judge.pairwise import PairwiseJudging
    from prefkit.records import PromptRecord
    from prefkit.sampling.base import Completion, SamplingParams
    from prefkit.training.stage import TrainRequest, TrainResult


@runtime_checkable
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


@runtime_checkable
class Labeler(Protocol):
    """A scorer, constructed by its plugin class as `Cls(**options)`."""

    name: str

    def score(self, prompts: list[Prompt], completions: list[list[str]]) -> list[list[float]]:
        """Scores aligned with `completions` (one list per prompt).

        A prompt is a string or a conversation (a message list ending with a user turn); a completion
        is always the text of the next assistant turn.
        """
        ...


@runtime_checkable
class ReportsUsage(Protocol):
    """Optional: a labeler that counts its work (requests, tokens, samples/s) for the manifest.

    `usage()` returns flat counts for the work done since construction; the labeling stage records
    the difference across each shard so resumed runs still add up.
    """

    def usage(self) -> dict[str, Any]:
        """Flat counters (numbers) describing the work done so far."""
        ...


@runtime_checkable
class TrainerPlugin(Protocol):
    """A trainer found through the `prefkit.trainers` entry-point group (instantiated with no arguments).

    `options_model` (a pydantic model class, `extra="forbid"`) declares the plugin's own options; a plugin
    without one accepts none. `check(config, options)` (optional) refuses combinations before any work.
    """

    name: str

    def train(self, request: TrainRequest) -> TrainResult:
        """Train on request.train_indices of the preferences; write the model folder into request.work_dir."""
        ...


@runtime_checkable
class Evaluator(Protocol):
    """An evaluator plugin, constructed as `Cls(**options)`.

    An evaluator with a `progress` attribute gets it set to the run's progress flag before it runs.
    """

    name: str

    def evaluate(self, subject: EvalSubject, work_dir: Path) -> dict[str, Any]:
        """Evaluate one subject; return flat metrics (numbers or short strings). `work_dir` is for outputs."""
        ...


@runtime_checkable
class AnswersForJudging(Protocol):
    """An evaluator whose subjects answer prompts that a pairwise judge then compares (`winrate`).

    iterate's round win rates use it: each round's policy answers through `answer` (stored under a key
    of `answer_settings()`), and core's `prefkit.judge.pairwise.judge_answer_sets` judges round k's
    answers against an earlier round's with `judging`.
    """

    max_prompts: int | None
    judging: PairwiseJudging

    def answer(self, model: str, prompts: list[PromptRecord]) -> list[str]:
        """One answer per prompt from `model`."""
        ...

    def answer_settings(self) -> dict[str, Any]:
        """What the answers depend on besides the model and prompts (JSON values)."""
        ...
