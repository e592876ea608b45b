"""The `prefkit` command line: a thin typer shell over the Python API.

Each stage registers its command from its own module (`prefkit/cli/<stage>.py`, a `register(app)`
function). Errors of the project (PrefkitError) and failures caused by bad files print as one line and exit with code
2, no traceback (see `main`).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import typer

from prefkit.cli.deprecated import translate_deprecated
from prefkit.process_lifetime import stop_on_signals
from prefkit.validation import BUG_REPORT_URL, as_prefkit_error

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
    "length_penalty_sweep",
    "validate_labeler",
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


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; bad input becomes one clear line and exit 2, a bug keeps its traceback.

    This is the one place where errors meet the user: a PrefkitError, or a failure that a bad file causes
    (decode, I/O, Parquet, safetensors, JSON, YAML; see `validation.as_prefkit_error`), prints
    `error: FILE, row N, field 'F': what (hint)` and exits 2. Anything else is a bug in prefkit: the
    traceback is kept and the last line says so and where to report it.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    arguments, notices = translate_deprecated(sys.argv[1:] if argv is None else argv)
    for notice in notices:
        typer.secho(notice, err=True, fg="yellow")
    try:
        # SIGTERM/SIGHUP unwind like Ctrl-C, so a stage stops the engine it owns (and exits 128 + signal)
        with stop_on_signals():
            app(args=arguments, prog_name="prefkit")
    except KeyboardInterrupt:
        typer.secho("interrupted: rerun the same command to resume", err=True, fg="yellow")
        sys.exit(130)
    except Exception as error:
        known = as_prefkit_error(error)
        if known is None:
            traceback.print_exc()
            command = " ".join(["prefkit", *(sys.argv[1:] if argv is None else argv)])
            typer.secho(
                f"error: {type(error).__name__}: {error}\nthis is a bug in prefkit, not in your input; please "
                f"report it at {BUG_REPORT_URL} with the command ({command}) and the traceback above",
                err=True,
                fg="red",
            )
            sys.exit(1)
        typer.secho(f"error: {known}", err=True, fg="red")
        sys.exit(2)
