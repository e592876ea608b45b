"""Options of the `dpo` trainer (`--trainer-option key=value`, `[train.options]`), validated before any work."""

from __future__ import annotations

import math
from typing import ClassVar

from prefkit_trainers.dpo.losses import (
    F_DIVERGENCES,
    LossOptions,
    LossSpec,
    check_combination,
    parse_loss_spec,
)
from prefkit_trainers.dpo.packing import LAYOUTS
from pydantic import BaseModel, field_validator, model_validator

from prefkit.validation import STRICT_CONFIG


class DPOOptions(BaseModel):
    """What only the `dpo` trainer reads; TrainConfig holds what every trainer shares."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused
    refused: ClassVar[dict[str, str]] = {}

    label_smoothing: float = 0.0  # cDPO (sigmoid, rdpo, simpo); flip rate of robust, exo_pair, aot
    alpha: float = 0.0  # R-DPO length weight (per token of length difference)
    gamma: float = 0.0  # SimPO target margin
    discopop_tau: float = 0.05
    f_divergence: str = "reverse_kl"
    f_alpha: float = 0.5
    wpo: bool = False
    ld_alpha: float | None = None  # LD-DPO: weight of tokens past the shorter completion (None = off)
    layout: str = "shared_prefix"  # separate | shared_prefix | padding_free
    shared_prefix: bool | None = None  # legacy switch: False = layout separate
    # off | full | every_K (checkpoint every K-th decoder layer) | auto (from a memory estimate)
    activation_checkpointing: str = "off"
    gradient_checkpointing: bool | None = None  # legacy switch: True = full, False = off
    max_tokens_per_batch: int | None = None  # token budget of a micro-batch (None = batch_size pairs)
    compile: bool = False  # torch.compile each decoder layer
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    eval_every_steps: int = 0

    @model_validator(mode="after")
    def _check(self) -> DPOOptions:
        checks = [
            (0 <= self.label_smoothing < 0.5, "label_smoothing", "must be in [0, 0.5)"),
            (self.discopop_tau > 0, "discopop_tau", "must be > 0"),
            (
                self.f_divergence in F_DIVERGENCES,
                "f_divergence",
                f"must be one of {', '.join(F_DIVERGENCES)}",
            ),
            (math.isfinite(self.f_alpha), "f_alpha", "must be a finite number"),
            (self.ld_alpha is None or 0 <= self.ld_alpha <= 1, "ld_alpha", "must be in [0, 1]"),
            (self.layout in LAYOUTS, "layout", f"must be one of {', '.join(LAYOUTS)}"),
            (self.lora_r >= 1, "lora_r", "must be >= 1"),
            (0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)"),
            (self.eval_every_steps >= 0, "eval_every_steps", "must be >= 0 (0 = once per epoch)"),
            (
                self.max_tokens_per_batch is None or self.max_tokens_per_batch >= 1,
                "max_tokens_per_batch",
                "must be >= 1 (tokens the forward pass runs per micro-batch, padding included)",
            ),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ValueError(f"{name} {message}")
        if self.shared_prefix is not None:
            self.layout = "shared_prefix" if self.shared_prefix else "separate"
        if self.gradient_checkpointing is not None:
            legacy = "full" if self.gradient_checkpointing else "off"
            given = "activation_checkpointing" in self.model_fields_set
            if given and self.activation_checkpointing != legacy:
                raise ValueError(
                    f"activation_checkpointing is {self.activation_checkpointing} but gradient_checkpointing "
                    f"is {self.gradient_checkpointing}: give one of them"
                )
            self.activation_checkpointing = legacy
        return self

    @field_validator("activation_checkpointing", mode="before")
    @classmethod
    def _checkpointing_choice(cls, value: object) -> object:
        """Booleans (and 'true'/'false') read as full/off; the rest must name a choice."""
        if isinstance(value, bool):
            return "full" if value else "off"
        text = str(value).strip().lower()
        text = {"true": "full", "false": "off", "yes": "full", "no": "off"}.get(text, text)
        checkpoint_interval(text)  # ValueError naming the choices when it is none of them
        return text

    def checkpoint_interval(self) -> int | None:
        """0 = off, 1 = every layer, K = every K-th layer, None = auto (decided from a memory estimate)."""
        return checkpoint_interval(self.activation_checkpointing)

    def loss_options(self, beta: float) -> LossOptions:
        """The hyper-parameters the loss functions read."""
        return LossOptions(
            beta=beta,
            label_smoothing=self.label_smoothing,
            alpha=self.alpha,
            gamma=self.gamma,
            discopop_tau=self.discopop_tau,
            f_divergence=self.f_divergence,
            f_alpha=self.f_alpha,
            wpo=self.wpo,
        )


CHECKPOINTING_CHOICES = "off, full, every_K (K >= 2: every K-th decoder layer) or auto"


def checkpoint_interval(choice: str) -> int | None:
    """'off' -> 0, 'full' -> 1, 'every_K' -> K, 'auto' -> None; ValueError for anything else."""
    if choice in ("off", "full", "auto"):
        return {"off": 0, "full": 1, "auto": None}[choice]
    prefix, _, number = choice.partition("_")
    if prefix == "every" and number.isdigit() and int(number) >= 1:
        return int(number)
    raise ValueError(f"activation_checkpointing must be {CHECKPOINTING_CHOICES}, got '{choice}'")


def checkpointing_name(interval: int) -> str:
    """The option value for a checkpoint interval (0 -> off, 1 -> full, K -> every_K)."""
    return {0: "off", 1: "full"}.get(interval, f"every_{interval}")


def checked_loss(loss: str, options: DPOOptions, beta: float) -> tuple[LossSpec, LossOptions]:
    """Parse `--loss` (a name or a weighted mix) and check it against the options (ValueError when bad)."""
    spec = parse_loss_spec(loss)
    loss_options = options.loss_options(beta)
    check_combination(spec, loss_options)
    return spec, loss_options
