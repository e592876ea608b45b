"""Micro-batches sized by tokens: the pairs of one optimizer step, sorted by length, cut at a token budget.

With `max_tokens_per_batch` set, an optimizer step still trains the same pairs as without it (batch_size x
grad_accum pairs per process, in the epoch's order fixed by (seed, epoch)), so the learning-rate schedule,
the resume position (pairs of the epoch done) and the step's gradient from the per-pair losses do not
change; only how those pairs are cut into micro-batches does. Terms averaged per token within a
micro-batch (RPO's `sft` term, the logged per-token means) are weighted by how the step is cut, so with a
token budget they differ slightly from the same step without one. Within a step the pairs are sorted longest first (ties by index, so the
cut is reproducible) and micro-batches are filled up to the budget, counted as the tokens the forward
pass runs in the batch layout, padding included. A pair longer than the budget runs alone.

Processes must run the same number of micro-batches per step (FSDP gathers weights in every forward), so
a process that needs fewer splits its largest micro-batches in two; one with fewer pairs than micro-batches
gets empty ones, which the loop runs on one of its pairs with weight zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefkit_trainers.dpo.data import TokenizedPair


def pair_width(pair: TokenizedPair, layout: str) -> int:
    """Columns one pair needs in its row(s): the longer of prompt + chosen / prompt + rejected for separate
    rows, prompt + chosen + rejected for the shared-prefix and padding-free layouts."""
    if layout == "separate":
        return len(pair.prompt) + max(len(pair.chosen), len(pair.rejected))
    return len(pair.prompt) + len(pair.chosen) + len(pair.rejected)


def longest_sequence(pairs: Sequence[TokenizedPair]) -> int:
    """Tokens of the longest prompt + completion among `pairs` (0 for none)."""
    return max((pair_width(pair, "separate") for pair in pairs), default=0)


def batch_tokens(pairs: Sequence[TokenizedPair], layout: str) -> int:
    """Tokens the forward pass runs on for these pairs in `layout`, padding included."""
    if not pairs:
        return 0
    widths = [pair_width(pair, layout) for pair in pairs]
    if layout == "padding_free":
        return sum(widths)
    rows_per_pair = 2 if layout == "separate" else 1
    return rows_per_pair * len(pairs) * max(widths)


def split_by_tokens(
    indices: Sequence[int], pairs: Sequence[TokenizedPair], layout: str, budget: int
) -> list[list[int]]:
    """`indices` sorted longest first and cut into micro-batches of at most `budget` tokens each."""
    widths = {i: pair_width(pairs[i], layout) for i in indices}
    order = sorted(indices, key=lambda i: (-widths[i], i))
    rows_per_pair = 2 if layout == "separate" else 1
    batches: list[list[int]] = []
    current: list[int] = []
    summed = widest = 0
    for index in order:
        width = widths[index]
        if layout == "padding_free":
            tokens = summed + width
        else:
            tokens = rows_per_pair * (len(current) + 1) * max(widest, width)
        if current and tokens > budget:
            batches.append(current)
            current, summed, widest = [], 0, 0
        current.append(index)
        summed, widest = summed + width, max(widest, width)
    if current:
        batches.append(current)
    return batches


def balanced_micro_batches(
    shares: Sequence[Sequence[int]], pairs: Sequence[TokenizedPair], layout: str, budget: int
) -> list[list[list[int]]]:
    """Every process's share of one step cut by the budget, all into the same number of micro-batches."""
    splits = [split_by_tokens(share, pairs, layout, budget) for share in shares]
    count = max(len(split) for split in splits)
    for split in splits:
        while len(split) < count:
            largest = max(range(len(split)), key=lambda j: (len(split[j]), -j))
            batch = split[largest]
            if len(batch) < 2:
                split.append([])  # nothing left to split: an empty micro-batch (weight zero)
                continue
            half = (len(batch) + 1) // 2
            split[largest : largest + 1] = [batch[:half], batch[half:]]
    return splits
