"""`prefkit train`: preference pairs (an artifact or any data set) -> a checkpoint artifact (or one per beta), by a trainer plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit.cli.options import config_command
from prefkit.config import parse_overrides
from prefkit.errors import validated_config
from prefkit.training.stage import TrainConfig

FLAG_NAMES = {"learning_rate": ("--learning-rate", "--lr"), "use_chat_template": ("--chat-template",)}


def register(app: typer.Typer) -> None:
    @app.command("train")
    @config_command(
        TrainConfig, section="train", exclude=("options",), names=FLAG_NAMES, set_example="beta=0.2"
    )
    def train_command(
        preferences: str = typer.Argument(
            ...,
            help="Preference pairs: an artifact folder from `prefkit label`, a JSONL/JSON/CSV/Parquet file, "
            "a `datasets` save_to_disk folder or a hub dataset id (org/name); formats in docs/formats.md.",
        ),
        columns: str = typer.Option(
            None, help="Rename columns first, e.g. prompt=question,chosen=response_j,rejected=response_k."
        ),
        split: str = typer.Option(None, help="Split of a hub id or DatasetDict folder (default: train)."),
        subset: str = typer.Option(None, help="Subset (config name) of a hub dataset."),
        revision: str = typer.Option(None, help="Revision (branch, tag or commit) of a hub dataset."),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Checkpoint folder to write (one sub-folder per beta)."
        ),
        # trainer plugin options (DPOOptions), kept as flags of their own for earlier command lines
        label_smoothing: float | None = typer.Option(
            None,
            help="Conservative DPO: assumed fraction of flipped labels (= --trainer-option label_smoothing=X).",
        ),
        alpha: float | None = typer.Option(
            None, help="R-DPO weight of the length difference (tokens), loss rdpo (a dpo option)."
        ),
        gamma: float | None = typer.Option(
            None, help="SimPO target reward margin, loss simpo (a dpo option)."
        ),
        gradient_checkpointing: bool | None = typer.Option(
            None,
            "--gradient-checkpointing/--no-gradient-checkpointing",
            help="Recompute activations to save memory (= --activation-checkpointing full / off).",
        ),
        activation_checkpointing: str | None = typer.Option(
            None,
            help="dpo: off, full, every_K (every K-th decoder layer) or auto (on when a memory estimate of "
            "the model and batch does not fit the device).",
        ),
        lora: bool | None = typer.Option(
            None, "--lora/--no-lora", help="Train LoRA adapters (peft) and merge them into the saved model."
        ),
        lora_r: int | None = typer.Option(None, help="LoRA rank (default 16)."),
        lora_alpha: int | None = typer.Option(None, help="LoRA alpha (default 32)."),
        shared_prefix: bool | None = typer.Option(
            None,
            "--shared-prefix/--no-shared-prefix",
            help="dpo: run each prompt once for both completions (the default layout; "
            "--trainer-option layout=padding_free packs a micro-batch into one row).",
        ),
        trainer_option: list[str] = typer.Option(
            [],
            "--trainer-option",
            help="KEY=VALUE option of the trainer plugin, repeatable (docs/trainers.md lists each plugin's).",
        ),
        force: bool = typer.Option(
            False, "--force", help="Replace an existing output with other inputs/config."
        ),
        progress: bool = typer.Option(True, help="Show a progress bar."),
        *,
        values: dict[str, Any],
        config_file: Path | None,
    ) -> None:
        """Train a policy on preference pairs with DPO (or a variant) and write a checkpoint artifact.

        Rerunning the same command skips a finished run and resumes an interrupted one. Runs unchanged under
        `accelerate launch` (see examples/accelerate/). Metrics go to OUT/metrics.jsonl and OUT/tensorboard/.
        """
        from prefkit.training.stage import train

        plugin_flags = dict(
            label_smoothing=label_smoothing,
            alpha=alpha,
            gamma=gamma,
            gradient_checkpointing=gradient_checkpointing,
            lora=lora,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            shared_prefix=shared_prefix,
        )
        values = values | {key: value for key, value in plugin_flags.items() if value is not None}
        options = parse_overrides(trainer_option, flag="--trainer-option", typed=False)
        if activation_checkpointing is not None:  # a dpo option only: not a former TrainConfig field
            options = {"activation_checkpointing": activation_checkpointing, **options}
        if options:
            values["options"] = {**(values.get("options") or {}), **options}
        config = validated_config(TrainConfig, values, file=config_file)
        artifact = train(
            preferences,
            out,
            config,
            force=force,
            progress=progress,
            columns=columns,
            split=split,
            subset=subset,
            revision=revision,
        )
        typer.echo(f"wrote {artifact.manifest.stage} artifact: {artifact.path}")
        degenerate = artifact.manifest.extra.get("degenerate") or artifact.manifest.extra.get(
            "degenerate_betas"
        )
        if degenerate:
            typer.secho(f"warning: degenerate run(s): {degenerate}", fg="yellow", err=True)
        if (artifact.path / "sweep.md").exists():
            typer.echo((artifact.path / "sweep.md").read_text())
