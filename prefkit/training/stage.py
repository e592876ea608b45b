"""The training stage: a preferences artifact -> a checkpoint artifact (or one per beta), by a trainer plugin.

`train()` validates the input, resolves options shared by every trainer (chat template, evaluation split,
beta sweep), and hands each run to the plugin named by `config.trainer` (entry-point group
`prefkit.trainers`). A plugin writes a Hugging Face model folder and `metrics.jsonl` into the work folder
it is given; this module turns that folder into an artifact (manifest, card) and flags degenerate runs.

This module imports polars and the artifact helpers lazily so that `TrainConfig` and the plugin protocol
stay importable in lean environments (the GPU benchmark box has neither polars nor pydantic extras).
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator, model_validator

from prefkit.errors import ConfigError, InputError
from prefkit.validation import STRICT_CONFIG, check_no_nulls, reading

if TYPE_CHECKING:
    from prefkit.artifacts import Artifact, StageRun

SCHEDULERS = ("cosine", "linear", "constant")
DTYPES = ("auto", "fp32", "bf16")
STATE_FOLDER = ".train-state"
METRICS_FILE = "metrics.jsonl"
# run history, not the model: left out of a checkpoint's content hash (weights, config, tokenizer only)
NOT_MODEL_FILES = (METRICS_FILE, "tensorboard/", "timings.json", "training_args.bin")
# options that were TrainConfig fields before plugins declared their own; still accepted there
LEGACY_OPTIONS = frozenset(
    {
        "label_smoothing",
        "alpha",
        "gamma",
        "gradient_checkpointing",
        "lora",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "eval_every_steps",
        "shared_prefix",
    }
)
RUN_FACTS = ("memory/", "pairs_per_s", "tokens_per_s", "lr", "grad_norm")  # in metrics.jsonl, not the summary


class TrainConfig(BaseModel):
    """Options of `prefkit train`; every trainer plugin reads the ones it supports and rejects the rest."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused

    trainer: str = Field("dpo", description="Trainer plugin (`prefkit plugins` lists them): dpo or trl.")
    policy: str = Field("smollm2", description="Model to train: a Hugging Face folder, or 'smollm2'.")
    reference: str = Field(
        "policy",
        description="Reference policy: 'policy' (the initial policy), 'none' (reference-free), or a model "
        "folder sharing the policy's tokenizer (a 'stronger reference').",
    )
    loss: str = Field(  # the plugin checks the names
        "sigmoid",
        description="A loss name (sigmoid, ipo, hinge, rdpo, simpo, sft, and every TRL loss_type: exo_pair, "
        "nca_pair, robust, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, "
        "sigmoid_norm) or a weighted mix such as sigmoid:1,sft:0.2 (docs/trainers.md).",
    )
    beta: float | list[float] = Field(
        0.1,
        description="KL strength; a comma-separated list (0.01,0.05,0.1) runs a sweep, one checkpoint each.",
    )
    learning_rate: float = Field(5e-5, description="Peak AdamW learning rate.")
    epochs: int = Field(2, description="Passes over the training pairs.")
    batch_size: int = Field(4, description="Pairs per micro-batch and process.")
    grad_accum: int = Field(1, description="Micro-batches per optimizer step.")
    max_length: int = Field(512, description="Max tokens of prompt + completion (prompt cut from the left).")
    warmup_ratio: float = Field(0.1, description="Fraction of steps with linear learning-rate warmup.")
    scheduler: str = Field("cosine", description="Decay after warmup: cosine, linear or constant.")
    weight_decay: float = Field(0.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, description="Gradient clipping norm.")
    seed: int = Field(0, description="Seed for data order, initialisation of adapters and the eval split.")
    dtype: str = Field("auto", description="auto (fp32 on CPU, bf16 autocast on GPU), fp32 or bf16.")
    eval_fraction: float = Field(0.0, description="Fraction of prompts held out for DPO eval metrics.")
    save_every_steps: int = Field(50, description="Save resumable state every N steps (0 = never).")
    use_chat_template: bool | None = Field(
        None,
        description="Render prompts with the chat template. (default: as recorded by the preferences artifact)",
    )
    shuffle: bool = Field(True, description="Shuffle the training pairs each epoch.")
    collapse_threshold: float = Field(
        1.0, description="Nats/token drop of the chosen log-prob that marks a run degenerate."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the model folder.")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The trainer plugin's own options (`--trainer-option key=value`, `[train.options]`), "
        "validated by its `options_model` before anything runs.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_options(cls, values: Any) -> Any:
        """Fields that used to sit here (`--label-smoothing`, `[train] lora = true`) become plugin options."""
        if not isinstance(values, dict) or not LEGACY_OPTIONS & values.keys():
            return values
        values = dict(values)
        options = dict(values.get("options") or {})
        for key in LEGACY_OPTIONS & values.keys():
            value = values.pop(key)
            if key in options and options[key] != value:
                raise ValueError(f"{key} is given twice (as a field and in options) with different values")
            options[key] = value
        values["options"] = options
        return values

    @field_validator("beta", mode="before")
    @classmethod
    def _parse_beta(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            try:
                numbers = [float(part) for part in parts]
            except ValueError:
                raise ValueError(
                    f"beta must be a number or a comma-separated list of numbers, got '{value}'"
                ) from None
            return numbers[0] if len(numbers) == 1 else numbers
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        betas = self.betas()
        checks = [
            (bool(betas) and all(b > 0 and math.isfinite(b) for b in betas), "beta", "must be > 0"),
            (len(set(betas)) == len(betas), "beta", "lists a value twice"),
            (self.learning_rate > 0, "learning_rate", "must be > 0"),
            (self.epochs >= 1, "epochs", "must be >= 1"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.grad_accum >= 1, "grad_accum", "must be >= 1"),
            (self.max_length >= 8, "max_length", "must be >= 8"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (self.max_grad_norm > 0, "max_grad_norm", "must be > 0"),
            (self.scheduler in SCHEDULERS, "scheduler", f"must be one of {', '.join(SCHEDULERS)}"),
            (self.dtype in DTYPES, "dtype", f"must be one of {', '.join(DTYPES)}"),
            (0 <= self.eval_fraction < 1, "eval_fraction", "must be in [0, 1)"),
            (self.save_every_steps >= 0, "save_every_steps", "must be >= 0 (0 = never)"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ValueError(f"{name} {message}")
        return self

    def betas(self) -> list[float]:
        """The beta values to train with (one run each)."""
        return list(self.beta) if isinstance(self.beta, list) else [self.beta]


@dataclass
class TrainRequest:
    """One training run handed to a plugin (beta is a single value here, never a list)."""

    preferences: Artifact
    config: TrainConfig
    work_dir: Path  # write the HF model folder, tokenizer and metrics.jsonl here
    state_dir: Path  # resumable state (optimizer, scheduler, RNG, step); removed after success
    use_chat_template: bool | None
    train_indices: list[int]
    eval_indices: list[int]
    cache_dir: Path  # persistent caches (reference log-probs) live under here
    progress: bool = True
    options: Any = None  # config.options validated by the plugin's options_model


@dataclass
class TrainResult:
    """What a plugin reports back: the per-step history (as in metrics.jsonl) and run facts."""

    history: list[dict[str, Any]]
    steps: int
    stopped_because: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def loss_terms(text: str) -> list[tuple[str, float]]:
    """`--loss` as (name, weight) terms: 'sigmoid' -> [('sigmoid', 1.0)], 'sigmoid:1,sft:0.2' -> two terms.

    Weights must be finite and > 0 and a name may appear once; which names exist is the plugin's business."""
    terms: list[tuple[str, float]] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, _, weight_text = (piece.strip() for piece in part.partition(":"))
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise ValueError(f"loss weight of '{name}' must be a number, got '{weight_text}'") from None
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"loss weight of '{name}' must be > 0, got {weight_text}")
        if any(name == seen for seen, _ in terms):
            raise ValueError(f"loss '{name}' is listed twice")
        terms.append((name, weight))
    if not terms:
        raise ValueError("no loss named")
    return terms


def trainer_options(plugin: Any, config: TrainConfig) -> Any:
    """config.options validated by the plugin's options model, then its own check; a ConfigError naming the
    option otherwise (an option the plugin does not declare is refused, never ignored)."""
    from prefkit.plugins import check_options

    name = getattr(plugin, "name", config.trainer)
    options = check_options("trainers", name, plugin, config.options, "options")
    if getattr(plugin, "options_model", None) is None:
        return None
    check = getattr(plugin, "check", None)
    if check is not None:
        check(config, options)
    return options


def split_indices(prompt_ids: Sequence[str], eval_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train/eval row indices split by prompt (pairs of one prompt never land on both sides)."""
    if eval_fraction <= 0:
        return list(range(len(prompt_ids))), []
    unique = sorted(set(prompt_ids))
    random.Random(seed).shuffle(unique)
    held_out = set(unique[: max(1, round(eval_fraction * len(unique)))])
    if len(held_out) == len(unique):
        raise ConfigError("eval_fraction leaves no prompt to train on", field="eval_fraction")
    train_rows = [i for i, pid in enumerate(prompt_ids) if pid not in held_out]
    eval_rows = [i for i, pid in enumerate(prompt_ids) if pid in held_out]
    return train_rows, eval_rows


def find_degeneracy(
    history: list[dict[str, Any]], stopped_because: str | None, threshold: float
) -> str | None:
    """Why a run is degenerate (non-finite loss, chosen log-prob collapse), or None when it looks sane."""
    if stopped_because:
        return stopped_because
    if not history:
        return "no optimizer step was taken"
    key = "logps/chosen_mean"
    values = [r[key] for r in history if isinstance(r.get(key), int | float)]
    if len(values) >= 2:
        window = values[-max(1, len(values) // 4) :]
        start, end = values[0], sum(window) / len(window)
        if end - start < -threshold:
            return f"chosen log-prob collapsed from {start:.2f} to {end:.2f} nats/token"
    return None


class _Ranks:
    """Main-process checks and barriers that also work without torch.distributed (one process)."""

    def __init__(self) -> None:
        self.state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch
            from accelerate import PartialState

            # accelerate runs several CPU processes (gloo) only when told it is on CPU
            self.state = PartialState(cpu=not torch.cuda.is_available())

    @property
    def is_main(self) -> bool:
        return self.state is None or self.state.is_main_process

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def train(
    preferences: Any,
    out: str | Path,
    config: TrainConfig,
    *,
    force: bool = False,
    progress: bool = True,
    columns: str | dict[str, str] | None = None,
    split: str | None = None,
    subset: str | None = None,
    revision: str | None = None,
) -> Artifact:
    """Train on preference pairs; write a checkpoint artifact (one per beta + a table for a sweep).

    `preferences` is a preferences artifact, a JSONL/JSON/CSV/Parquet file, a `datasets` folder, a hub
    dataset id (`split`, `subset`, `revision` pick the part), a `datasets.Dataset` or a list of dicts;
    anything but an artifact is imported into one first (prefkit.ingest; `columns` renames columns).
    """
    from prefkit.artifacts import open_artifact
    from prefkit.ingest import SourceOptions, resolve_preferences
    from prefkit.plugins import construct_plugin

    # anything but a preferences artifact (a file, a `datasets` folder or object, a hub id) is imported first
    options = SourceOptions(split=split, subset=subset, revision=revision)
    preferences = resolve_preferences(preferences, columns=columns, options=options).path
    artifact = open_artifact(preferences, "preferences")
    with reading(artifact.data_path):
        table = artifact.table()
    if table.height == 0:
        raise InputError("holds no preference pairs", file=artifact.data_path)
    check_no_nulls(table, ("prompt", "chosen", "rejected"), artifact.data_path)
    plugin = construct_plugin("trainers", config.trainer, config.options)
    # options the plugin cannot use (an unknown loss, a policy without tokenizer) fail before any folder
    check = getattr(plugin, "check_config", None)
    if callable(check):
        check(config)
    trainer_options(plugin, config)  # bad options fail here, before any output exists
    train_rows, eval_rows = split_indices(table["prompt_id"].to_list(), config.eval_fraction, config.seed)
    use_chat_template = config.use_chat_template
    if use_chat_template is None:
        use_chat_template = artifact.manifest.extra.get("use_chat_template")
    shared = {
        "artifact": artifact,
        "plugin": plugin,
        "rows": (train_rows, eval_rows),
        "chat": use_chat_template,
    }
    betas = config.betas()
    if len(betas) == 1:
        return _train_one(Path(out), config.model_copy(update={"beta": betas[0]}), shared, force, progress)
    return _train_sweep(Path(out), config, shared, force, progress)


def _inputs(artifact: Artifact, config: TrainConfig) -> dict[str, Path]:
    from prefkit.models import resolve_model

    inputs: dict[str, Path] = {"preferences": artifact.path}
    for name, model in (("policy", config.policy), ("reference", config.reference)):
        if name == "reference" and model in ("policy", "none"):
            continue
        location = Path(resolve_model(model))
        if location.exists():
            inputs[name] = location
    return inputs


def _train_one(
    out: Path, config: TrainConfig, shared: dict[str, Any], force: bool, progress: bool
) -> Artifact:
    """One run (one beta) into `out`, skipped when `out` already holds it, resumed when interrupted."""
    from prefkit.artifacts import StageRun
    from prefkit.models import cache_home

    ranks = _Ranks()
    inputs = _inputs(shared["artifact"], config)
    with StageRun(out, "checkpoint", config.model_dump(mode="json"), inputs, force=force) as run:
        if run.already_done:
            return run.artifact()
        work_dir = _open_on_main(run, ranks)
        train_rows, eval_rows = shared["rows"]
        request = TrainRequest(
            preferences=shared["artifact"],
            config=config,
            work_dir=work_dir,
            state_dir=work_dir / STATE_FOLDER,
            use_chat_template=shared["chat"],
            train_indices=train_rows,
            eval_indices=eval_rows,
            cache_dir=cache_home(),
            progress=progress,
            options=trainer_options(shared["plugin"], config),
        )
        result = shared["plugin"].train(request)
        degenerate = find_degeneracy(result.history, result.stopped_because, config.collapse_threshold)
        if ranks.is_main:
            import shutil

            shutil.rmtree(request.state_dir, ignore_errors=True)
            final = result.history[-1] if result.history else {}
            summary = {
                k: v for k, v in final.items() if isinstance(v, int | float) and not k.startswith(RUN_FACTS)
            }
            counts = {
                "train_pairs": len(train_rows),
                "eval_pairs": len(eval_rows),
                "steps": result.steps,
                **result.counts,
            }
            extra = {"final_metrics": summary, "degenerate": degenerate, "beta": config.beta, **result.extra}
            run.set_result(
                counts=counts,
                card=checkpoint_card(config, counts, summary, degenerate),
                extra=extra,
                not_hashed=NOT_MODEL_FILES,
            )
    ranks.barrier()  # the main process has renamed the checkpoint into place
    return run.artifact()


def _open_on_main(run: StageRun, ranks: _Ranks) -> Path:
    """The work folder: the main process creates it while the others wait at the barriers."""
    ranks.barrier()
    work_dir = run.open() if ranks.is_main else run.work_dir
    ranks.barrier()
    return work_dir


SWEEP_COLUMNS = (
    "loss",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen_mean",
    "eval/loss",
    "eval/rewards/margins",
    "eval/rewards/accuracies",
)


def _train_sweep(
    out: Path, config: TrainConfig, shared: dict[str, Any], force: bool, progress: bool
) -> Artifact:
    """One checkpoint per beta under `out/beta-B/`, plus sweep.md / sweep.json / data.parquet tables."""
    import polars as pl

    from prefkit.artifacts import StageRun, atomic_write_text

    ranks = _Ranks()
    inputs = _inputs(shared["artifact"], config)
    with StageRun(out, "checkpoint-sweep", config.model_dump(mode="json"), inputs, force=force) as run:
        if run.already_done:
            return run.artifact()
        work_dir = _open_on_main(run, ranks)
        rows = []
        for beta in config.betas():
            name = f"beta-{beta:g}"
            # finished betas of an interrupted sweep are skipped; an interrupted one resumes
            checkpoint = _train_one(
                work_dir / name, config.model_copy(update={"beta": beta}), shared, False, progress
            )
            final = checkpoint.manifest.extra.get("final_metrics", {})
            row = {"beta": beta, "checkpoint": name, "steps": checkpoint.manifest.counts.get("steps")}
            row.update({column: final.get(column) for column in SWEEP_COLUMNS})
            row["degenerate"] = checkpoint.manifest.extra.get("degenerate")
            rows.append(row)
        if ranks.is_main:
            markdown = sweep_markdown(rows)
            atomic_write_text(work_dir / "sweep.md", markdown)
            atomic_write_text(work_dir / "sweep.json", json.dumps(rows, indent=2))
            run.write_data(pl.DataFrame(rows, infer_schema_length=None))
            degenerate = [row["beta"] for row in rows if row["degenerate"]]
            run.set_result(
                counts={"runs": len(rows), "degenerate_runs": len(degenerate)},
                card=f"# beta sweep\n\nOne checkpoint per beta in `beta-*/`.\n\n{markdown}",
                extra={
                    "checkpoints": {str(row["beta"]): row["checkpoint"] for row in rows},
                    "degenerate_betas": degenerate,
                },
            )
    ranks.barrier()
    return run.artifact()


def sweep_markdown(rows: list[dict[str, Any]]) -> str:
    """The sweep table as Markdown (degenerate runs say why)."""
    columns = ["beta", "steps", *SWEEP_COLUMNS, "degenerate"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            cells.append("" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def checkpoint_card(
    config: TrainConfig, counts: dict[str, Any], final: dict[str, Any], degenerate: str | None
) -> str:
    """A short README for the checkpoint folder."""
    lines = [
        f"# {config.trainer} checkpoint ({config.loss}, beta {config.beta})",
        "",
        f"Policy `{config.policy}` trained on {counts['train_pairs']} preference pairs "
        f"({counts['eval_pairs']} held out) for {counts['steps']} optimizer steps; reference: `{config.reference}`.",
        "",
        "Load it with `prefkit.models.load_causal_lm(path)` or `AutoModelForCausalLM.from_pretrained(path)`.",
        "Per-step metrics are in `metrics.jsonl` (and `tensorboard/` when TensorBoard is installed).",
        "",
    ]
    if degenerate:
        lines += [f"**Degenerate run:** {degenerate}.", ""]
    lines += ["| final metric | value |", "| --- | --- |"]
    lines += [
        f"| {key} | {value:.4g} |" for key, value in sorted(final.items()) if key not in ("step", "epoch")
    ]
    lines += ["", "Config:", "", "```json", json.dumps(config.model_dump(mode="json"), indent=2), "```", ""]
    return "\n".join(lines)
