"""The length terms of the loss by hand: R-DPO's alpha, LD-DPO's token weights, length normalisation.

Values and gradients are spelled out so a reader can check them; the sign tests pin which way each term
pushes length (a pair whose chosen answer is longer must weigh less when length is penalised).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from prefkit_trainers.dpo.data import TokenizedPair
from prefkit_trainers.dpo.logprobs import CompletionLogProbs, ld_token_weights
from prefkit_trainers.dpo.losses import LossOptions, PairLogProbs, preference_loss
from prefkit_trainers.dpo.packing import collate_layout
from torch import nn

# two pairs: log-ratios r_w = [1, 0], r_l = [-1, 1] -> h = [2, -1]; beta 0.5 -> beta h = [1, -0.5]
# lengths: chosen [2, 1], rejected [1, 4] -> gap |y_w| - |y_l| = [1, -3]
BETA = 0.5
REF_CHOSEN, REF_REJECTED = torch.tensor([-11.0, -12.0]), torch.tensor([-13.0, -12.0])
CHOSEN_LENGTHS, REJECTED_LENGTHS = torch.tensor([2, 1]), torch.tensor([1, 4])


def sigma(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def loss_and_gradients(name: str, **options) -> tuple[float, list[float], list[float]]:
    """Loss and d loss / d policy log-prob of chosen and rejected, per pair."""
    chosen = torch.tensor([-10.0, -12.0], requires_grad=True)
    rejected = torch.tensor([-14.0, -11.0], requires_grad=True)
    record = PairLogProbs(chosen, rejected, REF_CHOSEN, REF_REJECTED, CHOSEN_LENGTHS, REJECTED_LENGTHS)
    loss, _ = preference_loss(name, record, LossOptions(beta=BETA, **options))
    loss.backward()
    return loss.item(), chosen.grad.tolist(), rejected.grad.tolist()


def test_rdpo_value_and_gradients_by_hand():
    # logits z = beta h + alpha gap = [1 + 0.2 * 1, -0.5 + 0.2 * -3] = [1.2, -1.1]
    loss, chosen_grad, rejected_grad = loss_and_gradients("rdpo", alpha=0.2)
    assert loss == pytest.approx((softplus(-1.2) + softplus(1.1)) / 2, abs=1e-6)
    # d/d logp(y_w) of mean softplus(-z) = -(1/2) beta sigma(-z); rejected: the opposite sign
    expected = [-0.5 * BETA * sigma(-1.2), -0.5 * BETA * sigma(1.1)]
    assert chosen_grad == pytest.approx(expected, abs=1e-6)
    assert rejected_grad == pytest.approx([-value for value in expected], abs=1e-6)


def test_rdpo_penalises_length_by_reweighting_pairs():
    _, plain, _ = loss_and_gradients("sigmoid")
    _, regularised, _ = loss_and_gradients("rdpo", alpha=0.2)
    # pair 0: the longer answer won (gap +1): less pull on it; pair 1: the shorter won (gap -3): more
    assert abs(regularised[0]) < abs(plain[0])
    assert abs(regularised[1]) > abs(plain[1])
    _, zero, _ = loss_and_gradients("rdpo", alpha=0.0)
    assert zero == pytest.approx(plain, abs=1e-7)  # alpha 0 is DPO


def test_length_normalised_gradient_is_divided_by_each_answers_length():
    # per-token h = [1/2 + 1/1, 0/1 - 1/4] = [1.5, -0.25]; z = beta h = [0.75, -0.125]
    loss, chosen_grad, rejected_grad = loss_and_gradients("sigmoid_norm")
    assert loss == pytest.approx((softplus(-0.75) + softplus(0.125)) / 2, abs=1e-6)
    weights = [sigma(-0.75), sigma(0.125)]
    assert chosen_grad == pytest.approx(
        [-0.5 * BETA * w / n for w, n in zip(weights, (2, 1), strict=True)], abs=1e-6
    )
    assert rejected_grad == pytest.approx(
        [0.5 * BETA * w / n for w, n in zip(weights, (1, 4), strict=True)], abs=1e-6
    )


class UniformLM(nn.Module):
    """A causal LM whose logits are one learnable vector at every position (no config: the plain path)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, input_ids, position_ids=None, attention_mask=None, use_cache=False):
        return SimpleNamespace(logits=self.bias.expand(*input_ids.shape, -1))


PAIRS = [
    TokenizedPair(prompt=[1, 2], chosen=[5, 6, 7], rejected=[8]),  # shorter side: 1 token
    TokenizedPair(prompt=[3], chosen=[4, 5], rejected=[6, 7, 8, 9]),  # shorter side: 2 tokens
]


def test_ld_dpo_token_weights_by_hand():
    batch = collate_layout(PAIRS, pad_id=0, layout="separate")
    weights = ld_token_weights(batch, 0.25)
    by_sequence = [weights[batch.sequence_index == s].tolist() for s in range(4)]
    # chosen 1: [1, a, a]; chosen 2: [1, 1]; rejected 1: [1]; rejected 2: [1, 1, a, a]
    assert by_sequence == [[1, 0.25, 0.25], [1, 1], [1], [1, 1, 0.25, 0.25]]


@pytest.mark.parametrize("layout", ["separate", "shared_prefix", "padding_free"])
def test_ld_dpo_sums_and_gradients_by_hand(layout):
    vocab, ld_alpha = 10, 0.25
    model = UniformLM(vocab)
    logps = CompletionLogProbs(model, ld_alpha=ld_alpha)(collate_layout(PAIRS, 0, layout)).logps
    # every token has log-prob -log 10; weighted token counts: [1 + 2a, 2, 1, 2 + 2a]
    counts = [1 + 2 * ld_alpha, 2, 1, 2 + 2 * ld_alpha]
    assert logps.tolist() == pytest.approx([-c * math.log(vocab) for c in counts], abs=1e-5)
    # d log p(t) / d bias = onehot(t) - 1/V per token, times its weight: check on chosen 1 (tokens 5, 6, 7)
    logps[0].backward()
    expected = [-(1 + 2 * ld_alpha) / vocab] * vocab
    for token, weight in ((5, 1.0), (6, ld_alpha), (7, ld_alpha)):
        expected[token] += weight
    assert model.bias.grad.tolist() == pytest.approx(expected, abs=1e-6)


def test_ld_dpo_makes_the_dpo_logit_shrink_the_longer_answers_tail():
    """With plain sums the longer rejected answer's extra tokens count fully in h; LD-DPO counts a of them."""
    model = UniformLM(10)
    batch = collate_layout(PAIRS, 0, "separate")
    plain = CompletionLogProbs(model)(batch).logps.detach()
    weighted = CompletionLogProbs(model, ld_alpha=0.0)(batch).logps.detach()
    # pair 2: chosen 2 tokens, rejected 4: plain log-prob gap 2 log 10; ld_alpha 0: gap 0 (same 2 tokens)
    assert (plain[1] - plain[3]).item() == pytest.approx(2 * math.log(10), abs=1e-5)
    assert (weighted[1] - weighted[3]).item() == pytest.approx(0.0, abs=1e-6)
