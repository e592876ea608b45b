"""`prefkit length-penalty-sweep`: how each length penalty would pair a candidates artifact (choosing lambda)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from prefkit.cli.options import config_command
from prefkit.errors import ConfigError, validated_config
from prefkit.labeling.config import LabelConfig


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
    # the length penalty is what is swept; shard size and licence only matter to a written artifact
    @config_command(
        LabelConfig,
        section="label",
        exclude=("length_penalty", "shard_size", "license"),
        set_example="pairing=all-pairs",
    )
    def length_penalty_sweep_command(
        candidates: Path = typer.Argument(..., help="A candidates artifact folder (from `prefkit sample`)."),
        length_penalties: str = typer.Option(
            "0,0.0005,0.001,0.002,0.003,0.005,0.01",
            "--length-penalties",
            help="Comma-separated lambdas to try (per --length-unit).",
        ),
        out: Path = typer.Option(None, "--out", "-o", help="Also write the sweep as JSON to this file."),
        *,
        values: dict[str, Any],
        config_file: Path | None,
    ) -> None:
        """Score candidates once and show, per lambda, the pairs' mean length gap (chosen - rejected), the
        share with a longer chosen side and the score margin; names the length-neutral lambda."""

        from prefkit.artifacts import atomic_write_text
        from prefkit.labeling.length_penalty_sweep import (
            length_neutral_penalty,
            length_penalty_sweep,
            render_sweep,
        )

        if out is not None and out.is_dir():
            raise ConfigError("is a folder; give the JSON file to write", file=out, field="--out")
        if out is not None and not out.parent.is_dir():
            raise ConfigError("folder does not exist", file=out.parent, field="--out")
        # a [label] table's length_penalty is what this command sweeps, so it is not part of the config
        values = {key: value for key, value in values.items() if key != "length_penalty"}
        config = validated_config(LabelConfig, values, file=config_file)
        points = length_penalty_sweep(candidates, config, parse_length_penalties(length_penalties))
        typer.echo(render_sweep(points, config.length_unit))
        if out is not None:
            payload = {
                "candidates": str(candidates),
                "config": config.model_dump(),
                "points": [point.as_dict() for point in points],
                "length_neutral_penalty": length_neutral_penalty(points),
            }
            atomic_write_text(out, json.dumps(payload, indent=2))
