"""Per-token log-probs through a linear LM head, chunk by chunk, without keeping [tokens x vocab] logits.

logits = hidden @ W^T (+ b) run in the compute dtype (bf16 under bf16 autocast or bf16 weights: tensor
cores, fp32 accumulation; float32 for a float32 model), log-sum-exp and the target's log-prob in float32.
Only one chunk of logits is alive at a time, forward or backward.

Gradients. d log p(y_t) / d logits_t = onehot(y_t) - softmax_t, so with upstream gradient g_t:
  grad hidden_t = g_t * (onehot - softmax)_t @ W          (linear in the scalar g_t)
  grad W        = sum_t g_t * (onehot - softmax)_t^T h_t   (g_t weights each token inside the sum)
The first is taken in the forward pass and stored as [tokens x hidden]; backward scales it by g_t. The
second cannot be: the loss (any function of the summed log-probs, e.g. AOT sorts over the batch) gives
g_t only after every chunk ran, and summing over tokens before g_t is known loses it (Liger-Kernel's
reduction="none" bug, fixed in its PR #1298). Keeping (onehot - softmax) for every token would be the
[tokens x vocab] tensor this module avoids, so backward recomputes the logits of each chunk once (in the
compute dtype) for the weight gradient. FLOPs per completion token, N = hidden x vocab:
  trainable head: forward 2N logits + 2N grad hidden, backward 2N recompute + 2N grad W  = 8N
  frozen head (LoRA): forward 2N + 2N, backward a scale                                  = 4N
  no grad (reference pass): 2N
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import nn

# elements of one chunk of float32 logits: 2**27 = 512 MB (128k vocabulary: 1024 tokens per chunk)
HEAD_CHUNK_ELEMENTS = 2**27
MIN_CHUNK_TOKENS = 64


class HeadLogProbs(NamedTuple):
    """Per-token float32 outputs: log p(target) (differentiable) and, when asked, WPO's aligned
    log-prob log p(target) - log sum_v p(v)^2 (detached), else None."""

    logps: torch.Tensor
    aligned: torch.Tensor | None = None


def chunk_tokens(vocab: int) -> int:
    """Tokens per chunk so that one chunk of float32 logits stays within HEAD_CHUNK_ELEMENTS."""
    return max(MIN_CHUNK_TOKENS, HEAD_CHUNK_ELEMENTS // max(vocab, 1))


def compute_dtype(weight: torch.Tensor, device_type: str) -> torch.dtype:
    """The dtype matmuls run in here: autocast's when it is on (bf16 tensor cores), else the weights'."""
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return weight.dtype


def is_plain_linear(head: nn.Module) -> bool:
    """True for an nn.Linear with its own forward (a LoRA or wrapped head runs its module instead)."""
    return isinstance(head, nn.Linear) and type(head).forward is nn.Linear.forward


@functools.cache
def float32_output_supported(device_type: str, dtype: torch.dtype) -> bool:
    """True where torch.mm returns a float32 product of bf16/fp16 inputs (CUDA): the logits then skip a
    rounding to bf16 that moves each by up to 2**-9 of its size."""
    if device_type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        return False
    probe = torch.ones(2, 2, dtype=dtype, device=device_type)
    try:
        return torch.mm(probe, probe, out_dtype=torch.float32).dtype == torch.float32
    except (RuntimeError, TypeError):  # older torch: no out_dtype overload
        return False


def matmul_float32(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """left @ right in their dtype with float32 accumulation, returned in float32."""
    if float32_output_supported(left.device.type, left.dtype):
        return torch.mm(left, right, out_dtype=torch.float32)
    return (left @ right).float()


def chunk_logits(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """float32 logits of one chunk from a matmul in `dtype` (weight already cast to it)."""
    logits = matmul_float32(hidden.to(dtype), weight.t())
    if bias is not None:
        logits += bias.float()
    return logits


def logprob_stats(
    logits: torch.Tensor, targets: torch.Tensor, aligned: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(log-sum-exp, log p(target), WPO aligned log-prob or None) of float32 logits, one row per token."""
    lse = torch.logsumexp(logits, dim=1)
    target = logits.gather(1, targets.unsqueeze(1)).squeeze(1) - lse
    wpo = None
    if aligned:  # log sum_v p(v)^2 = logsumexp(2 * (logits - lse))
        wpo = target - torch.logsumexp(2 * (logits - lse.unsqueeze(1)), dim=1)
    return lse, target, wpo


