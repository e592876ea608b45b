"""`prefkit serve MODEL`: vLLM's OpenAI-compatible server on 127.0.0.1 (e.g. a local judge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from prefkit.cli.options import config_command
from prefkit.serve import ServerOptions


def register(app: typer.Typer) -> None:
    @app.command("serve")
    @config_command(
        ServerOptions, section="serve", exclude=("api_key", "extra_args"), set_example="max_model_len=4096"
    )
    def serve_command(
        model: str = typer.Argument(
            "smollm2", help="Model: 'smollm2' (embedded default), a Hugging Face model folder, or a hub id."
        ),
        api_key: str | None = typer.Option(
            None,
            envvar="PREFKIT_SERVE_API_KEY",
            help=ServerOptions.model_fields["api_key"].description,
        ),
        vllm_arg: list[str] | None = typer.Option(
            None,
            "--vllm-arg",
            help="Extra flag passed to vLLM's api_server as is (repeatable), e.g. --vllm-arg=--max-num-seqs=64.",
        ),
        startup_timeout: float = typer.Option(
            600.0, help="Seconds to wait for the server to answer /health."
        ),
        *,
        values: dict[str, Any],
        config_file: Path | None,
    ) -> None:
        """Serve MODEL with vLLM's OpenAI-compatible API until Ctrl-C; prints the base URL to use."""
        from prefkit.errors import ConfigError, validated_config
        from prefkit.serve import OpenAIServer
        from prefkit.validation import check_finite

        values = values | {"api_key": api_key or values.get("api_key")}
        values["extra_args"] = tuple(values.get("extra_args") or ()) + tuple(vllm_arg or ())
        options = validated_config(ServerOptions, values, file=config_file)
        check_finite(startup_timeout, "startup_timeout")
        if startup_timeout <= 0:
            raise ConfigError(f"must be > 0, got {startup_timeout}", field="startup_timeout")
        server = OpenAIServer(model, options)  # checks every option before vLLM starts
        console = Console(stderr=True)
        console.print(f"starting vLLM for {model} (log: {server.log_path}) ...")
        server.start()
        try:
            server.wait_ready(startup_timeout)
            console.print(f"serving '{model}' at {server.base_url}  (OpenAI-compatible; Ctrl-C to stop)")
            if server.process is not None:
                server.process.wait()
                raise typer.Exit(server.process.returncode or 0)
        finally:
            server.stop()
