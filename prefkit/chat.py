"""Turning prompts and completions into token ids the same way in every stage (sample, train, eval).

A prompt is one user turn (a string) or a conversation (a list of messages, see prefkit.conversation).
If the tokenizer has a chat template (and `use_chat_template` is on), the prompt is rendered with it plus
the generation prompt; otherwise a string is tokenized as plain text (a conversation needs a template). A
completion is tokenized without special tokens and closed with exactly one EOS (never two: TRL #4481).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefkit.conversation import Prompt, is_conversation, prompt_key
from prefkit.errors import ModelError


def wants_chat_template(tokenizer, use_chat_template: bool | None) -> bool:
    """Resolve 'auto' (None): use the chat template when the tokenizer has one."""
    if use_chat_template is None:
        return bool(getattr(tokenizer, "chat_template", None))
    return use_chat_template


def render_prompt(
    tokenizer, prompt: Prompt, use_chat_template: bool | None = None, system: str | None = None
) -> str:
    """The exact prompt text the model sees (chat template applied, generation prompt added)."""
    if is_conversation(prompt):
        if not wants_chat_template(tokenizer, use_chat_template):
            raise ModelError(
                "a conversational prompt needs a chat template, but the tokenizer has none "
                "(or --no-chat-template was given)"
            )
        messages = ([{"role": "system", "content": system}] if system else []) + list(prompt)
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not wants_chat_template(tokenizer, use_chat_template):
        return prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_prompt(
    tokenizer, prompt: Prompt, use_chat_template: bool | None = None, system: str | None = None
) -> list[int]:
    """Token ids of the rendered prompt (BOS added only when the template or tokenizer adds it)."""
    text = render_prompt(tokenizer, prompt, use_chat_template, system)
    chat = is_conversation(prompt) or wants_chat_template(tokenizer, use_chat_template)
    # a chat template already wrote its special tokens; a plain prompt gets the tokenizer's defaults
    return list(tokenizer(text, add_special_tokens=not chat)["input_ids"])


def encode_completion(tokenizer, completion: str, add_eos: bool = True) -> list[int]:
    """Token ids of a completion followed by a single EOS (none when `add_eos` is false).

    `add_eos=False` is for a completion cut at the token limit under `--truncated no-eos`: it did not
    end, so training must not teach that it did.
    """
    ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    eos = tokenizer.eos_token_id
    if add_eos and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids


def encode_pairs(
    tokenizer, prompts: Sequence[Prompt], completions: Sequence[str], use_chat_template: bool | None = None
) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids) for aligned prompts and completions."""
    cache: dict[str, list[int]] = {}
    pairs = []
    for prompt, completion in zip(prompts, completions, strict=True):
        key = prompt_key(prompt)
        if key not in cache:
            cache[key] = encode_prompt(tokenizer, prompt, use_chat_template)
        pairs.append((cache[key], encode_completion(tokenizer, completion)))
    return pairs
