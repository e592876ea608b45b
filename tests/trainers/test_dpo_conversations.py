"""DPO on conversational preferences: only the final assistant turn carries loss, and training runs."""

from __future__ import annotations

import pytest
import torch
from trainer_helpers import conversation_rows, conversational_artifact, train_request

from prefkit.conversation import assistant_turn
from prefkit.errors import InputError


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from prefkit.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


def test_only_final_assistant_tokens_are_completion(tokenizer):
    from prefkit_trainers.dpo.data import collate, tokenize_pairs

    row = conversation_rows(1)[0]
    [pair], truncated = tokenize_pairs(
        tokenizer, [row["prompt"]], [row["chosen"]], [row["rejected"]], use_chat_template=None, max_length=512
    )
    assert truncated == 0
    # the prompt holds the system turn, the whole history and the assistant header; nothing of the answers
    prompt_text = tokenizer.decode(pair.prompt)
    assert prompt_text == tokenizer.apply_chat_template(
        row["prompt"], tokenize=False, add_generation_prompt=True
    )
    assert prompt_text.startswith("<|im_start|>system\nYou answer in one short sentence.<|im_end|>")
    assert "wonderful" not in prompt_text and "terrible" not in prompt_text
    for shared_prefix in (False, True):
        batch = collate([pair], tokenizer.pad_token_id, shared_prefix)
        chosen_targets = batch.target_ids[batch.sequence_index == 0].tolist()
        rejected_targets = batch.target_ids[batch.sequence_index == 1].tolist()
        # the tokens that carry loss are exactly the final answer and its end-of-turn token
        assert tokenizer.decode(chosen_targets) == row["chosen"][0]["content"] + "<|im_end|>"
        assert tokenizer.decode(rejected_targets) == row["rejected"][0]["content"] + "<|im_end|>"
        # and every one is predicted from the last prompt position or later (never from the history)
        assert int(batch.source_cols.min()) == len(pair.prompt) - 1


def test_sequence_logprobs_sum_over_the_final_turn_only(tokenizer, tiny_model_dir):
    """Our log-probs equal an independent sum over the final answer's tokens (system + history excluded)."""
    from prefkit_trainers.dpo.data import collate, tokenize_pairs
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs

    from prefkit.models import load_causal_lm

    row = conversation_rows(1)[0]
    [pair], _ = tokenize_pairs(
        tokenizer, [row["prompt"]], [row["chosen"]], [row["rejected"]], use_chat_template=True, max_length=512
    )
    model = load_causal_lm(str(tiny_model_dir), device="cpu")
    with torch.no_grad():
        ours = CompletionLogProbs(model)(collate([pair], tokenizer.pad_token_id, False)).logps
        # independent: render the whole conversation, find where the final answer starts in the text
        full = tokenizer.apply_chat_template(row["prompt"] + row["chosen"], tokenize=False)
        answer_start = full.rindex("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
        ids = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        input_ids = torch.tensor([ids["input_ids"]])
        logprobs = torch.log_softmax(model(input_ids).logits[0, :-1].float(), dim=-1)
        tokens = ids["input_ids"]
        first = next(p for p, (start, _) in enumerate(ids["offset_mapping"]) if start >= answer_start)
        last = tokens.index(tokenizer.eos_token_id, first)  # the answer's <|im_end|>
        assert last == len(tokens) - 2  # the template's trailing newline follows; it is not trained on
        expected = sum(float(logprobs[p - 1, tokens[p]]) for p in range(first, last + 1))
    assert float(ours[0]) == pytest.approx(expected, abs=1e-4)


@pytest.mark.slow
def test_conversational_preferences_train(tiny_model_dir, tmp_path):
    """The dpo plugin trains on message-list columns: the margin grows on held-in pairs."""
    from prefkit_trainers.dpo.plugin import DPOTrainerPlugin

    from prefkit.training.stage import TrainConfig

    artifact = conversational_artifact(tmp_path / "preferences", conversation_rows())
    config = TrainConfig(
        policy=str(tiny_model_dir), learning_rate=1e-3, epochs=3, batch_size=4, save_every_steps=0
    )
    result = DPOTrainerPlugin().train(train_request(artifact, config, tmp_path))
    assert result.steps == 6
    assert result.history[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert result.history[-1]["rewards/margins"] > 0.1
    assert (tmp_path / "work" / "model.safetensors").exists()


def test_already_templated_pair_names_the_row(tokenizer):
    from prefkit_trainers.dpo.data import tokenize_pairs

    rows = conversation_rows(2)
    rows[1]["rejected"] = assistant_turn("fine<|im_end|>")
    with pytest.raises(InputError, match="row 2, field 'rejected': already contains"):
        tokenize_pairs(
            tokenizer,
            [r["prompt"] for r in rows],
            [r["chosen"] for r in rows],
            [r["rejected"] for r in rows],
            use_chat_template=True,
            max_length=512,
        )
