"""Shared by the sentiment and reward-model labelers: load a sequence classifier, score texts in batches.

Texts are scored in batches sorted by length (little padding, so less wasted compute), then returned
in the caller's order. On GPU the model runs in bfloat16 unless told otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from prefkit.errors import ConfigError, ModelError
from prefkit.models import default_device, first_line, resolve_model


@dataclass
class ScoringStats:
    """Work done, for samples/s in the manifest."""

    samples: int = 0
    seconds: float = 0.0


def resolve_dtype(dtype: str, device: str) -> str:
    """'auto' means bfloat16 on GPU and float32 on CPU."""
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(
            f"must be auto, float32, bfloat16 or float16, got '{dtype}'", field="labeler_options.dtype"
        )
    return dtype


def load_classifier(
    name: str, *, dtype: str = "auto", device: str | None = None, trust_remote_code: bool = False
):
    """(model, tokenizer) of a sequence-classification model from a folder or hub id (safetensors only)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = device or default_device()
    location = resolve_model(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(
            location,
            dtype=getattr(torch, resolve_dtype(dtype, device)),
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as error:
        raise ModelError(
            f"could not load a sequence classifier: {first_line(error)}", file=location
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    tokenizer.padding_side = "right"  # classification heads read the last non-pad token
    return model.to(device).eval(), tokenizer


def batched_logits(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int,
    max_length: int | None,
    add_special_tokens: bool,
    stats: ScoringStats,
) -> list[list[float]]:
    """Logits (float32) of each text, computed in length-sorted batches, returned in input order.

    `add_special_tokens` is False for text already rendered by a chat template (it wrote them).
    """
    import torch

    started = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))  # characters: a cheap proxy
    results: list[list[float]] = [[] for _ in texts]
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            encoded = tokenizer(
                [texts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                truncation=max_length is not None,
                max_length=max_length,
                add_special_tokens=add_special_tokens,
            ).to(device)
            logits = model(**encoded).logits.float().cpu()
            for row, index in enumerate(batch):
                results[index] = logits[row].tolist()
    stats.samples += len(texts)
    stats.seconds += time.perf_counter() - started
    return results
