"""Every loss against hand-computed values; mixes, f-divergences, WPO and option checks."""

from __future__ import annotations

import math

import pytest
import torch
from prefkit_trainers.dpo.losses import (
    LOSS_NAMES,
    LossOptions,
    PairLogProbs,
    f_divergence_score,
    needs_reference,
    parse_loss_spec,
    preference_loss,
)

# two pairs: log-ratios chosen r_w = [1, 0], rejected r_l = [-1, 1] -> h = [2, -1]; beta 0.5: beta*h = [1, -0.5]
PC, PR = torch.tensor([-10.0, -12.0]), torch.tensor([-14.0, -11.0])
RC, RR = torch.tensor([-11.0, -12.0]), torch.tensor([-13.0, -12.0])
LC, LR = torch.tensor([2, 1]), torch.tensor([1, 4])
BETA = 0.5
RECORD = PairLogProbs(PC, PR, RC, RR, LC, LR)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))  # = -log sigmoid(-x)


def sigma(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def loss_of(name: str, record: PairLogProbs = RECORD, **options) -> float:
    loss, _ = preference_loss(name, record, LossOptions(beta=BETA, **options))
    return loss.item()


def mean(*values: float) -> float:
    return sum(values) / len(values)


# (name, options, hand-computed value) -- the arithmetic is spelled out so a reader can check it
HAND_COMPUTED = [
    ("sigmoid", {}, mean(softplus(-1.0), softplus(0.5))),
    (
        "sigmoid",
        {"label_smoothing": 0.1},
        mean(0.9 * softplus(-1) + 0.1 * softplus(1), 0.9 * softplus(0.5) + 0.1 * softplus(-0.5)),
    ),
    ("hinge", {}, mean(0.0, 1.5)),
    # per-token log-ratios: chosen [1/2, 0/1], rejected [-1/1, 1/4] -> [1.5, -0.25]; target 1/(2 beta) = 1
    ("ipo", {}, mean(0.5**2, 1.25**2)),
    # EXO, eps 0.1: q = sigma(z), KL([q, 1-q] || [0.9, 0.1]), z = beta*h
    (
        "exo_pair",
        {"label_smoothing": 0.1},
        mean(
            *(
                sigma(z) * (math.log(sigma(z)) - math.log(0.9))
                + sigma(-z) * (math.log(sigma(-z)) - math.log(0.1))
                for z in (1.0, -0.5)
            )
        ),
    ),
    # beta r_w = [0.5, 0], beta r_l = [-0.5, 0.5]
    (
        "nca_pair",
        {},
        mean(
            softplus(-0.5) + 0.5 * softplus(0.5) + 0.5 * softplus(-0.5),
            softplus(0) + 0.5 * softplus(0) + 0.5 * softplus(0.5),
        ),
    ),
    (
        "robust",
        {"label_smoothing": 0.1},
        mean(
            (0.9 * softplus(-1) - 0.1 * softplus(1)) / 0.8, (0.9 * softplus(0.5) - 0.1 * softplus(-0.5)) / 0.8
        ),
    ),
    ("bco_pair", {}, mean(softplus(-0.5) + softplus(-0.5), softplus(0) + softplus(0.5))),
    # 1/(2 beta) = 1: (r_w - 1)^2 + (r_l + 1)^2 = [0 + 0, 1 + 4]
    ("sppo_hard", {}, mean(0.0, 5.0)),
    # r_w sorted [0, 1], r_l sorted [-1, 1] -> [1, 0] -> beta [0.5, 0]
    ("aot_unpaired", {}, mean(softplus(-0.5), softplus(0.0))),
    ("apo_zero", {}, mean(1 - sigma(0.5) + sigma(-0.5), 1 - sigma(0.0) + sigma(0.5))),
    ("apo_down", {}, mean(sigma(0.5) + 1 - sigma(1.0), sigma(0.0) + 1 - sigma(-0.5))),
    # blend sigma(z / 0.05): z = 1 -> sigma(20), z = -0.5 -> sigma(-10)
    (
        "discopop",
        {},
        mean(*(softplus(-z) * (1 - sigma(z / 0.05)) + math.exp(-z) * sigma(z / 0.05) for z in (1.0, -0.5))),
    ),
    # NLL per chosen token over the batch: (10 + 12) / (2 + 1)
    ("sft", {}, 22 / 3),
    # per-token h = [1.5, -0.25] -> beta [0.75, -0.125]
    ("sigmoid_norm", {}, mean(softplus(-0.75), softplus(0.125))),
    # logits = beta h + 0.1 (|y_w| - |y_l|) = [1 + 0.1, -0.5 - 0.3]
    ("rdpo", {"alpha": 0.1}, mean(softplus(-1.1), softplus(0.8))),
    # policy per token: chosen [-5, -12], rejected [-14, -2.75]; beta*delta = [4.5, -4.625]; minus gamma 0.2
    ("simpo", {"gamma": 0.2}, mean(softplus(-(4.5 - 0.2)), softplus(4.625 + 0.2))),
]


@pytest.mark.parametrize(
    ("name", "options", "expected"), HAND_COMPUTED, ids=[f"{n}-{o}" for n, o, _ in HAND_COMPUTED]
)
def test_loss_by_hand(name, options, expected):
    assert loss_of(name, **options) == pytest.approx(expected, abs=1e-6)


def test_every_loss_has_a_hand_computed_value():
    assert {name for name, _, _ in HAND_COMPUTED} | {"aot"} == set(LOSS_NAMES)


def test_aot_sorts_policy_and_reference_margins_separately():
    # policy margins [4, -1] sort to [-1, 4]; reference margins [3, -3] sort to [-3, 3]: delta [2, 1]
    record = PairLogProbs(PC, PR, torch.tensor([-10.0, -15.0]), torch.tensor([-13.0, -12.0]), LC, LR)
    assert loss_of("aot", record) == pytest.approx(mean(softplus(-1.0), softplus(-0.5)), abs=1e-6)
    # paired DPO on the same numbers is different: h = [4 - 3, -1 + 3] = [1, 2]
    assert loss_of("sigmoid", record) == pytest.approx(mean(softplus(-0.5), softplus(-1.0)), abs=1e-6)


def test_metrics_are_beta_times_log_ratios():
    _, metrics = preference_loss("sigmoid", RECORD, LossOptions(beta=BETA))
    assert metrics["rewards/chosen"].item() == pytest.approx(0.25)  # 0.5 * [1, 0]
    assert metrics["rewards/rejected"].item() == pytest.approx(0.0)  # 0.5 * [-1, 1]
    assert metrics["rewards/margins"].item() == pytest.approx(0.25)
    assert metrics["rewards/accuracies"].item() == pytest.approx(0.5)
    assert metrics["logps/chosen"].item() == pytest.approx(-11.0)


def test_reference_free_drops_reference_terms():
    record = PairLogProbs(PC, PR, None, None, LC, LR)  # h = [4, -1] -> beta*h = [2, -0.5]
    assert loss_of("sigmoid", record) == pytest.approx(mean(softplus(-2.0), softplus(0.5)), abs=1e-6)
    assert not needs_reference(parse_loss_spec("simpo")) and needs_reference(parse_loss_spec("simpo,sigmoid"))


def test_weighted_mix_is_the_weighted_sum_and_logs_each_term():
    loss, metrics = preference_loss("sigmoid:1,sft:0.2", RECORD, LossOptions(beta=BETA))
    assert loss.item() == pytest.approx(loss_of("sigmoid") + 0.2 * 22 / 3, abs=1e-6)
    assert metrics["loss/sft"].item() == pytest.approx(22 / 3)
    assert parse_loss_spec(" ipo , hinge:0.5") == (("ipo", 1.0), ("hinge", 0.5))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kto", "unknown loss 'kto'"),
        ("sigmoid:x", "must be a number"),
        ("sigmoid:-1", "> 0"),
        ("ipo,ipo", "twice"),
    ],
)
def test_bad_loss_specs_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        parse_loss_spec(text)


