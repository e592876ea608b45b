"""Length control in the DPO loss, set per round from that round's pairs (pure rules, no I/O but one reader).

`prefkit iterate` can penalise length in two places: when choosing pairs (λ, `length_penalty_mode`) and in
the loss (`[loss_length_control]`, this module). Each round, after labeling, the loss setting is either a
fixed value or re-chosen from the round's pairs:

- `rdpo` (R-DPO, loss −log σ(βh + α(|y_w| − |y_l|))): the length-neutral α makes the first-order push of
  the round's first step on the policy's stopping propensity zero (derivation in docs/trainers.md,
  "Length control in the loss"): with pair weights w_i(α) = σ(−α·gap_i) (the loss gradient's weight at
  the start, where the policy equals the reference and h = 0), solve
  Σ w_i(α)·[(e_w,i − e_l,i) − gap_i / L̄] = 0 for α ≥ 0, where gap_i = |y_w| − |y_l| in trained tokens,
  e = 1 when the side is trained with a closing EOS, and L̄ the pairs' mean trained length.
- `rdpo` with `length-target`: a setpoint, not a first-order balance. Round 1 trains with `value`; round r
  moves the previous round's α by `gain` × the drift of the policy's sampled length, the mean tokens of
  round r's candidates (the previous round's policy on the training prompts) over round 1's (the initial
  policy's) minus 1: α_r = clip(α_{r−1} + gain·drift_r, 0, cap). Held-out prompts are never read.
- `sigmoid_norm` (length-normalised DPO, −log σ(β(r_w/|y_w| − r_l/|y_l|))): β_k = β·L̄, so a pair of the
  round's mean length has the same logit scale as summed DPO while no sequence's gradient grows with
  its length.
- `ld_dpo` (LD-DPO, tokens past the shorter answer weigh ld_alpha): fixed `value` only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from prefkit.validation import STRICT_CONFIG

METHODS = ("rdpo", "sigmoid_norm", "ld_dpo")
ALPHA_CAP = 1.0  # per token: at α·gap = ±10 logits a pair's weight is 0 or 1 already
# α per unit of relative length drift: 1 / 7.6, the inverse of round 1's measured sensitivity on the embedded
# default (seed 0: α 0.05 moved held-out length from +36 % to −2 % in tokens; docs/experiments)
DEFAULT_GAIN = 0.13


class LossLengthControl(BaseModel):
    """`[loss_length_control]` of an iterate config: which loss term holds length, and how it is set."""

    model_config = STRICT_CONFIG

    method: Literal["rdpo", "sigmoid_norm", "ld_dpo"] = Field(
        description="rdpo: R-DPO's α·(|y_w| − |y_l|) in the logit; sigmoid_norm: length-normalised DPO; "
        "ld_dpo: LD-DPO's down-weighting of tokens past the shorter answer."
    )
    rule: Literal["fixed", "length-neutral", "length-target"] = Field(
        "length-neutral",
        description="fixed: `value` in every round; length-neutral: re-chosen each round from its pairs "
        "(rdpo: α; sigmoid_norm: β·mean trained length); length-target (rdpo): `value` in round 1, then "
        "α moved by gain × the drift of the sampled length from round 1's.",
    )
    value: float | None = Field(
        None,
        description="fixed rule: α (rdpo), β (sigmoid_norm) or ld_alpha (ld_dpo); length-target: round 1's α.",
    )
    gain: float | None = Field(
        None,
        gt=0,
        description=f"length-target: α per unit of relative length drift (default {DEFAULT_GAIN}).",
    )

    @model_validator(mode="after")
    def _check(self) -> LossLengthControl:
        if self.rule in ("fixed", "length-target") and self.value is None:
            raise ValueError(f"value is needed with rule = '{self.rule}'")
        if self.rule == "length-target" and self.method != "rdpo":
            raise ValueError("length-target sets R-DPO's alpha; use method = 'rdpo'")
        if self.gain is not None and self.rule != "length-target":
            raise ValueError("gain is used by rule = 'length-target' only")
        if self.rule == "length-neutral" and self.value is not None:
            raise ValueError("value is chosen per round under rule = 'length-neutral'; leave it out")
        if self.method == "ld_dpo" and self.rule != "fixed":
            raise ValueError("ld_dpo has no per-round rule; use rule = 'fixed' with value = ld_alpha")
        if self.value is not None:
            low_ok = self.value > 0 if self.method == "sigmoid_norm" else self.value >= 0
            if not low_ok or (self.method == "ld_dpo" and self.value > 1):
                bounds = {"rdpo": ">= 0", "sigmoid_norm": "> 0", "ld_dpo": "in [0, 1]"}
                raise ValueError(f"value must be {bounds[self.method]} for {self.method}")
        return self


@dataclass(frozen=True)
class PairLengths:
    """Trained token lengths of a round's pairs and whether each side is trained with a closing EOS."""

    chosen: Sequence[int]
    rejected: Sequence[int]
    eos_chosen: Sequence[bool]
    eos_rejected: Sequence[bool]

    def mean_length(self) -> float:
        """L̄: mean trained length over both sides."""
        return (sum(self.chosen) + sum(self.rejected)) / (2 * len(self.chosen))


