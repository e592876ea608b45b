"""`prefkit sample`: k completions per prompt into a 'candidates' artifact (a shell over `sampling.stage.sample`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("sample")
    def sample_command(
        prompts: str = typer.Argument(
            ...,
            help="Prompts file: JSONL/JSON/Parquet rows with 'prompt' (a string or a list of chat messages) or "
            "'messages' (+ optional 'prompt_id', 'reference'), or builtin:NAME for a shipped set "
            "(sentiment_train, sentiment_heldout, chatterbot_qa, chatterbot_multiturn, "
            "chatterbot_multiturn_heldout).",
        ),
        out: Path = typer.Option(
            ..., "--out", "-o", help="Artifact folder to write (rerun the same command to resume)."
        ),
        columns: str | None = typer.Option(
            None,
            help="Rename columns first, e.g. prompt=question. PROMPTS may also be a CSV file, a `datasets` "
            "folder or a hub dataset id (docs/formats.md).",
        ),
        split: str | None = typer.Option(
            None, help="Split of a hub id or DatasetDict folder (default: train)."
        ),
        subset: str | None = typer.Option(None, help="Subset (config name) of a hub dataset."),
        revision: str | None = typer.Option(None, help="Revision of a hub dataset."),
        model: str | None = typer.Option(
            None,
            help="Model: 'smollm2' (embedded default), a Hugging Face model folder, or a hub id. (default: smollm2)",
        ),
        config_file: Path | None = typer.Option(
            None,
            "--config",
            help="TOML/YAML/JSON file of SampleConfig fields (a 'sample' table is accepted); flags override it.",
        ),
        backend: str | None = typer.Option(
            None,
            help="Sampler: auto (vllm when installed, else transformers), vllm, transformers. (default: auto)",
        ),
        n: int | None = typer.Option(None, "--n", "-n", help="Completions per prompt (k). (default: 4)"),
        temperature: float | None = typer.Option(
            None, help="Sampling temperature; 0 means greedy. (default: 1.0)"
        ),
        top_p: float | None = typer.Option(
            None, help="Nucleus sampling: keep the smallest set of tokens with this mass. (default: 1.0)"
        ),
        max_new_tokens: int | None = typer.Option(
            None, help="Most tokens generated per completion. (default: 128)"
        ),
        seed: int | None = typer.Option(
            None, help="Seed: the same seed and prompts give the same candidates. (default: 0)"
        ),
        stop: list[str] | None = typer.Option(
            None, "--stop", help="Stop string (repeatable); the completion is cut before it."
        ),
        logprobs: bool | None = typer.Option(
            None,
            "--logprobs/--no-logprobs",
            help="Store each completion's summed log-prob under the sampling model. (default: off)",
        ),
        shard_size: int | None = typer.Option(
            None,
            help="Prompts per shard; each finished shard is saved, so a killed run resumes. (default: 64)",
        ),
        batch_size: int | None = typer.Option(
            None,
            help="transformers backend: prompts per generate() call (vLLM batches by itself). (default: 16)",
        ),
        chat_template: bool | None = typer.Option(
            None,
            "--chat-template/--no-chat-template",
            help="Render each prompt as one user turn with the tokenizer's chat template. (default: when the tokenizer has one)",
        ),
        dtype: str | None = typer.Option(None, help="auto, float32, bfloat16 or float16. (default: auto)"),
        device: str | None = typer.Option(
            None, help="transformers backend: cpu, cuda, cuda:1 ... (default: cuda if available)"
        ),
        trust_remote_code: bool | None = typer.Option(
            None,
            "--trust-remote-code/--no-trust-remote-code",
            help="Allow model code from the model folder. (default: off)",
        ),
        tensor_parallel_size: int | None = typer.Option(
            None, help="vLLM: GPUs one model is split across. (default: 1)"
        ),
        pipeline_parallel_size: int | None = typer.Option(
            None, help="vLLM: pipeline stages (e.g. one per node with the ray executor). (default: 1)"
        ),
        data_parallel_size: int | None = typer.Option(
            None,
            help="vLLM: engine replicas; offline sampling supports 1 only, use `prefkit serve` for more. (default: 1)",
        ),
        gpu_memory_utilization: float | None = typer.Option(
            None,
            help="vLLM: fraction of GPU memory for weights + KV cache (on CPU: of CPU memory); may change on resume. "
            "(default: 0.9 on GPU, 80% of the free share on CPU)",
        ),
        max_model_len: int | None = typer.Option(
            None, help="Longest prompt + completion in tokens. (default: the model's context length)"
        ),
        enforce_eager: bool | None = typer.Option(
            None,
            "--enforce-eager/--no-enforce-eager",
            help="vLLM: skip CUDA graphs (slower, starts faster). (default: off)",
        ),
        distributed_executor_backend: str | None = typer.Option(
            None, help="vLLM: 'mp' (one node) or 'ray' (several nodes; start a Ray cluster first)."
        ),
        force: bool = typer.Option(False, "--force", help="Replace an existing artifact in --out."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Sample k completions per prompt with vLLM or transformers and write a 'candidates' artifact."""
        from prefkit.config import stage_values
        from prefkit.errors import validated_config
        from prefkit.sampling.stage import SampleConfig, sample

        flags: dict[str, Any] = {
            "model": model,
            "backend": backend,
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
            "stop": stop or None,
            "logprobs": logprobs,
            "shard_size": shard_size,
            "batch_size": batch_size,
            "use_chat_template": chat_template,
            "dtype": dtype,
            "device": device,
            "trust_remote_code": trust_remote_code,
            "tensor_parallel_size": tensor_parallel_size,
            "pipeline_parallel_size": pipeline_parallel_size,
            "data_parallel_size": data_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "enforce_eager": enforce_eager,
            "distributed_executor_backend": distributed_executor_backend,
        }
        values = stage_values(config_file, flags, section="sample", defaults={"model": "smollm2"})
        config = validated_config(SampleConfig, values, file=config_file)
        if columns or split or subset or revision:
            from prefkit.ingest.prompts import materialise_prompts
            from prefkit.ingest.sources import SourceOptions

            options = SourceOptions(split=split, subset=subset, revision=revision)
            prompts = str(materialise_prompts(prompts, columns=columns, options=options))
        artifact = sample(prompts, out, config, force=force, progress=not quiet)
        counts = artifact.manifest.counts
        Console(stderr=True).print(
            f"wrote {artifact.path}: {counts.get('prompts')} prompts x {config.n} completions, "
            f"{counts.get('completion_tokens')} tokens"
        )
