"""`prefkit eval` (benchmark checkpoints) and `prefkit winrate-from-annotations` (re-score alpaca_eval annotations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from prefkit.cli.options import config_command
from prefkit.config import parse_overrides
from prefkit.errors import ConfigError
from prefkit.evaluation.config import EvalConfig

EVAL_HELP = """Evaluate checkpoints with evaluator plugins and write a leaderboard, plots and a report.

CHECKPOINTS are model folders, aliases (smollm2) or hub ids; name one with NAME=PATH. Results are cached
per (checkpoint content, evaluator, options), so adding a checkpoint evaluates only the new one.

Examples:

  prefkit eval base=smollm2 runs/beta0.1 runs/beta0.3 -e reward-kl -O prompts=heldout.jsonl -o runs/eval

  prefkit eval runs/ckpt -e alpaca-eval -O judge_base_url=http://localhost:8000/v1 -O judge_model=Qwen2.5-7B-Instruct -O max_instances=50 -o runs/ae
"""


def parse_options(pairs: list[str], evaluators: list[str]) -> dict[str, dict[str, Any]]:
    """`[EVALUATOR.]KEY=VALUE` pairs into per-evaluator options (values read by `config.parse_value`)."""
    options: dict[str, dict[str, Any]] = {}
    for key, value in parse_overrides(pairs, flag="--option").items():
        scope, dot, name = key.partition(".")
        if dot and scope in evaluators:
            target, key = scope, name
        elif len(evaluators) == 1:
            target = evaluators[0]
        else:
            raise ConfigError(
                f"option '{key}' is ambiguous with several evaluators",
                field="--option",
                hint=f"prefix it with the evaluator, e.g. {evaluators[0]}.{key}=...",
            )
        options.setdefault(target, {})[key] = value
    return options


def register(app: typer.Typer) -> None:
    @app.command("eval", help=EVAL_HELP)
    @config_command(
        EvalConfig,
        section="eval",
        exclude=("options",),
        names={"evaluators": ("--evaluator", "-e")},
        set_example="options.reward-kl.n=8",
        config_names=("--config", "-c"),
    )
    def eval_command(
        checkpoints: list[str] = typer.Argument(
            ..., help="Checkpoints to evaluate: PATH, alias or NAME=PATH."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder for the 'eval' artifact."),
        option: list[str] = typer.Option(
            None,
            "--option",
            "-O",
            help="Evaluator option [EVALUATOR.]KEY=VALUE (repeatable; the prefix is needed with several "
            "evaluators). Values are read as TOML (4, true, [1, 2]). See docs/evaluation.md for each "
            "evaluator's options.",
        ),
        force: bool = typer.Option(
            False, "--force", help="Re-evaluate every checkpoint, ignoring cached results, and replace OUT."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
        *,
        values: dict[str, Any],
        config_file: Path | None,
    ) -> None:
        from prefkit.errors import validated_config
        from prefkit.evaluation.stage import evaluate

        evaluators = list(values.get("evaluators") or ["reward-kl"])
        # a shared config file may hold options of evaluators this run does not use
        options = {
            name: dict(option_values)
            for name, option_values in (values.get("options") or {}).items()
            if name in evaluators
        }
        for name, option_values in parse_options(list(option or []), evaluators).items():
            options.setdefault(name, {}).update(option_values)
        values = values | {"evaluators": evaluators, "options": options}
        eval_config = validated_config(EvalConfig, values, file=config_file)
        report = evaluate(checkpoints, out, eval_config, force=force, progress=not quiet)
        typer.echo(f"evaluated {report.evaluated}, reused {report.reused} cached; report: {report.report}")
        typer.echo((report.path / "leaderboard.md").read_text())

    @app.command("winrate-from-annotations")
    def winrate_from_annotations(
        annotations: Path = typer.Argument(
            ..., help="An alpaca_eval annotations.json (list of objects with `preference`)."
        ),
        expected: str = typer.Option(
            None,
            "--expected",
            help="Instructions every model should have been judged on: an alpaca_eval outputs JSON, or "
            "'alpaca-eval' for the bundled 805. Instructions without an annotation count as missing.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Recompute win rate and standard error (and missing/invalid counts) from alpaca_eval annotations."""
        from prefkit.evaluation.alpaca_data import BASELINE_FILE, bundled_data_dir, read_outputs_file
        from prefkit.evaluation.annotations import read_annotations, win_rate_from_annotations
        from prefkit.validation import reading

        with reading(annotations):
            rows = read_annotations(annotations)
        instructions = None
        if expected:
            source = bundled_data_dir() / BASELINE_FILE if expected == "alpaca-eval" else Path(expected)
            instructions = [row["instruction"] for row in read_outputs_file(source)]
        summary = win_rate_from_annotations(rows, instructions).as_dict()
        if as_json:
            typer.echo(json.dumps(summary))
            return
        typer.echo(
            f"win rate {summary['win_rate']:.4f} % ± {summary['standard_error']:.4f} (SE, n={summary['n_total']})"
        )
        typer.echo(
            f"wins {summary['n_wins']}, baseline wins {summary['n_wins_base']}, draws {summary['n_draws']}; "
            f"discrete win rate {summary['discrete_win_rate']:.4f} %; average length {summary['avg_length']}"
        )
        typer.echo(f"missing annotations {summary['n_missing']}, invalid {summary['n_invalid']}")
