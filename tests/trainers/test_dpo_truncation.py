"""Per-row EOS flags (`prefkit label --truncated`): token ids, completion-token index, log-probs, cache key."""

from __future__ import annotations

import pytest
import torch
from prefkit_trainers.dpo.data import collate, tokenize_pairs
from prefkit_trainers.dpo.reference import reference_cache_key
from trainer_helpers import easy_rows, write_preferences

from prefkit.training.stage import TrainConfig, train

PROMPT = "Write one sentence about a movie."
CHOSEN = "The movie was wonderful and"  # cut mid-sentence at the token limit
REJECTED = "The movie was terrible."


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from prefkit.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


def one_pair(tokenizer, eos_chosen: bool, eos_rejected: bool = True):
    pairs, _ = tokenize_pairs(
        tokenizer,
        [PROMPT],
        [CHOSEN],
        [REJECTED],
        use_chat_template=True,
        max_length=512,
        eos_chosen=[eos_chosen],
        eos_rejected=[eos_rejected],
    )
    return pairs[0]


def text_ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_flags_decide_the_closing_eos(tokenizer):
    eos = tokenizer.eos_token_id
    keep = one_pair(tokenizer, eos_chosen=True)
    no_eos = one_pair(tokenizer, eos_chosen=False)
    assert keep.chosen == [*text_ids(tokenizer, CHOSEN), eos]
    assert no_eos.chosen == text_ids(tokenizer, CHOSEN)  # the cut completion is not closed
    assert keep.rejected == no_eos.rejected == [*text_ids(tokenizer, REJECTED), eos]
    assert keep.prompt == no_eos.prompt
    # no flags at all (preferences written before the option): every completion gets its EOS
    default, _ = tokenize_pairs(
        tokenizer, [PROMPT], [CHOSEN], [REJECTED], use_chat_template=True, max_length=512
    )
    assert default[0] == keep


def test_separate_layout_without_eos(tokenizer):
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    pair = one_pair(tokenizer, eos_chosen=False)
    prompt, chosen = len(pair.prompt), text_ids(tokenizer, CHOSEN)
    batch = collate([pair], pad, shared_prefix=False)
    # row 0 is prompt + cut text, then padding where `keep` would have put the EOS
    width = batch.input_ids.shape[1]
    assert batch.input_ids[0, : prompt + len(chosen)].tolist() == pair.prompt + chosen
    assert batch.attention_mask[0].tolist() == [1] * (prompt + len(chosen)) + [0] * (
        width - prompt - len(chosen)
    )
    # the loss sees exactly the cut text's tokens for sequence 0, and the rejected text + EOS for sequence 1
    assert batch.target_ids[batch.sequence_index == 0].tolist() == chosen
    assert batch.target_ids[batch.sequence_index == 1].tolist()[-1] == eos
    assert eos not in batch.target_ids[batch.sequence_index == 0].tolist()
    assert batch.chosen_lengths.tolist() == [len(chosen)]
    # token j of the chosen completion is predicted from column prompt - 1 + j
    assert batch.source_cols[batch.sequence_index == 0].tolist() == list(
        range(prompt - 1, prompt - 1 + len(chosen))
    )


def test_shared_prefix_layout_without_eos(tokenizer):
    pair = one_pair(tokenizer, eos_chosen=False)
    prompt, chosen = len(pair.prompt), len(pair.chosen)
    batch = collate([pair], tokenizer.pad_token_id, shared_prefix=True)
    # rejected starts right after the cut text (no EOS between them) and its positions restart after the prompt
    assert (
        batch.input_ids[0, : prompt + chosen + len(pair.rejected)].tolist()
        == pair.prompt + pair.chosen + pair.rejected
    )
    assert batch.position_ids[0, prompt + chosen].item() == prompt
    rejected_mask = batch.segments.dense_mask()[0, 0, prompt + chosen]
    assert not rejected_mask[prompt : prompt + chosen].any()  # rejected never sees the chosen tokens
    assert batch.target_ids[batch.sequence_index == 0].tolist() == pair.chosen


def test_log_probs_differ_by_exactly_the_eos_term_in_both_layouts(tiny_model_dir, tokenizer):
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs, prepare_attention_mask

    from prefkit.models import load_causal_lm

    policy = load_causal_lm(str(tiny_model_dir), device="cpu")
    scorer = CompletionLogProbs(policy).eval()
    keep, no_eos = one_pair(tokenizer, True), one_pair(tokenizer, False)
    results = {}
    with torch.no_grad():
        for shared_prefix in (False, True):
            batch = collate([keep, no_eos], tokenizer.pad_token_id, shared_prefix)
            batch = prepare_attention_mask(batch, policy, torch.float32)
            results[shared_prefix] = scorer(
                batch
            ).logps  # [chosen keep, chosen no-eos, rejected keep, rejected no-eos]
        logits = policy(torch.tensor([keep.prompt + no_eos.chosen])).logits[0, -1].log_softmax(-1)
    eos_term = logits[tokenizer.eos_token_id].item()
    torch.testing.assert_close(results[False], results[True], atol=1e-4, rtol=1e-4)
    for values in results.values():
        assert values[0].item() - values[1].item() == pytest.approx(eos_term, abs=1e-4)
        assert values[2].item() == pytest.approx(values[3].item(), abs=1e-5)  # rejected unchanged


def test_reference_cache_key_covers_the_flags(tokenizer):
    keep, no_eos = [one_pair(tokenizer, True)], [one_pair(tokenizer, False)]
    assert reference_cache_key("model", keep, "float32") != reference_cache_key("model", no_eos, "float32")
    assert reference_cache_key("model", no_eos, "float32") == reference_cache_key(
        "model", [one_pair(tokenizer, False)], "float32"
    )


def test_train_reads_the_flags_from_the_preferences(tiny_model_dir, tmp_path):
    rows = easy_rows(8)
    flagged = [
        {
            **row,
            "finish_chosen": "length",
            "finish_rejected": "stop",
            "eos_chosen": False,
            "eos_rejected": True,
        }
        for row in rows
    ]
    plain = write_preferences(tmp_path / "plain", rows)
    cut = write_preferences(tmp_path / "cut", flagged)
    config = TrainConfig(policy=str(tiny_model_dir), epochs=1, batch_size=4, save_every_steps=0)
    first = train(plain, tmp_path / "a", config, progress=False)
    second = train(cut, tmp_path / "b", config, progress=False)
    assert first.manifest.extra["reference_cache"] in ("computed", "hit")
    # same texts, other flags: other token ids, so the cached reference log-probs are not reused
    assert second.manifest.extra["reference_cache"] == "computed"
    again = train(cut, tmp_path / "c", config.model_copy(update={"beta": 0.5}), progress=False)
    assert again.manifest.extra["reference_cache"] == "hit"
