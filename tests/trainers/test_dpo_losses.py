"""Loss functions against hand-computed values, and sigmoid DPO against TRL's DPOTrainer on one batch."""

from __future__ import annotations

import math

import pytest
import torch
from prefkit_trainers.dpo.losses import (
    dpo_loss,
    hinge_loss,
    ipo_loss,
    preference_loss,
    rdpo_loss,
    sft_loss,
    simpo_loss,
)

# two pairs: log-ratios chosen [1, 0], rejected [-1, 1] -> h = [2, -1]; with beta 0.5, beta*h = [1, -0.5]
PC, PR = torch.tensor([-10.0, -12.0]), torch.tensor([-14.0, -11.0])
RC, RR = torch.tensor([-11.0, -12.0]), torch.tensor([-13.0, -12.0])
LC, LR = torch.tensor([2, 1]), torch.tensor([1, 4])
BETA = 0.5


def softplus(x: float) -> float:
    return math.log(1 + math.exp(x))  # -log sigmoid(-x)


def test_sigmoid_dpo_loss_and_metrics_by_hand():
    loss, metrics = dpo_loss(PC, PR, RC, RR, BETA)
    assert loss.item() == pytest.approx((softplus(-1.0) + softplus(0.5)) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.6436693, abs=1e-6)
    assert metrics["rewards/chosen"].item() == pytest.approx(0.25)  # 0.5 * [1, 0]
    assert metrics["rewards/rejected"].item() == pytest.approx(0.0)  # 0.5 * [-1, 1]
    assert metrics["rewards/margins"].item() == pytest.approx(0.25)  # [1, -0.5]
    assert metrics["rewards/accuracies"].item() == pytest.approx(0.5)
    assert metrics["logps/chosen"].item() == pytest.approx(-11.0)


def test_label_smoothing_mixes_the_flipped_loss():
    loss, _ = dpo_loss(PC, PR, RC, RR, BETA, label_smoothing=0.1)
    pair1 = 0.9 * softplus(-1.0) + 0.1 * softplus(1.0)
    pair2 = 0.9 * softplus(0.5) + 0.1 * softplus(-0.5)
    assert loss.item() == pytest.approx((pair1 + pair2) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.6686693, abs=1e-6)


def test_reference_free_drops_reference_terms():
    loss, metrics = dpo_loss(PC, PR, None, None, BETA)  # h = [4, -1] -> beta*h = [2, -0.5]
    assert loss.item() == pytest.approx((softplus(-2.0) + softplus(0.5)) / 2, abs=1e-6)
    assert metrics["rewards/chosen"].item() == pytest.approx(0.5 * (-10 - 12) / 2)


def test_ipo_uses_length_averaged_log_ratios():
    loss, _ = ipo_loss(PC, PR, RC, RR, BETA, LC, LR)
    # chosen avg [0.5, 0], rejected avg [-1, 0.25] -> h' = [1.5, -0.25]; target 1/(2*0.5) = 1
    assert loss.item() == pytest.approx((0.5**2 + 1.25**2) / 2, abs=1e-6)


def test_hinge_loss():
    loss, _ = hinge_loss(PC, PR, RC, RR, BETA)
    assert loss.item() == pytest.approx((0.0 + 1.5) / 2)


def test_rdpo_penalises_the_length_difference():
    loss, _ = rdpo_loss(PC, PR, RC, RR, BETA, 0.1, LC, LR)
    # logits = beta*h - 0.1 * (lc - lr) = [1 - 0.1, -0.5 + 0.3]
    assert loss.item() == pytest.approx((softplus(-0.9) + softplus(0.2)) / 2, abs=1e-6)


def test_simpo_is_length_normalised_with_margin():
    loss, metrics = simpo_loss(PC, PR, BETA, 0.2, LC, LR)
    # chosen 0.5*[-5, -12] = [-2.5, -6]; rejected 0.5*[-14, -2.75] = [-7, -1.375]
    assert loss.item() == pytest.approx((softplus(-(4.5 - 0.2)) + softplus(4.625 + 0.2)) / 2, abs=1e-6)
    assert metrics["rewards/chosen"].item() == pytest.approx(-4.25)


def test_sft_is_per_token_nll_of_chosen():
    loss, _ = sft_loss(PC, LC)
    assert loss.item() == pytest.approx(22 / 3)


