"""`prefkit sample`: k completions per prompt into a 'candidates' artifact (a shell over `sampling.stage.sample`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from prefkit.cli.options import config_command
from prefkit.sampling.options import SampleConfig

FLAG_NAMES = {"n": ("--n", "-n"), "use_chat_template": ("--chat-template",)}


def register(app: typer.Typer) -> None:
    @app.command("sample")
    @config_command(
        SampleConfig, section="sample", names=FLAG_NAMES, defaults={"model": "smollm2"}, set_example="n=8"
    )
    def sample_command(
        prompts: str = typer.Argument(
            ...,
            help="Prompts file: JSONL/JSON/Parquet rows with 'prompt' (a string or a list of chat messages) or "
            "'messages' (+ optional 'prompt_id', 'reference'), or builtin:NAME for a shipped set "
            "(sentiment_train, sentiment_heldout, chatterbot_qa, chatterbot_multiturn, "
            "chatterbot_multiturn_heldout).",
        ),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Artifact folder to write (rerun the same command to resume)."
        ),
        columns: str | None = typer.Option(
            None,
            help="Rename columns first, e.g. prompt=question. PROMPTS may also be a CSV file, a `datasets` "
            "folder or a hub dataset id (docs/formats.md).",
        ),
        split: str | None = typer.Option(
            None, help="Split of a hub id or DatasetDict folder (default: train)."
        ),
        subset: str | None = typer.Option(None, help="Subset (config name) of a hub dataset."),
        revision: str | None = typer.Option(None, help="Revision of a hub dataset."),
        force: bool = typer.Option(False, "--force", help="Replace an existing artifact in --out."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
        *,
        values: dict[str, Any],
        config_file: Path | None,
    ) -> None:
        """Sample k completions per prompt with vLLM or transformers and write a 'candidates' artifact."""
        from prefkit.errors import validated_config
        from prefkit.sampling.stage import sample

        config = validated_config(SampleConfig, values, file=config_file)
        if columns or split or subset or revision:
            from prefkit.ingest.prompts import materialise_prompts
            from prefkit.ingest.sources import SourceOptions

            options = SourceOptions(split=split, subset=subset, revision=revision)
            prompts = str(materialise_prompts(prompts, columns=columns, options=options))
        artifact = sample(prompts, out, config, force=force, progress=not quiet)
        counts = artifact.manifest.counts
        Console(stderr=True).print(
            f"wrote {artifact.path}: {counts.get('prompts')} prompts x {config.n} completions, "
            f"{counts.get('completion_tokens')} tokens"
        )
