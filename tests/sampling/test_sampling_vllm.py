"""The vLLM backend on the tiny model: n samples, seeds, log-probs against transformers on the same tokens.

One engine serves the whole module (starting one takes ~30 s on CPU).
"""

from __future__ import annotations

import importlib.util

import pytest

from prefkit.chat import encode_prompt
from prefkit.errors import ConfigError, ModelError
from prefkit.models import load_causal_lm
from prefkit.sampling.base import SamplingParams
from prefkit.sampling.options import SamplerOptions
from prefkit.sampling.prompt_tokens import PromptTooLongError
from prefkit.scoring import completion_logprobs_from_ids

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

PROMPTS = ["Write one sentence about a movie.", "Write one sentence about a book.", "The city was"]
ENGINE_OPTIONS = SamplerOptions(dtype="float32", enforce_eager=True, max_model_len=512)


@pytest.fixture(scope="module")
def vllm_sampler(tiny_model_dir):
    from prefkit.sampling.vllm_backend import VLLMSampler

    sampler = VLLMSampler(str(tiny_model_dir), ENGINE_OPTIONS)
    yield sampler
    sampler.close()


@pytest.fixture(scope="module")
def sampled(vllm_sampler):
    """Two completions per prompt with log-probs (seed 3), shared by the tests that only read them."""
    return vllm_sampler.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=16, seed=3, logprobs=True))


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from prefkit.models import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


def test_n_completions_per_prompt_with_token_counts(sampled, tokenizer):
    assert [len(row) for row in sampled] == [2, 2, 2]
    for row in sampled:
        assert row[0].token_ids != row[1].token_ids
        for completion in row:
            assert 1 <= completion.num_tokens == len(completion.token_ids) <= 16
            assert completion.finish_reason in ("stop", "length")
            decoded = tokenizer.decode(list(completion.token_ids), skip_special_tokens=True)
            # vLLM's incremental detokenizer holds back an unfinished UTF-8 character at the very end
            assert decoded.startswith(completion.text)
            assert set(decoded[len(completion.text) :]) <= {"\ufffd"}


def test_logprobs_match_transformers_on_the_same_completions(sampled, tokenizer, tiny_model_dir):
    model = load_causal_lm(str(tiny_model_dir), dtype="float32", device="cpu")
    pairs = [
        (encode_prompt(tokenizer, prompt, None), list(completion.token_ids))
        for prompt, row in zip(PROMPTS, sampled, strict=True)
        for completion in row
    ]
    expected = completion_logprobs_from_ids(model, pairs)
    assert [c.logprob for row in sampled for c in row] == pytest.approx(expected, abs=1e-4)


def test_same_seed_same_completions_and_different_seed_different(vllm_sampler, sampled):
    again = vllm_sampler.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=16, seed=3, logprobs=True))
    other = vllm_sampler.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=16, seed=4))
    assert again == sampled
    assert [[c.text for c in row] for row in other] != [[c.text for c in row] for row in sampled]


def test_stop_string_cuts_the_text(vllm_sampler, sampled):
    full = sampled[0][0]
    stop = next(full.text[i : i + 2] for i in range(2, len(full.text) - 1) if full.text[i : i + 2].isalpha())
    cut = vllm_sampler.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=16, seed=3, stop=(stop,)))[0][0]
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.finish_reason == "stop"


def test_prompt_longer_than_max_model_len_is_refused(vllm_sampler):
    with pytest.raises(PromptTooLongError) as caught:
        vllm_sampler.generate(["hello", "the movie was good " * 200], SamplingParams(n=1, max_new_tokens=4))
    assert caught.value.index == 1


def test_sample_stage_with_the_vllm_backend(
    vllm_sampler, tiny_model_dir, prompts_file, tmp_path, monkeypatch
):
    import prefkit.plugins as plugins
    import prefkit.sampling.stage as stage

    class SharedEngine:
        def __new__(cls, model, options):
            assert options.use_chat_template is True and options.dtype == "float32"
            return vllm_sampler

    monkeypatch.setattr(plugins, "load_plugin", lambda kind, name: SharedEngine)
    monkeypatch.setattr(vllm_sampler, "close", lambda: None)  # the module fixture closes it
    config = stage.SampleConfig(
        model=str(tiny_model_dir), backend="vllm", n=2, max_new_tokens=8, dtype="float32", logprobs=True
    )
    table = stage.sample(prompts_file, tmp_path / "cands", config, progress=False).table()
    assert table.height == 8
    assert table["completions"].list.len().to_list() == [2] * 8
    assert all(value < 0 for value in table["completion_logprobs"].explode().to_list())


def test_data_parallel_offline_is_refused_with_a_hint(tiny_model_dir):
    from prefkit.sampling.vllm_backend import VLLMSampler

    with pytest.raises(ConfigError, match="prefkit serve"):
        VLLMSampler(str(tiny_model_dir), SamplerOptions(data_parallel_size=2))


def test_unsupported_head_size_on_cpu_fails_fast(tmp_path):
    from vllm.platforms import current_platform

    from prefkit.sampling.vllm_backend import VLLMSampler
    from prefkit.testing import build_tiny_llama

    if not current_platform.is_cpu():
        pytest.skip("the head-size check applies to vLLM's CPU kernels only")
    model_dir = build_tiny_llama(tmp_path / "head16", hidden_size=64, num_heads=4)  # head_dim 16
    with pytest.raises(ModelError, match="head size 16"):
        VLLMSampler(str(model_dir), ENGINE_OPTIONS)


def test_seeded_batch_larger_than_one_step_completes(vllm_sampler):
    # more prompt tokens than one engine step takes: with chunked prefill, vLLM rewinds the split
    # request's seeded generator, which fails on CPU ("CPU Generator does not use offset")
    prompts = [f"Write a long and careful paragraph about topic number {i}. " * 6 for i in range(200)]
    rows = vllm_sampler.generate(prompts, SamplingParams(n=2, max_new_tokens=2, seed=5))
    assert [len(row) for row in rows] == [2] * len(prompts)