@dataclass(frozen=True)
class LengthHistory:
    """What the length-target rule reads from earlier rounds (mean completion tokens of sampled candidates)."""

    previous_alpha: float  # the α the previous round trained with
    length: float  # this round's candidates: the previous round's policy
    target_length: float  # round 1's candidates: the initial policy

    def drift(self) -> float:
        return self.length / self.target_length - 1


@dataclass(frozen=True)
class LossLengthSetting:
    """What one round trains with, and the numbers it was chosen from (recorded in lineage and report)."""

    method: str
    rule: str
    loss: str
    alpha: float | None = None  # R-DPO α per token
    beta: float | None = None  # the round's β when the rule sets it (sigmoid_norm)
    ld_alpha: float | None = None
    mean_length: float | None = None  # L̄ of the round's pairs, trained tokens
    stop_push_before: float | None = None  # the rdpo rule's criterion at α = 0 (per pair)
    stop_push_after: float | None = None  # ... at the chosen α (0 unless capped or already <= 0)
    length_drift: float | None = None  # length-target: this round's sampled length / round 1's − 1

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}


def _weight(alpha: float, gap: float) -> float:
    """σ(−α·gap): the R-DPO loss gradient's weight of a pair at h = 0."""
    z = -alpha * gap
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def stop_push(pairs: PairLengths, alpha: float) -> float:
    """Mean over pairs of w_i(α)·[(e_w − e_l) − gap_i / L̄]: > 0 raises the stopping propensity (shorter),
    < 0 lowers it (longer), at the first step of an R-DPO round (model: one stop logit, EOS probability
    1/L̄ per position under the reference)."""
    mean_length = pairs.mean_length()
    total = 0.0
    for chosen, rejected, eos_w, eos_l in zip(
        pairs.chosen, pairs.rejected, pairs.eos_chosen, pairs.eos_rejected, strict=True
    ):
        gap = chosen - rejected
        total += _weight(alpha, gap) * ((int(eos_w) - int(eos_l)) - gap / mean_length)
    return total / len(pairs.chosen)


def length_neutral_alpha(pairs: PairLengths, cap: float = ALPHA_CAP, tolerance: float = 1e-7) -> float:
    """The smallest α in [0, cap] with stop_push(α) >= 0 (bisection; the push grows with α, see docs).

    0 when the pairs already do not push towards longer answers; `cap` when no α up to it gets there."""
    if not pairs.chosen:
        raise ValueError("no pairs to choose alpha from")
    if stop_push(pairs, 0.0) >= 0:
        return 0.0
    if stop_push(pairs, cap) < 0:
        return cap
    low, high = 0.0, cap
    while high - low > tolerance:
        middle = (low + high) / 2
        low, high = (middle, high) if stop_push(pairs, middle) < 0 else (low, middle)
    return high


def length_target_alpha(history: LengthHistory, gain: float, cap: float = ALPHA_CAP) -> float:
    """α_r = clip(α_{r−1} + gain·drift_r, 0, cap): more α when the policy's answers grew since round 1, less
    when they shrank; α never goes negative (that would reward length)."""
    return min(cap, max(0.0, history.previous_alpha + gain * history.drift()))


def round_setting(
    control: LossLengthControl, pairs: PairLengths, beta: float, history: LengthHistory | None = None
) -> LossLengthSetting:
    """The loss setting of one round: fixed, chosen from the round's pairs, or (length-target) from the
    previous round's α and the drift of the sampled length (`history`; None in round 1)."""
    mean_length = pairs.mean_length() if pairs.chosen else None
    if control.method == "ld_dpo":
        return LossLengthSetting(
            "ld_dpo", "fixed", "sigmoid", ld_alpha=control.value, mean_length=mean_length
        )
    if control.method == "sigmoid_norm":
        if control.rule == "fixed":
            round_beta = float(control.value)  # type: ignore[arg-type]
        else:
            if not mean_length:
                raise ValueError("no pairs to choose beta from")
            round_beta = beta * mean_length
        return LossLengthSetting(
            "sigmoid_norm", control.rule, "sigmoid_norm", beta=round_beta, mean_length=mean_length
        )
    drift = None
    if control.rule == "length-neutral":
        alpha = length_neutral_alpha(pairs)
    elif control.rule == "length-target" and history is not None:
        alpha, drift = length_target_alpha(history, control.gain or DEFAULT_GAIN), history.drift()
    else:
        alpha = float(control.value)  # type: ignore[arg-type]
    return LossLengthSetting(
        "rdpo",
        control.rule,
        "rdpo",
        alpha=alpha,
        mean_length=mean_length,
        stop_push_before=stop_push(pairs, 0.0) if pairs.chosen else None,
        stop_push_after=stop_push(pairs, alpha) if pairs.chosen else None,
        length_drift=drift,
    )
