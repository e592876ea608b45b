"""Reference log-probs: computed once per (reference model, token ids, precision), cached on disk, reused.

The key hashes the reference model's content, the exact token ids of every pair (which covers the data,
the tokenizer, the chat template, max_length and the per-row EOS flags of `prefkit label --truncated`),
the compute precision and how log-probs are computed (LOGPROB_METHOD: the LM head's matmul in the compute
dtype). Reruns, beta sweeps and later rounds that train on the same pairs against the same reference read
the cache instead of running the reference model again; nothing is recomputed per epoch. Entries written
before LOGPROB_METHOD existed (float32 LM head under bf16) have other keys: they stay on disk, readable,
and are never taken for the current method.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from prefkit_trainers.dpo.data import TokenizedPair, pairs_hash
from prefkit_trainers.dpo.logprobs import LOGPROB_METHOD, CompletionLogProbs, prepare_attention_mask
from prefkit_trainers.dpo.packing import collate_layout

CACHE_FOLDER = "reference-logprobs"
# accelerate's mixed_precision -> the dtype the LM head's matmul runs in (fp32 = the model's float32 weights)
HEAD_MATMUL_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "no": "float32"}


def reference_cache_key(
    model_hash: str, pairs: Sequence[TokenizedPair], precision: str, ld_alpha: float | None = None
) -> str:
    """One key per (reference model content, token ids of the pairs, compute precision, log-prob method,
    LD-DPO weight)."""
    payload = f"{model_hash}|{pairs_hash(pairs)}|{precision}|v1|{LOGPROB_METHOD}"
    if ld_alpha is not None:  # LD-DPO sums are other numbers; plain sums keep their earlier keys
        payload += f"|ld_alpha={ld_alpha!r}"
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_path(cache_root: Path, key: str) -> Path:
    return cache_root / CACHE_FOLDER / f"{key[:2]}" / f"{key}.safetensors"


def cached_metadata(cache_root: Path, key: str) -> dict[str, str]:
    """The metadata of a cache entry (model, precisions); empty when absent."""
    from safetensors import safe_open

    path = cache_path(cache_root, key)
    if not path.exists():
        return {}
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def load_cached(cache_root: Path, key: str, expected_pairs: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The cached (chosen, rejected) log-probs, or None when absent or of the wrong size."""
    from safetensors.torch import load_file

    path = cache_path(cache_root, key)
    if not path.exists():
        return None
    tensors = load_file(str(path))
    if tensors["chosen"].numel() != expected_pairs:
        return None
    return tensors["chosen"], tensors["rejected"]


def save_cached(
    cache_root: Path,
    key: str,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    model: str,
    precision: str = "no",
    head_matmul_dtype: str | None = None,
) -> Path:
    """Write the cache file atomically (a crash never leaves a half-written entry).

    The metadata records the model, the backbone precision (accelerate's mixed_precision: 'no' = fp32,
    'bf16' = bf16 autocast), the LM head's matmul dtype (default: the one that precision implies), the
    method (LOGPROB_METHOD) and that log-softmax and sums ran in float32 (head_logprobs.py)."""
    from safetensors.torch import save_file

    path = cache_path(cache_root, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    metadata = {
        "model": model,
        "backbone_precision": precision,
        "head_matmul_dtype": head_matmul_dtype or HEAD_MATMUL_DTYPES.get(precision, precision),
        "logsoftmax_precision": "float32",
        "logprob_method": LOGPROB_METHOD,
    }
    save_file({"chosen": chosen.contiguous(), "rejected": rejected.contiguous()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


@torch.no_grad()
def compute_reference_logprobs(
    scorer: CompletionLogProbs,
    pairs: Sequence[TokenizedPair],
    *,
    pad_id: int,
    batch_size: int,
    layout: str,
    device: torch.device | str,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed completion log-probs of every pair under `scorer` (float32, on CPU), in pair order."""
    was_training = scorer.training
    scorer.eval()
    chosen, rejected = torch.zeros(len(pairs)), torch.zeros(len(pairs))
    # batches of similar length waste less padding; the results go back to pair order
    order = sorted(
        range(len(pairs)), key=lambda i: len(pairs[i].prompt) + len(pairs[i].chosen) + len(pairs[i].rejected)
    )
    dtype = next(scorer.parameters()).dtype
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        batch = collate_layout([pairs[i] for i in indices], pad_id, layout).to(device)
        batch = prepare_attention_mask(batch, scorer.causal_lm(), dtype)
        with autocast():
            logps = scorer(batch).logps.float().cpu()
        chosen[indices], rejected[indices] = logps[: len(indices)], logps[len(indices) :]
    scorer.train(was_training)
    return chosen, rejected


def model_content_hash(location: str) -> str:
    """Content hash of a model folder (a prefkit checkpoint's recorded hash when it has one)."""
    from prefkit.models import resolve_model

    resolved = Path(resolve_model(location))
    if not resolved.exists():
        return hashlib.sha256(f"hub:{location}".encode()).hexdigest()
    manifest = resolved / "manifest.json"
    if manifest.exists():
        import json

        recorded = json.loads(manifest.read_text()).get("content_hash")
        if recorded:
            return recorded
    digest = hashlib.sha256()
    for file in sorted(p for p in resolved.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(file.relative_to(resolved).as_posix().encode())
        with open(file, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()
