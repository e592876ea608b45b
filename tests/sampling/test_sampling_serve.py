"""`prefkit.serve.openai_server`: vLLM's OpenAI-compatible server answers chat completions, then stops."""

from __future__ import annotations

import importlib.util
import urllib.error
import urllib.request

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]


def test_server_answers_chat_completions_through_the_openai_client(tiny_model_dir):
    from openai import OpenAI

    from prefkit.serve import openai_server

    model = str(tiny_model_dir)
    with openai_server(model, dtype="float32", enforce_eager=True, max_model_len=512) as base_url:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        client = OpenAI(base_url=base_url, api_key="unused")
        assert [entry.id for entry in client.models.list().data] == [model]
        response = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Write one sentence about a movie."}],
            max_tokens=8,
            temperature=1.0,
            seed=0,
        )
        assert isinstance(response.choices[0].message.content, str)
        assert 1 <= response.usage.completion_tokens <= 8
        health = base_url.removesuffix("/v1") + "/health"

    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(health, timeout=2)
