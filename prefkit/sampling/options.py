"""How a sampling backend is built: precision, device, batching, chat template, and vLLM's scale-out knobs.

`SamplingParams` (in `base.py`) says *what* to sample; `SamplerOptions` says *how* the engine runs.
Each backend reads the fields that apply to it and ignores the rest (the transformers backend has no
tensor parallelism; vLLM has no `batch_size`, it schedules requests itself).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplerOptions:
    """Engine settings shared by every sampling backend.

    dtype: "auto" (the checkpoint's; vLLM turns float32 checkpoints into 16-bit), "float32",
        "bfloat16" or "float16".
    device: transformers only; None picks cuda when available, else cpu.
    batch_size: transformers only; prompts per `generate` call (each yields `n` sequences).
    use_chat_template: render prompts with the tokenizer's chat template; None = when it has one.
    tensor_parallel_size, pipeline_parallel_size, data_parallel_size, gpu_memory_utilization,
    max_model_len, enforce_eager, distributed_executor_backend: passed to vLLM's engine unchanged.
    seed: the engine's base seed (each request also carries its own seed).
    """

    dtype: str = "auto"
    device: str | None = None
    batch_size: int = 16
    trust_remote_code: bool = False
    use_chat_template: bool | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    enforce_eager: bool = False
    distributed_executor_backend: str | None = None
    seed: int = 0


def default_memory_utilization() -> float:
    """vLLM's memory fraction when the user sets none: 0.9 of a GPU; on CPU (where the same flag reserves
    CPU memory and start-up fails if that much is not free) 80 % of the currently free share."""
    import torch

    if torch.cuda.is_available():
        return 0.9
    import psutil

    memory = psutil.virtual_memory()
    return round(max(0.05, min(0.9, 0.8 * memory.available / memory.total)), 2)
