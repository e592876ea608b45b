"""The sampling option models, each field declared (and documented) once.

`SamplingParams` says *what* to sample; `SamplerOptions` says *how* the engine runs: precision, device,
batching, chat template, and vLLM's scale-out knobs (`EngineOptions`, which `prefkit serve` shares);
`SampleConfig` is the sample stage's whole config. Only pydantic here: the CLI builds its flags from
these models at start-up, so this module must import nothing heavy.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefkit.validation import STRICT_CONFIG

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
        "change on resume. (default: 0.9 on GPU, less when less is free; 80% of the free share on CPU)",
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
    engine_reuse: Literal["auto", "on", "off"] = Field(
        "auto",
        description="vLLM in `prefkit iterate`: keep one engine across rounds and load each round's "
        "checkpoint into it instead of starting a new one. auto: on a GPU (the engine sleeps, its memory "
        "freed, while the other stages run); on: also on CPU (the idle engine keeps its memory); off: a "
        "fresh engine per round. A checkpoint with another architecture or tokenizer gets a fresh engine.",
    )


def default_memory_utilization(*, measure_gpu: bool = False) -> float:
    """vLLM's memory fraction when the user sets none: 0.9 of a GPU; with `measure_gpu` (an engine in a
    process of its own, where creating a CUDA context costs nothing after it exits) less when less is free,
    see `gpu_memory_share`. On CPU (where the same flag reserves CPU memory and start-up fails if that much
    is not free) 80 % of the currently free share."""
    import torch

    if torch.cuda.is_available():
        if not measure_gpu:
            return 0.9
        free, total = torch.cuda.mem_get_info()
        return gpu_memory_share(free, total)
    import psutil

    memory = psutil.virtual_memory()
    return round(max(0.05, min(0.9, 0.8 * memory.available / memory.total)), 2)


def gpu_memory_share(free_bytes: int, total_bytes: int) -> float:
    """The GPU memory fraction vLLM gets by default: 0.9, or 95 % of the free share when less is free
    (rounded down to 0.01; at least 0.05)."""
    share = min(0.9, 0.95 * free_bytes / total_bytes)
    return max(0.05, int(share * 100) / 100)


class SampleConfig(BaseModel):
    """Everything that decides what `sample` writes: the model, what to sample and how the engine runs.

    Flat keys (`n`, `dtype`, `seed`, as in `[sample]` tables and on the command line) are accepted and
    nested into `sampling` / `engine`; `seed` seeds both. Reading `config.n` or `config.dtype` reaches
    into the section that holds the field.
    """

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused
    flat_sections: ClassVar[tuple[str, ...]] = ("sampling", "engine")  # errors name the flat key

    model: str = Field(
        description="Model: 'smollm2' (embedded default), a Hugging Face model folder, or a hub id."
    )
    backend: str = Field(
        "auto", description="Sampler: auto (vllm when installed, else transformers), vllm, transformers."
    )
    shard_size: int = Field(
        64, ge=1, description="Prompts per shard; each finished shard is saved, so a killed run resumes."
    )
    sampling: SamplingParams = Field(default_factory=SamplingParams, description="What to sample.")
    engine: SamplerOptions = Field(default_factory=SamplerOptions, description="How the engine runs.")

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_keys(cls, values: Any) -> Any:
        """Move flat option names into their section (a key given in the section itself wins)."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for section, model in (("sampling", SamplingParams), ("engine", SamplerOptions)):
            flat = {key: values[key] for key in model.model_fields if key in values}
            if flat:
                nested = values.get(section) or {}
                nested = nested.model_dump() if isinstance(nested, BaseModel) else nested
                values[section] = flat | nested if isinstance(nested, dict) else nested
        for key in SamplingParams.model_fields.keys() | SamplerOptions.model_fields.keys():
            values.pop(key, None)
        return values

    def __getattr__(self, name: str) -> Any:
        for section in self.flat_sections:
            fields = type(self).model_fields[section].annotation.model_fields
            if name in fields:
                return getattr(getattr(self, section), name)
        return super().__getattr__(name)

    def flat_values(self, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        """Every option under its flat name (the shape the manifests of earlier versions fingerprinted)."""
        values = self.model_dump(exclude=set(self.flat_sections))
        for section in self.flat_sections:
            values |= getattr(self, section).model_dump()
        values["stop"] = list(values["stop"])
        return {key: value for key, value in values.items() if key not in exclude}

    def sampling_params(self, shard_index: int) -> SamplingParams:
        """What to sample for one shard (its seed derived from the run's seed and the shard index)."""
        from prefkit.sampling.prompt_tokens import derive_seed  # (imports the tokenizer helpers)

        return self.sampling.model_copy(update={"seed": derive_seed(self.seed, "shard", shard_index)})

    def sampler_options(self, use_chat_template: bool) -> SamplerOptions:
        """How the backend engine runs (the chat-template choice resolved against the tokenizer)."""
        return self.engine.model_copy(update={"use_chat_template": use_chat_template})
