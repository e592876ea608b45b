"""The label stage's config: how candidates become preference pairs. Only pydantic and the pure pairing
constants here: the CLI builds its flags from this model at start-up."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from prefkit.labeling.pairing import DEFAULT_TRUNCATION, STRATEGIES, TRUNCATION_MODES
from prefkit.validation import STRICT_CONFIG

LENGTH_UNITS = ("tokens", "chars")
CHOICES = {"pairing": STRATEGIES, "truncated": TRUNCATION_MODES, "length_unit": LENGTH_UNITS}


class LabelConfig(BaseModel):
    """How candidates become preference pairs (every field is recorded in the manifest and card)."""

    model_config = STRICT_CONFIG  # unknown keys and NaN/inf refused

    labeler: str = Field(
        "vader",
        description="Labeler plugin: vader (offline sentiment), sentiment (HF classifier), reward-model (HF "
        "sequence classifier), judge (OpenAI-compatible LLM judge); see `prefkit plugins`.",
    )
    labeler_options: dict[str, Any] = Field(
        default_factory=dict,
        description='Labeler options as a JSON object, e.g. \'{"model": "path/to/rm"}\' or \'{"base_url": '
        '"http://localhost:8000/v1", "model": "judge", "mode": "pairwise"}\'. API keys are never given here: '
        "the judge reads the environment variable named by api_key_env.",
    )
    pairing: str = Field(
        "best-vs-worst",
        description="How pairs are formed per prompt: best-vs-worst (highest vs lowest adjusted score), "
        "all-pairs (every pair of candidates), random-pair (one seeded random pair).",
    )
    min_margin: float = Field(
        0.0,
        ge=0.0,
        description="Keep a pair only if chosen beats rejected by at least this much (adjusted score); ties "
        "always dropped.",
    )
    length_penalty: float = Field(
        0.0, description="Rank candidates by score - lambda * length (0 = no length control)."
    )
    length_unit: str = Field(
        "tokens", description="Unit of length: tokens (from completion_tokens) or chars."
    )
    truncated: str = Field(
        DEFAULT_TRUNCATION,
        description="Completions cut at max_new_tokens: drop (never pair them), no-eos (pair them, train "
        "without an EOS after the cut) or keep (pair them, train with an EOS appended, as TRL does).",
    )
    seed: int = Field(0, description="Seed for random-pair draws (each prompt id gets its own stream).")
    shard_size: int = Field(256, gt=0, description="Rows per shard: the unit of streaming and of resume.")
    license: str = Field(
        "unknown", description="Licence written to the data card (inherit it from prompts and model)."
    )

    @field_validator("pairing", "truncated", "length_unit")
    @classmethod
    def _one_of_the_choices(cls, value: str, info: ValidationInfo) -> str:
        choices = CHOICES[info.field_name]
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value
