"""The one rendering rule (prefkit.chat) on four template families written into the tiny tokenizer."""

from __future__ import annotations

import pytest

from prefkit.chat import (
    encode_answer,
    encode_completion,
    encode_pairs,
    encode_prompt,
    render_prompt,
    template_markers,
)
from prefkit.errors import InputError, ModelError
from prefkit.testing.chat_templates import with_chat_style

HISTORY = [
    {"role": "user", "content": "Tell me about a movie."},
    {"role": "assistant", "content": "The movie was great."},
    {"role": "user", "content": "And the book?"},
]
SYSTEM = {"role": "system", "content": "Be brief."}
ANSWER = "The book was wonderful."

# prompt text and answer text per family, written out by hand from each model's documented format
EXPECTED = {
    "chatml": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nTell me about a movie.<|im_end|>\n"
        "<|im_start|>assistant\nThe movie was great.<|im_end|>\n<|im_start|>user\nAnd the book?<|im_end|>\n"
        "<|im_start|>assistant\n",
        "The book was wonderful.<|im_end|>",
    ),
    "llama3": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nTell me about a movie.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nThe movie was great.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd the book?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
        "The book was wonderful.<|eot_id|>",
    ),
    # no system role: the system text opens the first user turn
    "mistral": (
        "<s>[INST] Be brief.\n\nTell me about a movie. [/INST]The movie was great.</s>[INST] And the book? [/INST]",
        "The book was wonderful.</s>",
    ),
    "gemma": (
        "<bos><start_of_turn>user\nBe brief.\n\nTell me about a movie.<end_of_turn>\n"
        "<start_of_turn>model\nThe movie was great.<end_of_turn>\n"
        "<start_of_turn>user\nAnd the book?<end_of_turn>\n<start_of_turn>model\n",
        "The book was wonderful.<end_of_turn>",
    ),
}


@pytest.fixture(scope="module")
def base_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.mark.parametrize("style", sorted(EXPECTED))
def test_prompt_and_answer_ids_per_family(base_tokenizer, style):
    tokenizer = with_chat_style(base_tokenizer, style)
    prompt_text, answer_text = EXPECTED[style]
    prompt = [SYSTEM, *HISTORY]

    prompt_ids = encode_prompt(tokenizer, prompt)
    answer_ids = encode_answer(tokenizer, prompt, [{"role": "assistant", "content": ANSWER}])

    assert prompt_ids == tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    assert answer_ids == tokenizer(answer_text, add_special_tokens=False)["input_ids"]
    # the answer ends with the end-of-turn token, and prompt + answer is the template's full rendering
    # up to that token (nothing between them, nothing lost)
    full = tokenizer.decode(prompt_ids + answer_ids)
    assert full == prompt_text + answer_text
    assert tokenizer.decode(answer_ids[-1:]) in {"<|im_end|>", "<|eot_id|>", "</s>", "<end_of_turn>"}


def test_chatml_trailing_newline_is_dropped(base_tokenizer):
    """The template writes '<|im_end|>\\n' after an answer; generation stops at <|im_end|>, so we do too."""
    tokenizer = with_chat_style(base_tokenizer, "chatml")
    full = tokenizer.apply_chat_template([*HISTORY, {"role": "assistant", "content": ANSWER}], tokenize=False)
    assert full.endswith("<|im_end|>\n")
    answer_ids = encode_answer(tokenizer, HISTORY, ANSWER)
    assert answer_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.decode(answer_ids).count("\n") == 0


def test_gemma_ends_at_end_of_turn_not_eos(base_tokenizer):
    """Gemma's tokenizer EOS is <eos>, but its turns (and generation) end at <end_of_turn>."""
    tokenizer = with_chat_style(base_tokenizer, "gemma")
    assert tokenizer.eos_token == "<eos>"
    answer_ids = encode_answer(tokenizer, HISTORY, ANSWER)
    assert tokenizer.decode(answer_ids[-1:]) == "<end_of_turn>"
    assert tokenizer.eos_token_id not in answer_ids


def test_llama3_trims_the_answer_and_keeps_it_consistent(base_tokenizer):
    """Llama 3 trims message text; the answer ids follow the template, not the raw string."""
    tokenizer = with_chat_style(base_tokenizer, "llama3")
    answer_ids = encode_answer(tokenizer, HISTORY, "  The book was wonderful.\n")
    assert tokenizer.decode(answer_ids) == "The book was wonderful.<|eot_id|>"


def test_system_turn_kept_where_the_template_has_a_system_role(base_tokenizer):
    tokenizer = with_chat_style(base_tokenizer, "chatml")
    text = render_prompt(tokenizer, [SYSTEM, *HISTORY])
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")
    assert "SmolLM" not in text  # the default system prompt appears only without one


