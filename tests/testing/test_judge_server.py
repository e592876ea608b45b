"""The fake judge server speaks the OpenAI chat API: made-up or given logprobs, or none, and finish reasons."""

from __future__ import annotations

import math

import pytest

from prefkit.testing.judge_server import FakeJudgeServer, JudgeReply

openai = pytest.importorskip("openai")


def ask(server: FakeJudgeServer, top_logprobs: int = 3):
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    return client.chat.completions.create(
        model="judge",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        top_logprobs=top_logprobs,
        max_tokens=1,
    )


def test_fake_server_speaks_logprobs():
    with FakeJudgeServer(lambda messages: "m") as server:
        response = ask(server)
    content = response.choices[0].logprobs.content
    assert content[0].token == "m" and len(content[0].top_logprobs) == 3
    assert math.exp(content[0].top_logprobs[0].logprob) > math.exp(content[0].top_logprobs[1].logprob)
    assert response.usage.prompt_tokens == 1
    assert response.choices[0].finish_reason == "stop"


def test_a_reply_sets_the_token_probabilities_and_finish_reason():
    reply = JudgeReply("M", {"m": math.log(0.25), "M": math.log(0.75)}, finish_reason="length")
    with FakeJudgeServer(lambda messages: reply) as server:
        response = ask(server, top_logprobs=5)
    choice = response.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("M", "length")
    (token,) = choice.logprobs.content
    assert token.token == "M" and token.logprob == pytest.approx(math.log(0.75))
    assert {top.token: math.exp(top.logprob) for top in token.top_logprobs} == pytest.approx(
        {"m": 0.25, "M": 0.75}
    )


def test_a_server_without_logprobs_ignores_the_request():
    with FakeJudgeServer(lambda messages: "m", logprobs=False) as server:
        response = ask(server)
    assert response.choices[0].logprobs is None and response.choices[0].message.content == "m"
    assert server.requests == server.answered == 1
