"""Summed completion log-probs per sequence, computing logits for completion tokens only.

A causal LM's full output is a [rows, width, vocab] logits tensor plus a log_softmax over it. DPO needs
one log-prob per completion token, so this module runs the backbone, picks the hidden states that
predict completion tokens and applies the LM head to those alone, chunk by chunk (head_logprobs.py: the
matmul in the model's compute dtype, log-sum-exp in float32, no [tokens x vocab] tensor kept for
backward). The wrapper is an nn.Module so DDP/FSDP see its forward (calling the backbone directly would
bypass their hooks).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from prefkit_trainers.dpo.data import PairBatch
from prefkit_trainers.dpo.head_logprobs import (
    HeadLogProbs,
    chunk_tokens,
    is_plain_linear,
    linear_head_logprobs,
)
from prefkit_trainers.dpo.segment_attention import decoder_inputs, fit_attention, shared_layout_blocker
from torch import nn
from torch.utils.checkpoint import checkpoint

# how log-probs are computed (recorded with cached reference log-probs): the LM head's matmul runs in the
# model's compute dtype (bf16 under bf16 autocast), log-sum-exp and sums in float32
LOGPROB_METHOD = "chunked-head-compute-dtype"

# configs that rescale or cap logits after the LM head; those models take the plain (full-logits) path
LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


class SequenceLogProbs(NamedTuple):
    """Per-sequence outputs ([2 * pairs] each, chosen first): summed log-probs (LD-DPO weighted when asked)
    and, for WPO, the mean aligned log-prob log p(y_t) - log sum_v p(v)^2 (detached), else None."""

    logps: torch.Tensor
    wpo: torch.Tensor | None = None


class CompletionLogProbs(nn.Module):
    """Wraps a causal LM: `forward(batch) -> SequenceLogProbs` of every completion in the batch.

    ld_alpha (LD-DPO): tokens past the shorter completion of a pair count ld_alpha times (None = plain sums).
    wpo: also return the WPO aligned log-probs (one extra no-grad pass over the LM head).
    """

    def __init__(self, causal_lm: nn.Module, ld_alpha: float | None = None, wpo: bool = False) -> None:
        super().__init__()
        self.lm = causal_lm
        self.ld_alpha = ld_alpha
        self.wpo = wpo
        config = getattr(causal_lm, "config", None)
        self.head_only_on_completions = config is not None and not any(
            getattr(config, name, None) is not None for name in LOGIT_TRANSFORMS
        )

    def causal_lm(self) -> nn.Module:
        """The transformers model (below a PEFT wrapper, if any)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    def forward(self, batch: PairBatch) -> SequenceLogProbs:
        aligned = None
        if self.head_only_on_completions:
            model = self.causal_lm()
            hidden = model.get_decoder()(**decoder_inputs(batch, model), use_cache=False).last_hidden_state
            selected = hidden[batch.source_rows, batch.source_cols]
            head = model.get_output_embeddings()
            token_logprobs, aligned = head_logprobs(head, selected, batch.target_ids, aligned=self.wpo)
        else:
            logits = (
                self.lm(**decoder_inputs(batch, self.causal_lm()), use_cache=False)
                .logits[batch.source_rows, batch.source_cols]
                .float()
            )
            token_logprobs = target_logprobs(logits, batch.target_ids)
            if self.wpo:
                aligned = aligned_logprobs(logits.detach(), batch.target_ids)
        sequences = 2 * batch.num_pairs
        weights = None if self.ld_alpha is None else ld_token_weights(batch, self.ld_alpha)
        weighted = token_logprobs if weights is None else token_logprobs * weights
        sums = torch.zeros(sequences, dtype=token_logprobs.dtype, device=token_logprobs.device)
        sums = sums.index_add(0, batch.sequence_index, weighted)
        wpo = None
        if aligned is not None:
            lengths = torch.cat([batch.chosen_lengths, batch.rejected_lengths]).clamp(min=1)
            totals = torch.zeros(sequences, dtype=aligned.dtype, device=aligned.device)
            wpo = totals.index_add(0, batch.sequence_index, aligned) / lengths.to(aligned.dtype)
        return SequenceLogProbs(sums, wpo)


