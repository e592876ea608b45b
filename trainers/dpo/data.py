"""Preference pairs -> token ids -> padded batches that say which hidden state predicts which completion token.

Tokenization goes through `prefkit.chat` so training sees exactly the ids sampling produced: a string
prompt's completion ends with one EOS; a conversation (prompt = message list, chosen / rejected = an
assistant message or a string) is rendered by the one rule, so only the final assistant turn (up to its
end-of-turn token) is a completion and carries loss, while system, history and template tokens are
prompt. Two batch layouts give the same log-probs:

- separate: 2B rows, `prompt + chosen` then `prompt + rejected` (what TRL does);
- shared prefix: B rows, `prompt + chosen + rejected`, where rejected tokens see the prompt but not the
  chosen completion, and position ids that restart after the prompt. The prompt is run once.

A batch says who attends to whom through `segments` (each pair's columns, `segments.py`), not through a
[width x width] mask: prefkit's segment attention reads the spans directly, and only a model that cannot
run it gets the dense mask built from them (`segment_attention.fit_attention`).

Either way a batch carries, for every completion token, the (row, column) of the hidden state that
predicts it, its target id and its sequence index (chosen i -> i, rejected i -> B + i), so the loss
needs logits for completion tokens only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from prefkit_trainers.dpo.segments import PairSpan, RowSegments

from prefkit.chat import encode_answer, encode_prompt
from prefkit.conversation import Message, Prompt, prompt_key
from prefkit.errors import located


@dataclass(frozen=True)
class TokenizedPair:
    """One preference pair as token ids; a completion ends with one EOS unless it was cut (at sampling
    under `--truncated no-eos`, or here by max_length)."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]


