"""Preference losses as pure functions of per-sequence log-probs (no model, no batch, no trainer).

Every loss takes the summed completion log-probs of the policy (and, where it uses one, of the reference)
for a batch of pairs and returns `(loss, metrics)`: the scalar to minimise and detached scalar metrics.
`None` for both reference tensors means reference-free (the reference terms are dropped).

Notation (docs/trainers.md): h = [log pi(y_w) - log ref(y_w)] - [log pi(y_l) - log ref(y_l)].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
LossOutput = tuple[Tensor, dict[str, Tensor]]

LOSS_NAMES = ("sigmoid", "ipo", "hinge", "rdpo", "simpo", "sft")


def log_ratios(policy: Tensor, reference: Tensor | None) -> Tensor:
    """log pi(y) - log ref(y), or log pi(y) alone when reference-free."""
    return policy if reference is None else policy - reference


def smoothed_logistic_loss(logits: Tensor, label_smoothing: float) -> Tensor:
    """(1 - eps) * -log sigma(z) + eps * -log sigma(-z), per pair (conservative DPO when eps > 0)."""
    loss = -F.logsigmoid(logits)
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * F.logsigmoid(-logits)
    return loss


def reward_metrics(
    chosen_rewards: Tensor, rejected_rewards: Tensor, policy_chosen: Tensor, policy_rejected: Tensor
) -> dict[str, Tensor]:
    """Implicit-reward metrics logged every step (means over the batch, detached)."""
    chosen_rewards, rejected_rewards = chosen_rewards.detach(), rejected_rewards.detach()
    return {
        "rewards/chosen": chosen_rewards.mean(),
        "rewards/rejected": rejected_rewards.mean(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
        "logps/chosen": policy_chosen.detach().mean(),
        "logps/rejected": policy_rejected.detach().mean(),
    }


def _dpo_rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta) -> tuple[Tensor, Tensor]:
    return beta * log_ratios(policy_chosen, ref_chosen), beta * log_ratios(policy_rejected, ref_rejected)


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor | None,
    ref_rejected: Tensor | None,
    beta: float,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Sigmoid DPO: -log sigma(beta h), optionally label-smoothed."""
    chosen_rewards, rejected_rewards = _dpo_rewards(
        policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta
    )
    loss = smoothed_logistic_loss(chosen_rewards - rejected_rewards, label_smoothing).mean()
    return loss, reward_metrics(chosen_rewards, rejected_rewards, policy_chosen, policy_rejected)


def ipo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor | None,
    ref_rejected: Tensor | None,
    beta: float,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
) -> LossOutput:
    """IPO: (h' - 1/(2 beta))^2 with h' built from per-token (length-averaged) log-ratios, as in TRL."""
    chosen_average = log_ratios(policy_chosen, ref_chosen) / chosen_lengths.clamp(min=1)
    rejected_average = log_ratios(policy_rejected, ref_rejected) / rejected_lengths.clamp(min=1)
    loss = ((chosen_average - rejected_average - 1 / (2 * beta)) ** 2).mean()
    chosen_rewards, rejected_rewards = _dpo_rewards(
        policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta
    )
    return loss, reward_metrics(chosen_rewards, rejected_rewards, policy_chosen, policy_rejected)


def hinge_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor | None,
    ref_rejected: Tensor | None,
    beta: float,
) -> LossOutput:
    """Hinge (SLiC): max(0, 1 - beta h)."""
    chosen_rewards, rejected_rewards = _dpo_rewards(
        policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta
    )
    loss = torch.relu(1 - (chosen_rewards - rejected_rewards)).mean()
    return loss, reward_metrics(chosen_rewards, rejected_rewards, policy_chosen, policy_rejected)


def rdpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor | None,
    ref_rejected: Tensor | None,
    beta: float,
    alpha: float,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """Length-regularised DPO (R-DPO): -log sigma(beta h - alpha (|y_w| - |y_l|)), lengths in tokens."""
    chosen_rewards, rejected_rewards = _dpo_rewards(
        policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta
    )
    logits = (
        chosen_rewards
        - rejected_rewards
        - alpha * (chosen_lengths - rejected_lengths).to(chosen_rewards.dtype)
    )
    loss = smoothed_logistic_loss(logits, label_smoothing).mean()
    return loss, reward_metrics(chosen_rewards, rejected_rewards, policy_chosen, policy_rejected)


def simpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    beta: float,
    gamma: float,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    label_smoothing: float = 0.0,
) -> LossOutput:
    """SimPO-style, reference-free and length-normalised: -log sigma(beta/|y_w| lp_w - beta/|y_l| lp_l - gamma)."""
    chosen_rewards = beta * policy_chosen / chosen_lengths.clamp(min=1)
    rejected_rewards = beta * policy_rejected / rejected_lengths.clamp(min=1)
    loss = smoothed_logistic_loss(chosen_rewards - rejected_rewards - gamma, label_smoothing).mean()
    return loss, reward_metrics(chosen_rewards, rejected_rewards, policy_chosen, policy_rejected)


def sft_loss(policy_chosen: Tensor, chosen_lengths: Tensor) -> LossOutput:
    """Preferred-FT baseline: mean negative log-likelihood per chosen token (rejected completions unused)."""
    loss = -policy_chosen.sum() / chosen_lengths.sum().clamp(min=1)
    return loss, {"logps/chosen": policy_chosen.detach().mean()}


def preference_loss(
    name: str,
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    ref_chosen: Tensor | None,
    ref_rejected: Tensor | None,
    *,
    beta: float,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    label_smoothing: float = 0.0,
    alpha: float = 0.0,
    gamma: float = 0.0,
) -> LossOutput:
    """Dispatch by loss name; every loss also reports the DPO implicit-reward metrics (with beta)."""
    losses: dict[str, Callable[[], LossOutput]] = {
        "sigmoid": lambda: dpo_loss(
            policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, label_smoothing
        ),
        "ipo": lambda: ipo_loss(
            policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, chosen_lengths, rejected_lengths
        ),
        "hinge": lambda: hinge_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta),
        "rdpo": lambda: rdpo_loss(
            policy_chosen,
            policy_rejected,
            ref_chosen,
            ref_rejected,
            beta,
            alpha,
            chosen_lengths,
            rejected_lengths,
            label_smoothing,
        ),
        "simpo": lambda: simpo_loss(
            policy_chosen, policy_rejected, beta, gamma, chosen_lengths, rejected_lengths, label_smoothing
        ),
        "sft": lambda: sft_loss(policy_chosen, chosen_lengths),
    }
    if name not in losses:
        raise ValueError(f"unknown loss '{name}' (choose from {', '.join(LOSS_NAMES)})")
    loss, metrics = losses[name]()
    if name == "sft":
        # report the usual DPO rewards too, so an SFT baseline sits in the same table as DPO runs
        chosen_rewards, rejected_rewards = _dpo_rewards(
            policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta
        )
        metrics = {
            **reward_metrics(chosen_rewards, rejected_rewards, policy_chosen, policy_rejected),
            **metrics,
        }
    return loss, metrics
