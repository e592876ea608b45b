"""`prefkit iterate CONFIG` (iterative length-regularised DPO) and `prefkit compare-runs`."""

from __future__ import annotations

from pathlib import Path

import typer

from prefkit.config import parse_overrides
from prefkit.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command("iterate")
    def iterate_command(
        config: Path = typer.Argument(..., help="TOML or YAML run config (see examples/*.toml)."),
        run_dir: Path = typer.Option(None, help="Run folder (default runs/<config name>). Rerun to resume."),
        set_: list[str] = typer.Option(
            [], "--set", help="Override a config value, e.g. --set rounds=2 --set label.length_penalty=0.01"
        ),
        new_run: bool = typer.Option(
            False, help="Start a fresh run folder next to RUN_DIR instead of resuming it."
        ),
    ) -> None:
        """Rounds of sample -> label (reward - lambda*length) -> DPO -> eval; resumable, with a per-round report."""
        from prefkit.iteration.stage import iterate, load_iterate_config

        loaded = load_iterate_config(config, parse_overrides(set_))
        folder = iterate(loaded, run_dir or Path("runs") / loaded.name, new_run=new_run)
        typer.echo((folder / "report.md").read_text())
        typer.echo(f"report: {folder / 'report.md'}  plot: {folder / 'rounds.png'}")

    @app.command("compare-runs")
    def compare_runs_command(
        runs: list[Path] = typer.Argument(..., help="Run folders written by `prefkit iterate`."),
        out: Path = typer.Option(Path("runs/compare.png"), help="PNG to write."),
    ) -> None:
        """Plot reward and length per round for several runs (e.g. with vs without a length penalty)."""
        from prefkit.iteration.report import compare_runs

        if out.is_dir():
            raise ConfigError("is a folder; give the PNG file to write", file=out, field="--out")
        typer.echo(f"wrote {compare_runs(runs, out)}")