def onehot_minus_softmax(logits: torch.Tensor, lse: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d log p(target) / d logits in float32, computed in place over `logits` (which it consumes)."""
    grad = logits.sub_(lse.unsqueeze(1)).exp_().neg_()
    rows = torch.arange(targets.numel(), device=targets.device)
    grad[rows, targets] += 1.0
    return grad


def forward_chunks(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    chunk: int,
    dtype: torch.dtype,
    aligned: bool,
    hidden_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(log p(target), log-sum-exp, WPO aligned or None, d log p / d hidden or None) per token, one chunk
    of logits alive at a time; the hidden gradient costs one more matmul per chunk, only when asked."""
    w = weight.to(dtype)
    logps, lses, wpos, hidden_grads = [], [], [], []
    with torch.autocast(hidden.device.type, enabled=False):
        for h, t in zip(hidden.split(chunk), targets.split(chunk), strict=True):
            logits = chunk_logits(h, w, bias, dtype)
            lse, target, wpo = logprob_stats(logits, t, aligned)
            logps.append(target)
            lses.append(lse)
            if wpo is not None:
                wpos.append(wpo)
            if hidden_grad:
                hidden_grads.append(matmul_float32(onehot_minus_softmax(logits, lse, t).to(dtype), w))
            del logits
    return (
        torch.cat(logps),
        torch.cat(lses),
        torch.cat(wpos) if wpos else None,
        torch.cat(hidden_grads) if hidden_grads else None,
    )


class _ChunkedHeadLogProbs(torch.autograd.Function):
    """Forward: per-token log-probs and the grad-wrt-hidden pieces, chunk by chunk. Backward: scale those
    by the upstream gradient; recompute each chunk's logits once for the head's weight (and bias)."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk, dtype, aligned):
        logps, lse, wpo, hidden_grad = forward_chunks(
            hidden, weight, bias, targets, chunk, dtype, aligned, hidden_grad=ctx.needs_input_grad[0]
        )
        ctx.chunk, ctx.dtype = chunk, dtype
        ctx.save_for_backward(hidden, weight, bias, targets, lse, hidden_grad)
        out_aligned = logps.new_empty(0) if wpo is None else wpo
        ctx.mark_non_differentiable(out_aligned)
        return logps, out_aligned

    @staticmethod
    def backward(ctx, grad_logps, _grad_aligned):
        hidden, weight, bias, targets, lse, hidden_grad = ctx.saved_tensors
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = (grad_logps.unsqueeze(1) * hidden_grad).to(hidden.dtype)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_weight, grad_bias = head_weight_grads(
                hidden, weight, bias, targets, lse, grad_logps, ctx.chunk, ctx.dtype
            )
            grad_weight = grad_weight.to(weight.dtype) if ctx.needs_input_grad[1] else None
            grad_bias = grad_bias.to(bias.dtype) if ctx.needs_input_grad[2] else None
        return grad_hidden, grad_weight, grad_bias, None, None, None, None


def head_weight_grads(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    lse: torch.Tensor,
    upstream: torch.Tensor,
    chunk: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """sum_t g_t (onehot - softmax)_t^T h_t (and its bias part) in float32, each chunk's logits recomputed
    once in `dtype` from the saved log-sum-exp."""
    w = weight.to(dtype)
    grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
    grad_bias = None if bias is None else torch.zeros(bias.shape, dtype=torch.float32, device=bias.device)
    with torch.autocast(hidden.device.type, enabled=False):
        splits = (hidden.split(chunk), targets.split(chunk), lse.split(chunk), upstream.split(chunk))
        for h, t, chunk_lse, g in zip(*splits, strict=True):
            grad_logits = onehot_minus_softmax(chunk_logits(h, w, bias, dtype), chunk_lse, t)
            grad_logits.mul_(g.float().unsqueeze(1))
            grad_weight += matmul_float32(grad_logits.to(dtype).t(), h.to(dtype))
            if grad_bias is not None:
                grad_bias += grad_logits.sum(0)
    return grad_weight, grad_bias


def linear_head_logprobs(
    head: nn.Linear,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    aligned: bool = False,
    chunk: int | None = None,
) -> HeadLogProbs:
    """log softmax(head(hidden))[target] per row (float32) through a plain linear head, chunked.

    Under autograd the head's weight, bias and `hidden` get exact gradients (see the module docstring);
    without it (the reference pass) only the forward matmuls run."""
    dtype = compute_dtype(head.weight, hidden.device.type)
    chunk = chunk or chunk_tokens(head.weight.shape[0])
    if hidden.shape[0] == 0:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return HeadLogProbs(empty, empty if aligned else None)
    weight, bias = head.weight, head.bias
    tracked = hidden.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    if not (torch.is_grad_enabled() and tracked):
        logps, _, wpo, _ = forward_chunks(
            hidden, weight, bias, targets, chunk, dtype, aligned, hidden_grad=False
        )
        return HeadLogProbs(logps, wpo)
    logps, wpo = _ChunkedHeadLogProbs.apply(hidden, weight, bias, targets, chunk, dtype, aligned)
    return HeadLogProbs(logps, wpo if aligned else None)
