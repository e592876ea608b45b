"""VADER sentiment as a reward: the compound score of each completion, in [-1, 1], offline and fast."""

from __future__ import annotations

from prefkit.conversation import Prompt, display_prompt
from prefkit.errors import ConfigError, require_module


class VaderLabeler:
    """Scores each completion by its VADER compound sentiment (the demo's reward; no model, no network).

    Options: `include_prompt` (default False) scores `prompt + " " + completion` instead of the
    completion alone. For a conversation the completion is the last assistant turn, the one scored;
    `include_prompt` prepends the history as `role: text` lines.
    """

    name = "vader"

    def __init__(self, include_prompt: bool = False) -> None:
        if not isinstance(include_prompt, bool):
            raise ConfigError("must be true or false", field="labeler_options.include_prompt")
        vader = require_module("vader", "pip install nltk-vader-sentiment")
        self.include_prompt = include_prompt
        self._analyzer = vader.SentimentIntensityAnalyzer()

    def score(self, prompts: list[Prompt], completions: list[list[str]]) -> list[list[float]]:
        """Compound sentiment of every completion of every prompt."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completion lists")
        scores: list[list[float]] = []
        for prompt, texts in zip(prompts, completions, strict=True):
            row = []
            for text in texts:
                scored = f"{display_prompt(prompt)} {text}" if self.include_prompt else text
                row.append(float(self._analyzer.polarity_scores(scored)["compound"]))
            scores.append(row)
        return scores
