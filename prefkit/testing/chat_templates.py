"""Test tokenizers carrying the chat templates of four model families (the templates as those models ship).

`with_chat_style(tokenizer, style)` adds the family's turn tokens as special tokens, sets its BOS/EOS and
writes its template, so one locally trained tokenizer can stand in for SmolLM2/Qwen (ChatML), Llama 3
(header tokens), Mistral (`[INST]`) and Gemma (`<start_of_turn>`) in tests.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass


@dataclass(frozen=True)
class ChatStyle:
    """One family's template, the special tokens it writes, and its BOS / EOS."""

    template: str
    special_tokens: tuple[str, ...]
    bos: str
    eos: str


# SmolLM2-Instruct's template (ChatML with a default system prompt); Qwen2.5's differs only in that text
SMOLLM2_CHATML = ChatStyle(
    template=(
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
        "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    special_tokens=("<|im_start|>", "<|im_end|>"),
    bos="<|im_start|>",
    eos="<|im_end|>",
)

# Meta-Llama-3-8B-Instruct's template
LLAMA3 = ChatStyle(
    template=(
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
        "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
        "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
    special_tokens=("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
    bos="<|begin_of_text|>",
    eos="<|eot_id|>",
)

# Mistral-7B-Instruct-v0.2's template: no system role (roles must alternate, so a system turn raises)
MISTRAL = ChatStyle(
    template=(
        "{{ bos_token }}{% for message in messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
        "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
    ),
    special_tokens=("<s>", "</s>", "[INST]", "[/INST]"),
    bos="<s>",
    eos="</s>",
)

# gemma-2-it's template: raises on a system turn; generation stops at <end_of_turn>
GEMMA = ChatStyle(
    template=(
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}"
        "{% set role = message['role'] %}{% endif %}"
        "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
    ),
    special_tokens=("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
    bos="<bos>",
    eos="<eos>",  # as gemma-2-it ships it; its generation_config also stops at <end_of_turn>
)

CHAT_STYLES = {"chatml": SMOLLM2_CHATML, "llama3": LLAMA3, "mistral": MISTRAL, "gemma": GEMMA}


def with_chat_style(tokenizer, style: str):
    """A copy of `tokenizer` speaking one family's chat format (its turn tokens added as special tokens)."""
    chosen = CHAT_STYLES[style]
    result = copy.deepcopy(tokenizer)
    result.add_special_tokens({"additional_special_tokens": list(chosen.special_tokens)})
    result.bos_token = chosen.bos
    result.eos_token = chosen.eos
    result.chat_template = chosen.template
    return result
