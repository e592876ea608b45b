"""Padding-free batches, and the one switch between the three batch layouts.

padding_free: every pair of a micro-batch goes into ONE row, `prompt_1 chosen_1 rejected_1 prompt_2 ...`,
with no padding. Position ids restart per pair (the rejected completion continues from the end of its
prompt, as in the shared-prefix layout) and a block-diagonal ("document") 4D mask lets a token attend only
to earlier tokens of its own pair: the prompt, and its own completion. Every completion token's log-prob is
the one the separate layout gives (tests/trainers/test_dpo_packing.py checks it, and that changing one pair
moves no other pair's log-probs). The mask goes through sdpa / eager attention, so this works wherever the
shared-prefix layout works; its cost is a [tokens, tokens] boolean mask per micro-batch.
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

LAYOUTS = ("separate", "shared_prefix", "padding_free")
PROMPT, CHOSEN, REJECTED = 0, 1, 2


def collate_padding_free(pairs: Sequence[TokenizedPair]) -> PairBatch:
    """One row holding every pair back to back; a document mask keeps pairs (and completions) apart."""
    count = len(pairs)
    ids: list[int] = []
    positions: list[int] = []
    documents: list[int] = []
    segments: list[int] = []
    index = _IndexBuilder()
    for number, pair in enumerate(pairs):
        start, prompt_length = len(ids), len(pair.prompt)
        chosen_end = start + prompt_length + len(pair.chosen)
        ids += pair.prompt + pair.chosen + pair.rejected
        positions += list(range(prompt_length + len(pair.chosen)))
        positions += list(range(prompt_length, prompt_length + len(pair.rejected)))
        documents += [number] * (len(ids) - start)
        segments += [PROMPT] * prompt_length + [CHOSEN] * len(pair.chosen) + [REJECTED] * len(pair.rejected)
        last_prompt = start + prompt_length - 1
        index.add(0, last_prompt, start + prompt_length, pair.chosen, sequence=number)
        index.add(0, last_prompt, chosen_end, pair.rejected, sequence=count + number)
    document, segment = torch.tensor(documents), torch.tensor(segments)
    width = len(ids)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    same_pair = document.unsqueeze(1) == document.unsqueeze(0)
    visible = (segment.unsqueeze(0) == PROMPT) | (segment.unsqueeze(1) == segment.unsqueeze(0))
    mask = (causal & same_pair & visible).view(1, 1, width, width)
    return PairBatch(torch.tensor([ids]), torch.tensor([positions]), mask, *index.tensors(), *_lengths(pairs))


def collate_layout(pairs: Sequence[TokenizedPair], pad_id: int, layout: str) -> PairBatch:
    """Build one batch in `layout`: separate, shared_prefix or padding_free (same log-probs, other cost)."""
    if layout == "separate":
        return collate_separate(pairs, pad_id)
    if layout == "shared_prefix":
        return collate_shared_prefix(pairs, pad_id)
    if layout == "padding_free":
        return collate_padding_free(pairs)
    raise ValueError(f"unknown batch layout '{layout}' (choose from {', '.join(LAYOUTS)})")
