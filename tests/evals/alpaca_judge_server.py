"""The fake judge server configured as an AlpacaEval judge whose win rates a test can compute by hand.

It answers with one token and `top_logprobs` for 'm' and 'M', preferring the longer of the two outputs
in the prompt: P(identifier) = len(its output) / (len(output m) + len(output M)). So the model's
preference in alpaca_eval's terms is 1 + len(model) / (len(model) + len(baseline)), whatever order the
judge shows them in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from prefkit.testing.judge_server import FakeJudgeServer, JudgeReply

OUTPUT_PATTERN = re.compile(r'"model_identifier": "(m|M)",\s*"output": """(.*?)"""\n\s*}', re.DOTALL)


def judge_probabilities(prompt: str) -> dict[str, float]:
    """P('m') and P('M') from the lengths of the two outputs shown in the prompt."""
    outputs = dict(OUTPUT_PATTERN.findall(prompt))
    length_m, length_big_m = len(outputs.get("m", "")), len(outputs.get("M", ""))  # a probe shows none
    total = length_m + length_big_m
    if total == 0:
        return {"m": 0.5, "M": 0.5}
    return {"m": length_m / total, "M": length_big_m / total}


def length_preferring_judge(unparseable: Callable[[str], bool] | None = None):
    """A responder: the more likely identifier, with both probabilities (`unparseable(prompt)`: neither)."""

    def respond(messages: list[dict]) -> JudgeReply:
        prompt = "\n".join(message["content"] for message in messages)
        probabilities = judge_probabilities(prompt)
        if unparseable is not None and unparseable(prompt):
            probabilities = {"Both": 0.6, "Neither": 0.4}
        best = max(probabilities, key=probabilities.get)
        logprobs = {token: math.log(p) if p > 0 else -100.0 for token, p in probabilities.items()}
        return JudgeReply(best, logprobs, finish_reason="length")  # alpaca_eval asks for one token

    return respond


def alpaca_judge_server(
    *, with_logprobs: bool = True, unparseable: Callable[[str], bool] | None = None
) -> FakeJudgeServer:
    """The server (use it as a context manager); `with_logprobs=False` answers without logprobs."""
    return FakeJudgeServer(length_preferring_judge(unparseable), logprobs=with_logprobs)