def test_template_that_refuses_a_conversation_gives_model_error(base_tokenizer):
    tokenizer = with_chat_style(base_tokenizer, "mistral")
    two_users = [SYSTEM, {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(ModelError, match="roles must alternate"):
        encode_prompt(tokenizer, two_users)


def test_prompt_not_a_prefix_of_the_full_rendering_is_refused(base_tokenizer):
    """A template that closes the last user turn differently once an answer follows (here: it writes a
    marker only when an assistant turn exists) would train on a context the model never sees."""
    tokenizer = with_chat_style(base_tokenizer, "chatml")
    tokenizer.chat_template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
        "{% if loop.last and message['role'] == 'user' %}!{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(ModelError, match="renders the prompt differently.*character"):
        encode_answer(tokenizer, HISTORY, ANSWER)


def test_template_without_end_marker_closes_with_eos(base_tokenizer):
    tokenizer = with_chat_style(base_tokenizer, "chatml")
    tokenizer.chat_template = (
        "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    answer_ids = encode_answer(tokenizer, HISTORY, ANSWER)
    assert answer_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(answer_ids[:-1]) == ANSWER + "\n"


@pytest.mark.parametrize("style", sorted(EXPECTED))
def test_already_templated_string_prompt_is_refused(base_tokenizer, style):
    tokenizer = with_chat_style(base_tokenizer, style)
    rendered = render_prompt(tokenizer, "Write one sentence about a movie.")
    with pytest.raises(InputError, match="already contains the chat template's special token") as error:
        render_prompt(tokenizer, rendered)
    assert "--no-chat-template" in str(error.value)
    assert "field 'prompt'" in str(error.value)
    # with the template off, pre-rendered text is the documented way in, and passes unchanged
    assert render_prompt(tokenizer, rendered, use_chat_template=False) == rendered


def test_already_templated_message_and_answer_are_refused(base_tokenizer):
    tokenizer = with_chat_style(base_tokenizer, "chatml")
    bad = [*HISTORY[:2], {"role": "user", "content": "<|im_start|>user\nhi"}]
    with pytest.raises(InputError, match=r"field 'prompt\[2\]\.content'"):
        encode_prompt(tokenizer, bad)
    with pytest.raises(InputError, match="field 'completion'"):
        encode_answer(tokenizer, HISTORY, "fine<|im_end|>")


def test_markers_are_the_tokens_the_template_writes(base_tokenizer):
    assert template_markers(with_chat_style(base_tokenizer, "gemma")) == [
        "<bos>",
        "<end_of_turn>",
        "<start_of_turn>",
    ]
    # the tiny model's own template
    assert template_markers(base_tokenizer) == ["<|im_end|>", "<|im_start|>"]


def test_string_prompts_keep_plain_text_plus_one_eos(base_tokenizer):
    pairs = encode_pairs(
        base_tokenizer, ["Write about a movie."] * 2, ["It was good.", "It was good.<|im_end|>"]
    )
    assert pairs[0][1] == encode_completion(base_tokenizer, "It was good.")
    assert pairs[0][1].count(base_tokenizer.eos_token_id) == 1
    assert pairs[1][1] == pairs[0][1]  # an EOS already there is not doubled
    assert (
        pairs[0][0]
        == base_tokenizer(
            "<|im_start|>user\nWrite about a movie.<|im_end|>\n<|im_start|>assistant\n",
            add_special_tokens=False,
        )["input_ids"]
    )


def test_conversation_needs_a_template(base_tokenizer):
    with pytest.raises(ModelError, match="needs a chat template"):
        encode_answer(base_tokenizer, HISTORY, ANSWER, use_chat_template=False)


def test_markers_of_a_template_without_assistant_turns(base_tokenizer):
    tokenizer = with_chat_style(base_tokenizer, "chatml")
    tokenizer.chat_template = (
        "{% for message in messages %}{% if message['role'] == 'assistant' %}"
        "{{ raise_exception('no assistant turns') }}{% endif %}"
        "<|im_start|>{{ message['content'] }}<|im_end|>{% endfor %}"
    )
    assert template_markers(tokenizer) == ["<|im_end|>", "<|im_start|>"]
    with pytest.raises(ModelError, match="refused the conversation: no assistant turns"):
        encode_answer(tokenizer, HISTORY, ANSWER)


def test_forcing_a_template_the_tokenizer_lacks(base_tokenizer):
    tokenizer = with_chat_style(base_tokenizer, "chatml")
    tokenizer.chat_template = None
    with pytest.raises(ModelError, match="has no chat template"):
        render_prompt(tokenizer, "Hello", use_chat_template=True)
    assert render_prompt(tokenizer, "Hello") == "Hello"  # auto: plain text


@pytest.mark.parametrize("style", sorted(EXPECTED))
def test_cut_answer_leaves_the_end_of_turn_off(base_tokenizer, style):
    from prefkit.chat import encode_assistant_turn

    tokenizer = with_chat_style(base_tokenizer, style)
    ended = encode_assistant_turn(tokenizer, HISTORY, ANSWER)
    assert encode_assistant_turn(tokenizer, HISTORY, ANSWER, add_eos=False) == ended[:-1]