def truncate_pair(pair: TokenizedPair, max_length: int) -> TokenizedPair:
    """Fit `prompt + completion` into max_length: keep the prompt's end and the completions' start."""
    longest = max(len(pair.chosen), len(pair.rejected))
    if len(pair.prompt) + longest <= max_length:
        return pair
    completion_budget = min(longest, max(max_length - len(pair.prompt), max_length // 2))
    prompt_budget = max(max_length - completion_budget, 1)
    return TokenizedPair(
        prompt=pair.prompt[-prompt_budget:],
        chosen=pair.chosen[:completion_budget],
        rejected=pair.rejected[:completion_budget],
    )


def tokenize_pairs(
    tokenizer,
    prompts: Sequence[Prompt],
    chosen: Sequence[str | Sequence[Message]],
    rejected: Sequence[str | Sequence[Message]],
    *,
    use_chat_template: bool | None,
    max_length: int,
    eos_chosen: Sequence[bool] | None = None,
    eos_rejected: Sequence[bool] | None = None,
) -> tuple[list[TokenizedPair], int]:
    """Token ids of every pair (prompt rendered as in sampling) and the number of pairs truncated.

    `eos_chosen` / `eos_rejected` are the preferences' per-row flags (all true when absent): a false flag
    leaves that completion without a closing EOS, in every batch layout, since layouts only place ids.
    """
    eos_chosen = [True] * len(chosen) if eos_chosen is None else eos_chosen
    eos_rejected = [True] * len(rejected) if eos_rejected is None else eos_rejected
    prompt_cache: dict[str, list[int]] = {}
    pairs, truncated = [], 0
    rows = zip(prompts, chosen, rejected, eos_chosen, eos_rejected, strict=True)
    for row, (prompt, good, bad, good_eos, bad_eos) in enumerate(rows, start=1):
        key = prompt_key(prompt)
        with located(row=row, field="prompt"):
            if key not in prompt_cache:
                prompt_cache[key] = encode_prompt(tokenizer, prompt, use_chat_template)
        with located(row=row, field="chosen"):
            chosen_ids = encode_answer(tokenizer, prompt, good, use_chat_template, add_eos=good_eos)
        with located(row=row, field="rejected"):
            rejected_ids = encode_answer(tokenizer, prompt, bad, use_chat_template, add_eos=bad_eos)
        pair = TokenizedPair(prompt_cache[key], chosen_ids, rejected_ids)
        fitted = truncate_pair(pair, max_length)
        truncated += fitted is not pair
        pairs.append(fitted)
    return pairs, truncated


def pairs_hash(pairs: Sequence[TokenizedPair]) -> str:
    """Content hash of the token ids (covers data, tokenizer, chat template and max_length at once)."""
    digest = hashlib.sha256()
    for pair in pairs:
        for ids in (pair.prompt, pair.chosen, pair.rejected):
            digest.update(len(ids).to_bytes(4, "little"))
            digest.update(torch.tensor(ids, dtype=torch.int32).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class PairBatch:
    """Model inputs plus the completion-token index that turns hidden states into sequence log-probs."""

    input_ids: torch.Tensor  # [rows, width]
    position_ids: torch.Tensor  # [rows, width]
    # [rows, width] padding mask (separate); None in the other layouts until a model needs the dense
    # [rows, 1, width, width] mask of the fallback path
    attention_mask: torch.Tensor | None
    source_rows: torch.Tensor  # [tokens] row of the hidden state that predicts each completion token
    source_cols: torch.Tensor  # [tokens] its column
    target_ids: torch.Tensor  # [tokens] the completion token ids
    sequence_index: torch.Tensor  # [tokens] chosen i -> i, rejected i -> pairs + i
    chosen_lengths: torch.Tensor  # [pairs] completion tokens
    rejected_lengths: torch.Tensor  # [pairs]
    segments: RowSegments | None = None  # each pair's columns: the attention pattern, as Python ints

    @property
    def num_pairs(self) -> int:
        return int(self.chosen_lengths.numel())

    @property
    def num_tokens(self) -> int:
        """Tokens the model runs on, padding included (what the forward pass costs)."""
        return int(self.input_ids.numel())

    def to(self, device: torch.device | str) -> PairBatch:
        moved = {
            name: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
            for name, value in self.__dict__.items()
        }
        return PairBatch(**moved)

    def model_inputs(self) -> dict:
        """Keyword arguments of the model's forward; the segments go along when no mask stands in for them
        (transformers hands unknown keywords through to the attention function)."""
        inputs = {
            "input_ids": self.input_ids,
            "position_ids": self.position_ids,
            "attention_mask": self.attention_mask,
        }
        if self.segments is not None:
            inputs["pair_segments"] = self.segments
        return inputs


class _IndexBuilder:
    """Collects (row, column, target, sequence) for completion tokens while rows are laid out."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.targets: list[int] = []
        self.sequences: list[int] = []

    def add(
        self, row: int, first_source: int, later_start: int, completion: list[int], sequence: int
    ) -> None:
        """Token 0 is predicted from column first_source; token j > 0 from column later_start + j - 1."""
        for j, token in enumerate(completion):
            self.rows.append(row)
            self.cols.append(first_source if j == 0 else later_start + j - 1)
            self.targets.append(token)
            self.sequences.append(sequence)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(
            torch.tensor(values, dtype=torch.long)
            for values in (self.rows, self.cols, self.targets, self.sequences)
        )


def collate_separate(pairs: Sequence[TokenizedPair], pad_id: int) -> PairBatch:
    """2B right-padded rows: chosen sequences first, then rejected ones."""
    count = len(pairs)
    sequences = [(p.prompt, p.chosen) for p in pairs] + [(p.prompt, p.rejected) for p in pairs]
    width = max(len(prompt) + len(completion) for prompt, completion in sequences)
    input_ids = torch.full((2 * count, width), pad_id, dtype=torch.long)
    attention = torch.zeros((2 * count, width), dtype=torch.long)
    index = _IndexBuilder()
    spans = []
    for row, (prompt, completion) in enumerate(sequences):
        length = len(prompt) + len(completion)
        input_ids[row, :length] = torch.tensor(prompt + completion)
        attention[row, :length] = 1
        index.add(row, len(prompt) - 1, len(prompt), completion, sequence=row)
        spans.append(PairSpan(row, 0, len(prompt), len(completion)))
    positions = torch.arange(width).expand(2 * count, width).clone()
    segments = RowSegments(2 * count, width, tuple(spans))
    return PairBatch(input_ids, positions, attention, *index.tensors(), *_lengths(pairs), segments)


def collate_shared_prefix(pairs: Sequence[TokenizedPair], pad_id: int) -> PairBatch:
    """B rows `prompt + chosen + rejected`; rejected tokens attend to the prompt and themselves only."""
    count = len(pairs)
    width = max(len(p.prompt) + len(p.chosen) + len(p.rejected) for p in pairs)
    input_ids = torch.full((count, width), pad_id, dtype=torch.long)
    positions = torch.zeros((count, width), dtype=torch.long)
    index = _IndexBuilder()
    spans = []
    for row, pair in enumerate(pairs):
        span = PairSpan(row, 0, len(pair.prompt), len(pair.chosen), len(pair.rejected))
        input_ids[row, : span.end] = torch.tensor(pair.prompt + pair.chosen + pair.rejected)
        positions[row, : span.rejected_start] = torch.arange(span.rejected_start)
        positions[row, span.rejected_start : span.end] = torch.arange(
            span.prompt, span.prompt + span.rejected
        )
        positions[row, span.end :] = torch.arange(width - span.end)
        index.add(row, span.prompt - 1, span.prompt, pair.chosen, sequence=row)
        index.add(row, span.prompt - 1, span.rejected_start, pair.rejected, sequence=count + row)
        spans.append(span)
    segments = RowSegments(count, width, tuple(spans))
    return PairBatch(input_ids, positions, None, *index.tensors(), *_lengths(pairs), segments)


def _lengths(pairs: Sequence[TokenizedPair]) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.tensor([len(p.chosen) for p in pairs], dtype=torch.long),
        torch.tensor([len(p.rejected) for p in pairs], dtype=torch.long),
    )


def collate(pairs: Sequence[TokenizedPair], pad_id: int, shared_prefix: bool) -> PairBatch:
    """Build one batch in the chosen layout."""
    return collate_shared_prefix(pairs, pad_id) if shared_prefix else collate_separate(pairs, pad_id)


def epoch_order(count: int, epoch: int, seed: int, shuffle: bool) -> list[int]:
    """Pair order of one epoch: a permutation fixed by (seed, epoch), so a resumed run sees the same order."""
    if not shuffle:
        return list(range(count))
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(count, generator=generator).tolist()


def rank_batches(order: list[int], batch_size: int, rank: int, world_size: int) -> list[list[int]]:
    """Split an epoch into global batches of batch_size * world_size and return this rank's share of each.

    A short last batch is topped up from its own start so every rank runs the same number of steps.
    """
    global_size = batch_size * world_size
    batches = []
    for start in range(0, len(order), global_size):
        chunk = order[start : start + global_size]
        while len(chunk) < world_size:
            chunk = chunk + chunk[: world_size - len(chunk)]
        share = chunk[rank::world_size]
        batches.append(share)
    return batches
