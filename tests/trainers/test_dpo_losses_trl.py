"""Every loss (and mix, f-divergence, WPO, LD-DPO) against TRL's DPOTrainer._compute_loss on one batch, fp32.

One TRL trainer is built (with `use_weighting=True` so its fused LM head also returns the WPO terms); each case
sets the attributes `_compute_loss` reads (loss_types, loss_weights, label_smoothing, f_divergence_type, ...)
and compares TRL's loss with ours computed from our own completion log-probs of the same pairs, in each of
our three batch layouts. Reference log-probs are precomputed by our scorer and handed to both.
"""

from __future__ import annotations

import pytest
import torch
from prefkit_trainers.dpo.data import tokenize_pairs
from prefkit_trainers.dpo.logprobs import CompletionLogProbs
from prefkit_trainers.dpo.losses import LossOptions, PairLogProbs, preference_loss
from prefkit_trainers.dpo.packing import LAYOUTS, collate_layout

from prefkit.models import load_causal_lm, load_tokenizer

PROMPTS = ["Write one sentence about a movie.", "Write one sentence about a city.", "A book?", "Say hi."]
CHOSEN = ["The movie was good.", "It was great and I felt happy.", "Nice", "Hi there, friend!"]
REJECTED = ["Bad.", "The city was awful and I felt sad about it.", "The book was boring", "No."]
BETA = 0.1

# (loss, options): TRL's 15 loss types, a mix, every f-divergence, WPO and LD-DPO
CASES = [
    ("sigmoid", {}),
    ("hinge", {}),
    ("ipo", {}),
    ("exo_pair", {"label_smoothing": 0.1}),
    ("nca_pair", {}),
    ("robust", {"label_smoothing": 0.1}),
    ("bco_pair", {}),
    ("sppo_hard", {}),
    ("aot", {"label_smoothing": 0.1}),
    ("aot_unpaired", {}),
    ("apo_zero", {}),
    ("apo_down", {}),
    ("discopop", {}),
    ("sft", {}),
    ("sigmoid_norm", {}),
    ("sigmoid:1,sft:0.2", {}),
    ("sigmoid:0.7,hinge:0.3,ipo:0.1", {}),
    ("sigmoid", {"f_divergence": "forward_kl"}),
    ("sigmoid", {"f_divergence": "js_divergence"}),
    ("hinge", {"f_divergence": "alpha_divergence", "f_alpha": 0.3}),
    ("ipo", {"f_divergence": "js_divergence"}),
    ("sigmoid", {"wpo": True}),
    ("bco_pair", {"wpo": True}),
    ("sigmoid", {"ld_alpha": 0.5}),
    ("ipo", {"ld_alpha": 0.0}),
]


@pytest.fixture(scope="module")
def trl_setup(tiny_model_dir, tmp_path_factory):
    datasets = pytest.importorskip("datasets")
    trl = pytest.importorskip("trl")
    tokenizer = load_tokenizer(str(tiny_model_dir))
    reference = load_causal_lm(str(tiny_model_dir), device="cpu")
    policy = load_causal_lm(str(tiny_model_dir), device="cpu")
    pairs, _ = tokenize_pairs(tokenizer, PROMPTS, CHOSEN, REJECTED, use_chat_template=True, max_length=512)
    rows = [
        {"prompt": p, "chosen": c, "rejected": r} for p, c, r in zip(PROMPTS, CHOSEN, REJECTED, strict=True)
    ]
    config = trl.DPOConfig(
        output_dir=str(tmp_path_factory.mktemp("trl")),
        beta=BETA,
        report_to=[],
        use_cpu=True,
        precompute_ref_log_probs=True,
        use_weighting=True,
    )
    trainer = trl.DPOTrainer(
        model=policy, args=config, train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer
    )
    torch.manual_seed(1)
    with torch.no_grad():  # move the policy away from the reference so log-ratios are not all zero
        for parameter in trainer.model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    trainer.model.train()
    return trainer, reference, pairs, tokenizer.pad_token_id


