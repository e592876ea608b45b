"""Sequence log-probs of completions under a causal LM (prompt tokens masked out).

Used by evaluators (KL to the reference) and tests; the DPO trainer has its own fused path.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefkit.chat import encode_pairs
from prefkit.conversation import Prompt


def completion_logprobs_from_ids(
    model, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int = 8
) -> list[float]:
    """Summed log-probs of each completion given its prompt, from (prompt ids, completion ids) pairs."""
    import torch

    device = next(model.parameters()).device
    pad_id = 0
    results: list[float] = [0.0] * len(pairs)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            sequences = [pairs[i][0] + pairs[i][1] for i in batch]
            width = max(len(s) for s in sequences)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            completion_mask = torch.zeros((len(batch), width), dtype=torch.bool)
            for row, index in enumerate(batch):
                prompt, completion = pairs[index]
                length = len(prompt) + len(completion)
                input_ids[row, :length] = torch.tensor(prompt + completion)
                attention[row, :length] = 1
                completion_mask[row, len(prompt) : length] = True
            input_ids, attention, completion_mask = (
                input_ids.to(device),
                attention.to(device),
                completion_mask.to(device),
            )
            logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
            targets = input_ids[:, 1:]
            token_logprobs = torch.gather(logits.log_softmax(-1), 2, targets.unsqueeze(-1)).squeeze(-1)
            sums = (token_logprobs * completion_mask[:, 1:]).sum(-1)
            for row, index in enumerate(batch):
                results[index] = float(sums[row])
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
