"""`prefkit train`: preference pairs (an artifact or any data set) -> a checkpoint artifact (or one per beta), by a trainer plugin."""

from __future__ import annotations

from pathlib import Path

import typer

from prefkit.config import parse_overrides
from prefkit.errors import validated_config


def _config_from_options(**options) -> object:
    from prefkit.training.stage import TrainConfig

    return validated_config(TrainConfig, {key: value for key, value in options.items() if value is not None})


def register(app: typer.Typer) -> None:
    @app.command("train")
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
        policy: str = typer.Option("smollm2", help="Model to train: a Hugging Face folder, or 'smollm2'."),
        trainer: str = typer.Option("dpo", help="Trainer plugin (`prefkit plugins` lists them): dpo or trl."),
        reference: str = typer.Option(
            "policy",
            help="Reference policy: 'policy' (the initial policy), 'none' (reference-free), or a model folder "
            "sharing the policy's tokenizer (a 'stronger reference').",
        ),
        loss: str = typer.Option(
            "sigmoid",
            help="A loss name (sigmoid, ipo, hinge, rdpo, simpo, sft, and every TRL loss_type: exo_pair, nca_pair, "
            "robust, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sigmoid_norm) or a "
            "weighted mix such as sigmoid:1,sft:0.2 (docs/trainers.md).",
        ),
        beta: str = typer.Option(
            "0.1",
            help="KL strength; a comma-separated list (0.01,0.05,0.1) runs a sweep, one checkpoint each.",
        ),
        learning_rate: float = typer.Option(
            5e-5, "--learning-rate", "--lr", help="Peak AdamW learning rate."
        ),
        epochs: int = typer.Option(2, help="Passes over the training pairs."),
        batch_size: int = typer.Option(4, help="Pairs per micro-batch and process."),
        grad_accum: int = typer.Option(1, help="Micro-batches per optimizer step."),
        max_length: int = typer.Option(
            512, help="Max tokens of prompt + completion (prompt cut from the left)."
        ),
        warmup_ratio: float = typer.Option(0.1, help="Fraction of steps with linear learning-rate warmup."),
        scheduler: str = typer.Option("cosine", help="Decay after warmup: cosine, linear or constant."),
        weight_decay: float = typer.Option(0.0, help="AdamW weight decay."),
        max_grad_norm: float = typer.Option(1.0, help="Gradient clipping norm."),
        seed: int = typer.Option(
            0, help="Seed for data order, initialisation of adapters and the eval split."
        ),
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
        dtype: str = typer.Option("auto", help="auto (fp32 on CPU, bf16 autocast on GPU), fp32 or bf16."),
        gradient_checkpointing: bool | None = typer.Option(
            None,
            "--gradient-checkpointing/--no-gradient-checkpointing",
            help="Recompute activations to save memory.",
        ),
        lora: bool | None = typer.Option(
            None, "--lora/--no-lora", help="Train LoRA adapters (peft) and merge them into the saved model."
        ),
        lora_r: int | None = typer.Option(None, help="LoRA rank (default 16)."),
        lora_alpha: int | None = typer.Option(None, help="LoRA alpha (default 32)."),
        eval_fraction: float = typer.Option(0.0, help="Fraction of prompts held out for DPO eval metrics."),
        save_every_steps: int = typer.Option(50, help="Save resumable state every N steps (0 = never)."),
        chat_template: bool | None = typer.Option(
            None,
            "--chat-template/--no-chat-template",
            help="Default: as recorded by the preferences artifact.",
        ),
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
    ) -> None:
        """Train a policy on preference pairs with DPO (or a variant) and write a checkpoint artifact.

        Rerunning the same command skips a finished run and resumes an interrupted one. Runs unchanged under
        `accelerate launch` (see examples/accelerate/). Metrics go to OUT/metrics.jsonl and OUT/tensorboard/.
        """
        from prefkit.training.stage import train

        config = _config_from_options(
            trainer=trainer,
            policy=policy,
            reference=reference,
            loss=loss,
            beta=beta,
            learning_rate=learning_rate,
            epochs=epochs,
            batch_size=batch_size,
            grad_accum=grad_accum,
            max_length=max_length,
            warmup_ratio=warmup_ratio,
            scheduler=scheduler,
            weight_decay=weight_decay,
            max_grad_norm=max_grad_norm,
            seed=seed,
            label_smoothing=label_smoothing,
            alpha=alpha,
            gamma=gamma,
            dtype=dtype,
            gradient_checkpointing=gradient_checkpointing,
            lora=lora,
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            eval_fraction=eval_fraction,
            save_every_steps=save_every_steps,
            use_chat_template=chat_template,
            shared_prefix=shared_prefix,
            options=parse_overrides(trainer_option, flag="--trainer-option", typed=False) or None,
        )
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
