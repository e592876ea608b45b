"""`prefkit iterate`: rounds of sample -> label (with a length penalty) -> train -> eval (iLR-DPO).

Round k samples from round k-1's checkpoint (round 1 from the initial policy); the reference is either
the initial policy (`reference = "initial"`) or the previous round's policy (`"previous"`). Each round
is a folder of artifacts with a lineage file; a killed run resumes at the first unfinished stage, and
the run folder records its config so a changed config is refused instead of silently mixing runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from prefkit.artifacts import atomic_write_text, content_hash, read_manifest
from prefkit.config import apply_overrides, load_config_file
from prefkit.errors import ConfigError, validated_config
from prefkit.ingest import read_prompts, resolve_prompts
from prefkit.iteration.length_control import LossLengthControl
from prefkit.iteration.winrates import build_judge, judged_with, round_winrates
from prefkit.progress import say
from prefkit.sampling.engine_reuse import keep_engine
from prefkit.validation import STRICT_CONFIG

RUN_CONFIG_FILE = "iterate.json"
# fields that do not change what a finished round trained on: more rounds, other evaluations
EXTENSIBLE_FIELDS = {
    "rounds",
    "evaluators",
    "eval_options",
    "heldout_prompts",
    "round_winrate",
    "labeler_check",
    "length_diagnostics",
}


class IterateConfig(BaseModel):
    """One iterative DPO run. Stage sections take the fields of SampleConfig, LabelConfig, TrainConfig."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused

    name: str = Field("iterate", description="Run name (report titles, legends).")
    policy: str = Field(
        "smollm2", description="Initial policy: 'smollm2' (embedded), a model folder or a hub id."
    )
    prompts: str = Field("builtin:sentiment_train", description="Training prompts (file or builtin:NAME).")
    heldout_prompts: str | None = Field(
        "builtin:sentiment_heldout",
        description="Prompts the evaluators see after each round (none: no eval).",
    )
    rounds: int = Field(3, ge=1, description="Number of rounds; raise it to extend a finished run.")
    reference: Literal["initial", "previous"] = Field(
        "initial", description="DPO reference of each round: the initial policy or the previous round's."
    )
    length_penalty_mode: Literal["fixed", "length-neutral"] = Field(
        "fixed",
        description="fixed: label.length_penalty in every round; length-neutral: each round picks, from "
        "length_penalty_grid, the λ whose pairs have a mean chosen-minus-rejected length gap closest to zero "
        "on that round's candidates (the `prefkit length-penalty-sweep` rule; the labeler scores once).",
    )
    length_penalty_grid: list[float] = Field(
        default_factory=lambda: [round(0.00025 * step, 5) for step in range(81)],
        description="λ values length-neutral mode chooses from (default 0 to 0.02 in steps of 0.00025; "
        "re-pairing is cheap).",
    )
    loss_length_control: LossLengthControl | None = Field(
        None,
        description="Length control in the DPO loss ([loss_length_control] method, rule, value): R-DPO α, "
        "a length-normalised loss or LD-DPO, fixed or re-chosen each round from its pairs; combinable "
        "with length_penalty_mode (docs/trainers.md, 'Length control in the loss').",
    )
    length_diagnostics: int = Field(
        16,
        ge=0,
        description="Why length moves: after each round, score this many of the reference's held-out answers "
        "and of the round's pairs under policy and reference (stop-token and per-token log-prob changes, "
        "docs/trainers.md); 0 = off.",
    )
    seed: int = Field(0, description="Base seed: round k samples and labels with seed + k, trains with seed.")
    sample: dict[str, Any] = Field(
        default_factory=dict, description="Fields of `prefkit sample` (SampleConfig)."
    )
    label: dict[str, Any] = Field(
        default_factory=dict, description="Fields of `prefkit label` (LabelConfig)."
    )
    train: dict[str, Any] = Field(
        default_factory=dict, description="Fields of `prefkit train` (TrainConfig)."
    )
    evaluators: list[str] = Field(
        default_factory=lambda: ["reward-kl"], description="Evaluator plugins run after each round."
    )
    eval_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per evaluator ([eval_options.NAME])."
    )
    round_winrate: dict[str, Any] | None = Field(
        None,
        description="Options of the winrate evaluator (judge_model, judge_base_url, ...): when set, each "
        "round's held-out answers are judged against the previous round's and the initial policy's.",
    )
    labeler_check: dict[str, Any] | None = Field(
        None,
        description="{reference, min_agreement, on_fail, max_pairs}: validate the labeler against reference "
        "preferences before round 1 (`prefkit validate-labeler`), then stop or warn.",
    )


