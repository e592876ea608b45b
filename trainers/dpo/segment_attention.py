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

import itertools
import logging

import torch
import torch.nn.functional as F
from prefkit_trainers.dpo.data import PairBatch
from prefkit_trainers.dpo.segments import RowSegments
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
    Rows are taken apart with one unbind and columns with one split per tensor: a gradient flowing back
    through a slice is as wide as the sliced tensor, so slicing per pair would cost pairs x width.
    """
    attend = _Attend(query.shape[1] // key.shape[1], scale, dropout)
    width = segments.width
    rows = zip(query.unbind(0), key.unbind(0), value.unbind(0), strict=True)
    if segments.one_span_per_row():
        # separate / shared-prefix rows all start at column 0: one batched causal block covers every
        # prompt + chosen part (a row's columns past its own part are other tokens, replaced below)
        head = max(span.rejected_start for span in segments.spans)
        shared = attend.causal(query[:, :, :head], key[:, :, :head], value[:, :, :head])
        if all(span.rejected == 0 for span in segments.spans):  # separate rows: padding columns are unused
            return _pad(shared, width)
        outputs = []
        for span, first, (q, k, v) in zip(segments.spans, shared.unbind(0), rows, strict=True):
            rejected = slice(span.rejected_start, span.end)
            prompt = slice(0, span.prompt)
            parts = [first[:, : span.rejected_start]]
            if span.rejected:
                parts.append(
                    attend.rejected(
                        q[:, rejected], k[:, prompt], k[:, rejected], v[:, prompt], v[:, rejected]
                    )
                )
            outputs.append(_pad(torch.cat(parts, dim=1), width))
        return torch.stack(outputs)
    outputs = []
    for row, (q, k, v) in enumerate(rows):
        spans = [span for span in segments.spans if span.row == row]
        blocks = [(span.start, span.rejected_start, span.end) for span in spans]
        parts = [*blocks, *((span.start, span.start + span.prompt) for span in spans)]
        q_blocks = _columns(q, blocks, width)
        k_blocks, v_blocks = _columns(k, blocks, width), _columns(v, blocks, width)
        k_parts, v_parts = _columns(k, parts, width), _columns(v, parts, width)
        pieces, filled = [], 0
        for span in spans:
            if span.start > filled:  # padding between spans
                pieces.append(q.new_zeros((q.shape[0], span.start - filled, q.shape[2])))
            start, rejected = span.start, span.rejected_start
            pieces.append(attend.causal(q_blocks[start], k_blocks[start], v_blocks[start]))
            if span.rejected:
                pieces.append(
                    attend.rejected(
                        q_blocks[rejected],
                        k_parts[start],
                        k_parts[rejected],
                        v_parts[start],
                        v_parts[rejected],
                    )
                )
            filled = span.end
        outputs.append(_pad(torch.cat(pieces, dim=1), width))
    return torch.stack(outputs)


class _Attend:
    """The two SDPA calls of segment attention on one pair's [heads, columns, head_dim] pieces."""

    def __init__(self, groups: int, scale: float | None, dropout: float) -> None:
        self.groups, self.scale, self.dropout = groups, scale, dropout

    def causal(self, query, key, value) -> torch.Tensor:
        """Square causal SDPA; grouped K/V heads go in as they are (enable_gqa), as transformers' sdpa does."""
        batched = query.dim() == 4
        if not batched:  # the fused kernels take [batch, heads, columns, head_dim]
            query, key, value = query[None], key[None], value[None]
        output = F.scaled_dot_product_attention(
            query,
            key,
            value,
            dropout_p=self.dropout,
            is_causal=True,
            scale=self.scale,
            enable_gqa=self.groups > 1,
        )
        return output if batched else output[0]

    def rejected(self, query, prompt_key, rejected_key, prompt_value, rejected_value) -> torch.Tensor:
        """Rejected queries over [prompt; rejected] keys, causal aligned to the lower right."""
        key = torch.cat([prompt_key, rejected_key], dim=1)[None]
        value = torch.cat([prompt_value, rejected_value], dim=1)[None]
        if self.groups > 1:  # torch's lower-right dispatch calls the kernels directly, with equal head counts
            key, value = (
                key.repeat_interleave(self.groups, dim=1),
                value.repeat_interleave(self.groups, dim=1),
            )
        # CausalBias is a tensor subclass: build it outside any active dispatch mode (FlopCounterMode, ...)
        with _disable_current_modes():
            bias = causal_lower_right(query.shape[1], key.shape[2])
        output = F.scaled_dot_product_attention(
            query[None], key, value, attn_mask=bias, dropout_p=self.dropout, scale=self.scale
        )
        return output[0]


def _columns(tensor: torch.Tensor, blocks, width: int) -> dict[int, torch.Tensor]:
    """Views of `tensor` [heads, width, head_dim] cut at every boundary in `blocks`, keyed by first column."""
    edges = sorted({0, width, *(edge for block in blocks for edge in block)})
    # split_with_sizes: its backward is one concatenation (tensor_split is per-piece slices, each
    # backward as wide as the tensor)
    pieces = torch.split(tensor, [end - start for start, end in itertools.pairwise(edges)], dim=1)
    return dict(zip(edges[:-1], pieces, strict=True))


def _pad(output: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the column dimension (-2) of `output` to `width`."""
    missing = width - output.shape[-2]
    return output if missing == 0 else F.pad(output, (0, 0, 0, missing))


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


def shared_layout_blocker(causal_lm: nn.Module, longest: int | None = None) -> str | None:
    """Why the shared-prefix and padding-free layouts would not give this model's log-probs (None when they do).

    Both run on segment attention or on the dense mask from the spans. That mask is all a model gets: a
    sliding window or attention chunks are not applied on top of it, and they would be counted in columns,
    not positions, anyway. So a window or chunk that a sequence (`longest` tokens of prompt + completion;
    None: unknown) can reach, or layers that are not attention at all, need separate rows, where transformers
    builds the model's own masks. Flash kernels take no custom mask."""
    implementation = attention_implementation(causal_lm)
    if implementation not in (SEGMENT_ATTENTION, "sdpa", "eager", None):
        return f"its attention implementation is {implementation!r} (the dense mask needs sdpa or eager)"
    config = getattr(causal_lm, "config", None)
    if config is None:
        return None
    layer_types = set(getattr(config, "layer_types", None) or ())
    others = layer_types - {"full_attention", "sliding_attention", "chunked_attention"}
    if others:
        return f"it has {sorted(others)} layers"
    if layer_types:
        sliding = "sliding_attention" in layer_types
        chunked = "chunked_attention" in layer_types
    else:
        sliding = getattr(config, "use_sliding_window", True)
        chunked = True
    spans = {
        "sliding window": getattr(config, "sliding_window", None) if sliding else None,
        "attention chunk": getattr(config, "attention_chunk_size", None) if chunked else None,
    }
    for name, size in spans.items():
        if size is not None and (longest is None or longest > size):
            return f"its {name} of {size} tokens" + ("" if longest is None else f" (sequences of {longest})")
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
