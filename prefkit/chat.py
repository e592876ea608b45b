"""Turning prompts and completions into token ids the same way in every stage (sample, train, label, eval).

A prompt is one user turn (a string) or a conversation (a list of messages, see prefkit.conversation).
If the tokenizer has a chat template (and `use_chat_template` is on), the prompt is rendered with it plus
the generation prompt; otherwise a string is tokenized as plain text (a conversation needs a template).

The one rule for a conversational answer (docs/conversations.md):

- prompt ids = the template's rendering of the history with the generation prompt;
- completion ids = the rest of the rendering of history + assistant message (the prompt rendering must
  be a prefix of it, else ModelError), cut right after the end-of-turn token the template writes
  (`<|im_end|>`, `<|eot_id|>`, `</s>`, `<end_of_turn>`). Text the template writes after that token
  (ChatML's and Gemma's trailing newline) is dropped: generation stops at the end-of-turn token, so
  the model never produces that text at inference and must not be trained to.

A string prompt's completion is tokenized as plain text and closed with exactly one EOS (never two: TRL
#4481). A template that rejects a `system` turn (Mistral, Gemma) gets the system text merged into the
first user turn; a prompt that already holds the template's special tokens is refused, since applying
the template again would wrap it twice.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from prefkit.conversation import Conversation, Message, Prompt, completion_text, is_conversation, prompt_key
from prefkit.errors import InputError, ModelError

# the special tokens each tokenizer's template writes, computed once per tokenizer and template
_MARKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PROBE = [
    {"role": "user", "content": "x"},
    {"role": "assistant", "content": "y"},
    {"role": "user", "content": "z"},
]


def wants_chat_template(tokenizer, use_chat_template: bool | None) -> bool:
    """Resolve 'auto' (None): use the chat template when the tokenizer has one."""
    if use_chat_template is None:
        return bool(getattr(tokenizer, "chat_template", None))
    return use_chat_template


def conversation_messages(prompt: Prompt, system: str | None = None) -> Conversation:
    """The message list a prompt stands for: a string is one user turn; `system` goes first when given."""
    messages = list(prompt) if is_conversation(prompt) else [{"role": "user", "content": prompt}]
    return ([{"role": "system", "content": system}] if system else []) + messages


def merge_system_turn(messages: Sequence[Message]) -> Conversation:
    """The system text prepended (blank line between) to the first user turn, for templates without a
    system role; this is what Gemma 3's own template does."""
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{system}\n\n{message['content']}"
            return rest
    raise ModelError(
        "the chat template has no system role and the conversation has no user turn to merge it into"
    )


def apply_template(tokenizer, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
    """Render messages with the tokenizer's chat template; a template that raises on a leading system turn
    is retried with that turn merged into the first user turn (merge_system_turn)."""
    from jinja2.exceptions import TemplateError

    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            "the tokenizer has no chat template", hint="pass string prompts with --no-chat-template"
        )

    def render(turns: Sequence[Message]) -> str:
        return tokenizer.apply_chat_template(
            list(turns), tokenize=False, add_generation_prompt=add_generation_prompt
        )

    try:
        return render(messages)
    except TemplateError as error:
        if messages[0]["role"] != "system":
            raise ModelError(f"the chat template refused the conversation: {error}") from None
        try:
            return render(merge_system_turn(messages))
        except TemplateError as merged_error:
            raise ModelError(f"the chat template refused the conversation: {merged_error}") from None


def special_token_ids(tokenizer) -> set[int]:
    """Ids of the tokenizer's special tokens (BOS/EOS/PAD and added tokens marked special)."""
    ids = set(tokenizer.all_special_ids)
    for token_id, token in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(token, "special", False):
            ids.add(token_id)
    return ids


def template_markers(tokenizer) -> list[str]:
    """The special tokens the chat template writes around turns (e.g. '<|im_start|>', '[INST]')."""
    template = tokenizer.chat_template
    cached = _MARKERS.get(tokenizer)
    if cached is not None and cached[0] == template:
        return cached[1]
    try:
        probe = apply_template(tokenizer, _PROBE, add_generation_prompt=True)
    except ModelError:  # a template that takes no assistant turns still shows its markers on one user turn
        probe = apply_template(tokenizer, _PROBE[:1], add_generation_prompt=True)
    ids = tokenizer(probe, add_special_tokens=False)
    special = special_token_ids(tokenizer)
    markers = sorted({tokenizer.decode([i]) for i in ids["input_ids"] if i in special} - {""})
    _MARKERS[tokenizer] = (template, markers)
    return markers