def load_iterate_config(path: str | Path, overrides: dict[str, Any] | None = None) -> IterateConfig:
    """Read a TOML or YAML config (errors name the file and field) and apply `section.key` overrides."""
    data = apply_overrides(load_config_file(path), overrides or {}, file=path)
    return validated_config(IterateConfig, data, file=path)


def stage_configs(config: IterateConfig, policy: str, reference: str, round_index: int):
    """Build the typed stage configs of one round (typos and wrong types fail here, before any work)."""
    from prefkit.labeling.stage import LabelConfig
    from prefkit.sampling.stage import SampleConfig
    from prefkit.training.stage import TrainConfig

    def build(section: str, model_class, **fixed):
        return validated_config(model_class, {**getattr(config, section), **fixed}, field_prefix=section)

    sample = build("sample", SampleConfig, model=policy, seed=config.seed + round_index)
    label = build("label", LabelConfig, seed=config.seed + round_index)
    train = build("train", TrainConfig, policy=policy, reference=reference, seed=config.seed)
    return sample, label, train


def check_before_start(config: IterateConfig, initial: str) -> None:
    """Everything a run needs, checked before RUN/iterate.json or any round folder is written: the stage
    sections, the labeler, trainer and evaluator plugins with their options, and the prompt files."""
    from prefkit.evaluation.stage import check_evaluator
    from prefkit.labeling.registry import check_labeler
    from prefkit.plugins import construct_plugin
    from prefkit.training.stage import trainer_options

    _, label_config, train_config = stage_configs(config, initial, "policy", 1)
    check_labeler(label_config.labeler, label_config.labeler_options)
    trainer = construct_plugin("trainers", train_config.trainer, train_config.options)
    check = getattr(trainer, "check_config", None)
    if callable(check):
        check(train_config)
    trainer_options(trainer, train_config)  # `[train.options]`, by the plugin's own options model
    if config.loss_length_control is not None:
        check_loss_length_control(config, train_config)
    for name in config.evaluators:
        # reward-kl gets its reference and prompts from the run (see evaluate_rounds)
        options = dict(config.eval_options.get(name, {}))
        if name == "reward-kl":
            options.setdefault("reference", initial)
        check_evaluator(name, options)
    for prompts in (config.prompts, config.heldout_prompts):
        if prompts:
            read_prompts(resolve_prompts(prompts))


def check_run_config(run_dir: Path, config: IterateConfig) -> None:
    """Refuse a run folder started with another config (rounds may grow, evaluation may change)."""
    stored_path = run_dir / RUN_CONFIG_FILE
    current = config.model_dump(mode="json")
    if stored_path.exists():
        stored = json.loads(stored_path.read_text())
        changed = sorted(key for key in set(stored) | set(current) if stored.get(key) != current.get(key))
        blocking = [key for key in changed if key not in EXTENSIBLE_FIELDS]
        if blocking:
            raise ConfigError(
                f"this run was started with a different config (changed: {', '.join(blocking)})",
                file=stored_path,
                hint="use another run folder, or pass --new-run to start a fresh one next to it",
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stored_path, json.dumps(current, indent=2))


