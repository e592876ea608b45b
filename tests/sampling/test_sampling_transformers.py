"""The transformers backend: shapes, token counts, log-probs against prefkit.scoring, seeds, stop strings."""

from __future__ import annotations

import re

import pytest

from prefkit.chat import encode_prompt
from prefkit.sampling.base import SamplingParams
from prefkit.sampling.prompt_tokens import PromptTooLongError
from prefkit.sampling.transformers_backend import truncate_at_stop
from prefkit.scoring import completion_logprobs_from_ids

PROMPTS = ["Write one sentence about a movie.", "Write one sentence about a book.", "The city was"]


def test_completions_shapes_token_counts_and_logprobs_match_scoring(transformers_sampler):
    sampler = transformers_sampler
    results = sampler.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=12, seed=1, logprobs=True))

    assert [len(row) for row in results] == [2, 2, 2]
    pairs, sampled = [], []
    for prompt, row in zip(PROMPTS, results, strict=True):
        for completion in row:
            assert 1 <= completion.num_tokens <= 12
            assert completion.num_tokens == len(completion.token_ids)
            assert completion.text == sampler.tokenizer.decode(
                list(completion.token_ids), skip_special_tokens=True
            )
            assert completion.finish_reason in ("stop", "length")
            pairs.append((encode_prompt(sampler.tokenizer, prompt, None), list(completion.token_ids)))
            sampled.append(completion.logprob)
    # rows of one batch have different prompt lengths, so left padding is exercised
    expected = completion_logprobs_from_ids(sampler.model, pairs)
    assert all(value < 0 for value in sampled)
    assert sampled == pytest.approx(expected, abs=1e-4)


def test_same_seed_same_completions_and_different_seed_different(transformers_sampler):
    params = SamplingParams(n=2, max_new_tokens=10, seed=7)
    first = transformers_sampler.generate(PROMPTS, params)
    again = transformers_sampler.generate(PROMPTS, params)
    other = transformers_sampler.generate(PROMPTS, SamplingParams(n=2, max_new_tokens=10, seed=8))

    texts = [[c.text for c in row] for row in first]
    assert texts == [[c.text for c in row] for row in again]
    assert texts != [[c.text for c in row] for row in other]
    assert all(row[0].token_ids != row[1].token_ids for row in first), (
        "the n samples of a prompt should differ"
    )
    assert all(c.logprob is None for row in first for c in row)


def test_stop_string_cuts_the_completion_before_it(transformers_sampler):
    params = SamplingParams(n=1, max_new_tokens=24, seed=3)
    full = transformers_sampler.generate(PROMPTS[:1], params)[0][0]
    match = re.search(r"[A-Za-z]{2}", full.text[2:])
    assert match is not None, f"no ASCII letters to use as a stop string in {full.text!r}"
    stop = match.group(0)

    cut = transformers_sampler.generate(
        PROMPTS[:1], SamplingParams(n=1, max_new_tokens=24, seed=3, stop=(stop,))
    )[0][0]

    assert cut.text == full.text[: full.text.find(stop)]
    assert stop not in cut.text
    assert cut.finish_reason == "stop"
    assert cut.token_ids == full.token_ids[: cut.num_tokens]


def test_greedy_sampling_repeats_the_single_best_completion(transformers_sampler):
    results = transformers_sampler.generate(
        PROMPTS[:2], SamplingParams(n=3, temperature=0.0, max_new_tokens=6)
    )
    for row in results:
        assert len(row) == 3 and row[0] == row[1] == row[2]


def test_prompt_longer_than_the_context_is_refused(transformers_sampler):
    long_prompt = "the movie was good " * 200  # far more than the tiny model's 512 positions
    with pytest.raises(PromptTooLongError) as caught:
        transformers_sampler.generate(["hi", long_prompt], SamplingParams(n=1, max_new_tokens=4))
    assert caught.value.index == 1
    assert caught.value.max_model_len == 512


def test_truncate_at_stop_uses_the_earliest_stop_string():
    assert truncate_at_stop("one. two! three", ["!", "."]) == "one"
    assert truncate_at_stop("no stop here", ["###"]) == "no stop here"
