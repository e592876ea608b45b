"""Shared fixtures: a tiny Llama built once per session, and a small prompts file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny Llama (head_dim 32) with a locally trained BPE tokenizer."""
    from prefkit.testing import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session", autouse=True)
def _isolated_prefkit_home(tmp_path_factory):
    """Keep test caches out of the user's ~/.cache/prefkit, but reuse the converted embedded model."""
    os.environ.setdefault("PREFKIT_HOME", str(tmp_path_factory.mktemp("prefkit-home")))
    yield


@pytest.fixture()
def prompts_file(tmp_path) -> Path:
    """Eight short prompts as JSONL."""
    topics = ["movie", "book", "city", "song", "meal", "garden", "friend", "trip"]
    path = tmp_path / "prompts.jsonl"
    with open(path, "w") as handle:
        for index, topic in enumerate(topics):
            handle.write(
                json.dumps({"prompt_id": f"t{index}", "prompt": f"Write one sentence about a {topic}."})
                + "\n"
            )
    return path
