"""The eval stage's config: which evaluators run, with which options. Only pydantic here: the CLI builds
its flags from this model at start-up."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class EvalConfig(BaseModel):
    """Which evaluators to run and their options (`options[evaluator] = {option: value}`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a typo in a config file is an error

    evaluators: list[str] = Field(
        default_factory=lambda: ["reward-kl"],
        description="Evaluator plugin to run (repeatable): reward-kl, alpaca-eval, winrate, ... "
        "(default: reward-kl)",
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per evaluator: `options[evaluator] = {option: value}`."
    )
    plots: bool = Field(True, description="Draw the PNG plots.")

    @field_validator("evaluators")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one evaluator is needed")
        if len(set(value)) != len(value):
            raise ValueError(f"evaluators are repeated: {value}")
        return value

    @model_validator(mode="after")
    def _options_name_evaluators(self) -> EvalConfig:
        unknown = sorted(set(self.options) - set(self.evaluators))
        if unknown:
            raise ValueError(
                f"options given for evaluators that are not run: {unknown} (running {self.evaluators})"
            )
        return self
