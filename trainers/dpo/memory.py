"""Training memory before the first step: an estimate, the activation-checkpointing choice, the OOM report.

The estimate counts what a DPO step holds at its peak: parameters, gradients and AdamW's two moments in
their dtypes, and the activations the decoder layers keep for backward over the largest micro-batch's
tokens (plus one chunk of LM-head logits). `activation_checkpointing=auto` compares it with the device's
free memory and turns checkpointing on only when the step would not fit; a CUDA out-of-memory error
becomes one line with the same breakdown and what to change.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from prefkit_trainers.dpo.head_logprobs import HEAD_CHUNK_ELEMENTS

from prefkit.errors import PrefkitError

GB = 1024**3
# an estimate is not a measurement: leave a tenth of the memory for the allocator's fragmentation, the
# CUDA context and kernel workspaces
HEADROOM = 0.9
# what `auto` tries, least recomputation first: no checkpointing, every 4th layer, every 2nd, all layers
AUTO_INTERVALS = (0, 4, 2, 1)


class TrainingOutOfMemory(PrefkitError):
    """The device ran out of memory; the message holds the breakdown and what to change."""


@dataclass(frozen=True)
class ModelShape:
    """What the memory of a decoder-only model's training step depends on."""

    parameter_bytes: int  # every parameter, in its dtype
    trainable_bytes: int  # the parameters that take gradients (all of them, or LoRA adapters)
    layers: int
    hidden: int
    intermediate: int  # MLP width
    kv_hidden: int  # key/value heads x head dim (GQA)
    vocab: int


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes of one training step at its peak, by part."""

    params: int
    grads: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer + self.activations

    def describe(self) -> str:
        """'params 4.9 GB, grads 4.9 GB, AdamW 9.9 GB, activations 21.8 GB' (GiB)."""
        parts = {"params": self.params, "grads": self.grads, "AdamW": self.optimizer}
        parts["activations"] = self.activations
        return ", ".join(f"{name} {value / GB:.1f} GB" for name, value in parts.items())


def layer_activation_bytes(shape: ModelShape, activation_bytes: int, residual_bytes: int = 4) -> int:
    """Bytes one Llama-style decoder layer keeps for backward, per token, without checkpointing.

    Residual-stream tensors are float32 (fp32 master weights): each RMSNorm keeps its input and its
    normalised output (4 x hidden). Matmul inputs and outputs are in the activation dtype (bf16 under
    autocast): the three q/k/v inputs (autocast casts the normed input once per projection), q and the
    rotated q, k, v and the attention output for the fused attention kernel, the o_proj input, the two
    MLP inputs (8 x hidden + 2 x kv_hidden), and gate, SiLU(gate), up and their product (4 x intermediate).
    The s x s attention matrix is not counted: the flash / memory-efficient kernels do not keep it.
    """
    residual = 4 * residual_bytes * shape.hidden
    matmuls = activation_bytes * (8 * shape.hidden + 2 * shape.kv_hidden)
    return residual + matmuls + 4 * activation_bytes * shape.intermediate


def checkpointed_layers(layers: int, interval: int) -> int:
    """Layers run under checkpointing when every `interval`-th one is (layers 0, k, 2k, ...); 0 = none."""
    return 0 if interval == 0 else math.ceil(layers / interval)


def estimate_training_memory(
    shape: ModelShape,
    tokens: int,
    completion_tokens: int,
    activation_bytes: int,
    checkpoint_interval: int,
    residual_bytes: int = 4,
) -> MemoryEstimate:
    """Peak bytes of a training step over a micro-batch of `tokens` model tokens (padding included).

    Gradients match the trainable parameters; AdamW keeps two moments of each. Activations follow
    `peak_layer_bytes`; the embedding output and final norm keep 2 x hidden float32 values per token; the
    LM head one chunk of float32 logits and their gradient (min(completion tokens x vocab, 2**27) twice).
    """
    per_layer = layer_activation_bytes(shape, activation_bytes, residual_bytes)
    layers = peak_layer_bytes(shape.layers, checkpoint_interval, per_layer, residual_bytes * shape.hidden)
    ends = 2 * residual_bytes * shape.hidden
    # float32 LM-head logits of one chunk (the head runs in chunks of HEAD_CHUNK_ELEMENTS logits) and the
    # chunk's softmax gradient beside them
    head = 2 * 4 * min(completion_tokens * shape.vocab, HEAD_CHUNK_ELEMENTS)
    return MemoryEstimate(
        params=shape.parameter_bytes,
        grads=shape.trainable_bytes,
        optimizer=2 * shape.trainable_bytes,
        activations=tokens * (layers + ends) + head,
    )


def peak_layer_bytes(layers: int, interval: int, per_layer: int, layer_input: int) -> int:
    """Per token, the most the decoder layers hold at once during backward.

    When backward starts every layer holds what it kept: `per_layer` bytes, or only its input when
    checkpointed. A checkpointed layer's backward first recomputes its activations (`per_layer` again);
    by then the layers above it have freed theirs, so the other candidate peak is at the last
    checkpointed layer: the layers below it plus its recomputed activations.
    """
    saved = checkpointed_layers(layers, interval)
    kept = (layers - saved) * per_layer + saved * layer_input
    if not saved:
        return kept
    last = interval * ((layers - 1) // interval)  # index of the last checkpointed layer
    below = (last - (saved - 1)) * per_layer + (saved - 1) * layer_input
    return max(kept, below + per_layer)


def choose_checkpointing(
    estimate_for: Callable[[int], MemoryEstimate], available: int
) -> tuple[int, MemoryEstimate]:
    """The least checkpointing (off, every 4th, every 2nd, every layer) whose estimate fits in HEADROOM x
    `available` bytes, with its estimate; every layer when nothing fits (the OOM report then says why)."""
    for interval in AUTO_INTERVALS:
        estimate = estimate_for(interval)
        if estimate.total <= HEADROOM * available:
            return interval, estimate
    return AUTO_INTERVALS[-1], estimate_for(AUTO_INTERVALS[-1])


def model_shape(model: torch.nn.Module) -> ModelShape:
    """The shape of a transformers causal LM (or a PEFT wrapper of one) as the estimate needs it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    config = getattr(config, "text_config", None) or config
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    params = list(model.parameters())
    return ModelShape(
        parameter_bytes=sum(p.numel() * p.element_size() for p in params),
        trainable_bytes=sum(p.numel() * p.element_size() for p in params if p.requires_grad),
        layers=config.num_hidden_layers,
        hidden=hidden,
        intermediate=getattr(config, "intermediate_size", None) or 4 * hidden,
        kv_hidden=kv_heads * head_dim,
        vocab=config.vocab_size,
    )