def next_free_run_dir(run_dir: Path) -> Path:
    """`run`, `run-2`, `run-3`, ...: the first that does not exist yet."""
    if not run_dir.exists():
        return run_dir
    index = 2
    while (run_dir.parent / f"{run_dir.name}-{index}").exists():
        index += 1
    return run_dir.parent / f"{run_dir.name}-{index}"


def round_dir(run_dir: Path, round_index: int) -> Path:
    return run_dir / f"round-{round_index:02d}"


def run_round(config: IterateConfig, run_dir: Path, round_index: int, initial: str, progress: bool) -> Path:
    """Sample, label and train one round (each stage skipped when already finished); return the checkpoint."""
    from prefkit.labeling.stage import label
    from prefkit.sampling.stage import sample
    from prefkit.training.stage import train

    folder = round_dir(run_dir, round_index)
    policy = initial if round_index == 1 else str(round_dir(run_dir, round_index - 1) / "checkpoint")
    reference_model = policy if config.reference == "previous" else initial
    train_reference = "policy" if reference_model == policy else reference_model
    sample_config, label_config, train_config = stage_configs(config, policy, train_reference, round_index)
    candidates = sample(
        resolve_prompts(config.prompts), folder / "candidates", sample_config, progress=progress
    )
    sweep = None
    if config.length_penalty_mode == "length-neutral":
        label_config, sweep = length_neutral_label_config(
            candidates.path, label_config, config.length_penalty_grid
        )
    preferences = label(candidates.path, folder / "preferences", label_config, progress=progress)
    loss_setting = None
    if config.loss_length_control is not None:
        history = length_history(config.loss_length_control, run_dir, round_index)
        train_config, loss_setting = loss_length_train_config(
            config.loss_length_control, preferences.path, train_config, history
        )
    checkpoint = train(preferences.path, folder / "checkpoint", train_config, progress=progress)
    lineage = {
        "round": round_index,
        "policy": policy,
        "reference": reference_model,
        "previous_round": str(round_dir(run_dir, round_index - 1)) if round_index > 1 else None,
        "artifacts": {
            name: {"path": str(artifact.path), "content_hash": content_hash(artifact.path)}
            for name, artifact in (
                ("candidates", candidates),
                ("preferences", preferences),
                ("checkpoint", checkpoint),
            )
        },
        "pair_counts": preferences.manifest.counts,
        "length_penalty": label_config.length_penalty,
        "length_penalty_sweep": sweep,
        "loss_length_control": loss_setting,
    }
    atomic_write_text(folder / "lineage.json", json.dumps(lineage, indent=2, default=str))
    return checkpoint.path


def length_neutral_label_config(candidates: Path, label_config, grid: list[float]):
    """The round's label config with the grid's length-neutral lambda, and the sweep it came from."""
    from prefkit.labeling.length_penalty_sweep import length_neutral_penalty, length_penalty_sweep

    points = length_penalty_sweep(candidates, label_config, grid)
    chosen = length_neutral_penalty(points)
    if chosen is None:
        raise ConfigError("no lambda in the grid kept any pair", field="length_penalty_grid")
    sweep = [point.as_dict() for point in points]
    return label_config.model_copy(update={"length_penalty": chosen}), sweep


def check_loss_length_control(config: IterateConfig, train_config) -> None:
    """The loss length control sets the loss and its length option itself, and counts tokens."""
    field = "loss_length_control"
    if train_config.trainer != "dpo":
        raise ConfigError("needs the dpo trainer (train.trainer = 'dpo')", field=field)
    if "loss" in config.train:
        raise ConfigError("sets the loss itself; leave train.loss out", field=field)
    clashing = {"alpha", "ld_alpha"} & set(train_config.options)
    if clashing:
        raise ConfigError(f"sets {', '.join(sorted(clashing))} itself; leave it out of [train]", field=field)
    if isinstance(train_config.beta, list):
        raise ConfigError("takes one beta, not a sweep", field=field)
    if config.label.get("length_unit", "tokens") != "tokens":
        raise ConfigError("counts trained tokens; set label.length_unit = 'tokens'", field=field)


