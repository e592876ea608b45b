"""The `prefkit` command line: a thin typer shell over the Python API.

Each stage registers its command from its own module (`prefkit/cli/<stage>.py`, a `register(app)`
function). Errors of the project (PrefkitError) print as one line and exit with code 2, no traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from prefkit.errors import PrefkitError

app = typer.Typer(
    name="prefkit",
    help="Prompts -> preference data -> DPO -> evaluation, reproducibly. Every stage reads and writes artifact folders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

COMMAND_MODULES = [
    "sample",
    "label",
    "lambda_sweep",
    "train",
    "evaluate",
    "iterate",
    "demo",
    "serve",
    "plugins_cmd",
    "report",
]


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"prefkit.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"prefkit.cli.{name}":
                continue  # that command is not built yet
            raise
        module.register(app)


@app.callback()
def _root() -> None:
    """prefkit: prompts -> preference data -> DPO -> evaluation."""


_register_commands()


def main() -> None:
    """Entry point: run the app, turning project errors into one clear line and a non-zero exit."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except PrefkitError as error:
        typer.secho(f"error: {error}", err=True, fg="red")
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted: rerun the same command to resume", err=True, fg="yellow")
        sys.exit(130)