def trl_loss(trainer, pairs, reference_logps, loss: str, options: dict) -> float:
    terms = [
        (part.split(":")[0], float(part.split(":")[1]) if ":" in part else 1.0) for part in loss.split(",")
    ]
    trainer.loss_types = [name for name, _ in terms]
    trainer.loss_weights = [weight for _, weight in terms]
    trainer.label_smoothing = options.get("label_smoothing", 0.0)
    trainer.f_divergence_type = options.get("f_divergence", "reverse_kl")
    trainer.f_alpha_divergence_coef = options.get("f_alpha", 0.5)
    trainer.use_weighting = options.get("wpo", False)
    trainer.ld_alpha = options.get("ld_alpha")
    ref_chosen, ref_rejected = reference_logps
    examples = [
        {
            "prompt_ids": p.prompt,
            "chosen_ids": p.chosen,
            "rejected_ids": p.rejected,
            "ref_chosen_logps": rc,
            "ref_rejected_logps": rr,
        }
        for p, rc, rr in zip(pairs, ref_chosen.tolist(), ref_rejected.tolist(), strict=True)
    ]
    with torch.no_grad():
        return trainer._compute_loss(
            trainer.model, trainer.data_collator(examples), return_outputs=False
        ).item()


@pytest.mark.slow
@pytest.mark.parametrize(("loss", "options"), CASES, ids=[f"{loss}-{options}" for loss, options in CASES])
def test_loss_matches_trl(trl_setup, loss, options):
    trainer, reference, pairs, pad_id = trl_setup
    ld_alpha, wpo = options.get("ld_alpha"), options.get("wpo", False)
    count = len(pairs)
    with torch.no_grad():
        ref = CompletionLogProbs(reference, ld_alpha=ld_alpha)(collate_layout(pairs, pad_id, "separate"))
        reference_logps = ref.logps.split(count)
        expected = trl_loss(trainer, pairs, reference_logps, loss, options)
        loss_options = LossOptions(beta=BETA, **{k: v for k, v in options.items() if k != "ld_alpha"})
        for layout in LAYOUTS:
            batch = collate_layout(pairs, pad_id, layout)
            outputs = CompletionLogProbs(trainer.model, ld_alpha=ld_alpha, wpo=wpo)(batch)
            chosen_wpo, rejected_wpo = outputs.wpo.split(count) if wpo else (None, None)
            record = PairLogProbs(
                *outputs.logps.split(count),
                *reference_logps,
                batch.chosen_lengths,
                batch.rejected_lengths,
                chosen_wpo,
                rejected_wpo,
            )
            ours, metrics = preference_loss(loss, record, loss_options)
            # 1e-5 absolute; losses of size 50 (sppo_hard) get fp32 rounding of 1e-6 relative
            assert ours.item() == pytest.approx(expected, abs=1e-5, rel=1e-6), layout
    assert abs(metrics["rewards/margins"].item()) > 1e-3  # policy != reference: not a 0 == 0 comparison


@pytest.mark.slow
def test_reward_metrics_match_trl(trl_setup):
    trainer, reference, pairs, pad_id = trl_setup
    with torch.no_grad():
        reference_logps = CompletionLogProbs(reference)(
            collate_layout(pairs, pad_id, "separate")
        ).logps.split(len(pairs))
        trl_loss(trainer, pairs, reference_logps, "sigmoid", {})
        trl_metrics = {key: values[-1] for key, values in trainer._metrics["train"].items()}
        batch = collate_layout(pairs, pad_id, "padding_free")
        outputs = CompletionLogProbs(trainer.model)(batch)
        record = PairLogProbs(
            *outputs.logps.split(len(pairs)), *reference_logps, batch.chosen_lengths, batch.rejected_lengths
        )
        _, metrics = preference_loss("sigmoid", record, LossOptions(beta=BETA))
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert metrics[key].item() == pytest.approx(trl_metrics[key], abs=1e-5), key
    for key in ("logps/chosen", "logps/rejected"):
        assert metrics[key].item() == pytest.approx(trl_metrics[key], abs=1e-4), key
