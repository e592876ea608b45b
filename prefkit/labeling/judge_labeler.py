"""An LLM judge as a labeler (GPT-4 or any OpenAI-compatible endpoint), pairwise or pointwise.

Pairwise mode turns comparisons into scores so the usual pairing applies: every pair of a prompt's
candidates is judged in both orders (position bias cancelled, disagreement = tie), and a candidate's
score is its win rate over its valid comparisons (a tie counts half; Copeland-style). Best-vs-worst
then pairs the candidate that won most against the one that won least, and `min_margin` is a
win-rate difference. A candidate without any valid comparison scores NaN and is dropped, counted.
Cost: k(k-1) requests per prompt of k candidates (before the cache).

Pointwise mode asks for a 1-10 score per completion; unparseable answers become NaN (counted drops).
"""

from __future__ import annotations

from typing import Any

from prefkit.conversation import Prompt
from prefkit.errors import ConfigError
from prefkit.judge.client import JudgeClient, JudgeSettings
from prefkit.judge.templates import load_template
from prefkit.judge.verdicts import pointwise_scores, round_robin_scores


class JudgeLabeler:
    """Scores completions with an LLM judge.

    Options: `mode` ('pairwise' or 'pointwise'), `template` (built-in name or path to a template file;
    default dpo_helpfulness / pointwise), plus every JudgeSettings field: model, base_url, api_key_env,
    max_concurrency, max_attempts, parse_attempts, timeout_s, backoff_initial_s, backoff_max_s,
    temperature, answer_limit, cache_path.
    """

    name = "judge"

    def __init__(self, mode: str = "pairwise", template: str | None = None, **settings: Any) -> None:
        if mode not in ("pairwise", "pointwise"):
            raise ConfigError(
                f"must be 'pairwise' or 'pointwise', got '{mode}'", field="labeler_options.mode"
            )
        self.mode = mode
        self.template = load_template(template, mode)
        self.client = JudgeClient(JudgeSettings.from_options(settings))

    def score(self, prompts: list[Prompt], completions: list[list[str]]) -> list[list[float]]:
        """Win rates (pairwise) or judge scores (pointwise), aligned with `completions`."""
        if self.mode == "pairwise":
            return round_robin_scores(self.client, self.template, prompts, completions)
        return pointwise_scores(self.client, self.template, prompts, completions)

    def usage(self) -> dict[str, int]:
        """Requests, tokens, cache hits, retries and invalid answers so far."""
        return self.client.usage.as_dict()

    def close(self) -> None:
        self.client.close()
