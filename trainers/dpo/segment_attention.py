"""Shared-prompt attention without a dense mask: one causal SDPA block per pair, on the kernels a GPU has.

A shared-prefix or packed row holds `prompt chosen rejected` per pair. Its attention is two causal blocks:

- prompt + chosen over themselves, `is_causal=True`: square, the flash / memory-efficient kernels' case;
- rejected over [prompt keys; rejected keys], causal aligned to the lower right (`causal_lower_right`): query
  j of the rejected answer sees the whole prompt and rejected tokens 0..j. On CUDA torch runs this on the
  flash kernel (its causal flag means lower right for a non-square block) or the memory-efficient one.

No [width x width] mask exists on this path, and a packed row costs the sum of its pairs' blocks, not the
square of the row. prefkit registers the function with transformers' attention interface under
`SEGMENT_ATTENTION` and sets it on a model the first time a batch meets it (`fit_attention`): it replaces
plain `sdpa` attention only. Models it cannot express exactly (sliding windows, soft-capped scores,
attention sinks, or another implementation the user chose, e.g. eager) keep their attention and get the
dense boolean / additive mask built from the same spans; the reason is logged once per model.
transformers does not write the implementation into config.json, so a saved checkpoint still loads with
its own attention.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from prefkit_trainers.dpo.data import PairBatch
from prefkit_trainers.dpo.segments import PairSpan, RowSegments
from torch import nn
from torch.nn.attention.bias import causal_lower_right
from torch.utils._python_dispatch import _disable_current_modes

SEGMENT_ATTENTION = "prefkit_pair_segments"
REPLACEABLE = ("sdpa", None)  # None: a model built without choosing (transformers then defaults to sdpa)
# config fields that change attention in ways one causal block per pair does not reproduce
UNSUPPORTED_CONFIG = {
    "attn_logit_softcapping": "soft-capped attention scores",
    "attention_chunk_size": "chunked attention",
}
UNSUPPORTED_KWARGS = {
    "sliding_window": "a sliding window",
    "softcap": "soft-capping",
    "s_aux": "attention sinks",
}

logger = logging.getLogger(__name__)


def segment_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    segments: RowSegments,
    scale: float | None = None,
    dropout: float = 0.0,
) -> torch.Tensor:
    """Attention output [rows, heads, width, head_dim] of every pair's tokens (padding columns: unused values).

    query [rows, heads, width, head_dim]; key / value may have fewer heads (grouped-query attention).
    """
    groups = query.shape[1] // key.shape[1]
    if segments.one_span_per_row():
        # separate / shared-prefix rows all start at column 0: one batched causal block covers every
        # prompt + chosen part (the columns past a row's own part are other tokens, replaced below)
        head = max(span.rejected_start for span in segments.spans)
        shared = _causal(query[:, :, :head], key[:, :, :head], value[:, :, :head], scale, dropout, groups)
        if all(span.rejected == 0 for span in segments.spans):  # separate rows: padding columns are unused
            return _row([shared], segments)
        rows = []
        for span in segments.spans:
            first = shared[span.row : span.row + 1, :, : span.rejected_start]
            rows.append(
                _row([first, *_rejected_part(query, key, value, span, scale, dropout, groups)], segments)
            )
        return torch.cat(rows)
    pieces: list[list[torch.Tensor]] = [[] for _ in range(segments.rows)]
    filled = [0] * segments.rows
    for span in segments.spans:
        row = span.row
        if span.start > filled[row]:  # a gap: padding between spans
            pieces[row].append(_zeros(query[:1], span.start - filled[row]))
        block = slice(span.start, span.rejected_start)
        q, k, v = (tensor[row : row + 1, :, block] for tensor in (query, key, value))
        pieces[row].append(_causal(q, k, v, scale, dropout, groups))
        pieces[row].extend(_rejected_part(query, key, value, span, scale, dropout, groups))
        filled[row] = span.end
    return torch.cat([_row(row_pieces, segments) for row_pieces in pieces])


def _causal(query, key, value, scale, dropout, groups) -> torch.Tensor:
    """Square causal SDPA; grouped K/V heads go in as they are (enable_gqa), as transformers' sdpa does."""
    return F.scaled_dot_product_attention(
        query, key, value, dropout_p=dropout, is_causal=True, scale=scale, enable_gqa=groups > 1
    )


def _rejected_part(query, key, value, span: PairSpan, scale, dropout, groups) -> list[torch.Tensor]:
    """Output of the rejected tokens: queries over [prompt; rejected] keys, lower-right causal."""
    if span.rejected == 0:
        return []
    row, prompt = slice(span.row, span.row + 1), slice(span.start, span.start + span.prompt)
    rejected = slice(span.rejected_start, span.end)
    q = query[row, :, rejected]
    k = torch.cat([key[row, :, prompt], key[row, :, rejected]], dim=2)
    v = torch.cat([value[row, :, prompt], value[row, :, rejected]], dim=2)
    if groups > 1:  # torch's lower-right dispatch calls the kernels directly, with equal head counts
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    # CausalBias is a tensor subclass: built outside any dispatch mode (FlopCounterMode, ...) that is active
    with _disable_current_modes():
        bias = causal_lower_right(span.rejected, span.prompt + span.rejected)
    return [F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=scale)]


def _zeros(like: torch.Tensor, columns: int) -> torch.Tensor:
    """Zeros shaped like `like` but `columns` wide."""
    return like.new_zeros((like.shape[0], like.shape[1], columns, like.shape[3]))


