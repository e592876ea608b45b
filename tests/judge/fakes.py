"""Deterministic fake judges (VADER decides) and fast judge options, shared by judge, labeling and eval tests."""

from __future__ import annotations

from pathlib import Path

import vader

_ANALYZER = vader.SentimentIntensityAnalyzer()


def between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def sentiment(text: str) -> float:
    return _ANALYZER.polarity_scores(text)["compound"]


def helpfulness_judge(messages: list[dict]) -> str:
    """Answers the dpo_helpfulness template: the more positive response wins; equal ones go to A
    (a position-biased judge, which asking in both orders must turn into a tie)."""
    text = messages[-1]["content"]
    a = between(text, "Response A:\n", "\n\nResponse B:")
    b = between(text, "Response B:\n", "\n\nFIRST")
    winner = "A" if sentiment(a) >= sentiment(b) else "B"
    return f"Comparison: one response is warmer than the other.\nMore helpful: {winner}"


def alpaca_judge(messages: list[dict]) -> str:
    """Answers the alpaca_eval template with 'm' or 'M' (the more positive output)."""
    text = messages[-1]["content"]
    first = between(text, 'Model "m":\n', '\n\nModel "M":')
    second = between(text, 'Model "M":\n', "\n\n## Task")
    return "m" if sentiment(first) >= sentiment(second) else "M"


def pointwise_judge(messages: list[dict]) -> str:
    """Answers the pointwise template: score 1..10 from sentiment."""
    response = between(messages[-1]["content"], "Response:\n", "\n\nFIRST")
    return f"Assessment: fine.\nScore: {round(5.5 + 4.5 * sentiment(response))}"


def always_a(messages: list[dict]) -> str:
    return "Comparison: whatever.\nMore helpful: A"


def fast_judge_options(tmp_path: Path) -> dict:
    """Judge options for tests: tiny timeouts and backoff, a private cache file."""
    return {
        "model": "fake-judge",
        "timeout_s": 0.4,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.01,
        "max_concurrency": 4,
        "cache_path": str(tmp_path / "judge-cache.sqlite"),
    }
