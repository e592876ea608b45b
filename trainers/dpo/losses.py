"""Preference losses as pure functions of one record of per-sequence log-probs (no model, no trainer).

A batch of pairs arrives as one `PairLogProbs` record: summed completion log-probs of the policy and (unless
reference-free) of the reference, completion lengths in tokens and, for WPO, the per-token-mean aligned
log-probs. `preference_loss(spec, record, options)` looks every named loss up in `LOSSES`, a table of
functions `(record, scores, options) -> per-pair loss`, mixes them with their weights and returns
`(loss, metrics)`: the scalar to minimise and detached scalar metrics.

Notation (docs/trainers.md): r_w = log pi(y_w) - log ref(y_w), r_l likewise (reference-free: log pi alone);
s_w, s_l are the f-divergence scores of r_w, r_l (s = r for the default reverse KL); h = s_w - s_l.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
LossOutput = tuple[Tensor, dict[str, Tensor]]
F_DIVERGENCES = ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence")


@dataclass(frozen=True)
class PairLogProbs:
    """Per-sequence log-probs of B pairs: every tensor is [B]; reference tensors are None when reference-free."""

    policy_chosen: Tensor
    policy_rejected: Tensor
    ref_chosen: Tensor | None
    ref_rejected: Tensor | None
    chosen_lengths: Tensor
    rejected_lengths: Tensor
    # WPO: mean over the completion's tokens of log p(y_t) - log sum_v p(v)^2 (detached); None unless asked for
    chosen_wpo: Tensor | None = None
    rejected_wpo: Tensor | None = None


@dataclass(frozen=True)
class LossOptions:
    """Hyper-parameters the losses read (each loss reads only its own)."""

    beta: float
    label_smoothing: float = 0.0  # cDPO for sigmoid/rdpo/simpo; noise rate for robust, exo_pair, aot
    alpha: float = 0.0  # R-DPO length weight, per token of length difference
    gamma: float = 0.0  # SimPO target margin
    discopop_tau: float = 0.05
    f_divergence: str = "reverse_kl"
    f_alpha: float = 0.5  # alpha of the alpha-divergence
    wpo: bool = False  # weight each pair by the policy's own (aligned) probability of both completions


@dataclass(frozen=True)
class PairScores:
    """Log-ratios r and their f-divergence scores s for chosen and rejected ([B] each)."""

    chosen_logratios: Tensor
    rejected_logratios: Tensor
    chosen: Tensor
    rejected: Tensor

    @property
    def delta(self) -> Tensor:
        """h = s_w - s_l."""
        return self.chosen - self.rejected


def log_ratios(policy: Tensor, reference: Tensor | None) -> Tensor:
    """log pi(y) - log ref(y), or log pi(y) alone when reference-free."""
    return policy if reference is None else policy - reference


def f_divergence_score(logratio: Tensor, divergence: str, f_alpha: float = 0.5) -> Tensor:
    """f'(t) at t = pi/ref = exp(r): the score f-DPO (Wang et al. 2023) puts where DPO has the log-ratio."""
    if divergence == "reverse_kl":
        return logratio  # f'(t) = log t (+1, which cancels in h)
    if divergence == "forward_kl":
        return 1 - torch.exp(-logratio)  # f'(t) = 1 - 1/t
    if divergence == "js_divergence":
        return math.log(2) + F.logsigmoid(logratio)  # f'(t) = log(2t / (1 + t))
    if divergence == "alpha_divergence":
        if abs(f_alpha - 1.0) < 1e-6:  # the limit alpha -> 1 is reverse KL
            return logratio
        # f'(t) = (t^(alpha-1) - 1) / (alpha - 1); the exponent is clamped so exp stays finite (as in TRL)
        exponent = ((f_alpha - 1.0) * logratio).float().clamp(max=80.0)
        return ((torch.exp(exponent) - 1.0) / (f_alpha - 1.0)).to(logratio.dtype)
    raise ValueError(f"unknown f-divergence '{divergence}' (choose from {', '.join(F_DIVERGENCES)})")


