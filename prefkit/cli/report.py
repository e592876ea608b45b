"""`prefkit report PATH`: one self-contained HTML page for an artifact or an iterate run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from prefkit.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_command(
        path: Path = typer.Argument(
            ...,
            help="A candidates, preferences, checkpoint or eval artifact folder, or an iterate run folder.",
        ),
        out: Path = typer.Option(
            None,
            help="HTML file to write (default RUN/report.html for a run, NAME.report.html beside an artifact).",
        ),
        max_pairs: int = typer.Option(
            20_000,
            min=1,
            help="Pairs embedded per preferences set; larger sets embed a seeded random sample.",
        ),
    ) -> None:
        """Write one HTML page (no network needed to view it): pairs side by side with filters, candidates,
        per-round charts, the leaderboard, and the manifest and data card of everything shown."""
        from prefkit.report import build_report, default_report_path

        target = out or default_report_path(path)
        if target.is_dir():
            raise ConfigError("is a folder; give an .html file name", file=target, field="--out")
        if not target.parent.is_dir():
            raise ConfigError("the folder to write into does not exist", file=target.parent, field="--out")
        typer.echo(str(build_report(path, target, max_pairs=max_pairs)))
