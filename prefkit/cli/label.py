"""`prefkit label`: score a candidates artifact and write preference pairs."""

from __future__ import annotations

from pathlib import Path

import typer

from prefkit.errors import validated_config
from prefkit.labeling.pairing import DEFAULT_TRUNCATION


def label_config(labeler: str, labeler_options: str | None, **values):
    """A LabelConfig from command-line values (labeler options as a JSON string); errors name the field."""
    from prefkit.labeling.stage import LabelConfig, parse_labeler_options

    options = parse_labeler_options(labeler_options)
    return validated_config(LabelConfig, dict(labeler=labeler, labeler_options=options, **values))


def register(app: typer.Typer) -> None:
    @app.command("label")
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
        labeler: str = typer.Option(
            "vader",
            help="Labeler plugin: vader (offline sentiment), sentiment (HF classifier), "
            "reward-model (HF sequence classifier), judge (OpenAI-compatible LLM judge); see `prefkit plugins`.",
        ),
        labeler_options: str = typer.Option(
            None,
            "--labeler-options",
            help='Labeler options as a JSON object, e.g. \'{"model": "path/to/rm"}\' or '
            '\'{"base_url": "http://localhost:8000/v1", "model": "judge", "mode": "pairwise"}\'. '
            "API keys are never given here: the judge reads the environment variable named by api_key_env.",
        ),
        pairing: str = typer.Option(
            "best-vs-worst",
            help="How pairs are formed per prompt: best-vs-worst (highest vs lowest adjusted score), "
            "all-pairs (every pair of candidates), random-pair (one seeded random pair).",
        ),
        min_margin: float = typer.Option(
            0.0,
            help="Keep a pair only if chosen beats rejected by at least this much (adjusted score); ties always dropped.",
        ),
        length_penalty: float = typer.Option(
            0.0,
            "--length-penalty",
            help="Rank candidates by score - lambda * length (0 = no length control).",
        ),
        length_unit: str = typer.Option(
            "tokens", help="Unit of length: tokens (from completion_tokens) or chars."
        ),
        truncated: str = typer.Option(
            DEFAULT_TRUNCATION,
            help="Completions cut at max_new_tokens: drop (never pair them), no-eos (pair them, train without "
            "an EOS after the cut) or keep (pair them, train with an EOS appended, as TRL does).",
        ),
        seed: int = typer.Option(0, help="Seed for random-pair draws (each prompt id gets its own stream)."),
        shard_size: int = typer.Option(256, help="Rows per shard: the unit of streaming and of resume."),
        license: str = typer.Option(
            "unknown", help="Licence written to the data card (inherit it from prompts and model)."
        ),
        force: bool = typer.Option(
            False, "--force", help="Replace an existing artifact at --out instead of refusing."
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Score candidates with a labeler and write (prompt, chosen, rejected) pairs, a data card and histograms.

        Rerunning with the same inputs and options skips; an interrupted run resumes from its last shard.
        """

        from prefkit.labeling.stage import label

        config = label_config(
            labeler,
            labeler_options,
            pairing=pairing,
            min_margin=min_margin,
            length_penalty=length_penalty,
            length_unit=length_unit,
            truncated=truncated,
            seed=seed,
            shard_size=shard_size,
            license=license,
        )
        if columns:
            from prefkit.ingest.candidates import resolve_candidates

            candidates = str(resolve_candidates(candidates, columns=columns).path)
        artifact = label(candidates, out, config, force=force, progress=progress)
        counts = artifact.manifest.counts
        dropped = ", ".join(f"{k} {v}" for k, v in counts.get("dropped", {}).items()) or "none"
        typer.echo(
            f"{artifact.path}: {counts.get('pairs', 0)} pairs from {counts.get('prompts', 0)} prompts (dropped: {dropped})"
        )