def pair_scores(record: PairLogProbs, options: LossOptions) -> PairScores:
    """Log-ratios and f-divergence scores of a record."""
    chosen = log_ratios(record.policy_chosen, record.ref_chosen)
    rejected = log_ratios(record.policy_rejected, record.ref_rejected)
    return PairScores(
        chosen,
        rejected,
        f_divergence_score(chosen, options.f_divergence, options.f_alpha),
        f_divergence_score(rejected, options.f_divergence, options.f_alpha),
    )


def smoothed_logistic_loss(logits: Tensor, label_smoothing: float) -> Tensor:
    """(1 - eps) * -log sigma(z) + eps * -log sigma(-z), per pair (conservative DPO when eps > 0)."""
    loss = -F.logsigmoid(logits)
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * F.logsigmoid(-logits)
    return loss


def _per_token(values: Tensor, lengths: Tensor) -> Tensor:
    return values / lengths.clamp(min=1).to(values.dtype)


# ---- the losses: (record, scores, options) -> [B] per-pair loss -------------------------------------------


def sigmoid(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """DPO (Rafailov et al. 2023): -log sigma(beta h); cDPO when label_smoothing > 0."""
    return smoothed_logistic_loss(options.beta * scores.delta, options.label_smoothing)


def hinge(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """SLiC-HF (Zhao et al. 2023): max(0, 1 - beta h)."""
    return torch.relu(1 - options.beta * scores.delta)


def ipo(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """IPO (Azar et al. 2023): (s_w/|y_w| - s_l/|y_l| - 1/(2 beta))^2, per-token scores as in TRL."""
    delta = _per_token(scores.chosen, record.chosen_lengths) - _per_token(
        scores.rejected, record.rejected_lengths
    )
    return (delta - 1 / (2 * options.beta)) ** 2


def exo_pair(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """EXO (Ji et al. 2024), K=2: KL(softmax(beta s) || [1 - eps, eps]) over {chosen, rejected}."""
    epsilon = options.label_smoothing
    if not 0 < epsilon < 1:
        raise ValueError("exo_pair needs label_smoothing in (0, 1) (it is the target probability eps)")
    z = options.beta * scores.delta
    q_chosen, q_rejected = torch.sigmoid(z), torch.sigmoid(-z)
    return q_chosen * (F.logsigmoid(z) - math.log1p(-epsilon)) + q_rejected * (
        F.logsigmoid(-z) - math.log(epsilon)
    )


def nca_pair(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """NCA (Chen et al. 2024): -log sigma(beta r_w) - 1/2 log sigma(-beta r_w) - 1/2 log sigma(-beta r_l)."""
    chosen, rejected = options.beta * scores.chosen_logratios, options.beta * scores.rejected_logratios
    return -F.logsigmoid(chosen) - 0.5 * F.logsigmoid(-chosen) - 0.5 * F.logsigmoid(-rejected)


def robust(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """Robust DPO (Chowdhury et al. 2024): unbiased under label-flip rate eps."""
    z, epsilon = options.beta * scores.delta, options.label_smoothing
    return (-(1 - epsilon) * F.logsigmoid(z) + epsilon * F.logsigmoid(-z)) / (1 - 2 * epsilon)


def bco_pair(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """BCO, paired (Jung et al. 2024) without its running reward shift: -log sigma(beta r_w) - log sigma(-beta r_l)."""
    chosen, rejected = options.beta * scores.chosen_logratios, options.beta * scores.rejected_logratios
    return -F.logsigmoid(chosen) - F.logsigmoid(-rejected)


def sppo_hard(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """SPPO, hard labels (Wu et al. 2024): (r_w - 1/(2 beta))^2 + (r_l + 1/(2 beta))^2."""
    half = 0.5 / options.beta
    return (scores.chosen_logratios - half) ** 2 + (scores.rejected_logratios + half) ** 2


def _smoothed_sorted(delta: Tensor, options: LossOptions) -> Tensor:
    return smoothed_logistic_loss(options.beta * delta, options.label_smoothing)


def aot(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """AOT, paired (Melnyk et al. 2024): logistic loss on sorted policy margins minus sorted reference margins."""
    policy_margin = record.policy_chosen - record.policy_rejected
    reference_margin = torch.zeros_like(policy_margin)  # reference-free: a uniform reference
    if record.ref_chosen is not None and record.ref_rejected is not None:
        reference_margin = record.ref_chosen - record.ref_rejected
    delta = torch.sort(policy_margin, dim=0).values - torch.sort(reference_margin, dim=0).values
    return _smoothed_sorted(delta, options)


def aot_unpaired(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """AOT, unpaired: logistic loss on sorted r_w minus sorted r_l (quantiles of the two distributions)."""
    delta = (
        torch.sort(scores.chosen_logratios, dim=0).values
        - torch.sort(scores.rejected_logratios, dim=0).values
    )
    return _smoothed_sorted(delta, options)


def apo_zero(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """APO-zero (D'Oosterlinck et al. 2024): push chosen up and rejected down, 1 - sigma(beta r_w) + sigma(beta r_l)."""
    return (
        1
        - torch.sigmoid(options.beta * scores.chosen_logratios)
        + torch.sigmoid(options.beta * scores.rejected_logratios)
    )


def apo_down(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """APO-down: both down, rejected more: sigma(beta r_w) + 1 - sigma(beta (r_w - r_l))."""
    chosen, rejected = scores.chosen_logratios, scores.rejected_logratios
    return torch.sigmoid(options.beta * chosen) + 1 - torch.sigmoid(options.beta * (chosen - rejected))


def discopop(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """DiscoPOP (Chris Lu et al. 2024): logistic and exponential losses blended by sigma(beta h / tau)."""
    z = options.beta * scores.delta
    blend = torch.sigmoid(z / options.discopop_tau)
    return -F.logsigmoid(z) * (1 - blend) + torch.exp(-z) * blend


def sft(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """NLL per chosen token over the batch (RPO's term in a mix), the same value for every pair."""
    nll = -record.policy_chosen.sum() / record.chosen_lengths.sum().clamp(min=1).to(
        record.policy_chosen.dtype
    )
    return nll.expand_as(record.policy_chosen)


def sigmoid_norm(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """Length-normalised DPO: -log sigma(beta (s_w/|y_w| - s_l/|y_l|))."""
    delta = _per_token(scores.chosen, record.chosen_lengths) - _per_token(
        scores.rejected, record.rejected_lengths
    )
    return -F.logsigmoid(options.beta * delta)


def rdpo(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """R-DPO (Park et al. 2024): -log sigma(beta h + alpha (|y_w| - |y_l|)), lengths in tokens.

    The sign penalises length (alpha > 0): it is DPO for the objective max E[r] - alpha |y| - beta KL,
    whose implicit reward is beta log(pi/ref) + alpha |y|, so a pair the longer answer won needs less
    margin and weighs less in the gradient (docs/trainers.md, "Length control in the loss")."""
    length_gap = (record.chosen_lengths - record.rejected_lengths).to(scores.delta.dtype)
    return smoothed_logistic_loss(
        options.beta * scores.delta + options.alpha * length_gap, options.label_smoothing
    )


def simpo(record: PairLogProbs, scores: PairScores, options: LossOptions) -> Tensor:
    """SimPO (Meng et al. 2024), reference-free: -log sigma(beta lp_w/|y_w| - beta lp_l/|y_l| - gamma)."""
    delta = _per_token(record.policy_chosen, record.chosen_lengths) - _per_token(
        record.policy_rejected, record.rejected_lengths
    )
    return smoothed_logistic_loss(options.beta * delta - options.gamma, options.label_smoothing)


LossFunction = Callable[[PairLogProbs, PairScores, LossOptions], Tensor]
LOSSES: dict[str, LossFunction] = {
    "sigmoid": sigmoid,
    "hinge": hinge,
    "ipo": ipo,
    "exo_pair": exo_pair,
    "nca_pair": nca_pair,
    "robust": robust,
    "bco_pair": bco_pair,
    "sppo_hard": sppo_hard,
    "aot": aot,
    "aot_unpaired": aot_unpaired,
    "apo_zero": apo_zero,
    "apo_down": apo_down,
    "discopop": discopop,
    "sft": sft,
    "sigmoid_norm": sigmoid_norm,
    "rdpo": rdpo,
    "simpo": simpo,
}
LOSS_NAMES = tuple(LOSSES)
# f-DPO's reparameterisation leaves a beta log Z(x) term that cancels only in s_w - s_l (and sft ignores s)
F_DIVERGENCE_LOSSES = {
    "sigmoid",
    "sigmoid_norm",
    "hinge",
    "ipo",
    "exo_pair",
    "robust",
    "discopop",
    "sft",
    "rdpo",
}
SORTING_LOSSES = {"aot", "aot_unpaired"}  # they reorder pairs, so per-pair WPO weights would misalign
REFERENCE_FREE_LOSSES = {"simpo", "sft"}  # need no reference log-probs (when they are the only terms)

LossSpec = tuple[tuple[str, float], ...]


def parse_loss_spec(text: str) -> LossSpec:
    """'sigmoid' or a weighted mix 'sigmoid:1,sft:0.2' -> (('sigmoid', 1.0), ('sft', 0.2)); ValueError if bad."""
    from prefkit.training.stage import loss_terms

    terms = loss_terms(text)
    for name, _ in terms:
        if name not in LOSSES:
            raise ValueError(f"unknown loss '{name}' (choose from {', '.join(LOSS_NAMES)})")
    return tuple(terms)


def check_combination(spec: LossSpec, options: LossOptions) -> None:
    """Refuse option combinations the math does not define (ValueError naming the option)."""
    names = {name for name, _ in spec}
    if options.f_divergence not in F_DIVERGENCES:
        raise ValueError(
            f"f_divergence must be one of {', '.join(F_DIVERGENCES)}, got '{options.f_divergence}'"
        )
    if options.f_divergence != "reverse_kl" and not names <= F_DIVERGENCE_LOSSES:
        unsupported = ", ".join(sorted(names - F_DIVERGENCE_LOSSES))
        raise ValueError(f"f_divergence '{options.f_divergence}' is not defined for loss {unsupported}")
    if options.wpo and names & SORTING_LOSSES:
        raise ValueError(f"wpo weighting is not defined for {', '.join(sorted(names & SORTING_LOSSES))}")
    if "exo_pair" in names and not 0 < options.label_smoothing < 1:
        raise ValueError("loss exo_pair needs label_smoothing in (0, 0.5) (its target probability eps)")


def needs_reference(spec: LossSpec) -> bool:
    """Whether any term of the mix reads reference log-probs."""
    return any(name not in REFERENCE_FREE_LOSSES for name, _ in spec)


def wpo_weights(record: PairLogProbs) -> Tensor:
    """WPO (Zhou et al. 2024, Eq. 2): exp(mean aligned log-prob of y_w) * exp(same for y_l), detached."""
    if record.chosen_wpo is None or record.rejected_wpo is None:
        raise ValueError("wpo weighting needs the aligned log-probs (chosen_wpo, rejected_wpo) in the record")
    return torch.exp(record.chosen_wpo.detach() + record.rejected_wpo.detach())


def reward_metrics(record: PairLogProbs, scores: PairScores, beta: float) -> dict[str, Tensor]:
    """Implicit-reward metrics logged every step (means over the batch, detached): rewards are beta * r."""
    chosen_rewards = beta * scores.chosen_logratios.detach()
    rejected_rewards = beta * scores.rejected_logratios.detach()
    return {
        "rewards/chosen": chosen_rewards.mean(),
        "rewards/rejected": rejected_rewards.mean(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
        "logps/chosen": record.policy_chosen.detach().mean(),
        "logps/rejected": record.policy_rejected.detach().mean(),
    }


def preference_loss(spec: LossSpec | str, record: PairLogProbs, options: LossOptions) -> LossOutput:
    """sum_k weight_k * mean_pairs(loss_k) over the named losses (each optionally WPO-weighted), with metrics."""
    terms = parse_loss_spec(spec) if isinstance(spec, str) else spec
    check_combination(terms, options)
    scores = pair_scores(record, options)
    weights = wpo_weights(record) if options.wpo else None
    metrics = reward_metrics(record, scores, options.beta)
    total = record.policy_chosen.new_zeros(())
    for name, weight in terms:
        per_pair = LOSSES[name](record, scores, options)
        if weights is not None:
            per_pair = per_pair * weights
        term = per_pair.mean()
        if len(terms) > 1:
            metrics[f"loss/{name}"] = term.detach()
        total = total + weight * term
    return total, metrics
