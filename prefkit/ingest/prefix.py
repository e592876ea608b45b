"""Implicit-prompt pairs (only `chosen` and `rejected`): split off the shared prompt.

Message lists split at a turn boundary (the longest common run of whole messages); strings split at a
whitespace boundary inside the common prefix, never mid-word (the whitespace stays with the completion,
as TRL's `extract_prompt` does, so a BPE tokenizer sees ` word` as it would in running text).
"""

from __future__ import annotations

from prefkit.conversation import Conversation


def split_messages(
    chosen: Conversation, rejected: Conversation
) -> tuple[Conversation, dict[str, str], dict[str, str]]:
    """(shared prompt turns, chosen final turn, rejected final turn); ValueError when they do not share
    everything but one final assistant turn each."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    rest_chosen, rest_rejected = chosen[shared:], rejected[shared:]
    if not rest_chosen or not rest_rejected:
        raise ValueError("chosen and rejected do not differ in a final turn")
    if len(rest_chosen) != 1 or len(rest_rejected) != 1:
        raise ValueError(
            f"chosen and rejected differ before their last turn (at turn {shared + 1}); "
            "only the final assistant turn may differ"
        )
    if rest_chosen[0].get("role") != "assistant" or rest_rejected[0].get("role") != "assistant":
        raise ValueError("the turns that differ must be assistant turns")
    if shared == 0:
        raise ValueError("chosen and rejected share no prompt turns")
    return chosen[:shared], rest_chosen[0], rest_rejected[0]


def split_text(chosen: str, rejected: str) -> tuple[str, str, str]:
    """(prompt, chosen completion, rejected completion) split at the last whitespace the two share
    before they differ; ValueError when there is none (the split would cut a word)."""
    common = 0
    limit = min(len(chosen), len(rejected))
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    if common == len(chosen) and common == len(rejected):
        raise ValueError("chosen and rejected are identical")
    # the last position (up to the first difference) where both hold whitespace: a word boundary
    cut = next(
        (i for i in range(min(common, limit - 1), -1, -1) if chosen[i].isspace() and rejected[i].isspace()),
        None,
    )
    if cut is None or not chosen[:cut].strip():
        raise ValueError("chosen and rejected share no prompt that ends at a word boundary")
    # the whitespace run before the first differing word stays with the completions
    while cut > 0 and chosen[cut - 1].isspace():
        cut -= 1
    prompt, good, bad = chosen[:cut], chosen[cut:], rejected[cut:]
    if not good.strip() or not bad.strip():
        raise ValueError("a completion is empty after the shared prompt is split off")
    return prompt, good, bad
