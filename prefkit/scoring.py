"""Sequence log-probs of completions under a causal LM (prompt tokens masked out).

Used by evaluators (KL to the reference) and tests; the DPO trainer has its own fused path.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefkit.chat import encode_pairs
from prefkit.conversation import Prompt


def completion_log_softmax(model, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int = 8):
    """For each (prompt ids, completion ids) pair: (its index, the float32 log-softmax rows at the positions
    that predict its completion tokens [tokens, vocab], those tokens). Pairs run in right-padded batches,
    shortest first; the log-softmax covers only each pair's completion rows (the vocabulary is the large
    dimension). A completion's first token is predicted from the prompt's last, so with an empty prompt it
    has no row and is left out."""
    import torch

    device = next(model.parameters()).device
    pad_id = 0
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            sequences = [pairs[i][0] + pairs[i][1] for i in batch]
            width = max(len(s) for s in sequences)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, sequence in enumerate(sequences):
                input_ids[row, : len(sequence)] = torch.tensor(sequence)
                attention[row, : len(sequence)] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            for row, index in enumerate(batch):
                first = max(len(pairs[index][0]), 1)  # position of the first predicted completion token
                length = len(sequences[row])
                rows = logits[row, first - 1 : length - 1].float().log_softmax(-1)
                targets = torch.tensor(sequences[row][first:length], dtype=torch.long, device=rows.device)
                yield index, rows, targets


def completion_logprobs_from_ids(
    model, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int = 8
) -> list[float]:
    """Summed log-probs of each completion given its prompt, from (prompt ids, completion ids) pairs."""
    results: list[float] = [0.0] * len(pairs)
    for index, rows, targets in completion_log_softmax(model, pairs, batch_size):
        results[index] = float(rows.gather(1, targets.unsqueeze(1)).sum())
    return results


def completion_logprobs(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    completions: Sequence[str],
    *,
    use_chat_template: bool | None = None,
    batch_size: int = 8,
) -> list[float]:
    """Summed log-probs of each completion (closed by one EOS) given its prompt, rendered as in sampling."""
    pairs = encode_pairs(tokenizer, prompts, completions, use_chat_template)
    return completion_logprobs_from_ids(model, pairs, batch_size=batch_size)
