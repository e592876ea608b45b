"""`prefkit label`: score a candidates artifact and write preference pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit.cli.options import config_command
from prefkit.errors import validated_config
from prefkit.labeling.config import LabelConfig


def register(app: typer.Typer) -> None:
    @app.command("label")
    @config_command(LabelConfig, section="label", set_example="length_penalty=0.01")
    def label_command(
        candidates: str = typer.Argument(
            ...,
            help="A candidates artifact folder (written by `prefkit sample`), or a JSONL/JSON/Parquet file or "
            "`datasets` folder whose rows hold 'prompt' and 'completions' (a list of strings).",
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the preferences artifact."),
        columns: str = typer.Option(
            None, help="Rename a candidates file's columns first, e.g. prompt=question,completions=responses."
        ),
        force: bool = typer.Option(
            False, "--force", help="Replace an existing artifact at --out instead of refusing."
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        *,
        values: dict[str, Any],
        config_file: Path | None,
    ) -> None:
        """Score candidates with a labeler and write (prompt, chosen, rejected) pairs, a data card and histograms.

        Rerunning with the same inputs and options skips; an interrupted run resumes from its last shard.
        """
        from prefkit.labeling.stage import label

        config = validated_config(LabelConfig, values, file=config_file)
        if columns:
            from prefkit.ingest.candidates import resolve_candidates

            candidates = str(resolve_candidates(candidates, columns=columns).path)
        artifact = label(candidates, out, config, force=force, progress=progress)
        counts = artifact.manifest.counts
        dropped = ", ".join(f"{k} {v}" for k, v in counts.get("dropped", {}).items()) or "none"
        typer.echo(
            f"{artifact.path}: {counts.get('pairs', 0)} pairs from {counts.get('prompts', 0)} prompts (dropped: {dropped})"
        )