def available_memory(device: torch.device, resident_bytes: int = 0) -> int:
    """Bytes a training step may use: on CUDA the free memory plus what this process's allocator holds;
    on CPU the kernel's MemAvailable plus `resident_bytes` (the model, already in RAM)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device)
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 + resident_bytes
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") + resident_bytes


def device_peak_bytes(device: torch.device) -> tuple[int, int | None]:
    """(peak bytes so far, device total or None): CUDA max allocated, or the process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device), torch.cuda.get_device_properties(device).total_memory
    from prefkit_trainers.dpo.telemetry import peak_rss_megabytes

    return int(peak_rss_megabytes() * 1024 * 1024), None


def out_of_memory_message(where: str, plan: MemoryPlan | None, device: torch.device) -> str:
    """One line: what ran out, the breakdown (activations estimated), the peak, and what to change."""
    peak, total = device_peak_bytes(device)
    of_total = f" of {total / GB:.1f} GB" if total else ""
    breakdown = ""
    if plan is not None:
        breakdown = (
            f"{plan.estimate.describe()} (activations estimated for the largest micro-batch, "
            f"{plan.tokens:,} tokens), "
        )
    return (
        f"{device.type.upper()} out of memory during {where}: {breakdown}peak {peak / GB:.1f} GB{of_total}; "
        "lower --batch-size (raise --grad-accum to keep the pairs per step) or set --trainer-option "
        "max_tokens_per_batch=N, use --activation-checkpointing full, or train LoRA adapters with --lora"
    )


@contextlib.contextmanager
def out_of_memory_reported(describe: Callable[[], str]) -> Iterator[None]:
    """Turn a torch.OutOfMemoryError raised inside into TrainingOutOfMemory(describe()): one line."""
    try:
        yield
    except torch.OutOfMemoryError:
        message = describe()
    else:
        return
    # raised outside the handler so the failed step's frames (and their tensors) are released first
    raise TrainingOutOfMemory(message)


@dataclass(frozen=True)
class MemoryPlan:
    """The activation checkpointing a run uses, why, and the estimate the OOM report quotes."""

    interval: int  # 0 off, 1 every layer, K every K-th layer
    estimate: MemoryEstimate
    tokens: int  # model tokens of the largest micro-batch
    available: int | None  # bytes the auto rule compared with (None when checkpointing was set)

    def describe(self, name: str) -> str:
        """One status line: the choice, the estimate and, for auto, the memory it was compared with."""
        line = f"activation checkpointing {name}: estimate {self.estimate.total / GB:.1f} GB "
        line += f"({self.estimate.describe()}; largest micro-batch {self.tokens:,} tokens)"
        if self.available is not None:
            line += f", {self.available / GB:.1f} GB available"
        return line


def plan_memory(
    model: torch.nn.Module,
    tokens: int,
    completion_tokens: int,
    activation_bytes: int,
    device: torch.device,
    interval: int | None,
    shards: int = 1,
) -> MemoryPlan:
    """Estimate the step's memory for `model` over the largest micro-batch; with `interval` None (auto),
    choose the least checkpointing that fits the device. `shards` divides the parameter-sized parts (FSDP)."""
    shape = model_shape(model)
    shape = ModelShape(
        parameter_bytes=shape.parameter_bytes // shards,
        trainable_bytes=shape.trainable_bytes // shards,
        layers=shape.layers,
        hidden=shape.hidden,
        intermediate=shape.intermediate,
        kv_hidden=shape.kv_hidden,
        vocab=shape.vocab,
    )

    def estimate_for(every: int) -> MemoryEstimate:
        return estimate_training_memory(shape, tokens, completion_tokens, activation_bytes, every)

    if interval is not None:
        return MemoryPlan(interval, estimate_for(interval), tokens, None)
    on_host = next(model.parameters()).device.type == "cpu"
    available = available_memory(device, shape.parameter_bytes if on_host and device.type == "cpu" else 0)
    chosen, estimate = choose_checkpointing(estimate_for, available)
    return MemoryPlan(chosen, estimate, tokens, available)


def apply_checkpointing(model: torch.nn.Module, interval: int) -> None:
    """Checkpoint every `interval`-th decoder layer (transformers' per-layer switch); 0 leaves it off."""
    if interval:
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}, every_n_layers=interval
        )
