"""Helpers both backends share: prompt token ids that fit the model, and seeds derived per request."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from prefkit.chat import encode_prompt
from prefkit.conversation import Prompt
from prefkit.errors import InputError

MAX_SEED = 2**31 - 1


class PromptTooLongError(InputError):
    """A prompt leaves no room for a completion; `index` is its position in the list given."""

    def __init__(self, index: int, num_tokens: int, max_model_len: int) -> None:
        self.index = index
        self.num_tokens = num_tokens
        self.max_model_len = max_model_len
        super().__init__(
            f"prompt {index} is {num_tokens} tokens, but the model takes at most {max_model_len} "
            "(prompt + completion)",
            field="prompt",
            hint="shorten the prompt or raise --max-model-len if the model supports it",
        )


def encode_prompts(
    tokenizer, prompts: Sequence[Prompt], use_chat_template: bool | None, max_model_len: int
) -> list[list[int]]:
    """Token ids of each prompt as the model sees it; raise PromptTooLongError if one cannot fit."""
    encoded = []
    for index, prompt in enumerate(prompts):
        ids = encode_prompt(tokenizer, prompt, use_chat_template)
        if len(ids) >= max_model_len:
            raise PromptTooLongError(index, len(ids), max_model_len)
        encoded.append(ids)
    return encoded


def derive_seed(base: int, *keys: object) -> int:
    """A stable 31-bit seed from a base seed and keys (same inputs -> same seed, on any machine)."""
    text = "/".join(str(part) for part in (base, *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % MAX_SEED