def mean_completion_tokens(candidates: Path) -> float:
    """Mean tokens per sampled completion of a candidates artifact (cut ones counted at the limit), from the
    counts `prefkit sample` records in its manifest."""
    counts = read_manifest(candidates).counts
    return counts["completion_tokens"] / counts["completions"]


def length_history(control: LossLengthControl, run_dir: Path, round_index: int):
    """What the length-target rule reads from earlier rounds: the previous round's α and the sampled length
    of round 1 and of this round (None for other rules and in round 1)."""
    from prefkit.iteration.length_control import LengthHistory

    if control.rule != "length-target" or round_index == 1:
        return None
    previous = round_dir(run_dir, round_index - 1) / "lineage.json"
    setting = json.loads(previous.read_text()).get("loss_length_control") or {}
    if "alpha" not in setting:
        raise ConfigError(
            "the previous round trained without an R-DPO alpha", field="loss_length_control", file=previous
        )
    return LengthHistory(
        previous_alpha=float(setting["alpha"]),
        length=mean_completion_tokens(round_dir(run_dir, round_index) / "candidates"),
        target_length=mean_completion_tokens(round_dir(run_dir, 1) / "candidates"),
    )


def loss_length_train_config(control: LossLengthControl, preferences: Path, train_config, history=None):
    """The round's train config with its loss length setting, and that setting as a dict (for lineage)."""
    import polars as pl

    from prefkit.iteration.length_control import PairLengths, round_setting

    frame = pl.read_parquet(preferences / "data.parquet")

    def flags(column: str) -> list[bool]:
        return frame[column].to_list() if column in frame.columns else [True] * frame.height

    pairs = PairLengths(
        frame["len_chosen"].to_list(),
        frame["len_rejected"].to_list(),
        flags("eos_chosen"),
        flags("eos_rejected"),
    )
    try:
        setting = round_setting(control, pairs, float(train_config.beta), history)
    except ValueError as error:
        raise ConfigError(str(error), field="loss_length_control", file=preferences) from None
    options = dict(train_config.options)
    if setting.alpha is not None:
        options["alpha"] = setting.alpha
    if setting.ld_alpha is not None:
        options["ld_alpha"] = setting.ld_alpha
    update = {"loss": setting.loss, "options": options}
    if setting.beta is not None:
        update["beta"] = setting.beta
    return train_config.model_copy(update=update), setting.as_dict()


def evaluate_rounds(config: IterateConfig, run_dir: Path, initial: str, finished_rounds: int, progress: bool):
    """Evaluate the initial policy and every finished round (cached per checkpoint by the evaluator)."""
    from prefkit.evaluation.stage import EvalConfig, evaluate

    subjects = [f"round-00={initial}"] + [
        f"round-{k:02d}={round_dir(run_dir, k) / 'checkpoint'}" for k in range(1, finished_rounds + 1)
    ]
    options = {name: dict(values) for name, values in config.eval_options.items()}
    if "reward-kl" in config.evaluators:
        reward_kl = options.setdefault("reward-kl", {})
        reward_kl.setdefault("reference", initial)
        reward_kl.setdefault("backend", config.sample.get("backend", "auto"))  # as the rounds sampled
        if config.heldout_prompts:
            reward_kl.setdefault("prompts", str(resolve_prompts(config.heldout_prompts)))
    return evaluate(
        subjects,
        run_dir / "eval",
        EvalConfig(evaluators=config.evaluators, options=options),
        progress=progress,
    )


def check_round_labeler(config: IterateConfig, run_dir: Path, progress: bool) -> None:
    """Validate the rounds' labeler against reference preferences once, before any round is built on it."""
    from prefkit.errors import validated_config
    from prefkit.evaluation.labeler_validation import LabelerCheck, check_labeler

    check = validated_config(LabelerCheck, config.labeler_check, field_prefix="labeler_check")
    labeler = config.label.get("labeler", "vader")
    options = dict(config.label.get("labeler_options") or {})
    check_labeler(check, labeler, options, run_dir / "labeler_check.json", progress=progress)


