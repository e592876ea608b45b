"""`prefkit serve MODEL`: vLLM's OpenAI-compatible server on 127.0.0.1 (e.g. a local judge)."""

from __future__ import annotations

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        model: str = typer.Argument(
            "smollm2", help="Model: 'smollm2' (embedded default), a Hugging Face model folder, or a hub id."
        ),
        port: int | None = typer.Option(None, help="Port on 127.0.0.1. (default: a free port)"),
        host: str = typer.Option(
            "127.0.0.1", help="Interface to listen on; keep 127.0.0.1 unless you add --api-key."
        ),
        dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
        max_model_len: int | None = typer.Option(
            None, help="Longest prompt + completion in tokens. (default: the model's)"
        ),
        enforce_eager: bool = typer.Option(
            False, "--enforce-eager", help="Skip CUDA graphs (slower, starts faster)."
        ),
        tensor_parallel_size: int = typer.Option(1, help="GPUs one model replica is split across."),
        pipeline_parallel_size: int = typer.Option(
            1, help="Pipeline stages (e.g. one per node with the ray executor)."
        ),
        data_parallel_size: int = typer.Option(
            1, help="Model replicas behind the one endpoint (vLLM balances requests)."
        ),
        gpu_memory_utilization: float | None = typer.Option(
            None,
            help="Fraction of GPU memory for weights + KV cache (on CPU: of CPU memory). "
            "(default: 0.9 on GPU, 80% of the free share on CPU)",
        ),
        distributed_executor_backend: str | None = typer.Option(
            None, help="'mp' (one node) or 'ray' (several nodes; start a Ray cluster first)."
        ),
        seed: int = typer.Option(0, help="Engine seed (requests may also carry their own)."),
        api_key: str | None = typer.Option(
            None,
            envvar="PREFKIT_SERVE_API_KEY",
            help="Require this bearer key from clients (env PREFKIT_SERVE_API_KEY).",
        ),
        vllm_arg: list[str] | None = typer.Option(
            None,
            "--vllm-arg",
            help="Extra flag passed to vLLM's api_server as is (repeatable), e.g. --vllm-arg=--max-num-seqs=64.",
        ),
        startup_timeout: float = typer.Option(
            600.0, help="Seconds to wait for the server to answer /health."
        ),
    ) -> None:
        """Serve MODEL with vLLM's OpenAI-compatible API until Ctrl-C; prints the base URL to use."""
        from prefkit.errors import ConfigError
        from prefkit.serve import OpenAIServer, ServerOptions
        from prefkit.validation import check_finite

        options = ServerOptions(
            host=host,
            port=port,
            dtype=dtype,
            max_model_len=max_model_len,
            enforce_eager=enforce_eager,
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            data_parallel_size=data_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            distributed_executor_backend=distributed_executor_backend,
            seed=seed,
            api_key=api_key,
            extra_args=tuple(vllm_arg or ()),
        )
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