def _row(pieces: list[torch.Tensor], segments: RowSegments) -> torch.Tensor:
    """Outputs in column order, zero-padded to the batch width."""
    filled = sum(piece.shape[2] for piece in pieces)
    if filled < segments.width:
        pieces = [*pieces, _zeros(pieces[0], segments.width - filled)]
    return torch.cat(pieces, dim=2)


@torch.compiler.disable  # spans are Python ints that change every batch: a compiled graph would recompile
def pair_segment_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    pair_segments: RowSegments | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: segment attention for prefkit batches, plain sdpa for other calls."""
    if pair_segments is None:
        # a call from outside prefkit's batches: transformers builds no mask for a custom implementation, so
        # this is causal attention over unpadded (or right-padded) rows
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    for name, feature in UNSUPPORTED_KWARGS.items():
        if kwargs.get(name) is not None:
            raise ValueError(f"prefkit's segment attention cannot apply {feature} ({name}={kwargs[name]!r})")
    device = query.device.type
    if torch.is_autocast_enabled(device):
        # q / k leave RoPE in float32 when the weights are; the lower-right path picks its kernel before
        # autocast would cast them, so cast here (as autocast does for sdpa)
        dtype = torch.get_autocast_dtype(device)
        query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
    output = segment_attention(query, key, value, pair_segments, scaling, dropout)
    return output.transpose(1, 2).contiguous(), None


def register_segment_attention() -> None:
    """Make SEGMENT_ATTENTION a name transformers' attention interface knows (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(SEGMENT_ATTENTION, pair_segment_attention_forward)


def attention_implementation(causal_lm: nn.Module) -> str | None:
    """The model's configured attention implementation (None when it has no config)."""
    return getattr(getattr(causal_lm, "config", None), "_attn_implementation", None)


def segment_attention_blocker(causal_lm: nn.Module) -> str | None:
    """Why segment attention cannot run this model exactly, or None when it can."""
    implementation = attention_implementation(causal_lm)
    if implementation == SEGMENT_ATTENTION:
        return None
    config = getattr(causal_lm, "config", None)
    if config is None or not hasattr(causal_lm, "set_attn_implementation"):
        return "the model is not a transformers model"
    if implementation not in REPLACEABLE:
        return f"its attention implementation is {implementation!r} (prefkit replaces only 'sdpa')"
    if getattr(config, "sub_configs", None):
        return "it is a composite (multimodal) model"
    if not type(causal_lm)._can_set_attn_implementation():
        return "its attention layers do not go through transformers' attention interface"
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and any(kind != "full_attention" for kind in layer_types):
        return f"it has {sorted(set(layer_types) - {'full_attention'})} layers"
    if layer_types is None and getattr(config, "sliding_window", None) is not None:
        if getattr(config, "use_sliding_window", True):
            return "it uses a sliding attention window"
    for name, feature in UNSUPPORTED_CONFIG.items():
        if getattr(config, name, None) is not None:
            return f"it uses {feature} ({name})"
    if any(hasattr(module, "sinks") for module in causal_lm.modules()):
        return "it uses attention sinks"
    return None


def use_segment_attention(causal_lm: nn.Module) -> bool:
    """Set segment attention on the model when it can run it (once; logs why not otherwise)."""
    if attention_implementation(causal_lm) == SEGMENT_ATTENTION:
        return True
    blocker = segment_attention_blocker(causal_lm)
    if blocker is not None:
        if not getattr(causal_lm, "_prefkit_segment_blocker_logged", False):
            logger.warning("shared-prompt batches use a dense attention mask: %s", blocker)
            causal_lm._prefkit_segment_blocker_logged = True
        return False
    register_segment_attention()
    # kept on the module, not the config: config attributes would be written into config.json
    causal_lm._prefkit_replaced_attention = attention_implementation(causal_lm) or "sdpa"
    causal_lm.set_attn_implementation(SEGMENT_ATTENTION)
    return attention_implementation(causal_lm) == SEGMENT_ATTENTION


def restore_attention_implementation(causal_lm: nn.Module) -> None:
    """Put back the attention segment attention replaced (before using the model for anything else)."""
    replaced = getattr(causal_lm, "_prefkit_replaced_attention", None)
    if replaced is not None and attention_implementation(causal_lm) == SEGMENT_ATTENTION:
        causal_lm.set_attn_implementation(replaced)
        del causal_lm._prefkit_replaced_attention


def fit_attention(batch: PairBatch, causal_lm: nn.Module, dtype: torch.dtype) -> PairBatch:
    """Fit the batch's attention to the model: segments for segment attention (set on the model here when it
    can run it), else a dense mask from the segments (boolean for sdpa, 0 / -inf of `dtype` for eager)."""
    if batch.segments is not None and use_segment_attention(causal_lm):
        # transformers ignores the mask of a custom implementation: the segments say it all
        batch.attention_mask = None
        return batch
    if batch.attention_mask is None:
        if batch.segments is None:
            raise ValueError("a batch needs an attention mask or pair segments")
        batch.attention_mask = batch.segments.dense_mask(batch.input_ids.device)
    batch.segments = None
    mask = batch.attention_mask
    if mask.dim() == 4 and mask.dtype == torch.bool and attention_implementation(causal_lm) == "eager":
        # eager attention adds the mask to the scores
        additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        batch.attention_mask = additive.masked_fill_(~mask, torch.finfo(dtype).min)
    return batch


def decoder_inputs(batch: PairBatch, causal_lm: nn.Module) -> dict:
    """The model's forward arguments for `batch`, attention fitted to the model (see `fit_attention`)."""
    dtype = next(causal_lm.parameters()).dtype
    return fit_attention(batch, causal_lm, dtype).model_inputs()