def test_dispatch_and_unknown_loss():
    loss, metrics = preference_loss("sft", PC, PR, RC, RR, beta=BETA, chosen_lengths=LC, rejected_lengths=LR)
    assert loss.item() == pytest.approx(22 / 3)
    assert "rewards/margins" in metrics  # the SFT baseline still reports DPO rewards
    with pytest.raises(ValueError, match="unknown loss"):
        preference_loss("kto", PC, PR, RC, RR, beta=BETA, chosen_lengths=LC, rejected_lengths=LR)


def test_gradient_weighs_wrongly_ordered_pairs_more():
    policy_chosen = PC.clone().requires_grad_(True)
    loss, _ = dpo_loss(policy_chosen, PR, RC, RR, BETA)
    loss.backward()
    # d/d lp_w = -beta * sigma(-beta h) / n: the pair with beta*h = -0.5 gets the larger push
    expected = [-BETA * (1 / (1 + math.exp(z))) / 2 for z in (1.0, -0.5)]
    assert policy_chosen.grad.tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_sigmoid_loss_and_metrics_match_trl(tiny_model_dir, tmp_path):
    """One batch through TRL's DPOTrainer._compute_loss and through ours: same log-probs, loss and metrics.

    Reference log-probs are handed to both as precomputed values (TRL's `precompute_ref_log_probs` path), so
    the comparison covers completion log-prob extraction (both layouts), the loss and every reward metric.
    """
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    from prefkit_trainers.dpo.data import collate, tokenize_pairs
    from prefkit_trainers.dpo.logprobs import CompletionLogProbs

    from prefkit.models import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(str(tiny_model_dir))
    policy = load_causal_lm(str(tiny_model_dir), device="cpu")
    prompts = ["Write one sentence about a movie.", "Write one sentence about a city.", "A book?"]
    chosen = ["The movie was good.", "It was great and I felt happy.", "Nice"]
    rejected = ["Bad.", "The city was awful and I felt sad about it.", "The book was boring"]
    pairs, _ = tokenize_pairs(tokenizer, prompts, chosen, rejected, use_chat_template=True, max_length=512)
    with torch.no_grad():
        ref_c, ref_r = CompletionLogProbs(policy)(collate(pairs, tokenizer.pad_token_id, False)).split(
            len(pairs)
        )

    rows = [
        {"prompt": p, "chosen": c, "rejected": r} for p, c, r in zip(prompts, chosen, rejected, strict=True)
    ]
    config = trl.DPOConfig(
        output_dir=str(tmp_path / "trl"), beta=0.1, report_to=[], use_cpu=True, precompute_ref_log_probs=True
    )
    trainer = trl.DPOTrainer(
        model=policy, args=config, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer
    )
    torch.manual_seed(1)
    with torch.no_grad():  # move the policy away from the reference so the rewards are not all zero
        for parameter in trainer.model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    examples = [
        {
            "prompt_ids": p.prompt,
            "chosen_ids": p.chosen,
            "rejected_ids": p.rejected,
            "ref_chosen_logps": rc,
            "ref_rejected_logps": rr,
        }
        for p, rc, rr in zip(pairs, ref_c.tolist(), ref_r.tolist(), strict=True)
    ]
    trainer.model.train()
    trl_loss = trainer._compute_loss(trainer.model, trainer.data_collator(examples), return_outputs=False)
    trl_metrics = {key: values[-1] for key, values in trainer._metrics["train"].items()}

    for shared_prefix in (False, True):
        batch = collate(pairs, tokenizer.pad_token_id, shared_prefix)
        pol_c, pol_r = CompletionLogProbs(trainer.model)(batch).split(len(pairs))
        loss, metrics = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta=0.1)
        assert loss.item() == pytest.approx(trl_loss.item(), abs=1e-5)
        for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
            assert metrics[key].item() == pytest.approx(trl_metrics[key], abs=1e-5), key
        for key in ("logps/chosen", "logps/rejected"):
            assert metrics[key].item() == pytest.approx(trl_metrics[key], abs=1e-4), key
    assert abs(trl_metrics["rewards/margins"]) > 1e-3  # policy != reference, so this is not 0 == 0