@keep_engine()  # one vLLM engine samples every round where it can (sampling option engine_reuse)
def iterate(
    config: IterateConfig, run_dir: str | Path, *, progress: bool = True, new_run: bool = False
) -> Path:
    """Run (or resume) all rounds; after each, evaluate and refresh the run report. Returns the run folder."""
    from prefkit.iteration.report import write_run_report
    from prefkit.models import resolve_model
    from prefkit.report import build_report

    run_dir = Path(run_dir)
    if new_run:
        run_dir = next_free_run_dir(run_dir)
    if config.round_winrate is not None:
        build_judge(config.round_winrate)  # option typos fail before any work
    initial = resolve_model(config.policy)
    check_before_start(config, initial)
    check_run_config(run_dir, config)
    if config.labeler_check is not None:
        check_round_labeler(config, run_dir, progress)
    for round_index in range(1, config.rounds + 1):
        say(progress, f"[iterate] round {round_index}/{config.rounds}: sample, label, train, evaluate")
        run_round(config, run_dir, round_index, initial, progress)
        report = (
            evaluate_rounds(config, run_dir, initial, round_index, progress) if config.evaluators else None
        )
        if config.round_winrate is not None:
            judge_rounds(config, run_dir, initial, round_index)
        if config.length_diagnostics:
            diagnose_rounds(config, run_dir, initial, round_index, progress)
        write_run_report(run_dir, config, report, round_index)
        build_report(run_dir, run_dir / "report.html")
    return run_dir


def diagnose_rounds(config: IterateConfig, run_dir: Path, initial: str, finished_rounds: int, progress: bool):
    """Length diagnostics of every finished round that has none yet (or had other options)."""
    from prefkit.iteration.length_diagnostics import (
        read_round_diagnostics,
        round_diagnostics,
        write_round_diagnostics,
    )

    heldout = (
        {record.prompt_id: record.prompt for record in read_prompts(resolve_prompts(config.heldout_prompts))}
        if config.heldout_prompts
        else {}
    )
    for round_index in range(1, finished_rounds + 1):
        # the reference's own held-out answers: those reward-kl sampled from the reference's round
        reference_round = round_index - 1 if config.reference == "previous" else 0
        samples = (
            run_dir
            / "eval"
            / "results"
            / f"round-{reference_round:02d}"
            / "reward-kl"
            / "reward_kl_samples.jsonl"
        )
        key = {"max_items": config.length_diagnostics, "samples": samples.exists()}
        if read_round_diagnostics(run_dir, round_index, key) is not None:
            continue
        say(progress, f"[iterate] round {round_index}: length diagnostics")
        folder = round_dir(run_dir, round_index)
        lineage = json.loads((folder / "lineage.json").read_text())
        values = round_diagnostics(
            str(folder / "checkpoint"),
            lineage["reference"],
            samples if samples.exists() else None,
            heldout,
            folder / "preferences",
            config.length_diagnostics,
        )
        write_round_diagnostics(run_dir, round_index, values, key)


def judge_rounds(config: IterateConfig, run_dir: Path, initial: str, finished_rounds: int) -> None:
    """Win rates of every finished round vs its previous round and vs round 0; a round already judged with
    the same options is skipped (answers and verdicts are cached too, so a rerun sends no request)."""
    models = {0: initial} | {
        k: str(round_dir(run_dir, k) / "checkpoint") for k in range(1, finished_rounds + 1)
    }
    prompts = config.heldout_prompts or config.prompts
    # held-out answers are generated with the rounds' sampling backend unless the section names one
    options = {"backend": config.sample.get("backend", "auto"), **(config.round_winrate or {})}
    for round_index in range(1, finished_rounds + 1):
        if not judged_with(run_dir, round_index, options, prompts):
            round_winrates(run_dir, round_index, models, prompts, options)
