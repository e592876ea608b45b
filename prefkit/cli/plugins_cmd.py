"""`prefkit plugins`: list installed samplers, labelers, trainers and evaluators."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from prefkit.plugins import GROUPS, list_plugins


def register(app: typer.Typer) -> None:
    @app.command("plugins")
    def plugins() -> None:
        """List the plugins found through entry points (third-party packages add their own)."""
        table = Table("kind", "name", "target", "package")
        for kind in GROUPS:
            for info in list_plugins(kind):
                table.add_row(kind, info.name, info.target, info.distribution)
        Console().print(table)
