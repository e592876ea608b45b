"""`prefkit length-penalty-sweep`: how each length penalty would pair a candidates artifact (choosing lambda)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from prefkit.errors import ConfigError
from prefkit.labeling.pairing import DEFAULT_TRUNCATION


def parse_length_penalties(text: str) -> list[float]:
    """'0,0.001,0.002' -> [0.0, 0.001, 0.002]; a bad entry is one clear error."""
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(f"'{item.strip()}' is not a number", field="--length-penalties") from None
        if not math.isfinite(value):
            raise ConfigError(f"must be finite numbers, got {item.strip()}", field="--length-penalties")
        if value < 0:
            raise ConfigError(f"must be >= 0, got {value}", field="--length-penalties")
        values.append(value)
    return values


def register(app: typer.Typer) -> None:
    @app.command("length-penalty-sweep")
    def length_penalty_sweep_command(
        candidates: Path = typer.Argument(..., help="A candidates artifact folder (from `prefkit sample`)."),
        length_penalties: str = typer.Option(
            "0,0.0005,0.001,0.002,0.003,0.005,0.01",
            "--length-penalties",
            help="Comma-separated lambdas to try (per --length-unit).",
        ),
        labeler: str = typer.Option("vader", help="Labeler plugin, as in `prefkit label`."),
        labeler_options: str = typer.Option(None, "--labeler-options", help="Labeler options as JSON."),
        pairing: str = typer.Option("best-vs-worst", help="Pairing strategy, as in `prefkit label`."),
        min_margin: float = typer.Option(0.0, help="Minimum adjusted-score margin, as in `prefkit label`."),
        length_unit: str = typer.Option("tokens", help="tokens or chars."),
        truncated: str = typer.Option(
            DEFAULT_TRUNCATION,
            help="drop, no-eos or keep, as in `prefkit label` (changes pairs and lengths).",
        ),
        seed: int = typer.Option(0, help="Seed for random-pair draws."),
        out: Path = typer.Option(None, "--out", "-o", help="Also write the sweep as JSON to this file."),
    ) -> None:
        """Score candidates once and show, per lambda, the pairs' mean length gap (chosen - rejected), the
        share with a longer chosen side and the score margin; names the length-neutral lambda."""

        from prefkit.artifacts import atomic_write_text
        from prefkit.cli.label import label_config
        from prefkit.labeling.length_penalty_sweep import (
            length_neutral_penalty,
            length_penalty_sweep,
            render_sweep,
        )

        if out is not None and out.is_dir():
            raise ConfigError("is a folder; give the JSON file to write", file=out, field="--out")
        if out is not None and not out.parent.is_dir():
            raise ConfigError("folder does not exist", file=out.parent, field="--out")
        config = label_config(
            labeler,
            labeler_options,
            pairing=pairing,
            min_margin=min_margin,
            length_unit=length_unit,
            truncated=truncated,
            seed=seed,
        )
        points = length_penalty_sweep(candidates, config, parse_length_penalties(length_penalties))
        typer.echo(render_sweep(points, length_unit))
        if out is not None:
            payload = {
                "candidates": str(candidates),
                "config": config.model_dump(),
                "points": [point.as_dict() for point in points],
                "length_neutral_penalty": length_neutral_penalty(points),
            }
            atomic_write_text(out, json.dumps(payload, indent=2))
