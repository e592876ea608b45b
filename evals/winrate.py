"""winrate: the DPO paper's GPT-4 win rate of a model's answers against reference answers.

For each prompt the subject answers greedily (temperature 0 by default, as in the paper's headline
numbers) through the sampler plugins of `prefkit sample` (`backend`: auto = vLLM when installed, else
transformers); a judge compares that answer with the reference. The order in which the two are shown is
randomised per item (seeded by prompt id), as in the paper; `both_orders` asks both orders instead
and counts disagreement as a tie. Ties count half a win; unparseable verdicts are counted as invalid
and left out, never guessed. The interval is a percentile bootstrap over items.

References come from a prompts file with a `reference` field, or from a preferences artifact (its
chosen responses; the DPO paper's Anthropic-HH setting). The judge shares prefkit.judge's client:
bounded concurrency, retries with backoff, and the persistent cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefkit_evals.sampling import EvalGeneration, sample_prompts

from prefkit.errors import ConfigError, InputError
from prefkit.evaluation.stage import EvalSubject
from prefkit.ingest import read_prompts
from prefkit.judge.client import JudgeSettings
from prefkit.judge.pairwise import PairwiseJudging, judge_answer_sets
from prefkit.judge.templates import load_template
from prefkit.records import PromptRecord


@dataclass(frozen=True)
class ReferenceItem:
    """One prompt and the reference answer the subject's answer is judged against."""

    prompt_id: str
    prompt: (
        str | list[dict[str, str]]
    )  # a prefkit.conversation.Prompt: the judge sees a conversation's history
    reference: str


class WinRateEvaluator:
    """Judge-based win rate against references, with a bootstrap confidence interval.

    Options: `references` (prompts file with `reference`, or a preferences artifact; required),
    `max_prompts`, generation (`max_new_tokens` 128, `temperature` 0.0, `batch_size` 8, `dtype`,
    `backend` auto, `engine` for any other `prefkit sample` setting),
    judge (`judge_model`, `judge_base_url`, `judge_api_key_env`, `judge_template` (built-in name or
    file; default dpo_helpfulness), `judge_concurrency`, `judge_timeout_s`, `judge_max_attempts`,
    `judge_cache_path`, `judge_options` for any other JudgeSettings field), `both_orders` (False),
    `seed` (order randomisation and bootstrap), `bootstrap_resamples` (1000), `confidence` (0.95).
    """

    name = "winrate"

    def __init__(
        self,
        references: str | None = None,
        max_prompts: int | None = None,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        batch_size: int = 8,
        dtype: str = "float32",
        backend: str = "auto",
        engine: dict[str, Any] | None = None,
        judge_model: str = "gpt-4",
        judge_base_url: str | None = None,
        judge_api_key_env: str = "OPENAI_API_KEY",
        judge_template: str | None = None,
        judge_concurrency: int = 8,
        judge_timeout_s: float = 60.0,
        judge_max_attempts: int = 6,
        judge_cache_path: str | None = None,
        judge_options: dict[str, Any] | None = None,
        both_orders: bool = False,
        seed: int = 0,
        bootstrap_resamples: int = 1000,
        confidence: float = 0.95,
    ) -> None:
        if not references:
            raise ConfigError(
                "winrate needs reference answers",
                field="references",
                hint="a prompts file with a 'reference' field, or a preferences artifact (chosen = reference)",
            )
        if not 0 < confidence < 1:
            raise ConfigError(f"must be in (0, 1), got {confidence}", field="confidence")
        self.references = references
        self.max_prompts = max_prompts
        self.generation = EvalGeneration(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            batch_size=batch_size,
            dtype=dtype,
            backend=backend,
            engine=engine,
        )
        self.progress = True  # set by prefkit.evaluation.stage (False for --quiet)
        settings = JudgeSettings.from_options(
            {
                "model": judge_model,
                "base_url": judge_base_url,
                "api_key_env": judge_api_key_env,
                "max_concurrency": judge_concurrency,
                "timeout_s": judge_timeout_s,
                "max_attempts": judge_max_attempts,
                "cache_path": judge_cache_path,
                **(judge_options or {}),
            }
        )
        self.judging = PairwiseJudging(
            settings=settings,
            template=load_template(judge_template, "pairwise"),
            both_orders=both_orders,
            seed=seed,
            bootstrap_resamples=bootstrap_resamples,
            confidence=confidence,
        )

    def evaluate(self, subject: EvalSubject, work_dir: Path) -> dict[str, Any]:
        """Generate the subject's answers, judge them against the references, and summarise."""
        items = load_references(self.references)[: self.max_prompts]
        outputs = self.answer(subject.model, [PromptRecord(item.prompt_id, item.prompt) for item in items])
        return self.judge_outputs(items, outputs, Path(work_dir))

    def answer(self, model: str, prompts: list[PromptRecord]) -> list[str]:
        """One answer per prompt from `model` with this evaluator's generation settings."""
        config = self.generation.sample_config(model)
        sampled = sample_prompts(prompts, config, progress=self.progress, description="answering")
        return [group[0] for group in sampled.texts]

    def judge_outputs(self, items: list[ReferenceItem], outputs: list[str], work_dir: Path) -> dict[str, Any]:
        """Judge given outputs against the references (split out so outputs from anywhere can be judged).

        `items` need `prompt_id`, `prompt` and `reference` attributes (a ReferenceItem or a PromptRecord).
        """
        return judge_answer_sets(self.judging, items, outputs, Path(work_dir), progress=self.progress)

    def answer_settings(self) -> dict[str, Any]:
        """What `answer` depends on besides the model (round win rates key their stored answers by it)."""
        generation = self.generation
        # the options that set generation, in the layout stored answers have always been named by, so
        # that a resumed run finds the answers it stored before
        named_by = ("max_new_tokens", "temperature", "batch_size", "backend", "engine")
        return {
            "generation": {name: getattr(generation, name) for name in named_by},
            "dtype": generation.dtype,
            "seed": generation.seed,
        }


def load_references(source: str | Path) -> list[ReferenceItem]:
    """(prompt id, prompt, reference) from a prompts file with references, or a preferences artifact."""
    path = Path(source)
    if path.is_dir() and (path / "manifest.json").exists():
        from prefkit.artifacts import open_artifact
        from prefkit.conversation import completion_text

        artifact = open_artifact(path, "preferences")
        table = artifact.table().unique("prompt_id", keep="first", maintain_order=True)
        return [
            # a conversational pair's chosen side is one assistant turn: its text is the reference
            ReferenceItem(str(r["prompt_id"]), r["prompt"], completion_text(r["chosen"]))
            for r in table.iter_rows(named=True)
        ]
    records = read_prompts(path)
    missing = [index for index, record in enumerate(records, start=1) if not record.reference]
    if missing:
        raise InputError("has no reference answer", file=path, row=missing[0], field="reference")
    return [ReferenceItem(r.prompt_id, r.prompt, r.reference or "") for r in records]
