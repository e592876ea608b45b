"""One vLLM engine kept across the rounds of `prefkit iterate`: round k+1 loads round k's checkpoint into it.

A fresh engine costs its whole start (process, model load, KV-cache allocation, CUDA-graph capture: tens of
seconds); an in-place reload of the weights costs about as long as reading the safetensors. Within
`keep_engine()`, the sample stage asks `open_sampler` for its sampler: the kept engine when the new model
can be loaded into it (`reload_blocker` finds nothing: same architecture, generation config and tokenizer,
full safetensors weights), a fresh one otherwise, or when the reload raises. Between uses the engine
sleeps (vLLM sleep level 2: weights and KV cache freed on a GPU), so training gets the memory. On CPU
vLLM has no sleep mode, so `engine_reuse="auto"` keeps an engine only on a GPU.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefkit.errors import PrefkitError
from prefkit.plugins import construct_plugin
from prefkit.sampling.base import Sampler
from prefkit.sampling.engine_process import free_cached_gpu_memory
from prefkit.sampling.options import SamplerOptions

# keys that name, date or record the loading of a checkpoint without changing the model or tokenizer
# (transformers adds is_local/local_files_only to a tokenizer_config.json it saves again)
UNCOMPARED_KEYS = {"_name_or_path", "name_or_path", "transformers_version", "is_local", "local_files_only"}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)
# options that may differ between the rounds without a new engine: memory, and the engine's base seed
# (every request carries its own seed, so the base seed decides no sample; iterate changes it per round)
REUSE_INDEPENDENT_OPTIONS = ("gpu_memory_utilization", "engine_reuse", "seed")


@dataclass(frozen=True)
class EngineStart:
    """How the sample stage got its engine: `fresh` (started, `seconds`) or `reloaded` (weights loaded into
    the kept engine in `seconds`; `fresh_seconds` is what that engine's own start took)."""

    mode: str
    seconds: float
    fresh_seconds: float | None = None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    def describe(self) -> str:
        """One status line, e.g. 'engine: checkpoint loaded into the running engine in 0.3 s (a fresh
        start took 22.6 s)'."""
        if self.mode == "reloaded":
            return (
                f"engine: checkpoint loaded into the running engine in {self.seconds:.1f} s "
                f"(a fresh start took {self.fresh_seconds:.1f} s)"
            )
        return f"engine: started in {self.seconds:.1f} s" + (f" ({self.note})" if self.note else "")


def wants_reuse(setting: str, on_gpu: bool) -> bool:
    """Whether to keep the engine: 'on' always, 'off' never, 'auto' where it can sleep (a GPU)."""
    return setting == "on" or (setting == "auto" and on_gpu)


def file_identity(path: Path) -> Any:
    """A file's content for comparison: a JSON object less UNCOMPARED_KEYS, else its sha256; None if absent."""
    if not path.exists():
        return None
    if path.suffix == ".json":
        content = json.loads(path.read_text())
        if isinstance(content, dict):
            return {key: value for key, value in content.items() if key not in UNCOMPARED_KEYS}
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_identity(folder: Path) -> dict[str, Any]:
    """What must match for an in-place reload: the config, the generation config (vLLM takes EOS tokens
    and defaults from it) and the tokenizer files."""
    return {
        "config": file_identity(folder / "config.json"),
        "generation_config": file_identity(folder / "generation_config.json"),
        "tokenizer": {name: file_identity(folder / name) for name in TOKENIZER_FILES},
    }


def reload_blocker(current: str | Path, new: str | Path) -> str | None:
    """Why `new` cannot be loaded into an engine running `current` (None when it can)."""
    current, new = Path(current), Path(new)
    for folder in (current, new):
        if not (folder / "config.json").exists():
            return f"{folder} is not a local model folder"
    if (new / "adapter_config.json").exists():
        return "the checkpoint is a LoRA adapter"
    if not any(new.glob("*.safetensors")):
        return "the checkpoint has no safetensors weights"
    old_identity, new_identity = model_identity(current), model_identity(new)
    for part in ("config", "generation_config", "tokenizer"):
        if old_identity[part] != new_identity[part]:
            return f"the checkpoint's {part.replace('_', ' ')} differs"
    return None


def engine_key(backend: str, options: SamplerOptions) -> tuple:
    """The settings an engine was started with, less those that may change between rounds."""
    return backend, tuple(sorted(options.model_dump(exclude=set(REUSE_INDEPENDENT_OPTIONS)).items()))


class EngineKeeper:
    """Holds at most one sleeping vLLM sampler between the sample stages of one process."""

    def __init__(self) -> None:
        self.sampler: Sampler | None = None
        self.key: tuple | None = None
        self.location: str | None = None
        self.fresh_seconds: float | None = None

    def acquire(self, backend: str, options: SamplerOptions, location: str) -> tuple[Sampler, EngineStart]:
        """The kept engine with `location`'s weights loaded, or a fresh engine (kept from now on)."""
        key = engine_key(backend, options)
        note = None
        if self.sampler is not None:
            note = "other engine settings" if key != self.key else reload_blocker(self.location, location)
            if note is None:
                free_cached_gpu_memory()  # the engine wakes up into memory training just used
                try:
                    seconds = self.sampler.reload_weights(location)
                except PrefkitError as error:  # the engine refused the weights: start over
                    note = f"reload failed: {error}"
                else:
                    self.location = location
                    return self.sampler, EngineStart("reloaded", seconds, self.fresh_seconds)
            self.close()
        from prefkit.sampling.vllm_backend import VLLMSampler

        started = time.perf_counter()
        self.sampler = VLLMSampler(location, options, sleepable=True)
        self.key, self.location = key, location
        self.fresh_seconds = time.perf_counter() - started
        return self.sampler, EngineStart("fresh", self.fresh_seconds, note=note)

    def release(self, sampler: Sampler) -> bool:
        """Put the kept engine to sleep until the next round (True), or say it is not the kept one."""
        if sampler is not self.sampler:
            return False
        try:
            sampler.sleep()
        except PrefkitError:
            self.close()  # an engine that cannot sleep must not hold the device through training
        return True

    def close(self) -> None:
        """Stop the kept engine (its process exits)."""
        sampler, self.sampler = self.sampler, None
        if sampler is not None:
            sampler.close()


KEEPER: ContextVar[EngineKeeper | None] = ContextVar("prefkit_engine_keeper", default=None)


@contextmanager
def keep_engine() -> Iterator[EngineKeeper]:
    """Within the block, sample stages share one vLLM engine (see the module docstring); it is stopped
    when the block ends, however it ends."""
    keeper = EngineKeeper()
    token = KEEPER.set(keeper)
    try:
        yield keeper
    finally:
        KEEPER.reset(token)
        keeper.close()


def open_sampler(backend: str, options: SamplerOptions, location: str) -> tuple[Sampler, EngineStart]:
    """The sampler for one sample stage: the kept engine inside `keep_engine()` when reuse applies, else
    a fresh one (closed by `release_sampler`)."""
    from prefkit.sampling.vllm_backend import cuda_available

    keeper = KEEPER.get()
    if keeper is not None and backend == "vllm" and wants_reuse(options.engine_reuse, cuda_available()):
        return keeper.acquire(backend, options, location)
    started = time.perf_counter()
    sampler = construct_plugin("samplers", backend, options, model=location)
    return sampler, EngineStart("fresh", time.perf_counter() - started)


def release_sampler(sampler: Sampler) -> None:
    """End a sample stage's use of its sampler: the kept engine goes to sleep, any other one is closed."""
    keeper = KEEPER.get()
    if keeper is None or not keeper.release(sampler):
        sampler.close()
