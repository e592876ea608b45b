"""Summed completion log-probs per sequence, computing logits for completion tokens only.

A causal LM's full output is a [rows, width, vocab] logits tensor plus a log_softmax over it. DPO needs
one log-prob per completion token, so this module runs the backbone, picks the hidden states that
predict completion tokens, applies the LM head to those alone and takes logsumexp on them. The wrapper
is an nn.Module so DDP/FSDP see its forward (calling the backbone directly would bypass their hooks).
"""

from __future__ import annotations

import torch
from prefkit_trainers.dpo.data import PairBatch
from torch import nn
from torch.utils.checkpoint import checkpoint

# completion tokens per LM-head chunk: [chunk, vocab] float32 logits are the largest activation of a
# small model (49k vocab: 2048 tokens = 400 MB), so only one chunk is alive, recomputed in backward
HEAD_CHUNK_TOKENS = 2048

# configs that rescale or cap logits after the LM head; those models take the plain (full-logits) path
LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


class CompletionLogProbs(nn.Module):
    """Wraps a causal LM: `forward(batch) -> [2 * pairs]` summed log-probs (chosen first, then rejected)."""

    def __init__(self, causal_lm: nn.Module) -> None:
        super().__init__()
        self.lm = causal_lm
        config = getattr(causal_lm, "config", None)
        self.head_only_on_completions = config is not None and not any(
            getattr(config, name, None) is not None for name in LOGIT_TRANSFORMS
        )

    def causal_lm(self) -> nn.Module:
        """The transformers model (below a PEFT wrapper, if any)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    def forward(self, batch: PairBatch) -> torch.Tensor:
        if self.head_only_on_completions:
            model = self.causal_lm()
            hidden = model.get_decoder()(
                input_ids=batch.input_ids,
                position_ids=batch.position_ids,
                attention_mask=batch.attention_mask,
                use_cache=False,
            ).last_hidden_state
            selected = hidden[batch.source_rows, batch.source_cols]
            token_logprobs = chunked_head_logprobs(model.get_output_embeddings(), selected, batch.target_ids)
        else:
            logits = (
                self.lm(
                    input_ids=batch.input_ids,
                    position_ids=batch.position_ids,
                    attention_mask=batch.attention_mask,
                    use_cache=False,
                )
                .logits[batch.source_rows, batch.source_cols]
                .float()
            )
            token_logprobs = target_logprobs(logits, batch.target_ids)
        sums = torch.zeros(2 * batch.num_pairs, dtype=token_logprobs.dtype, device=token_logprobs.device)
        return sums.index_add(0, batch.sequence_index, token_logprobs)


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] per row, without materialising the full log_softmax."""
    return logits.gather(1, targets.unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=1)


def head_token_logprobs(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return target_logprobs(head(hidden).float(), targets)


def chunked_head_logprobs(
    head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor, chunk: int = HEAD_CHUNK_TOKENS
) -> torch.Tensor:
    """Per-token log-probs through the LM head in chunks; under autograd each chunk's logits are
    recomputed in backward instead of kept from forward (same values, one chunk alive at a time)."""
    recompute = torch.is_grad_enabled() and hidden.requires_grad
    pieces = [
        checkpoint(head_token_logprobs, head, h, t, use_reentrant=False)
        if recompute
        else head_token_logprobs(head, h, t)
        for h, t in zip(hidden.split(chunk), targets.split(chunk), strict=True)
    ]
    return torch.cat(pieces)


def disable_dropout(model: nn.Module) -> None:
    """DPO compares log-probs of the policy with cached reference values: dropout noise would bias both."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def supports_shared_prefix(causal_lm: nn.Module) -> bool:
    """Shared-prefix batches need a custom 4D mask: sdpa and eager attention take one, flash kernels do not."""
    implementation = getattr(getattr(causal_lm, "config", None), "_attn_implementation", None)
    return implementation in ("sdpa", "eager", None)


def prepare_attention_mask(batch: PairBatch, causal_lm: nn.Module, dtype: torch.dtype) -> PairBatch:
    """Eager attention adds the mask to the scores, so a boolean 4D mask becomes 0 / -inf there."""
    implementation = getattr(getattr(causal_lm, "config", None), "_attn_implementation", None)
    if batch.attention_mask.dim() != 4 or implementation != "eager":
        return batch
    additive = torch.zeros(batch.attention_mask.shape, dtype=dtype, device=batch.attention_mask.device)
    additive.masked_fill_(~batch.attention_mask, torch.finfo(dtype).min)
    batch.attention_mask = additive
    return batch
