"""Padding-free batches, and the one switch between the three batch layouts.

padding_free: every pair of a micro-batch goes into ONE row, `prompt_1 chosen_1 rejected_1 prompt_2 ...`,
with no padding. Position ids restart per pair (the rejected completion continues from the end of its
prompt, as in the shared-prefix layout) and a token attends only to earlier tokens of its own pair: the
prompt, and its own completion. Every completion token's log-prob is the one the separate layout gives
(tests/trainers/test_dpo_packing.py checks it, and that changing one pair moves no other pair's log-probs).
The batch carries each pair's span (`segments`), so prefkit's segment attention runs one causal block per
pair and attention costs grow with the number of pairs, not with the square of the row; a model that
cannot run it gets the equivalent block-diagonal [tokens, tokens] mask (`segment_attention`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from prefkit_trainers.dpo.data import (
    PairBatch,
    TokenizedPair,
    _IndexBuilder,
    _lengths,
    collate_separate,
    collate_shared_prefix,
)
from prefkit_trainers.dpo.segments import PairSpan, RowSegments

LAYOUTS = ("separate", "shared_prefix", "padding_free")


def collate_padding_free(pairs: Sequence[TokenizedPair]) -> PairBatch:
    """One row holding every pair back to back; each pair attends within its own span only."""
    count = len(pairs)
    ids: list[int] = []
    positions: list[int] = []
    spans: list[PairSpan] = []
    index = _IndexBuilder()
    for number, pair in enumerate(pairs):
        span = PairSpan(0, len(ids), len(pair.prompt), len(pair.chosen), len(pair.rejected))
        ids += pair.prompt + pair.chosen + pair.rejected
        positions += list(range(span.prompt + span.chosen))
        positions += list(range(span.prompt, span.prompt + span.rejected))
        last_prompt = span.start + span.prompt - 1
        index.add(0, last_prompt, span.start + span.prompt, pair.chosen, sequence=number)
        index.add(0, last_prompt, span.rejected_start, pair.rejected, sequence=count + number)
        spans.append(span)
    segments = RowSegments(1, len(ids), tuple(spans))
    return PairBatch(
        torch.tensor([ids]), torch.tensor([positions]), None, *index.tensors(), *_lengths(pairs), segments
    )


def collate_layout(pairs: Sequence[TokenizedPair], pad_id: int, layout: str) -> PairBatch:
    """Build one batch in `layout`: separate, shared_prefix or padding_free (same log-probs, other cost)."""
    if layout == "separate":
        return collate_separate(pairs, pad_id)
    if layout == "shared_prefix":
        return collate_shared_prefix(pairs, pad_id)
    if layout == "padding_free":
        return collate_padding_free(pairs)
    raise ValueError(f"unknown batch layout '{layout}' (choose from {', '.join(LAYOUTS)})")