def completion_positions(batch: PairBatch) -> torch.Tensor:
    """Index of every completion token within its completion (0, 1, ...): a batch lists a sequence's
    tokens contiguously and in order, so the position is the offset from the sequence's first token."""
    tokens = batch.sequence_index.numel()
    order = torch.arange(tokens, device=batch.sequence_index.device)
    first = torch.full((2 * batch.num_pairs,), tokens, dtype=torch.long, device=order.device)
    first = first.scatter_reduce(0, batch.sequence_index, order, reduce="amin")
    return order - first[batch.sequence_index]


def ld_token_weights(batch: PairBatch, ld_alpha: float) -> torch.Tensor:
    """LD-DPO (Liu et al. 2024): weight 1 for tokens within the pair's shorter completion, ld_alpha past it."""
    shared = torch.minimum(batch.chosen_lengths, batch.rejected_lengths)
    shared = torch.cat([shared, shared]).to(batch.sequence_index.device)
    beyond = completion_positions(batch) >= shared[batch.sequence_index]
    weights = torch.ones(beyond.shape, dtype=torch.float32, device=beyond.device)
    return weights.masked_fill(beyond, ld_alpha)


def aligned_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """WPO's aligned log-prob per token: log p(target) - log sum_v p(v)^2."""
    log_probs = torch.log_softmax(logits.float(), dim=1)
    return log_probs.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(2 * log_probs, dim=1)


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] per row, without materialising the full log_softmax."""
    return logits.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=1)


def head_logprobs(
    head: nn.Module,
    hidden: torch.Tensor,
    targets: torch.Tensor,
    aligned: bool = False,
    chunk: int | None = None,
) -> HeadLogProbs:
    """Per-token log-probs (and WPO aligned log-probs when asked) through the LM head, one chunk of logits
    alive at a time. A plain linear head takes the fused path (gradients without recomputing the forward
    matmul for the hidden states); any other head module runs itself per chunk, recomputed in backward."""
    if is_plain_linear(head):
        return linear_head_logprobs(head, hidden, targets, aligned=aligned, chunk=chunk)
    chunk = chunk or chunk_tokens(getattr(head, "out_features", 0) or 1)
    recompute = torch.is_grad_enabled() and hidden.requires_grad
    pieces = [
        checkpoint(module_token_logprobs, head, h, t, use_reentrant=False)
        if recompute
        else module_token_logprobs(head, h, t)
        for h, t in zip(hidden.split(chunk), targets.split(chunk), strict=True)
    ]
    logps = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
    wpo = None
    if aligned:
        with torch.no_grad():
            wpo = torch.cat(
                [
                    aligned_logprobs(head(h).float(), t)
                    for h, t in zip(hidden.detach().split(chunk), targets.split(chunk), strict=True)
                ]
            )
    return HeadLogProbs(logps, wpo)


def module_token_logprobs(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log-probs of one chunk through any head module (its matmul in autocast's dtype), float32 log-softmax."""
    return target_logprobs(head(hidden).float(), targets)


def chunked_head_logprobs(
    head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """Per-token log-probs through the LM head (head_logprobs without the WPO values)."""
    return head_logprobs(head, hidden, targets, chunk=chunk).logps


def disable_dropout(model: nn.Module) -> None:
    """DPO compares log-probs of the policy with cached reference values: dropout noise would bias both."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def supports_shared_prefix(causal_lm: nn.Module, longest: int | None = None) -> bool:
    """Shared-prefix and packed batches run on prefkit's segment attention (set in place of sdpa) or on a
    dense mask (sdpa, eager): true when that gives the model's own log-probs for sequences of up to
    `longest` tokens (None: any length); see `segment_attention.shared_layout_blocker`."""
    return shared_layout_blocker(causal_lm, longest) is None


def prepare_attention_mask(batch: PairBatch, causal_lm: nn.Module, dtype: torch.dtype) -> PairBatch:
    """Fit the batch's attention to the model: segment attention where the model can run it, else the dense
    mask (boolean for sdpa, 0 / -inf of `dtype` for eager); see `segment_attention.fit_attention`."""
    return fit_attention(batch, causal_lm, dtype)
