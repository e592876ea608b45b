"""Padding-free batches: the same log-probs as padded rows, no leakage across pair boundaries, same gradients."""

from __future__ import annotations

import pytest
import torch
from prefkit_trainers.dpo.data import TokenizedPair, tokenize_pairs
from prefkit_trainers.dpo.logprobs import CompletionLogProbs
from prefkit_trainers.dpo.losses import LossOptions, PairLogProbs, preference_loss
from prefkit_trainers.dpo.packing import LAYOUTS, collate_layout, collate_padding_free
from prefkit_trainers.dpo.segment_attention import SEGMENT_ATTENTION, attention_implementation
from prefkit_trainers.dpo.segments import PairSpan

from prefkit.models import load_causal_lm, load_tokenizer

PROMPTS = [
    "Write one sentence about a movie.",
    "A city?",
    "Tell me about a very long and winding book, please.",
    "Hi",
]
CHOSEN = ["The movie was good.", "It was great and I felt happy there.", "Nice", "Hello to you too, friend."]
REJECTED = ["Bad.", "The city was awful and I felt sad about it.", "The book was boring and long", "No."]


@pytest.fixture(scope="module")
def model_and_pairs(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_causal_lm(str(tiny_model_dir), device="cpu")
    pairs, _ = tokenize_pairs(tokenizer, PROMPTS, CHOSEN, REJECTED, use_chat_template=True, max_length=512)
    return model, pairs, tokenizer.pad_token_id


def logprobs(model, pairs, pad_id, layout) -> torch.Tensor:
    with torch.no_grad():
        return CompletionLogProbs(model)(collate_layout(pairs, pad_id, layout)).logps


def test_packed_batch_is_one_row_without_padding():
    pairs = [TokenizedPair([1, 2], [3, 4], [5]), TokenizedPair([6], [7], [8, 9])]
    batch = collate_padding_free(pairs)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 7, 8, 9]]
    # positions restart per pair; the rejected completion continues from the end of its prompt
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 2, 0, 1, 1, 2]]
    assert batch.attention_mask is None  # no [tokens, tokens] mask: the spans say who sees whom
    assert batch.segments.spans == (PairSpan(0, 0, 2, 2, 1), PairSpan(0, 5, 1, 1, 2))
    mask = batch.segments.dense_mask()[0, 0]  # what a model without segment attention gets
    assert mask[4].tolist() == [True, True, False, False, True, False, False, False, False]  # rejected 1
    assert mask[7].tolist() == [False] * 5 + [True, False, True, False]  # rejected 2: its prompt and itself
    # token 0 of a completion is predicted from the prompt's last column; the rest from their predecessor
    assert batch.source_cols.tolist() == [1, 2, 1, 5, 5, 7]
    assert batch.sequence_index.tolist() == [0, 0, 2, 1, 3, 3]
    assert batch.num_tokens == 9


@pytest.mark.parametrize("layout", ["shared_prefix", "padding_free"])
def test_log_probs_equal_the_padded_layout(model_and_pairs, layout):
    model, pairs, pad_id = model_and_pairs
    padded = logprobs(model, pairs, pad_id, "separate")
    assert torch.allclose(logprobs(model, pairs, pad_id, layout), padded, atol=1e-5, rtol=0)


def test_no_leakage_across_pair_boundaries(model_and_pairs):
    model, pairs, pad_id = model_and_pairs
    before = logprobs(model, pairs, pad_id, "padding_free")
    changed = list(pairs)
    middle = pairs[1]
    changed[1] = TokenizedPair(middle.prompt[:-3] + [5, 6, 7], middle.chosen[::-1], middle.rejected[1:])
    after = logprobs(model, changed, pad_id, "padding_free")
    count = len(pairs)
    others = [i for i in range(count) if i != 1]
    for index in others:  # neighbours before and after the changed pair, chosen and rejected
        assert after[index].item() == pytest.approx(before[index].item(), abs=1e-6)
        assert after[count + index].item() == pytest.approx(before[count + index].item(), abs=1e-6)
    assert abs(after[1] - before[1]) > 1e-3 and abs(after[count + 1] - before[count + 1]) > 1e-3


def test_rejected_does_not_see_its_chosen_completion(model_and_pairs):
    model, pairs, pad_id = model_and_pairs
    before = logprobs(model, pairs, pad_id, "padding_free")
    changed = [TokenizedPair(pairs[0].prompt, pairs[0].chosen[::-1], pairs[0].rejected), *pairs[1:]]
    after = logprobs(model, changed, pad_id, "padding_free")
    assert after[len(pairs)].item() == pytest.approx(before[len(pairs)].item(), abs=1e-6)
    assert abs(after[0] - before[0]) > 1e-3


def test_losses_and_gradients_equal_across_layouts(model_and_pairs):
    model, pairs, pad_id = model_and_pairs
    count = len(pairs)
    with torch.no_grad():
        reference = logprobs(model, pairs, pad_id, "separate") + torch.linspace(-1, 1, 2 * count)
    results = {}
    for layout in LAYOUTS:
        model.zero_grad()
        batch = collate_layout(pairs, pad_id, layout)
        chosen, rejected = CompletionLogProbs(model)(batch).logps.split(count)
        record = PairLogProbs(
            chosen, rejected, *reference.split(count), batch.chosen_lengths, batch.rejected_lengths
        )
        loss, _ = preference_loss("sigmoid:1,sft:0.1", record, LossOptions(beta=0.1))
        loss.backward()
        results[layout] = (loss.item(), torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert attention_implementation(model) == SEGMENT_ATTENTION  # the layouts ran without a dense mask
    padded_loss, padded_grad = results["separate"]
    for layout in ("shared_prefix", "padding_free"):
        loss, grad = results[layout]
        assert loss == pytest.approx(padded_loss, abs=1e-6)
        assert torch.allclose(grad, padded_grad, atol=1e-5, rtol=1e-4)
    model.zero_grad()