def test_f_divergence_scores_by_hand():
    r = torch.tensor([1.0, -2.0])
    assert f_divergence_score(r, "reverse_kl").tolist() == [1.0, -2.0]
    expected_forward = [1 - math.exp(-1), 1 - math.exp(2)]
    assert f_divergence_score(r, "forward_kl").tolist() == pytest.approx(expected_forward, abs=1e-6)
    expected_js = [math.log(2) + math.log(sigma(1)), math.log(2) + math.log(sigma(-2))]
    assert f_divergence_score(r, "js_divergence").tolist() == pytest.approx(expected_js, abs=1e-6)
    # alpha 0.5: (t^-0.5 - 1) / -0.5 with t = e^r
    expected_alpha = [(math.exp(-0.5) - 1) / -0.5, (math.exp(1.0) - 1) / -0.5]
    assert f_divergence_score(r, "alpha_divergence", 0.5).tolist() == pytest.approx(expected_alpha, abs=1e-6)
    assert f_divergence_score(r, "alpha_divergence", 1.0).tolist() == [1.0, -2.0]  # the limit is reverse KL


def test_sigmoid_with_forward_kl_uses_the_scores():
    # s = 1 - e^-r: chosen [1 - e^-1, 0], rejected [1 - e, 1 - e^-1] -> h = [e - e^-1, -(1 - e^-1)]
    h = [math.e - math.exp(-1), -(1 - math.exp(-1))]
    expected = mean(softplus(-BETA * h[0]), softplus(-BETA * h[1]))
    assert loss_of("sigmoid", f_divergence="forward_kl") == pytest.approx(expected, abs=1e-6)


def test_wpo_weights_each_pair_by_its_aligned_probabilities():
    record = PairLogProbs(PC, PR, RC, RR, LC, LR, torch.tensor([-0.1, -0.2]), torch.tensor([-0.3, -0.4]))
    expected = mean(softplus(-1.0) * math.exp(-0.4), softplus(0.5) * math.exp(-0.6))
    assert loss_of("sigmoid", record, wpo=True) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("bco_pair", {"f_divergence": "js_divergence"}, "not defined for loss bco_pair"),
        ("aot", {"wpo": True}, "wpo weighting is not defined for aot"),
        ("exo_pair", {}, "label_smoothing"),
        ("sigmoid", {"f_divergence": "chi2"}, "f_divergence must be one of"),
    ],
)
def test_undefined_combinations_are_refused(name, options, message):
    with pytest.raises(ValueError, match=message):
        loss_of(name, **options)


def test_gradient_weighs_wrongly_ordered_pairs_more():
    policy_chosen = PC.clone().requires_grad_(True)
    loss, _ = preference_loss(
        "sigmoid", PairLogProbs(policy_chosen, PR, RC, RR, LC, LR), LossOptions(beta=BETA)
    )
    loss.backward()
    # d/d lp_w = -beta * sigma(-beta h) / n: the pair with beta*h = -0.5 gets the larger push
    expected = [-BETA * sigma(-z) / 2 for z in (1.0, -0.5)]
    assert policy_chosen.grad.tolist() == pytest.approx(expected, abs=1e-6)
