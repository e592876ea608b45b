"""Sampling conversational prompts: the whole history goes through the chat template, candidates keep it."""

from __future__ import annotations

import json
import shutil

import pytest

from prefkit.artifacts import open_artifact
from prefkit.conversation import CONVERSATION_DTYPE
from prefkit.errors import InputError
from prefkit.sampling.base import SamplingParams
from prefkit.sampling.stage import SampleConfig, sample

HISTORIES = [
    [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "Write one sentence about a movie."},
        {"role": "assistant", "content": "The movie was great."},
        {"role": "user", "content": "And about a book?"},
    ],
    [
        {"role": "user", "content": "Write one sentence about a city."},
        {"role": "assistant", "content": "The city was wonderful."},
        {"role": "user", "content": "Now a song."},
    ],
]


def write_conversations(path, histories=HISTORIES):
    path.write_text(
        "".join(json.dumps({"prompt_id": f"c{i}", "prompt": h}) + "\n" for i, h in enumerate(histories))
    )
    return path


def test_transformers_sampler_renders_the_whole_history(transformers_sampler):
    # greedy: the sampler's completion must equal generate() on apply_chat_template's own ids
    import torch

    tokenizer, model = transformers_sampler.tokenizer, transformers_sampler.model
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)
    completions = transformers_sampler.generate(HISTORIES, params)
    for history, (completion,) in zip(HISTORIES, completions, strict=True):
        ids = tokenizer.apply_chat_template(
            history, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        assert tokenizer.decode(ids).count("<|im_start|>") == len(history) + 1
        with torch.no_grad():
            expected = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=8,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )[0, len(ids) :].tolist()
        assert list(completion.token_ids) == expected


def test_sample_keeps_conversations_in_candidates_and_card(tmp_path, tiny_model_dir):
    prompts = write_conversations(tmp_path / "chat.jsonl")
    config = SampleConfig(
        model=str(tiny_model_dir), backend="transformers", n=2, max_new_tokens=6, dtype="float32"
    )
    artifact = sample(prompts, tmp_path / "cands", config, progress=False)

    table = open_artifact(artifact.path, "candidates").table()
    assert table.schema["prompt"] == CONVERSATION_DTYPE
    assert table["prompt"].to_list() == HISTORIES
    assert all(len(row) == 2 and all(isinstance(t, str) for t in row) for row in table["completions"])
    assert artifact.manifest.extra["conversational"] is True
    card = (artifact.path / "README.md").read_text()
    # the card shows the first conversation as the model saw it: every turn, then the generation prompt
    assert (
        "<|im_start|>system\nYou answer in one sentence.<|im_end|>\n<|im_start|>user\n"
        "Write one sentence about a movie.<|im_end|>\n<|im_start|>assistant\nThe movie was great.<|im_end|>\n"
        "<|im_start|>user\nAnd about a book?<|im_end|>\n<|im_start|>assistant\n" in card
    )
    assert "a conversation: a list of `{role, content}` chat messages" in card


def test_conversations_without_a_chat_template_are_refused_before_any_output(tmp_path, tiny_model_dir):
    plain_model = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, plain_model)
    (plain_model / "chat_template.jinja").unlink(missing_ok=True)
    prompts = write_conversations(tmp_path / "chat.jsonl")
    config = SampleConfig(model=str(plain_model), backend="transformers", n=1, max_new_tokens=2)
    with pytest.raises(InputError, match="field 'prompt': holds conversations, but the model's tokenizer"):
        sample(prompts, tmp_path / "cands", config, progress=False)
    with pytest.raises(InputError, match=r"--no-chat-template was given"):
        sample(
            prompts,
            tmp_path / "cands",
            SampleConfig(model=str(tiny_model_dir), backend="transformers", use_chat_template=False),
            progress=False,
        )
    assert not (tmp_path / "cands").exists()
