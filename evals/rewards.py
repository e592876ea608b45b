"""The reward used by reward-vs-KL: a prefkit labeler, or VADER directly when the labeling stage is absent.

The labeler name is part of the evaluator's config and is recorded with the metrics, together with
where the scorer came from (`prefkit.labeling` or this module's VADER fallback), so a result never
silently depends on which code path ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from prefkit.errors import ConfigError, DependencyError, require_module


class Scorer(Protocol):
    """Pointwise scores for each completion of each prompt (higher is better)."""

    def score(self, prompts: list[str], completions: list[list[str]]) -> list[list[float]]: ...


@dataclass(frozen=True)
class LoadedScorer:
    """A scorer and the code path it was loaded through."""

    scorer: Scorer
    source: str


class VaderCompoundScorer:
    """VADER's compound polarity of each completion, in [-1, 1] (the prompt is ignored)."""

    def __init__(self) -> None:
        vader = require_module("vader", "pip install nltk-vader-sentiment")
        self._analyzer = vader.SentimentIntensityAnalyzer()

    def score(self, prompts: list[str], completions: list[list[str]]) -> list[list[float]]:
        return [
            [float(self._analyzer.polarity_scores(text)["compound"]) for text in group]
            for group in completions
        ]


def load_scorer(name: str, options: dict[str, Any] | None = None) -> LoadedScorer:
    """Load labeler `name` through `prefkit.labeling.stage.load_labeler`, or VADER if that stage is absent."""
    try:
        from prefkit.labeling.stage import load_labeler
    except ImportError:
        load_labeler = None
    if load_labeler is not None:
        return LoadedScorer(load_labeler(name, dict(options or {})), source="prefkit.labeling")
    if name == "vader":
        if options:
            raise ConfigError(
                f"the built-in VADER fallback takes no options, got {sorted(options)}",
                field="labeler_options",
            )
        return LoadedScorer(VaderCompoundScorer(), source="prefkit_evals.rewards:VaderCompoundScorer")
    raise DependencyError(
        f"labeler '{name}' needs the labeling stage (prefkit.labeling.stage), which is not available",
        hint="use labeler=vader or install a prefkit version with the labeling stage",
    )
