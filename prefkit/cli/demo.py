"""`prefkit demo`: the whole loop on the embedded default, with a before/after table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from prefkit.cli.options import config_command
from prefkit.demo import DemoConfig, reward_gain, run_demo


def register(app: typer.Typer) -> None:
    @app.command("demo")
    @config_command(
        DemoConfig, section="demo", names={"samples_per_prompt": ("--samples",)}, set_example="epochs=4"
    )
    def demo(
        out: Path = typer.Option(
            Path("runs/demo"), help="Run folder; every stage's artifact goes below it. Rerun to resume."
        ),
        *,
        values: dict[str, Any],
        config_file: Path | None,
    ) -> None:
        """Run sample -> label (VADER) -> train (DPO) -> eval on the embedded default and print before/after."""
        from prefkit.errors import validated_config

        config = validated_config(DemoConfig, values, file=config_file)
        started = time.time()
        rows = run_demo(config, out)
        print_table(rows, time.time() - started, out)


def print_table(rows: list[dict], seconds: float, out: Path) -> None:
    console = Console()
    table = Table(title="prefkit demo: held-out prompts, before vs after DPO")
    for column in ("model", "reward (VADER) ± s.e.", "KL(pi||pi_ref)", "mean length (chars)", "samples"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.get("subject")),
            f"{row['reward_mean']:.3f} ± {row['reward_se']:.3f}",
            f"{row['kl_mean']:.2f} ± {row['kl_se']:.2f}",
            f"{row['length_chars']:.0f}",
            str(row.get("num_samples", row.get("n_samples", ""))),
        )
    console.print(table)
    gain, z = reward_gain(rows)
    console.print(
        f"reward gain {gain:+.3f} ({z:.1f} standard errors); wall time {seconds / 60:.1f} min; artifacts in {out}"
    )
    console.print(
        f"open in a browser: {out / 'preferences.report.html'} (the pairs) and {out / 'eval' / 'report.html'} "
        "(before vs after)"
    )