def refuse_templated(tokenizer, value: Prompt, field: str = "prompt") -> None:
    """Raise InputError when a prompt (or answer) already holds the template's special tokens: text
    rendered by hand would be wrapped twice, and a reward model would score the doubled text."""
    markers = template_markers(tokenizer)
    texts = (
        [(field, value)]
        if isinstance(value, str)
        else [(f"{field}[{index}].content", message["content"]) for index, message in enumerate(value)]
    )
    for where, text in texts:
        found = [marker for marker in markers if marker in text]
        if found:
            raise InputError(
                f"already contains the chat template's special token {found[0]!r}",
                field=where,
                hint="pass the raw text or a message list and let prefkit apply the template, "
                "or pass --no-chat-template to use pre-rendered text as is",
            )


def render_prompt(
    tokenizer, prompt: Prompt, use_chat_template: bool | None = None, system: str | None = None
) -> str:
    """The exact prompt text the model sees (chat template applied, generation prompt added)."""
    if not wants_chat_template(tokenizer, use_chat_template):
        if is_conversation(prompt):
            raise ModelError(
                "a conversational prompt needs a chat template, but the tokenizer has none "
                "(or --no-chat-template was given)"
            )
        return prompt
    refuse_templated(tokenizer, prompt)
    return apply_template(tokenizer, conversation_messages(prompt, system), add_generation_prompt=True)


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


def render_assistant_turn(tokenizer, prompt: Conversation, answer: str, system: str | None = None) -> str:
    """What the template writes for `answer` after the rendered prompt (its end-of-turn token and any
    text after it included); ModelError when the prompt rendering is not a prefix of the full one."""
    messages = conversation_messages(prompt, system)
    turn = {"role": "assistant", "content": answer}
    refuse_templated(tokenizer, prompt)
    refuse_templated(tokenizer, answer, field="completion")
    prompt_text = apply_template(tokenizer, messages, add_generation_prompt=True)
    full_text = apply_template(tokenizer, [*messages, turn], add_generation_prompt=False)
    if not full_text.startswith(prompt_text):
        at = next(
            (i for i, (a, b) in enumerate(zip(prompt_text, full_text, strict=False)) if a != b),
            min(len(prompt_text), len(full_text)),
        )
        raise ModelError(
            "the chat template renders the prompt differently once the answer follows it "
            f"(first difference at character {at}: {prompt_text[at : at + 20]!r} vs "
            f"{full_text[at : at + 20]!r}), so the trained context would not be the one the model sees",
            hint="use a template whose generation prompt is a prefix of the full conversation, "
            "or render the text yourself and pass --no-chat-template",
        )
    return full_text[len(prompt_text) :]


def encode_assistant_turn(
    tokenizer, prompt: Conversation, answer: str, system: str | None = None, *, add_eos: bool = True
) -> list[int]:
    """Completion ids of a conversational answer: the template's assistant turn after the prompt, ending
    with the end-of-turn token (what follows it is dropped; a template that writes none gets one EOS).

    `add_eos=False` leaves the end-of-turn token off, for an answer cut by the token limit: the model did
    not end its turn there, so it must not learn to."""
    rendered = render_assistant_turn(tokenizer, prompt, answer, system)
    ids = list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    special = special_token_ids(tokenizer)
    seen_text = False
    for index, token in enumerate(ids):
        if token in special and seen_text:
            return ids[: index + 1] if add_eos else ids[:index]
        seen_text = seen_text or token not in special
    eos = tokenizer.eos_token_id
    return ids + ([eos] if eos is not None and add_eos else [])


def encode_answer(
    tokenizer,
    prompt: Prompt,
    completion: str | Sequence[Message],
    use_chat_template: bool | None = None,
    *,
    add_eos: bool = True,
) -> list[int]:
    """Completion ids under the one rule: a conversational prompt gets the template's assistant turn, a
    string prompt gets the plain text plus one EOS (as sampling produced it). `add_eos=False` leaves the
    closing EOS / end-of-turn token off (a completion cut at the token limit)."""
    text = completion_text(completion)
    if is_conversation(prompt):
        if not wants_chat_template(tokenizer, use_chat_template):
            raise ModelError("a conversational prompt needs a chat template (--no-chat-template was given)")
        return encode_assistant_turn(tokenizer, prompt, text, add_eos=add_eos)
    return encode_completion(tokenizer, text, add_eos=add_eos)


def encode_pairs(
    tokenizer,
    prompts: Sequence[Prompt],
    completions: Sequence[str | Sequence[Message]],
    use_chat_template: bool | None = None,
) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, completion ids) for aligned prompts and completions."""
    cache: dict[str, list[int]] = {}
    pairs = []
    for prompt, completion in zip(prompts, completions, strict=True):
        key = prompt_key(prompt)
        if key not in cache:
            cache[key] = encode_prompt(tokenizer, prompt, use_chat_template)
        pairs.append((cache[key], encode_answer(tokenizer, prompt, completion, use_chat_template)))
    return pairs
