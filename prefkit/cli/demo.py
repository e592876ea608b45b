"""`prefkit demo`: the whole loop on the embedded default, with a before/after table."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from prefkit.demo import DemoConfig, reward_gain, run_demo


def register(app: typer.Typer) -> None:
    defaults = DemoConfig()

    @app.command("demo")
    def demo(
        out: Path = typer.Option(
            Path("runs/demo"), help="Run folder; every stage's artifact goes below it. Rerun to resume."
        ),
        model: str = typer.Option(
            defaults.model, help="Policy and reference: 'smollm2' (embedded) or a model folder."
        ),
        train_prompts: str = typer.Option(
            defaults.train_prompts, help="Prompts to sample and train on (file or builtin:NAME)."
        ),
        heldout_prompts: str = typer.Option(
            defaults.heldout_prompts, help="Held-out prompts for the before/after evaluation."
        ),
        backend: str = typer.Option(
            defaults.backend, help="Sampler: auto (vllm if installed), vllm or transformers."
        ),
        samples: int = typer.Option(defaults.samples_per_prompt, help="Completions per training prompt (k)."),
        max_new_tokens: int = typer.Option(
            defaults.max_new_tokens, help="Maximum new tokens per completion."
        ),
        beta: float = typer.Option(defaults.beta, help="DPO beta (KL strength)."),
        learning_rate: float = typer.Option(defaults.learning_rate, help="AdamW learning rate."),
        epochs: int = typer.Option(defaults.epochs, help="Passes over the preference pairs."),
        eval_samples: int = typer.Option(
            defaults.eval_samples, help="Completions per held-out prompt in evaluation."
        ),
        seed: int = typer.Option(defaults.seed, help="Seed for sampling and training."),
    ) -> None:
        """Run sample -> label (VADER) -> train (DPO) -> eval on the embedded default and print before/after."""
        from prefkit.errors import validated_config

        values = dict(
            model=model,
            train_prompts=train_prompts,
            heldout_prompts=heldout_prompts,
            backend=backend,
            samples_per_prompt=samples,
            max_new_tokens=max_new_tokens,
            beta=beta,
            learning_rate=learning_rate,
            epochs=epochs,
            eval_samples=eval_samples,
            seed=seed,
        )
        config = validated_config(DemoConfig, values)
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
