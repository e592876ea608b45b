"""LLM judges over OpenAI-compatible endpoints: templates, cache, client with retries, verdicts."""

from prefkit.judge.cache import JudgeCache
from prefkit.judge.client import JudgeClient, JudgeError, JudgeRequest, JudgeSettings, JudgeUsage
from prefkit.judge.templates import JudgeTemplate, load_template
from prefkit.judge.verdicts import (
    compare_both_orders,
    compare_one_order,
    pointwise_scores,
    round_robin_scores,
)

__all__ = [
    "JudgeCache",
    "JudgeClient",
    "JudgeError",
    "JudgeRequest",
    "JudgeSettings",
    "JudgeTemplate",
    "JudgeUsage",
    "compare_both_orders",
    "compare_one_order",
    "load_template",
    "pointwise_scores",
    "round_robin_scores",
]
