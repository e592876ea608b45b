"""The sampling option models, each field declared (and documented) once.

`SamplingParams` says *what* to sample; `SamplerOptions` says *how* the engine runs: precision, device,
batching, chat template, and vLLM's scale-out knobs (`EngineOptions`, which `prefkit serve` shares).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# frozen: a sampler keeps the options it was built with; extra="forbid": a typo is an error, not a no-op
FROZEN_CONFIG = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class SamplingParams(BaseModel):
    """What to sample: k completions per prompt, decoding settings, and whether to return log-probs."""

    model_config = FROZEN_CONFIG

    n: int = Field(4, ge=1, description="Completions per prompt (k).")
    temperature: float = Field(1.0, ge=0.0, description="Sampling temperature; 0 means greedy.")
    top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="Nucleus sampling: keep the smallest set of tokens with this mass."
    )
    max_new_tokens: int = Field(128, ge=1, description="Most tokens generated per completion.")
    seed: int = Field(0, description="Seed: the same seed and prompts give the same candidates.")
    stop: tuple[str, ...] = Field(
        (), description="Stop string (repeatable); the completion is cut before it."
    )
    logprobs: bool = Field(
        False, description="Store each completion's summed log-prob under the sampling model."
    )


class EngineOptions(BaseModel):
    """vLLM engine settings, shared by offline sampling and `prefkit serve` (passed to vLLM unchanged)."""

    model_config = FROZEN_CONFIG

    dtype: str = Field(
        "auto",
        description="auto (the checkpoint's; vLLM turns float32 checkpoints into 16-bit), float32, bfloat16 "
        "or float16.",
    )
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM: GPUs one model is split across.")
    pipeline_parallel_size: int = Field(
        1, ge=1, description="vLLM: pipeline stages (e.g. one per node with the ray executor)."
    )
    data_parallel_size: int = Field(
        1,
        ge=1,
        description="vLLM: engine replicas (offline sampling supports 1 only; `prefkit serve` balances "
        "requests over several).",
    )
    gpu_memory_utilization: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="vLLM: fraction of GPU memory for weights + KV cache (on CPU: of CPU memory); may "
        "change on resume. (default: 0.9 on GPU, 80% of the free share on CPU)",
    )
    max_model_len: int | None = Field(
        None, ge=2, description="Longest prompt + completion in tokens. (default: the model's context length)"
    )
    enforce_eager: bool = Field(False, description="vLLM: skip CUDA graphs (slower, starts faster).")
    distributed_executor_backend: str | None = Field(
        None, description="vLLM: 'mp' (one node) or 'ray' (several nodes; start a Ray cluster first)."
    )
    seed: int = Field(0, description="The engine's base seed (each request also carries its own).")


class SamplerOptions(EngineOptions):
    """Engine settings of every sampling backend: vLLM's, plus the transformers backend's own.

    Each backend reads the fields that apply to it and ignores the rest (the transformers backend has
    no tensor parallelism; vLLM has no `batch_size`, it schedules requests itself).
    """

    device: str | None = Field(
        None, description="transformers backend: cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    batch_size: int = Field(
        16, ge=1, description="transformers backend: prompts per generate() call (vLLM batches by itself)."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the model folder.")
    use_chat_template: bool | None = Field(
        None,
        description="Render each prompt with the tokenizer's chat template. (default: when the tokenizer "
        "has one)",
    )


def default_memory_utilization() -> float:
    """vLLM's memory fraction when the user sets none: 0.9 of a GPU; on CPU (where the same flag reserves
    CPU memory and start-up fails if that much is not free) 80 % of the currently free share."""
    import torch

    if torch.cuda.is_available():
        return 0.9
    import psutil

    memory = psutil.virtual_memory()
    return round(max(0.05, min(0.9, 0.8 * memory.available / memory.total)), 2)
